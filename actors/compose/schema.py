"""What a Compose file may contain, key by key, and the canonical form of each key.

`check_document(raw, context)` checks one interpolated YAML document and returns its
canonical form: the top-level keys flotta models (`name`, `services`, `networks`,
`volumes`, `secrets`, `configs`), every short syntax expanded, every unit parsed
(durations in nanoseconds, sizes in bytes). Keys flotta does not implement but that
change nothing it does are accepted with a warning (`IGNORED_SERVICE_KEYS`); a few are
refused because ignoring them would run something other than what the file says.
"""

from __future__ import annotations

from typing import Any

from .errors import Path
from .kinds import (
    INVALID,
    OMIT,
    Context,
    Field,
    boolean,
    cpus,
    describe,
    duration,
    enum,
    integer,
    list_of,
    list_or_dict,
    mapping_of,
    nullable,
    number,
    one_of_string,
    pattern_string,
    size,
    string,
    string_or_list,
    string_or_number,
    struct,
)
from .service_syntax import (
    depends_on,
    devices,
    env_file,
    extra_hosts,
    file_reference,
    group_entry,
    healthcheck_test,
    pull_policy,
    restart_policy,
    service_networks,
    shell_words,
    ulimits,
)
from .syntax import NAME_PATTERN, expose_entry, ports, tmpfs_entry, volumes

labels = list_or_dict(null_as="", value_name="label value")
environment = list_or_dict(null_as=None)


def _build_check(result: dict[str, Any], context: Context, path: Path) -> None:
    if "dockerfile" in result and "dockerfile_inline" in result:
        context.error(path, "dockerfile and dockerfile_inline cannot both be set")


_build_long = struct(
    {
        "context": string,
        "dockerfile": string,
        "dockerfile_inline": string,
        "args": environment,
        "labels": labels,
        "cache_from": list_of(string),
        "cache_to": list_of(string),
        "no_cache": boolean,
        "additional_contexts": list_or_dict(null_as=""),
        "network": string,
        "pull": boolean,
        "target": string,
        "shm_size": size,
        "extra_hosts": extra_hosts,
        "tags": list_of(string, unique=True),
        "platforms": list_of(string, unique=True),
        "privileged": boolean,
    },
    ignored=("ssh", "secrets", "provenance", "sbom", "isolation", "ulimits", "entitlements"),
    check=_build_check,
)


def _build_short(value: str, _context: Context, _path: Path) -> dict[str, Any]:
    return {"context": value}


build = one_of_string(_build_short, _build_long)

_healthcheck = struct(
    {
        "test": healthcheck_test,
        "interval": duration,
        "timeout": duration,
        "start_period": duration,
        "start_interval": duration,
        "retries": integer(0),
        "disable": boolean,
    }
)

_resource_limits = struct({"cpus": cpus, "memory": size, "pids": integer(-1)})
_resource_reservations = struct(
    {"cpus": cpus, "memory": size},
    ignored=("generic_resources", "devices"),
)
_update_config = struct(
    {
        "parallelism": integer(0),
        "delay": duration,
        "failure_action": enum("continue", "rollback", "pause"),
        "monitor": duration,
        "max_failure_ratio": number,
        "order": enum("start-first", "stop-first"),
    }
)
_deploy = struct(
    {
        "mode": enum("replicated", "global", "replicated-job", "global-job"),
        "replicas": integer(0),
        "labels": labels,
        "resources": struct({"limits": _resource_limits, "reservations": _resource_reservations}),
        "restart_policy": struct(
            {
                "condition": enum("none", "on-failure", "any"),
                "delay": duration,
                "max_attempts": integer(0),
                "window": duration,
            }
        ),
        "update_config": _update_config,
        "rollback_config": _update_config,
        "placement": struct(
            {
                "constraints": list_of(string),
                "preferences": list_of(struct({"spread": string})),
                "max_replicas_per_node": integer(0),
            }
        ),
        "endpoint_mode": enum("vip", "dnsrr"),
    },
    allow_null=True,
)

_logging = struct(
    {"driver": string, "options": list_or_dict(null_as=None, value_name="option value")}
)


def _extends_short(value: str, _context: Context, _path: Path) -> dict[str, Any]:
    return {"service": value}


extends = one_of_string(
    _extends_short, struct({"service": Field(string, required=True), "file": string})
)

string_list = list_of(string, unique=True)

SERVICE_FIELDS: dict[str, Any] = {
    "annotations": labels,
    "attach": boolean,
    "build": build,
    "cap_add": string_list,
    "cap_drop": string_list,
    "cgroup_parent": string,
    "command": shell_words,
    "configs": file_reference("/"),
    "container_name": pattern_string(
        r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", "a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
    ),
    "cpu_shares": integer(0),
    "cpus": cpus,
    "cpuset": string,
    "depends_on": depends_on,
    "deploy": _deploy,
    "devices": devices,
    "dns": string_or_list,
    "dns_opt": string_list,
    "dns_search": string_or_list,
    "domainname": string,
    "entrypoint": shell_words,
    "env_file": env_file,
    "environment": environment,
    "expose": list_of(expose_entry, unique=True),
    "extends": extends,
    "external_links": string_list,
    "extra_hosts": extra_hosts,
    "group_add": list_of(group_entry, unique=True),
    "healthcheck": _healthcheck,
    "hostname": string,
    "image": string,
    "init": boolean,
    "ipc": string,
    "labels": labels,
    "links": string_list,
    "logging": _logging,
    "mac_address": string,
    "mem_limit": size,
    "mem_reservation": size,
    "network_mode": string,
    "networks": service_networks,
    "oom_score_adj": integer(-1000, 1000),
    "pid": nullable(string),
    "pids_limit": integer(-1),
    "platform": string,
    "ports": ports,
    "privileged": boolean,
    "profiles": list_of(
        pattern_string(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", "a profile name"), unique=True
    ),
    "pull_policy": pull_policy,
    "read_only": boolean,
    "restart": restart_policy,
    "runtime": string,
    "scale": integer(0),
    "secrets": file_reference("/run/secrets"),
    "security_opt": string_list,
    "shm_size": size,
    "stdin_open": boolean,
    "stop_grace_period": duration,
    "stop_signal": string,
    "sysctls": list_or_dict(null_as="", value_name="sysctl value"),
    "tmpfs": lambda value, context, path: list_of(tmpfs_entry, unique=True)(
        [value] if isinstance(value, str) else value, context, path
    ),
    "tty": boolean,
    "ulimits": ulimits,
    "user": string,
    "userns_mode": string,
    "volumes": volumes,
    "volumes_from": string_list,
    "working_dir": string,
}

IGNORED_SERVICE_KEYS = (
    "blkio_config",
    "cgroup",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "gpus",
    "isolation",
    "label_file",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "oom_kill_disable",
    "post_start",
    "pre_start",
    "pre_stop",
    "pull_refresh_after",
    "storage_opt",
    "use_api_socket",
    "uts",
)
REJECTED_SERVICE_KEYS = {
    "provider": "services managed by a provider are not supported by flotta",
}

service = struct(SERVICE_FIELDS, ignored=IGNORED_SERVICE_KEYS, rejected=REJECTED_SERVICE_KEYS)


def _external(value: Any, context: Context, path: Path) -> Any:
    if isinstance(value, dict):
        checked = struct({"name": string})(value, context, path)
        if checked is INVALID:
            return INVALID
        context.warn(path, "external.name is deprecated, set name and external: true")
        return {"legacy_name": checked.get("name")}
    return boolean(value, context, path)


def _resource_check(result: dict[str, Any], context: Context, path: Path) -> None:
    external = result.get("external")
    if isinstance(external, dict):
        legacy = external.get("legacy_name")
        result["external"] = True
        if legacy is not None:
            if "name" in result and result["name"] != legacy:
                context.error(path, "name and external.name conflict, use only name")
            result["name"] = legacy
    if result.get("external") is True:
        extra = sorted(key for key in result if key not in ("external", "name"))
        if extra:
            context.error(
                (*path, extra[0]),
                "an external resource is created elsewhere: only name may be set with external",
            )


_options = mapping_of(string_or_number)
_ipam_pool = struct(
    {
        "subnet": string,
        "ip_range": string,
        "gateway": string,
        "aux_addresses": mapping_of(string),
    }
)

network = struct(
    {
        "name": string,
        "driver": string,
        "driver_opts": _options,
        "ipam": struct(
            {"driver": string, "config": list_of(_ipam_pool), "options": mapping_of(string)}
        ),
        "external": _external,
        "internal": boolean,
        "attachable": boolean,
        "labels": labels,
        "enable_ipv4": boolean,
        "enable_ipv6": boolean,
    },
    check=_resource_check,
    allow_null=True,
)

volume = struct(
    {
        "name": string,
        "driver": string,
        "driver_opts": _options,
        "external": _external,
        "labels": labels,
    },
    check=_resource_check,
    allow_null=True,
)


def _secret_check(result: dict[str, Any], context: Context, path: Path) -> None:
    _resource_check(result, context, path)
    if result.get("external") is True:
        return
    sources = [key for key in ("file", "environment", "content") if key in result]
    if len(sources) != 1:
        context.error(path, "expected exactly one of file, environment or content")


secret = struct(
    {
        "name": string,
        "file": string,
        "environment": string,
        "external": _external,
        "labels": labels,
    },
    ignored=("driver", "driver_opts", "template_driver"),
    check=_secret_check,
)

config = struct(
    {
        "name": string,
        "file": string,
        "environment": string,
        "content": string,
        "external": _external,
        "labels": labels,
    },
    ignored=("template_driver",),
    check=_secret_check,
)


def _version(value: Any, context: Context, path: Path) -> Any:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return context.error(path, f"expected a string, got {describe(value)}")
    context.warn(path, "the attribute `version` is obsolete, it is ignored")
    return OMIT


def _resources(kind: Any, what: str) -> Any:
    return mapping_of(kind, NAME_PATTERN, f"a {what} name ([a-zA-Z0-9._-]+)")


document = struct(
    {
        "version": _version,
        "name": string,
        "services": _resources(service, "service"),
        "networks": _resources(network, "network"),
        "volumes": _resources(volume, "volume"),
        "secrets": _resources(secret, "secret"),
        "configs": _resources(config, "config"),
    },
    ignored=("models",),
    rejected={"include": "include is not supported by flotta; pass the files with -f instead"},
    allow_null=True,
)


def check_document(raw: Any, context: Context) -> dict[str, Any] | None:
    """The canonical form of one document, or None if its top level is not a mapping."""
    if raw is not None and not isinstance(raw, dict):
        context.error((), f"the top level must be a mapping, got {describe(raw)}")
        return None
    checked = document(raw, context, ())
    return None if checked is INVALID else checked
