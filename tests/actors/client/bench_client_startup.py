"""Startup figures for `flotta version` and `flotta ps` (run by hand; prints, asserts nothing).

    .venv/bin/python tests/actors/client/bench_client_startup.py [runs]

Against a stub daemon on a UNIX socket it reports, per command: median wall time of the
whole process, median CPU time (user+sys, less sensitive to a busy machine), and from
`python -X importtime` the time spent importing, split into interpreter startup (`site`,
including the editable-install finder) and everything the command itself imports.
Bytecode is compiled first and PYTHONDONTWRITEBYTECODE is dropped, as in a normal install.
"""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)

from client_stub_daemon import StubDaemon  # noqa: E402


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], environment: dict, runs: int) -> tuple[float, float, float]:
    """(median wall ms, median child CPU ms, fastest wall ms)."""
    walls, cpus = [], []
    for _ in range(runs):
        cpu_before = child_cpu_seconds()
        start = time.perf_counter()
        subprocess.run(command, env=environment, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        cpus.append(child_cpu_seconds() - cpu_before)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000, min(walls) * 1000


def import_times(command: list[str], environment: dict, runs: int) -> tuple[float, float]:
    """Median (site import µs, command import µs) from -X importtime's top-level entries."""
    site_times, own_times = [], []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-X", "importtime", *command[1:]],
                                env=environment, capture_output=True, text=True, check=True)
        site = own = 0
        for line in result.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _, cumulative, name = line.split("|")
            if not cumulative.strip().isdigit() or name.startswith("  "):
                continue  # only top-level imports: their cumulative times add up
            if name.strip() in ("site", "encodings", "_frozen_importlib_external",
                                "zipimport", "codecs", "io", "abc", "time", "posix"):
                site += int(cumulative)
            else:
                own += int(cumulative)
        site_times.append(site)
        own_times.append(own)
    return statistics.median(site_times) / 1000, statistics.median(own_times) / 1000


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    os.path.join(REPOSITORY, "actors", "client")], check=True,
                   stdout=subprocess.DEVNULL)
    directory = tempfile.mkdtemp(prefix="flbench")
    daemon = StubDaemon(os.path.join(directory, "d.sock"))
    daemon.reply("GET", "/containers/json", 200, [])
    daemon.reply("GET", "/version", 200, {"Version": "0.1.0", "ApiVersion": "1.45",
                                          "MinAPIVersion": "1.24", "Os": "linux",
                                          "Arch": "amd64"})
    daemon.start()
    environment = {key: value for key, value in os.environ.items()
                   if key != "PYTHONDONTWRITEBYTECODE"}
    environment["DOCKER_HOST"] = daemon.url
    flotta = os.path.join(os.path.dirname(sys.executable), "flotta")
    try:
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
              f"{runs} runs each; medians")
        wall, cpu, fastest = measure([sys.executable, "-c", "pass"], environment, runs)
        print(f"{'python -c pass':16s} wall {wall:6.1f} ms (fastest {fastest:5.1f})   "
              f"cpu {cpu:6.1f} ms")
        wall, cpu, fastest = measure([sys.executable, "-S", "-c", "pass"], environment, runs)
        print(f"{'python -S -c pass':16s} wall {wall:6.1f} ms (fastest {fastest:5.1f})   "
              f"cpu {cpu:6.1f} ms")
        for arguments in (["version"], ["ps"]):
            command = [flotta, *arguments]
            wall, cpu, fastest = measure(command, environment, runs)
            site, own = import_times([sys.executable, flotta, *arguments], environment, runs)
            print(f"{'flotta ' + ' '.join(arguments):16s} wall {wall:6.1f} ms (fastest "
                  f"{fastest:5.1f})   cpu {cpu:6.1f} ms   imports: interpreter/site {site:5.1f} "
                  f"ms, flotta's own {own:5.1f} ms")
        # The same without `site` (so without the editable-install finder it loads), as a
        # regular or `editable_mode=compat` install would behave.
        code = (f"import sys; sys.path[:0] = [{REPOSITORY!r}]; "
                "from actors.client.main import main; sys.exit(main())")
        for arguments in (["version"], ["ps"]):
            wall, cpu, fastest = measure([sys.executable, "-S", "-c", code, *arguments],
                                         environment, runs)
            print(f"{'  without site:':16s} {' '.join(arguments):7s} wall {wall:6.1f} ms "
                  f"(fastest {fastest:5.1f})   cpu {cpu:6.1f} ms")
    finally:
        daemon.stop()
        os.rmdir(directory)


if __name__ == "__main__":
    main()
