"""Helpers shared by the command modules."""

import json

from actors.client import api
from actors.client.cli import CommandError, UsageError, list_flag, string_flag

FORMAT_HELP = "Format output using a custom template ('table', 'table TEMPLATE', 'json', TEMPLATE)"


def format_flag(short: str = "") -> object:
    return string_flag("format", short, FORMAT_HELP)


def filter_flag(short: str = "f") -> object:
    """--filter; prune commands have no -f for it (-f is --force there)."""
    return list_flag("filter", short, "Filter output based on conditions provided")


def parse_filters(values: list[str], flag: str = "-f, --filter") -> dict:
    """["status=exited", "label=a=b"] -> {"status": {"exited": True}, ...} (Go client form)."""
    filters: dict = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals:
            raise UsageError(
                f'invalid argument "{value}" for "{flag}" flag: bad format of filter '
                f"(expected name=value)"
            )
        name = name.strip().lower()
        filters.setdefault(name, {})[text.strip()] = True
    return filters


def filters_query(filters: dict) -> str | None:
    if not filters:
        return None
    return json.dumps(filters, separators=(",", ":"), sort_keys=True)


def for_each(cli, names: list[str], action) -> int:
    """Run `action(name)` for each name, printing the name on success; errors go at the end."""
    errors = []
    for name in names:
        try:
            action(name)
        except api.APIError as error:
            errors.append(str(error))
            continue
        cli.out(name + "\n")
    if errors:
        cli.flush()
        raise CommandError("\n".join(errors))
    return 0


def quote_path(name: str) -> str:
    return api.quote(name, safe="/:@")


def confirm(cli, message: str) -> bool:
    """Ask a [y/N] question on the terminal; anything but y/yes is no."""
    cli.err(f"{message} [y/N] ")
    cli.flush()
    answer = cli.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def print_json(cli, value) -> None:
    """docker's indented JSON: 4 spaces, no ASCII escaping."""
    cli.out(json.dumps(value, indent=4, ensure_ascii=False) + "\n")


def inspect_output(cli, objects: list, template: str) -> None:
    from actors.client import tables

    if template:
        cli.out(tables.render_each(template, objects))
    else:
        print_json(cli, objects)


def refuse_terminal(cli, output: str, what: str = "save") -> None:
    if not output and cli.stdout_is_tty():
        raise CommandError(
            f"cowardly refusing to {what} to a terminal. Use the -o flag or redirect"
        )


def write_stream(cli, response, output: str) -> None:
    """Copy a binary response body to a file (atomically replaced) or stdout."""
    import os

    if output:
        directory = os.path.dirname(os.path.abspath(output)) or "."
        temporary = os.path.join(directory, f".{os.path.basename(output)}.flotta-tmp")
        try:
            with open(temporary, "wb") as handle:
                for data in response.iter_raw():
                    handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, output)
        except OSError as error:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise CommandError(f"failed to save to {output}: {error.strerror or error}") from None
        return
    cli.stdout.flush()
    for data in response.iter_raw():
        cli.stdout.buffer.write(data)
    cli.stdout.buffer.flush()


def get_timestamp(value: str, now: float | None = None) -> str:
    """docker's timetypes.GetTimestamp: durations are relative to now, dates absolute."""
    import time

    from actors.client import opts

    if now is None:
        now = time.time()
    if value != "0":
        try:
            nanoseconds = opts.parse_go_duration(value)
        except opts.OptionError:
            pass
        else:
            return str(int(now - nanoseconds / 1e9))
    seconds = parse_datetime(value)
    if seconds is None:
        if "-" in value:
            raise CommandError(f'parsing time "{value}": cannot parse as a timestamp')
        whole, dot, fraction = value.partition(".")
        if not whole.isdigit() or (dot and not fraction.isdigit()):
            raise CommandError(f'failed to parse value as time or duration: "{value}"')
        return value
    whole = int(seconds // 1)
    nanos = round((seconds - whole) * 1e9)
    return f"{whole}.{nanos:09d}"


def parse_datetime(value: str) -> float | None:
    """A date, or date and time, with or without a zone (local time when absent)."""
    import time

    from actors.client import formatting

    has_zone = any(char in value for char in "zZ+") or value.count("-") == 3
    date, _, clock = value.partition("T")
    zone = ""
    if has_zone:
        for marker in ("Z", "z", "+", "-"):
            index = clock.rfind(marker)
            if clock and index > 0:
                clock, zone = clock[:index], clock[index:]
                break
        if not clock and date.count("-") == 3:
            date, zone = date[:10], date[10:]
    parts = clock.split(":") if clock else []
    while len(parts) < 3:
        parts.append("00")
    text = f"{date}T{parts[0]}:{parts[1]}:{parts[2]}"
    if has_zone:
        return formatting.parse_rfc3339(text + (zone if zone not in ("z",) else "Z"))
    seconds_text = parts[2]
    fraction = 0.0
    if "." in seconds_text:
        seconds_text, _, digits = seconds_text.partition(".")
        if not digits.isdigit():
            return None
        fraction = float("0." + digits)
    try:
        moment = time.strptime(f"{date}T{parts[0]}:{parts[1]}:{seconds_text}",
                               "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return time.mktime(moment) + fraction
