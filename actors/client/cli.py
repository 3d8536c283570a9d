"""Command and flag definitions, parsed the way docker's cobra/pflag parser does.

Rules kept from pflag: `--name value`, `--name=value`, `-n value`, `-nvalue`, `-n=value`;
booleans never take the next word (`--rm=false` to turn one off); several short booleans
combine (`-it`); `--` ends the flags. Commands that run another program (`run`, `create`,
`exec`) stop parsing flags at the first positional word. Errors carry docker's wording and
exit codes: 125 for a flag error, 1 for a wrong number of arguments.
"""

import sys

PROGRAM = "flotta"


def is_tty(stream: object) -> bool:
    """Whether a stream is a terminal; a closed or fake stream is not."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


class UsageError(Exception):
    """A command line that cannot be parsed; `exit_code` is what docker would exit with."""

    def __init__(self, message: str, exit_code: int = 125, hint: str = "Run") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint


class CommandError(Exception):
    """A command failed after parsing; the message is printed as one line, then exit."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Flag:
    """One option. kind: bool, string, int, float, list (repeatable), count."""

    __slots__ = ("default", "dest", "help", "hidden", "kind", "long", "metavar", "short")

    def __init__(self, long, short="", kind="bool", default=None, help="", dest="",
                 metavar="", hidden=False):
        self.long = long
        self.short = short
        self.kind = kind
        if default is None:
            default = {"bool": False, "list": [], "int": 0, "float": 0.0}.get(kind, "")
        self.default = default
        self.help = help
        self.dest = dest or long.replace("-", "_")
        self.metavar = metavar or {"int": "int", "float": "decimal", "list": "list"}.get(
            kind, "string"
        )
        self.hidden = hidden

    def display(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"


def bool_flag(long, short="", help="", default=False, **kw) -> Flag:
    return Flag(long, short, "bool", default, help, **kw)


def string_flag(long, short="", help="", default="", **kw) -> Flag:
    return Flag(long, short, "string", default, help, **kw)


def int_flag(long, short="", help="", default=0, **kw) -> Flag:
    return Flag(long, short, "int", default, help, **kw)


def list_flag(long, short="", help="", **kw) -> Flag:
    return Flag(long, short, "list", [], help, **kw)


class Command:
    """A (sub)command: its usage line, flags, argument count and the function that runs it.

    `run(cli, options, args)` returns an exit code (None means 0).
    """

    __slots__ = ("args_max", "args_min", "flags", "help", "interspersed", "name", "run",
                 "usage")

    def __init__(self, name, usage, help, flags, run, args_min=0, args_max=None,
                 interspersed=True):
        self.name = name
        self.usage = usage
        self.help = help
        self.flags = list(flags)
        self.run = run
        self.args_min = args_min
        self.args_max = args_max
        self.interspersed = interspersed


class Options(dict):
    """Parsed flag values by `dest`, plus the set of flags the user actually gave."""

    def __init__(self) -> None:
        super().__init__()
        self.given: set[str] = set()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def _parse_bool(flag: Flag, text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(
        f'invalid argument "{text}" for "{flag.display()}" flag: strconv.ParseBool: '
        f'parsing "{text}": invalid syntax'
    )


def _store(options: Options, flag: Flag, text: str | None) -> None:
    options.given.add(flag.dest)
    if flag.kind == "bool":
        options[flag.dest] = True if text is None else _parse_bool(flag, text)
    elif flag.kind == "list":
        options[flag.dest] = [*options[flag.dest], text]
    elif flag.kind == "int":
        try:
            options[flag.dest] = int(text)
        except ValueError:
            raise UsageError(
                f'invalid argument "{text}" for "{flag.display()}" flag: strconv.ParseInt: '
                f'parsing "{text}": invalid syntax'
            ) from None
    elif flag.kind == "float":
        try:
            options[flag.dest] = float(text)
        except ValueError:
            raise UsageError(
                f'invalid argument "{text}" for "{flag.display()}" flag: strconv.ParseFloat: '
                f'parsing "{text}": invalid syntax'
            ) from None
    else:
        options[flag.dest] = text


HELP_FLAG = Flag("help", "", "bool", False, "Print usage")


def parse_flags(flags: list[Flag], argv: list[str], interspersed: bool = True):
    """Parse argv against `flags`; return (Options, positional arguments)."""
    by_long = {flag.long: flag for flag in flags}
    by_short = {flag.short: flag for flag in flags if flag.short}
    by_long.setdefault("help", HELP_FLAG)
    options = Options()
    for flag in by_long.values():
        options[flag.dest] = list(flag.default) if flag.kind == "list" else flag.default
    positional: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        index += 1
        if word == "--":
            positional.extend(argv[index:])
            break
        if word.startswith("--") and len(word) > 2:
            name, equals, value = word[2:].partition("=")
            flag = by_long.get(name)
            if flag is None:
                raise UsageError(f"unknown flag: --{name}")
            if flag.kind == "bool":
                _store(options, flag, value if equals else None)
            elif equals:
                _store(options, flag, value)
            elif index < len(argv):
                _store(options, flag, argv[index])
                index += 1
            else:
                raise UsageError(f"flag needs an argument: --{name}")
        elif word.startswith("-") and len(word) > 1:
            letters = word[1:]
            position = 0
            while position < len(letters):
                letter = letters[position]
                position += 1
                flag = by_short.get(letter)
                if flag is None:
                    if letter == "h" and "h" not in by_short:
                        options["help"] = True
                        continue
                    raise UsageError(f"unknown shorthand flag: '{letter}' in -{letters}")
                rest = letters[position:]
                if flag.kind == "bool":
                    if rest.startswith("="):
                        _store(options, flag, rest[1:])
                        break
                    _store(options, flag, None)
                    continue
                if rest:
                    _store(options, flag, rest[1:] if rest.startswith("=") else rest)
                elif index < len(argv):
                    _store(options, flag, argv[index])
                    index += 1
                else:
                    raise UsageError(f"flag needs an argument: '{letter}' in -{letters}")
                break
        else:
            positional.append(word)
            if not interspersed:
                positional.extend(argv[index:])
                break
    return options, positional


def check_arg_count(command: Command, path: str, args: list[str]) -> None:
    """Raise docker's message (exit code 1) when the number of arguments is wrong."""
    minimum, maximum = command.args_min, command.args_max

    def plural(count: int) -> str:
        return f"{count} argument" if count == 1 else f"{count} arguments"

    if maximum == 0 and args:
        raise UsageError(f"'{path}' accepts no arguments", exit_code=1)
    if minimum == maximum and len(args) != minimum:
        raise UsageError(f"'{path}' requires {plural(minimum)}", exit_code=1)
    if maximum is not None and minimum and not minimum <= len(args) <= maximum:
        raise UsageError(
            f"'{path}' requires at least {minimum} and at most {plural(maximum)}", exit_code=1
        )
    if len(args) < minimum:
        raise UsageError(f"'{path}' requires at least {plural(minimum)}", exit_code=1,
                         hint="See")
    if maximum is not None and len(args) > maximum:
        raise UsageError(f"'{path}' requires at most {plural(maximum)}", exit_code=1)


def usage_text(command: Command, path: str) -> str:
    """The help page: usage line, description, and the aligned list of options."""
    lines = [f"Usage:  {path} {command.usage}".rstrip(), "", command.help, ""]
    visible = [flag for flag in command.flags if not flag.hidden]
    if visible:
        lines.append("Options:")
        entries = []
        for flag in sorted(visible, key=lambda f: f.long):
            name = f"-{flag.short}, --{flag.long}" if flag.short else f"    --{flag.long}"
            if flag.kind not in ("bool", "count"):
                name += f" {flag.metavar}"
            text = flag.help
            # pflag shows non-zero defaults: (default -1), (default "missing"), (default true)
            if flag.kind == "bool" and flag.default:
                text += " (default true)"
            elif flag.kind == "string" and flag.default:
                text += f' (default "{flag.default}")'
            elif flag.kind in ("int", "float") and flag.default:
                text += f" (default {flag.default})"
            entries.append((name, text))
        width = max(len(name) for name, _ in entries)
        for name, text in entries:
            lines.append(f"  {name.ljust(width)}   {text}".rstrip())
        lines.append("")
    return "\n".join(lines)


def write_usage_error(error: UsageError, command: Command | None, path: str) -> None:
    """Print a usage error the way docker does (message, usage line, pointer to --help)."""
    stream = sys.stderr
    if command is None:
        stream.write(f"{PROGRAM}: {error.message}\n\n")
        stream.write(f"Run '{PROGRAM} --help' for more information\n")
    else:
        # Argument-count errors carry the program prefix; flag errors do not.
        prefix = f"{PROGRAM}: " if error.exit_code == 1 else ""
        stream.write(f"{prefix}{error.message}\n\n")
        stream.write(f"Usage:  {path} {command.usage}".rstrip() + "\n\n")
        stream.write(f"{error.hint} '{path} --help' for more information\n")
    stream.flush()


class Cli:
    """What a command runs with: the global options, output streams, and a lazy API client."""

    def __init__(self, global_options: Options | None = None, environ=None) -> None:
        import os

        self.options = global_options if global_options is not None else Options()
        self.environ = os.environ if environ is None else environ
        self._client = None
        self.stdin = sys.stdin
        self.stdout = sys.stdout
        self.stderr = sys.stderr

    @property
    def client(self):
        if self._client is None:
            from actors.client import api

            options = self.options
            hosts = options.get("host") or []
            if len(hosts) > 1:
                raise CommandError("Specify only one -H")
            try:
                endpoint = api.endpoint_from_environment(
                    host=hosts[0] if hosts else None,
                    tls=bool(options.get("tls")),
                    tlsverify=True if options.get("tlsverify") else None,
                    tlscacert=options.get("tlscacert") or None,
                    tlscert=options.get("tlscert") or None,
                    tlskey=options.get("tlskey") or None,
                    environ=self.environ,
                )
            except api.UsageError as error:
                raise CommandError(str(error)) from None
            self._client = api.Client(endpoint)
        return self._client

    @client.setter
    def client(self, value) -> None:
        self._client = value

    def config_dir(self) -> str:
        import os

        configured = self.options.get("config") or self.environ.get("DOCKER_CONFIG")
        if configured:
            return configured
        return os.path.join(os.path.expanduser("~"), ".docker")

    def out(self, text: str) -> None:
        self.stdout.write(text)

    def err(self, text: str) -> None:
        self.stderr.write(text)

    def out_bytes(self, data: bytes) -> None:
        self.stdout.flush()
        self.stdout.buffer.write(data)

    def err_bytes(self, data: bytes) -> None:
        self.stderr.flush()
        self.stderr.buffer.write(data)

    def flush(self) -> None:
        for stream in (self.stdout, self.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass

    def stdout_is_tty(self) -> bool:
        return is_tty(self.stdout)

    def stderr_is_tty(self) -> bool:
        return is_tty(self.stderr)

    def stdin_is_tty(self) -> bool:
        return is_tty(self.stdin)
