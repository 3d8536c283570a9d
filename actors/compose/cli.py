"""`flotta compose`: Docker Compose v2's command line over flottad.

`main(args)` takes the words after `compose` and returns the exit code. Global flags
come first (`-f`, `-p`, `--project-directory`, `--env-file`, `--profile`, `--ansi`,
`--progress`, ...), then the command and its own flags, parsed the way the docker CLI
parses flags (pflag rules). Errors print one line (or one per problem for a Compose file
that does not load) and exit 1; a flag error exits 125 with the usage line; Ctrl-C 130.
"""

from __future__ import annotations

import sys
from typing import Any

from actors.client import api
from actors.client.cli import (
    Command,
    Flag,
    UsageError,
    bool_flag,
    check_arg_count,
    int_flag,
    list_flag,
    parse_flags,
    string_flag,
    usage_text,
    write_usage_error,
)

from . import commands, commands_info, commands_run
from .context import Context, ContextError
from .errors import ComposeError
from .executor import ExecutionError
from .images import ImageError
from .reconcile import PlanError

PROGRAM = "flotta compose"

GLOBAL_FLAGS = [
    list_flag("file", "f", "Compose configuration files"),
    string_flag("project-name", "p", "Project name"),
    string_flag("project-directory", "", "Specify an alternate working directory\n"
                "(default: the path of the, first specified, Compose file)"),
    string_flag("workdir", "", "DEPRECATED: use --project-directory", hidden=True),
    list_flag("env-file", "", "Specify an alternate environment file"),
    list_flag("profile", "", "Specify a profile to enable"),
    string_flag("ansi", "", 'Control when to print ANSI control characters '
                '("never"|"always"|"auto")', default="auto"),
    string_flag("progress", "", "Set type of progress output (auto, tty, plain, json, quiet)"),
    int_flag("parallel", "", "Control max parallelism, -1 for unlimited", default=-1),
    bool_flag("dry-run", "", "Execute command in dry run mode"),
    bool_flag("compatibility", "", "Run compose in backward compatibility mode"),
    bool_flag("all-resources", "", "Include all resources, even those not used by services",
              hidden=True),
    list_flag("host", "H", "Daemon socket to connect to (flotta)"),
    bool_flag("version", "v", "Show the Docker Compose version information", hidden=True),
    bool_flag("no-ansi", "", "Do not print ANSI control characters (DEPRECATED)", hidden=True),
    bool_flag("verbose", "", "Show more output", hidden=True),
]

_TIMEOUT = int_flag("timeout", "t", "Specify a shutdown timeout in seconds")
_NO_COLOR = bool_flag("no-color", "", "Produce monochrome output")
_NO_PREFIX = bool_flag("no-log-prefix", "", "Don't print prefix in logs")
_BUILD = bool_flag("build", "", "Build images before starting containers")
_PULL = string_flag("pull", "", 'Pull image before running ("always"|"missing"|"never")')
_QUIET_PULL = bool_flag("quiet-pull", "", "Pull without printing progress information")
_REMOVE_ORPHANS = bool_flag("remove-orphans", "",
                            "Remove containers for services not defined in the Compose file")
_SCALE = list_flag("scale", "", "Scale SERVICE to NUM instances. Overrides the `scale` "
                   "setting in the Compose file if present.")
_YES = bool_flag("yes", "y", 'Assume "yes" as answer to all prompts and run non-interactively')
_RECREATE = [
    bool_flag("force-recreate", "", "Recreate containers even if their configuration and "
              "image haven't changed"),
    bool_flag("no-recreate", "", "If containers already exist, don't recreate them. "
              "Incompatible with --force-recreate."),
    bool_flag("always-recreate-deps", "", "Recreate dependent containers. Incompatible with "
              "--no-recreate."),
]

COMMANDS: dict[str, Command] = {
    "up": Command("up", "[OPTIONS] [SERVICE...]", "Create and start containers", [
        bool_flag("detach", "d", "Detached mode: Run containers in the background"),
        _BUILD, bool_flag("no-build", "", "Don't build an image, even if it's policy"),
        *_RECREATE, bool_flag("no-deps", "", "Don't start linked services"),
        _SCALE, _REMOVE_ORPHANS, _TIMEOUT, _PULL, _QUIET_PULL, _YES,
        bool_flag("wait", "", "Wait for services to be running|healthy. Implies detached mode."),
        int_flag("wait-timeout", "", "Maximum duration in seconds to wait for the project to "
                 "be running|healthy"),
        bool_flag("abort-on-container-exit", "", "Stops all containers if any container was "
                  "stopped. Incompatible with -d"),
        string_flag("exit-code-from", "", "Return the exit code of the selected service "
                    "container. Implies --abort-on-container-exit"),
        bool_flag("no-start", "", "Don't start the services after creating them"),
        list_flag("attach", "", "Restrict attaching to the specified services"),
        list_flag("no-attach", "", "Do not attach (stream logs) to the specified services"),
        bool_flag("attach-dependencies", "", "Automatically attach to log output of dependent "
                  "services"),
        _NO_COLOR, _NO_PREFIX,
        bool_flag("timestamps", "", "Show timestamps"),
        bool_flag("menu", "", "Enable interactive shortcuts", hidden=True),
    ], commands.run_up),
    "create": Command("create", "[OPTIONS] [SERVICE...]", "Creates containers for a service", [
        _BUILD, bool_flag("no-build", "", "Don't build an image, even if it's policy"),
        *_RECREATE, _SCALE, _REMOVE_ORPHANS, _PULL, _QUIET_PULL, _YES,
    ], commands.run_create),
    "down": Command("down", "[OPTIONS] [SERVICES]", "Stop and remove containers, networks", [
        bool_flag("volumes", "v", "Remove named volumes declared in the \"volumes\" section of "
                  "the Compose file and anonymous volumes attached to containers"),
        string_flag("rmi", "", 'Remove images used by services. "local" remove only images '
                    'that don\'t have a custom tag ("local"|"all")'),
        _REMOVE_ORPHANS, _TIMEOUT,
    ], commands.run_down),
    "start": Command("start", "[SERVICE...]", "Start services", [
        bool_flag("wait", "", "Wait for services to be running|healthy"),
        int_flag("wait-timeout", "", "Maximum duration in seconds to wait"),
    ], commands.run_start),
    "stop": Command("stop", "[OPTIONS] [SERVICE...]", "Stop services", [_TIMEOUT],
                    commands.run_stop),
    "restart": Command("restart", "[OPTIONS] [SERVICE...]", "Restart service containers", [
        _TIMEOUT, bool_flag("no-deps", "", "Don't restart dependent services")],
        commands.run_restart),
    "kill": Command("kill", "[OPTIONS] [SERVICE...]", "Force stop service containers", [
        string_flag("signal", "s", "SIGNAL to send to the container", default="SIGKILL"),
        _REMOVE_ORPHANS], commands.run_kill),
    "rm": Command("rm", "[OPTIONS] [SERVICE...]", "Removes stopped service containers", [
        bool_flag("force", "f", "Don't ask to confirm removal"),
        bool_flag("stop", "s", "Stop the containers, if required, before removing"),
        bool_flag("volumes", "v", "Remove any anonymous volumes attached to containers"),
        bool_flag("all", "a", "Deprecated - no effect", hidden=True),
    ], commands.run_rm),
    "pause": Command("pause", "[SERVICE...]", "Pause services", [], commands.run_pause),
    "unpause": Command("unpause", "[SERVICE...]", "Unpause services", [],
                       commands.run_unpause),
    "ps": Command("ps", "[OPTIONS] [SERVICE...]", "List containers", [
        bool_flag("all", "a", "Show all stopped containers (including those created by the "
                  "run command)"),
        bool_flag("quiet", "q", "Only display IDs"),
        bool_flag("services", "", "Display services"),
        string_flag("format", "", "Format output using a custom template: 'table' or 'json'",
                    default="table"),
        list_flag("filter", "", "Filter services by a property (supported filters: status)"),
        list_flag("status", "", "Filter services by status. Values: [paused | restarting | "
                  "removing | running | dead | created | exited]"),
        bool_flag("no-trunc", "", "Don't truncate output"),
        bool_flag("orphans", "", "Include orphaned services (not declared by project)",
                  default=True),
    ], commands_info.run_ps),
    "ls": Command("ls", "[OPTIONS]", "List running compose projects", [
        bool_flag("all", "a", "Show all stopped Compose projects"),
        bool_flag("quiet", "q", "Only display project names"),
        string_flag("format", "", "Format the output. Values: [table | json]", default="table"),
        list_flag("filter", "", "Filter output based on conditions provided"),
    ], commands_info.run_ls, args_max=0),
    "logs": Command("logs", "[OPTIONS] [SERVICE...]", "View output from containers", [
        bool_flag("follow", "f", "Follow log output"),
        string_flag("tail", "n", "Number of lines to show from the end of the logs for each "
                    "container", default="all"),
        bool_flag("timestamps", "t", "Show timestamps"),
        string_flag("since", "", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or "
                    "relative (e.g. 42m for 42 minutes)"),
        string_flag("until", "", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or "
                    "relative (e.g. 42m for 42 minutes)"),
        int_flag("index", "", "index of the container if service has multiple replicas"),
        _NO_COLOR, _NO_PREFIX,
    ], commands_info.run_logs),
    "top": Command("top", "[SERVICES...]", "Display the running processes", [],
                   commands_info.run_top),
    "images": Command("images", "[OPTIONS] [SERVICE...]", "List images used by the created "
                      "containers", [
                          bool_flag("quiet", "q", "Only display IDs"),
                          string_flag("format", "", "Format the output. Values: [table | json]",
                                      default="table")], commands_info.run_images),
    "port": Command("port", "[OPTIONS] SERVICE PRIVATE_PORT", "Print the public port for a "
                    "port binding", [
                        string_flag("protocol", "", "tcp or udp", default="tcp"),
                        int_flag("index", "", "Index of the container if service has multiple "
                                 "replicas")], commands_info.run_port, args_min=2, args_max=2),
    "config": Command("config", "[OPTIONS] [SERVICE...]", "Parse, resolve and render compose "
                      "file in canonical format", [
                          bool_flag("services", "", "Print the service names, one per line."),
                          bool_flag("volumes", "", "Print the volume names, one per line."),
                          bool_flag("networks", "", "Print the network names, one per line."),
                          bool_flag("profiles", "", "Print the profile names, one per line."),
                          bool_flag("images", "", "Print the image names, one per line."),
                          string_flag("hash", "", "Print the service config hash, one per line."),
                          bool_flag("quiet", "q", "Only validate the configuration, don't "
                                    "print anything"),
                          string_flag("format", "", "Format the output. Values: [yaml | json]",
                                      default="yaml"),
                          string_flag("output", "o", "Save to file (default to stdout)"),
                          bool_flag("no-interpolate", "", "Don't interpolate environment "
                                    "variables"),
                      ], commands_info.run_config),
    "version": Command("version", "[OPTIONS]", "Show the Docker Compose version information", [
        bool_flag("short", "", "Shows only Compose's version number"),
        string_flag("format", "f", "Format the output. Values: [pretty | json]")],
        commands_info.run_version, args_max=0),
    "exec": Command("exec", "[OPTIONS] SERVICE COMMAND [ARGS...]", "Execute a command in a "
                    "running container", [
                        bool_flag("detach", "d", "Detached mode: Run command in the background"),
                        bool_flag("no-TTY", "T", "Disable pseudo-TTY allocation.", dest="no_tty"),
                        list_flag("env", "e", "Set environment variables"),
                        string_flag("workdir", "w", "Path to workdir directory for this command"),
                        string_flag("user", "u", "Run the command as this user"),
                        int_flag("index", "", "Index of the container if service has multiple "
                                 "replicas"),
                        bool_flag("privileged", "", "Give extended privileges to the process"),
                        bool_flag("interactive", "i", "Keep STDIN open even if not attached",
                                  default=True, hidden=True),
                    ], commands_run.run_exec, args_min=2, interspersed=False),
    "run": Command("run", "[OPTIONS] SERVICE [COMMAND] [ARGS...]", "Run a one-off command on "
                   "a service", [
                       bool_flag("rm", "", "Automatically remove the container when it exits"),
                       bool_flag("detach", "d", "Run container in background and print "
                                 "container ID"),
                       bool_flag("no-TTY", "T", "Disable pseudo-TTY allocation (default: auto-"
                                 "detected)", dest="no_tty"),
                       list_flag("env", "e", "Set environment variables"),
                       string_flag("name", "", "Assign a name to the container"),
                       bool_flag("no-deps", "", "Don't start linked services"),
                       string_flag("entrypoint", "", "Override the entrypoint of the image"),
                       string_flag("workdir", "w", "Working directory inside the container"),
                       string_flag("user", "u", "Run as specified username or uid"),
                       list_flag("publish", "p", "Publish a container's port(s) to the host"),
                       list_flag("volume", "v", "Bind mount a volume"),
                       list_flag("label", "l", "Add or override a label"),
                       bool_flag("service-ports", "P", "Run command with all service's ports "
                                 "enabled and mapped to the host"),
                       bool_flag("use-aliases", "", "Use the service's network useAliases in "
                                 "the network(s) the container connects to"),
                       bool_flag("interactive", "i", "Keep STDIN open even if not attached",
                                 default=True),
                       _BUILD, _PULL, _QUIET_PULL, _REMOVE_ORPHANS,
                   ], commands_run.run_run, args_min=1, interspersed=False),
    "build": Command("build", "[OPTIONS] [SERVICE...]", "Build or rebuild services", [
        bool_flag("no-cache", "", "Do not use cache when building the image"),
        bool_flag("pull", "", "Always attempt to pull a newer version of the image"),
        bool_flag("quiet", "q", "Don't print anything to STDOUT"),
        list_flag("build-arg", "", "Set build-time variables for services"),
    ], commands_run.run_build),
    "pull": Command("pull", "[OPTIONS] [SERVICE...]", "Pull service images", [
        bool_flag("quiet", "q", "Pull without printing progress information"),
        bool_flag("ignore-pull-failures", "", "Pull what it can and ignores images with pull "
                  "failures"),
        bool_flag("include-deps", "", "Also pull services declared as dependencies"),
        string_flag("policy", "", 'Apply pull policy ("missing"|"always")'),
    ], commands_run.run_pull),
    "push": Command("push", "[OPTIONS] [SERVICE...]", "Push service images", [
        bool_flag("quiet", "q", "Push without printing progress information"),
        bool_flag("ignore-push-failures", "", "Push what it can and ignores images with push "
                  "failures"),
    ], commands_run.run_push),
}

ROOT_HELP_HEADER = """Usage:  flotta compose [OPTIONS] COMMAND

Define and run multi-container applications with flotta (Docker Compose v2's commands)

Options:
"""


def root_help() -> str:
    flags = [flag for flag in GLOBAL_FLAGS if not flag.hidden]
    entries = []
    for flag in flags:
        name = f"-{flag.short}, --{flag.long}" if flag.short else f"    --{flag.long}"
        if flag.kind not in ("bool", "count"):
            name += f" {flag.metavar}"
        entries.append((name, flag.help.replace("\n", " ")))
    width = max(len(name) for name, _ in entries)
    lines = [f"  {name.ljust(width)}   {text}" for name, text in entries]
    command_width = max(len(name) for name in COMMANDS)
    command_lines = [f"  {name.ljust(command_width)}   {command.help}"
                     for name, command in sorted(COMMANDS.items())]
    return (ROOT_HELP_HEADER + "\n".join(lines) + "\n\nCommands:\n" + "\n".join(command_lines)
            + f"\n\nRun '{PROGRAM} COMMAND --help' for more information on a command.\n")


def _report(ctx: Context, error: BaseException) -> int:
    ctx.stdout.flush()
    if isinstance(error, ComposeError):
        for problem in error.problems:
            ctx.stderr.write(f"{problem}\n")
    else:
        ctx.stderr.write(f"{error}\n")
    ctx.stderr.flush()
    return 1


def main(args: list[str], ctx: Context | None = None) -> int:
    try:
        global_options, rest = parse_flags(GLOBAL_FLAGS, list(args), interspersed=False)
    except UsageError as error:
        sys.stderr.write(f"{error.message}\n\nRun '{PROGRAM} --help' for more information\n")
        return error.exit_code
    if global_options.get("help") or (not rest and not global_options.version):
        sys.stdout.write(root_help())
        return 0
    if global_options.version:
        rest = ["version"]
    if global_options.workdir and not global_options.project_directory:
        global_options["project_directory"] = global_options.workdir
    if global_options.compatibility:
        sys.stderr.write("--compatibility is not supported by flotta compose\n")
        return 1
    if global_options.dry_run:
        sys.stderr.write("--dry-run is not supported by flotta compose\n")
        return 1
    word, words = rest[0], rest[1:]
    if word == "help":
        if not words:
            sys.stdout.write(root_help())
            return 0
        word, words = words[0], ["--help"]
    command = COMMANDS.get(word)
    if command is None:
        sys.stdout.write(root_help())
        sys.stderr.write(f'unknown docker command: "compose {word}"\n')
        return 1
    path = f"{PROGRAM} {word}"
    try:
        options, positional = parse_flags(command.flags, words, command.interspersed)
        if options.get("help"):
            sys.stdout.write(usage_text(command, path))
            return 0
        check_arg_count(command, path, positional)
    except UsageError as error:
        write_usage_error(error, command, path)
        return error.exit_code
    ctx = ctx or Context(global_options)
    return run(ctx, command, options, positional)


def run(ctx: Context, command: Command, options: Any, positional: list[str]) -> int:
    try:
        return int(command.run(ctx, options, positional) or 0)
    except (ComposeError, ContextError, PlanError, ExecutionError, ImageError,
            api.ClientError) as error:
        return _report(ctx, error)
    except KeyboardInterrupt:
        ctx.stdout.flush()
        return 130
    finally:
        ctx.close()


__all__ = ["COMMANDS", "GLOBAL_FLAGS", "Flag", "main"]
