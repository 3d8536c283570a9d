"""`flotta`: the command line. Parses the global flags, finds the command, runs it.

Only the module of the command being run is imported, so `flotta ps` loads the container
commands and the HTTP client and nothing else. Three flotta-only commands bypass the
docker-style table: `sim` (exec'd as `python -m sim`, keeping the simulator out of this
process), `compose` and `registry serve` (imported only when asked for).
"""

import os
import sys

from actors.client.cli import (
    PROGRAM,
    Cli,
    CommandError,
    Flag,
    Options,
    UsageError,
    check_arg_count,
    parse_flags,
    usage_text,
    write_usage_error,
)

VERSION = "0.1.0"

GLOBAL_FLAGS = [
    Flag("config", "", "string", "", "Location of client config files (default ~/.docker)"),
    Flag("context", "c", "string", "", "Name of the context to use (only \"default\")"),
    Flag("debug", "D", "bool", False, "Enable debug mode"),
    Flag("host", "H", "list", None, "Daemon socket to connect to"),
    Flag("log-level", "l", "string", "info", "Set the logging level"),
    Flag("tls", "", "bool", False, "Use TLS; implied by --tlsverify"),
    Flag("tlscacert", "", "string", "", "Trust certs signed only by this CA"),
    Flag("tlscert", "", "string", "", "Path to TLS certificate file"),
    Flag("tlskey", "", "string", "", "Path to TLS key file"),
    Flag("tlsverify", "", "bool", False, "Use TLS and verify the remote"),
    Flag("version", "v", "bool", False, "Print version information and quit"),
]

# command word -> (module under actors.client.commands, key in its COMMANDS)
TOP_LEVEL = {
    "attach": ("run", "attach"),
    "bootstrap": ("system", "bootstrap"),
    "build": ("build", "build"),
    "commit": ("containers", "commit"),
    "cp": ("cp", "cp"),
    "create": ("run", "create"),
    "diff": ("containers", "diff"),
    "events": ("system", "events"),
    "exec": ("run", "exec"),
    "export": ("containers", "export"),
    "history": ("images", "history"),
    "images": ("images", "images"),
    "import": ("images", "import"),
    "info": ("system", "info"),
    "inspect": ("system", "inspect"),
    "kill": ("containers", "kill"),
    "load": ("images", "load"),
    "login": ("images", "login"),
    "logout": ("images", "logout"),
    "logs": ("containers", "logs"),
    "pause": ("containers", "pause"),
    "port": ("containers", "port"),
    "ps": ("containers", "ps"),
    "pull": ("images", "pull"),
    "push": ("images", "push"),
    "rename": ("containers", "rename"),
    "restart": ("containers", "restart"),
    "rm": ("containers", "rm"),
    "rmi": ("images", "rmi"),
    "run": ("run", "run"),
    "save": ("images", "save"),
    "start": ("run", "start"),
    "stats": ("containers", "stats"),
    "stop": ("containers", "stop"),
    "tag": ("images", "tag"),
    "top": ("containers", "top"),
    "unpause": ("containers", "unpause"),
    "update": ("containers", "update"),
    "version": ("system", "version"),
    "wait": ("containers", "wait"),
}

MANAGEMENT = {
    "container": ("Manage containers", {
        "attach": ("run", "attach"),
        "commit": ("containers", "commit"),
        "cp": ("cp", "cp"),
        "create": ("run", "create"),
        "diff": ("containers", "diff"),
        "exec": ("run", "exec"),
        "export": ("containers", "export"),
        "inspect": ("containers", "inspect"),
        "kill": ("containers", "kill"),
        "logs": ("containers", "logs"),
        "ls": ("containers", "ps"),
        "list": ("containers", "ps"),
        "ps": ("containers", "ps"),
        "pause": ("containers", "pause"),
        "port": ("containers", "port"),
        "prune": ("containers", "prune"),
        "rename": ("containers", "rename"),
        "restart": ("containers", "restart"),
        "rm": ("containers", "rm"),
        "remove": ("containers", "rm"),
        "run": ("run", "run"),
        "start": ("run", "start"),
        "stats": ("containers", "stats"),
        "stop": ("containers", "stop"),
        "top": ("containers", "top"),
        "unpause": ("containers", "unpause"),
        "update": ("containers", "update"),
        "wait": ("containers", "wait"),
    }),
    "image": ("Manage images", {
        "build": ("build", "build"),
        "history": ("images", "history"),
        "import": ("images", "import"),
        "inspect": ("images", "inspect"),
        "load": ("images", "load"),
        "ls": ("images", "images"),
        "list": ("images", "images"),
        "prune": ("images", "prune"),
        "pull": ("images", "pull"),
        "push": ("images", "push"),
        "rm": ("images", "rmi"),
        "remove": ("images", "rmi"),
        "save": ("images", "save"),
        "tag": ("images", "tag"),
    }),
    "network": ("Manage networks", {
        "connect": ("networks", "connect"),
        "create": ("networks", "create"),
        "disconnect": ("networks", "disconnect"),
        "inspect": ("networks", "inspect"),
        "ls": ("networks", "ls"),
        "list": ("networks", "ls"),
        "prune": ("networks", "prune"),
        "rm": ("networks", "rm"),
        "remove": ("networks", "rm"),
    }),
    "volume": ("Manage volumes", {
        "create": ("volumes", "create"),
        "inspect": ("volumes", "inspect"),
        "ls": ("volumes", "ls"),
        "list": ("volumes", "ls"),
        "prune": ("volumes", "prune"),
        "rm": ("volumes", "rm"),
        "remove": ("volumes", "rm"),
    }),
    "system": ("Manage flotta", {
        "df": ("system", "df"),
        "events": ("system", "events"),
        "info": ("system", "info"),
        "prune": ("system", "prune"),
    }),
}

ROOT_HELP = """Usage:  flotta [OPTIONS] COMMAND

A container engine that speaks the Docker Engine API

Common Commands:
  run         Create and run a new container from an image
  exec        Execute a command in a running container
  ps          List containers
  build       Build an image from a Dockerfile
  pull        Download an image from a registry
  push        Upload an image to a registry
  images      List images
  login       Log in to a registry
  logout      Log out from a registry
  version     Show the flotta version information
  info        Display system-wide information

Management Commands:
  container   Manage containers
  image       Manage images
  network     Manage networks
  system      Manage flotta
  volume      Manage volumes
  compose     Define and run multi-container applications (flotta compose)
  registry    Run a registry server (flotta registry serve)
  sim         Run the deterministic cluster simulator

Commands:
  attach      Attach local standard input, output, and error streams to a running container
  bootstrap   Create a base image (busybox or debian) on the daemon
  commit      Create a new image from a container's changes
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  diff        Inspect changes to files or directories on a container's filesystem
  events      Get real time events from the server
  export      Export a container's filesystem as a tar archive
  history     Show the history of an image
  import      Import the contents from a tarball to create a filesystem image
  inspect     Return low-level information on flotta objects
  kill        Kill one or more running containers
  load        Load an image from a tar archive or STDIN
  logs        Fetch the logs of a container
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  rmi         Remove one or more images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  wait        Block until one or more containers stop, then print their exit codes

Global Options:
      --config string      Location of client config files (default ~/.docker)
  -D, --debug              Enable debug mode
  -H, --host list          Daemon socket to connect to (default unix:///run/flotta.sock)
  -l, --log-level string   Set the logging level (default "info")
      --tls                Use TLS; implied by --tlsverify
      --tlscacert string   Trust certs signed only by this CA
      --tlscert string     Path to TLS certificate file
      --tlskey string      Path to TLS key file
      --tlsverify          Use TLS and verify the remote
  -v, --version            Print version information and quit

Run 'flotta COMMAND --help' for more information on a command.
"""


def _management_help(name: str, description: str, commands: dict) -> str:
    lines = [f"Usage:  {PROGRAM} {name} COMMAND", "", description, "", "Commands:"]
    for sub in sorted(commands):
        lines.append(f"  {sub}")
    lines.append("")
    lines.append(f"Run '{PROGRAM} {name} COMMAND --help' for more information on a command.")
    return "\n".join(lines) + "\n"


def load_command(route: tuple[str, str]):
    module_name, key = route
    module = __import__(f"actors.client.commands.{module_name}", fromlist=["COMMANDS"])
    return module.COMMANDS[key]


def _run_sim(args: list[str]) -> int:
    # The simulator may only be imported by sim/ itself; a new process keeps the boundary.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "sim", *args])
    return 127  # not reached


def _run_external(module_name: str, args: list[str], what: str) -> int:
    try:
        module = __import__(module_name, fromlist=["main"])
    except ImportError as error:
        sys.stderr.write(f"{PROGRAM}: {what} is not available: {error}\n")
        return 1
    result = module.main(args)
    return int(result or 0)


def _compose_global_args(global_options: "Options") -> list[str]:
    """`flotta -H … --tlsverify compose …`: hand the daemon address and TLS to Compose.

    Compose takes `--host` itself; TLS reaches it the way the docker CLI documents for
    its environment (FLOTTA_TLS_VERIFY, FLOTTA_CERT_PATH with ca.pem, cert.pem, key.pem).
    """
    args: list[str] = []
    for host in global_options.get("host") or []:
        args += ["--host", host]
    files = {"tlscacert": "ca.pem", "tlscert": "cert.pem", "tlskey": "key.pem"}
    given = {flag: global_options.get(flag) for flag in files if global_options.get(flag)}
    if given:
        directories = {os.path.dirname(os.path.abspath(path)) for path in given.values()}
        named = all(os.path.basename(path) == files[flag] for flag, path in given.items())
        if len(directories) != 1 or not named:
            raise UsageError("with compose, --tlscacert, --tlscert and --tlskey must be "
                             "ca.pem, cert.pem and key.pem in one directory "
                             "(or set FLOTTA_CERT_PATH)")
        os.environ["FLOTTA_CERT_PATH"] = directories.pop()
    if global_options.get("tlsverify") or given:
        os.environ["FLOTTA_TLS_VERIFY"] = "1"
    return args


def entry() -> int:
    """The `flotta` program: `main` plus what only a whole process may do."""
    # `_signal`, not `signal`: the wrapper module builds enums at import (about a millisecond).
    import _signal

    # Die quietly on a closed pipe (`flotta ps | head`), as Go programs do. Only here:
    # `main` also runs inside other programs (tests, Compose), which must keep Python's
    # default of raising BrokenPipeError.
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    return main()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        global_options, rest = parse_flags(GLOBAL_FLAGS, argv, interspersed=False)
    except UsageError as error:
        sys.stderr.write(f"{error.message}\n\nRun '{PROGRAM} --help' for more information\n")
        return 125
    if global_options.version:
        sys.stdout.write(f"{PROGRAM} version {VERSION}\n")
        return 0
    if not rest:
        sys.stdout.write(ROOT_HELP)
        return 0
    context = global_options.get("context")
    if context and context != "default":
        sys.stderr.write(f"{PROGRAM}: context {context!r} is not supported (only \"default\")\n")
        return 1
    word = rest[0]
    if word == "help":
        if len(rest) == 1:
            sys.stdout.write(ROOT_HELP)
            return 0
        rest = [*rest[1:], "--help"]
        word = rest[0]
    if word == "sim":
        return _run_sim(rest[1:])
    if word == "compose":
        try:
            compose_args = _compose_global_args(global_options)
        except UsageError as error:
            sys.stderr.write(f"{PROGRAM}: {error.message}\n")
            return 125
        return _run_external("actors.compose.cli", [*compose_args, *rest[1:]], "flotta compose")
    if word == "registry":
        return _run_external("actors.images.registry_server", rest[1:], "flotta registry")
    path = f"{PROGRAM} {word}"
    args = rest[1:]
    route = TOP_LEVEL.get(word)
    if route is None and word in MANAGEMENT:
        description, commands = MANAGEMENT[word]
        if not args or args[0] in ("--help", "-h", "help"):
            sys.stdout.write(_management_help(word, description, commands))
            return 0
        route = commands.get(args[0])
        if route is None:
            if args[0].startswith("-"):
                sys.stderr.write(f"unknown flag: {args[0]}\n\n"
                                 f"Run '{path} --help' for more information\n")
                return 125
            sys.stderr.write(f"{PROGRAM}: unknown command: {path} {args[0]}\n\n"
                             f"Usage:  {path}\n\n"
                             f"Run '{path} --help' for more information\n")
            return 1
        path = f"{path} {args[0]}"
        args = args[1:]
    if route is None:
        sys.stderr.write(f"{PROGRAM}: unknown command: {PROGRAM} {word}\n\n"
                         f"Run '{PROGRAM} --help' for more information\n")
        return 1
    command = load_command(route)
    return run_command(command, path, args, global_options)


def run_command(command, path: str, args: list[str], global_options) -> int:
    from actors.client import api

    cli = Cli(global_options)
    try:
        try:
            options, positional = parse_flags(command.flags, args, command.interspersed)
            if options.get("help"):
                sys.stdout.write(usage_text(command, path))
                return 0
            check_arg_count(command, path, positional)
        except UsageError as error:
            write_usage_error(error, command, path)
            return error.exit_code
        try:
            result = command.run(cli, options, positional)
            return int(result or 0)
        except UsageError as error:
            cli.flush()
            write_usage_error(error, command, path)
            return error.exit_code
        except CommandError as error:
            cli.flush()
            if error.message:
                sys.stderr.write(error.message.rstrip("\n") + "\n")
            return error.exit_code
        except api.ClientError as error:
            cli.flush()
            sys.stderr.write(f"{error}\n")
            return 1
        except KeyboardInterrupt:
            cli.flush()
            return 130
    finally:
        cli.flush()
        if cli._client is not None:
            cli._client.close()


if __name__ == "__main__":
    sys.exit(entry())
