"""Commands that attach to a container's stdio: run, create, start, attach, exec.

`run` follows the docker CLI's sequence (docker-api.md §2.1): create (on 404: "Unable to
find image", pull, create again) -> attach (hijacked, before start so no output is lost)
-> wait (condition next-exit, or removed with --rm; its headers arrive at once) -> start
-> resize (TTY) -> pump stdio until the stream ends -> exit with the wait's status code.
"""

import os
import signal
import sys

from actors.client import api
from actors.client.cli import Command, CommandError, bool_flag, list_flag, string_flag
from actors.client.commands.common import quote_path

# Signals the CLI forwards to the container (docker forwards all but CHLD, PIPE, URG).
PROXIED_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGALRM")
RESIZE_RETRIES = 10


def container_path(name: str, suffix: str = "") -> str:
    return f"/containers/{quote_path(name)}{suffix}"


def run_error(cli, command: str, error: Exception, exit_code: int = 125) -> CommandError:
    """docker's shape for run/create failures: "flotta: <error>" + a pointer to --help."""
    return CommandError(f"flotta: {error}\n\nRun 'flotta {command} --help' for more information",
                        exit_code)


def start_error_code(message: str) -> int:
    """docker run's exit code for a failed start, from the daemon's message."""
    if ("executable file not found" in message or "no such file or directory" in message
            or "system cannot find the file specified" in message):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


# --------------------------------------------------------------------------- helpers


class WaitHandle:
    """A `POST /containers/{id}/wait` whose headers arrived; the body is read in a thread."""

    def __init__(self, client, container_id: str, condition: str) -> None:
        import threading

        query = {"condition": condition} if condition else None
        self.response = client.request("POST", container_path(container_id, "/wait"), query)
        self.result: dict | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, name="wait", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self.result = self.response.json() or {}
        except BaseException as error:
            self.error = error

    def status(self) -> int:
        self._thread.join()
        if self.error is not None:
            raise CommandError(f"error waiting for container: {self.error}", 125)
        result = self.result or {}
        failure = result.get("Error")
        if failure and failure.get("Message"):
            raise CommandError(f"error waiting for container: {failure['Message']}", 125)
        return int(result.get("StatusCode") or 0)

    def abandon(self) -> None:
        self.response.close()


def resize(client, path: str, fd: int) -> bool:
    from actors.client import streams

    rows, columns = streams.terminal_size(fd)
    if rows == 0 and columns == 0:
        return True
    try:
        client.request("POST", path, {"h": rows, "w": columns}).close()
    except api.ClientError:
        return False
    return True


def monitor_tty_size(cli, path: str) -> None:
    """Resize now (retrying as docker does while the process starts) and on every SIGWINCH."""
    import threading
    import time

    fd = cli.stdout.fileno()
    client = cli.client
    if not resize(client, path, fd):
        def retry() -> None:
            for attempt in range(RESIZE_RETRIES):
                time.sleep((attempt + 1) * 0.01)
                if resize(client, path, fd):
                    return
            sys.stderr.write("failed to resize tty, using default size\n")

        threading.Thread(target=retry, name="resize", daemon=True).start()
    signal.signal(signal.SIGWINCH, lambda number, frame: resize(client, path, fd))


def proxy_signals(client, container_id: str) -> None:
    """Forward the signals we receive to the container (`--sig-proxy`, non-TTY runs)."""

    def forward(number, frame) -> None:
        name = signal.Signals(number).name[3:]
        try:
            client.request("POST", container_path(container_id, "/kill"),
                           {"signal": name}).close()
        except api.ClientError as error:
            sys.stderr.write(f"error sending signal: {error}\n")

    for name in PROXIED_SIGNALS:
        signal.signal(getattr(signal, name), forward)


def detach_keys_bytes(text: str) -> bytes:
    from actors.client import opts, streams

    if not text:
        return streams.DEFAULT_DETACH_KEYS
    try:
        return opts.parse_detach_keys(text)
    except opts.OptionError as error:
        raise CommandError(str(error)) from None


def pump(cli, stream, tty: bool, with_stdin: bool, detach_keys: bytes) -> str:
    """Run an AttachSession on our stdio; the terminal is raw for TTY sessions."""
    from actors.client import streams

    cli.flush()
    stdin_fd = sys.stdin.fileno() if with_stdin else None
    session = streams.AttachSession(stream, tty, stdin_fd, sys.stdout.buffer, sys.stderr.buffer,
                                    detach_keys if with_stdin else None)
    raw = tty and with_stdin and cli.stdin_is_tty()
    try:
        if raw:
            with streams.RawTerminal(stdin_fd):
                return session.run()
        return session.run()
    except streams.StreamError as error:
        raise CommandError(str(error)) from None


# --------------------------------------------------------------------------- create / run


def _image_reference_text(image: str) -> str:
    from actors.client.reference import ReferenceError, parse_normalized_named

    try:
        return parse_normalized_named(image).with_default_tag().familiar_string()
    except ReferenceError:
        return image


def create_container(cli, options, query: dict, body: dict, command: str) -> str:
    """POST /containers/create, pulling the image on 404 per --pull; returns the ID."""
    from actors.client.commands.images import pull_image
    from actors.client.reference import ReferenceError, parse_normalized_named

    image = body["Image"]
    policy = options.pull or "missing"
    if policy not in ("missing", "always", "never"):
        raise run_error(cli, command, f'invalid pull option: \'{policy}\': must be one of '
                        f'"always", "missing" or "never"')
    quiet = options.quiet
    try:
        parse_normalized_named(image)
        valid_reference = True
    except ReferenceError:
        valid_reference = False

    def pull() -> None:
        pull_image(cli, image, options.platform, out=cli.stderr, quiet=quiet)

    try:
        if policy == "always" and valid_reference:
            pull()
        try:
            result = cli.client.post_json("/containers/create", query, body)
        except api.APIError as error:
            if error.status != 404 or policy != "missing" or not valid_reference:
                raise
            cli.err(f"Unable to find image '{_image_reference_text(image)}' locally\n")
            cli.flush()
            pull()
            result = cli.client.post_json("/containers/create", query, body)
    except CommandError as error:
        raise run_error(cli, command, error.message) from None
    except api.ClientError as error:
        raise run_error(cli, command, error) from None
    result = result or {}
    for warning in result.get("Warnings") or []:
        cli.err(f"WARNING: {warning}\n")
    container_id = result.get("Id") or ""
    if options.cidfile:
        try:
            descriptor = os.open(options.cidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise run_error(cli, command, f"container ID file found, make sure the other "
                            f"container isn't running or delete {options.cidfile}") from None
        with os.fdopen(descriptor, "w") as handle:
            handle.write(container_id)
    return container_id


def _request_from_options(cli, options, args, detach: bool, command: str):
    from actors.client import createopts, streams

    console = (0, 0)
    if options.tty and cli.stdout_is_tty():
        console = streams.terminal_size(cli.stdout.fileno())
    try:
        return createopts.build_create_request(options, args, detach=detach,
                                               console_size=console)
    except createopts.ConfigError as error:
        raise run_error(cli, command, error.message) from None


def run_create(cli, options, args) -> int:
    query, body = _request_from_options(cli, options, args, detach=False, command="create")
    container_id = create_container(cli, options, query, body, "create")
    cli.out(container_id + "\n")
    return 0


def run_run(cli, options, args) -> int:
    query, body = _request_from_options(cli, options, args, detach=True, command="run")
    detach = options.detach
    tty = body["Tty"]
    if not detach and body["AttachStdin"] and tty and not cli.stdin_is_tty():
        raise CommandError("the input device is not a TTY", 1)
    detach_keys = detach_keys_bytes(options.detach_keys)
    container_id = create_container(cli, options, query, body, "run")
    client = cli.client
    if not detach and not tty and options.sig_proxy:
        # As docker does: forward signals from the moment the container exists.
        proxy_signals(client, container_id)
    attached = body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"]
    stream = None
    if not detach and attached:
        attach_query = {"stream": True, "stdin": body["AttachStdin"] or None,
                        "stdout": body["AttachStdout"] or None,
                        "stderr": body["AttachStderr"] or None,
                        "detachKeys": options.detach_keys or None}
        try:
            stream = client.hijack(container_path(container_id, "/attach"), attach_query)
        except api.ClientError as error:
            raise run_error(cli, "run", error) from None
    condition = "removed" if body["HostConfig"]["AutoRemove"] else "next-exit"
    try:
        waiter = WaitHandle(client, container_id, condition)
    except api.ClientError as error:
        if stream is not None:
            stream.close()
        raise run_error(cli, "run", error) from None
    try:
        client.request("POST", container_path(container_id, "/start")).close()
    except api.ClientError as error:
        if stream is not None:
            stream.close()
        waiter.abandon()
        message = error.message if isinstance(error, api.APIError) else str(error)
        raise run_error(cli, "run", error, start_error_code(message)) from None
    if detach:
        waiter.abandon()
        cli.out(container_id + "\n")
        return 0
    if tty and cli.stdout_is_tty():
        monitor_tty_size(cli, container_path(container_id, "/resize"))
    if stream is not None:
        outcome = pump(cli, stream, tty, body["AttachStdin"], detach_keys)
        if outcome == "detached":
            waiter.abandon()
            return 0
    return waiter.status()


# --------------------------------------------------------------------------- start / attach


def run_start(cli, options, args) -> int:
    client = cli.client
    if not (options.attach or options.interactive):
        errors, failed = [], []
        for name in args:
            try:
                client.request("POST", container_path(name, "/start")).close()
            except api.APIError as error:
                errors.append(str(error))
                failed.append(name)
                continue
            cli.out(name + "\n")
        if errors:
            raise CommandError("\n".join(errors) + "\nError: failed to start containers: "
                               + ", ".join(failed))
        return 0
    if len(args) > 1:
        raise CommandError("you cannot start and attach multiple containers at once")
    detach_keys = detach_keys_bytes(options.detach_keys)
    info = client.get_json(container_path(args[0], "/json")) or {}
    container_id = info.get("Id") or args[0]
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    with_stdin = bool(options.interactive and config.get("OpenStdin"))
    stream = client.hijack(container_path(container_id, "/attach"), {
        "stream": True, "stdin": with_stdin or None, "stdout": True, "stderr": True,
        "detachKeys": options.detach_keys or None})
    auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
    waiter = WaitHandle(client, container_id, "removed" if auto_remove else "next-exit")
    try:
        client.request("POST", container_path(container_id, "/start")).close()
    except api.ClientError:
        stream.close()
        waiter.abandon()
        raise
    if tty and cli.stdout_is_tty():
        monitor_tty_size(cli, container_path(container_id, "/resize"))
    if not tty:
        proxy_signals(client, container_id)
    if pump(cli, stream, tty, with_stdin, detach_keys) == "detached":
        waiter.abandon()
        return 0
    return waiter.status()


def run_attach(cli, options, args) -> int:
    client = cli.client
    detach_keys = detach_keys_bytes(options.detach_keys)
    info = client.get_json(container_path(args[0], "/json")) or {}
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CommandError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CommandError("You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise CommandError("You cannot attach to a restarting container, wait until it is "
                           "running")
    container_id = info.get("Id") or args[0]
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    with_stdin = not options.no_stdin and bool(config.get("OpenStdin"))
    if with_stdin and tty and not cli.stdin_is_tty():
        raise CommandError("the input device is not a TTY")
    waiter = WaitHandle(client, container_id, "")
    stream = client.hijack(container_path(container_id, "/attach"), {
        "stream": True, "stdin": with_stdin or None, "stdout": True, "stderr": True,
        "detachKeys": options.detach_keys or None})
    if tty and cli.stdout_is_tty():
        monitor_tty_size(cli, container_path(container_id, "/resize"))
    if options.sig_proxy and not tty:
        proxy_signals(client, container_id)
    if pump(cli, stream, tty, with_stdin, detach_keys) == "detached":
        waiter.abandon()
        return 0
    return waiter.status()


# --------------------------------------------------------------------------- exec


def exec_body(options, command: list[str], console: tuple[int, int] | None, environ=None):
    from actors.client import opts

    env: list[str] = []
    try:
        for path in options.env_file:
            env.extend(opts.read_env_file(path, environ))
        for value in options.env:
            env.append(opts.validate_env(value, environ))
    except opts.OptionError as error:
        raise CommandError(str(error)) from None
    detach = options.detach
    body = {"User": options.user, "Privileged": options.privileged, "Tty": options.tty}
    if console:
        body["ConsoleSize"] = list(console)
    body.update({
        "AttachStdin": options.interactive and not detach,
        "AttachStderr": not detach,
        "AttachStdout": not detach,
        "Detach": detach,
        "DetachKeys": options.detach_keys,
        "Env": env or None,
        "WorkingDir": options.workdir,
        "Cmd": command,
    })
    return body


def run_exec(cli, options, args) -> int:
    from actors.client import streams

    client = cli.client
    container = args[0]
    if options.interactive and options.tty and not options.detach and not cli.stdin_is_tty():
        raise CommandError("the input device is not a TTY")
    detach_keys = detach_keys_bytes(options.detach_keys)
    client.get_json(container_path(container, "/json"))
    console = None
    if options.tty and cli.stdout_is_tty():
        console = streams.terminal_size(cli.stdout.fileno())
    body = exec_body(options, args[1:], console)
    created = client.post_json(container_path(container, "/exec"), None, body) or {}
    exec_id = created.get("Id") or ""
    if not exec_id:
        raise CommandError("exec ID empty")
    start_body = {"Detach": options.detach, "Tty": options.tty}
    if console:
        start_body["ConsoleSize"] = list(console)
    if options.detach:
        client.post_json(f"/exec/{exec_id}/start", None, start_body)
        return 0
    stream = client.hijack(f"/exec/{exec_id}/start", json_body=start_body)
    if options.tty and cli.stdout_is_tty():
        monitor_tty_size(cli, f"/exec/{exec_id}/resize")
    if pump(cli, stream, options.tty, options.interactive, detach_keys) == "detached":
        return 0
    info = client.get_json(f"/exec/{exec_id}/json") or {}
    return int(info.get("ExitCode") or 0)


# --------------------------------------------------------------------------- table


def _run_flags():
    from actors.client import createopts

    return createopts.RUN_FLAGS


def _create_flags():
    from actors.client import createopts

    return createopts.CREATE_FLAGS


COMMANDS = {
    "run": Command("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]",
                   "Create and run a new container from an image", _run_flags(), run_run,
                   args_min=1, interspersed=False),
    "create": Command("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
                      _create_flags(), run_create, args_min=1, interspersed=False),
    "start": Command(
        "start", "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers",
        [
            bool_flag("attach", "a", "Attach STDOUT/STDERR and forward signals"),
            string_flag("detach-keys", "", "Override the key sequence for detaching a "
                        "container"),
            bool_flag("interactive", "i", "Attach container's STDIN"),
        ],
        run_start, args_min=1,
    ),
    "attach": Command(
        "attach", "[OPTIONS] CONTAINER",
        "Attach local standard input, output, and error streams to a running container",
        [
            string_flag("detach-keys", "", "Override the key sequence for detaching a "
                        "container"),
            bool_flag("no-stdin", "", "Do not attach STDIN"),
            bool_flag("sig-proxy", "", "Proxy all received signals to the process",
                      default=True),
        ],
        run_attach, args_min=1, args_max=1,
    ),
    "exec": Command(
        "exec", "[OPTIONS] CONTAINER COMMAND [ARG...]",
        "Execute a command in a running container",
        [
            bool_flag("detach", "d", "Detached mode: run command in the background"),
            string_flag("detach-keys", "", "Override the key sequence for detaching a "
                        "container"),
            list_flag("env", "e", "Set environment variables"),
            list_flag("env-file", "", "Read in a file of environment variables"),
            bool_flag("interactive", "i", "Keep STDIN open even if not attached"),
            bool_flag("privileged", "", "Give extended privileges to the command"),
            bool_flag("tty", "t", "Allocate a pseudo-TTY"),
            string_flag("user", "u", "Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
            string_flag("workdir", "w", "Working directory inside the container"),
        ],
        run_exec, args_min=2, interspersed=False,
    ),
}
