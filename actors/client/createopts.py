"""`run`/`create` flags and the container-create request they turn into.

`build_create_request(options, args, ...)` returns (query, body) shaped like what the
docker CLI 28 sends to `POST /containers/create` (docker-api.md §2.1, §2.2): the Config
fields at the top level with the zero values Go would encode, then `HostConfig` and
`NetworkingConfig`. The golden bodies in tests/actors/client/golden/ were recorded from
docker 28.2.2 and are compared field by field.
"""

from actors.client import opts
from actors.client.cli import CommandError, Flag, UsageError, bool_flag, int_flag, list_flag
from actors.client.cli import string_flag as string


class ConfigError(CommandError):
    """A run/create option combination docker rejects (exit code 125, "flotta: ..." shape)."""

    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message, exit_code)


def _flags(detach: bool) -> list[Flag]:
    flags = [
        list_flag("add-host", "", "Add a custom host-to-IP mapping (host:ip)"),
        list_flag("attach", "a", "Attach to STDIN, STDOUT or STDERR"),
        list_flag("cap-add", "", "Add Linux capabilities"),
        list_flag("cap-drop", "", "Drop Linux capabilities"),
        string("cgroupns", "", "Cgroup namespace to use (host|private)"),
        string("cidfile", "", "Write the container ID to the file"),
        int_flag("cpu-period", "", "Limit CPU CFS (Completely Fair Scheduler) period"),
        int_flag("cpu-quota", "", "Limit CPU CFS (Completely Fair Scheduler) quota"),
        int_flag("cpu-shares", "c", "CPU shares (relative weight)"),
        string("cpus", "", "Number of CPUs"),
        string("cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)"),
        string("cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)"),
        string("detach-keys", "", "Override the key sequence for detaching a container"),
        list_flag("device", "", "Add a host device to the container"),
        list_flag("dns", "", "Set custom DNS servers"),
        list_flag("dns-option", "", "Set DNS options"),
        list_flag("dns-search", "", "Set custom DNS search domains"),
        string("domainname", "", "Container NIS domain name"),
        string("entrypoint", "", "Overwrite the default ENTRYPOINT of the image"),
        list_flag("env", "e", "Set environment variables"),
        list_flag("env-file", "", "Read in a file of environment variables"),
        list_flag("expose", "", "Expose a port or a range of ports"),
        list_flag("group-add", "", "Add additional groups to join"),
        string("health-cmd", "", "Command to run to check health"),
        string("health-interval", "", "Time between running the check (ms|s|m|h) (default 0s)"),
        int_flag("health-retries", "", "Consecutive failures needed to report unhealthy"),
        string("health-start-interval", "", "Time between running the check during the start "
               "period (ms|s|m|h) (default 0s)"),
        string("health-start-period", "", "Start period for the container to initialize before "
               "starting health-retries countdown (ms|s|m|h) (default 0s)"),
        string("health-timeout", "", "Maximum time to allow one check to run (ms|s|m|h) "
               "(default 0s)"),
        string("hostname", "h", "Container host name"),
        bool_flag("init", "", "Run an init inside the container that forwards signals and "
                  "reaps processes"),
        bool_flag("interactive", "i", "Keep STDIN open even if not attached"),
        string("ip", "", "IPv4 address (e.g., 172.30.100.104)"),
        string("ip6", "", "IPv6 address (e.g., 2001:db8::33)"),
        string("ipc", "", "IPC mode to use"),
        string("isolation", "", "Container isolation technology"),
        list_flag("label", "l", "Set meta data on a container"),
        list_flag("label-file", "", "Read in a line delimited file of labels"),
        list_flag("link", "", "Add link to another container"),
        string("log-driver", "", "Logging driver for the container"),
        list_flag("log-opt", "", "Log driver options"),
        string("mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        string("memory", "m", "Memory limit"),
        string("memory-reservation", "", "Memory soft limit"),
        string("memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable "
               "unlimited swap"),
        int_flag("memory-swappiness", "", "Tune container memory swappiness (0 to 100)",
                 default=-1),
        list_flag("mount", "", "Attach a filesystem mount to the container"),
        string("name", "", "Assign a name to the container"),
        list_flag("network", "", "Connect a container to a network"),
        list_flag("net", "", "Connect a container to a network", dest="network", hidden=True),
        list_flag("network-alias", "", "Add network-scoped alias for the container"),
        list_flag("net-alias", "", "Add network-scoped alias for the container",
                  dest="network_alias", hidden=True),
        bool_flag("no-healthcheck", "", "Disable any container-specified HEALTHCHECK"),
        bool_flag("oom-kill-disable", "", "Disable OOM Killer"),
        int_flag("oom-score-adj", "", "Tune host's OOM preferences (-1000 to 1000)"),
        string("pid", "", "PID namespace to use"),
        int_flag("pids-limit", "", "Tune container pids limit (set -1 for unlimited)"),
        string("platform", "", "Set platform if server is multi-platform capable"),
        bool_flag("privileged", "", "Give extended privileges to this container"),
        list_flag("publish", "p", "Publish a container's port(s) to the host"),
        bool_flag("publish-all", "P", "Publish all exposed ports to random ports"),
        string("pull", "", 'Pull image before running ("always", "missing", "never")',
               default="missing"),
        bool_flag("quiet", "q", "Suppress the pull output"),
        bool_flag("read-only", "", "Mount the container's root filesystem as read only"),
        string("restart", "", "Restart policy to apply when a container exits", default="no"),
        bool_flag("rm", "", "Automatically remove the container and its associated anonymous "
                  "volumes when it exits"),
        string("runtime", "", "Runtime to use for this container"),
        list_flag("security-opt", "", "Security Options"),
        string("shm-size", "", "Size of /dev/shm"),
        string("stop-signal", "", "Signal to stop the container"),
        int_flag("stop-timeout", "", "Timeout (in seconds) to stop a container"),
        list_flag("storage-opt", "", "Storage driver options for the container"),
        list_flag("sysctl", "", "Sysctl options"),
        list_flag("tmpfs", "", "Mount a tmpfs directory"),
        bool_flag("tty", "t", "Allocate a pseudo-TTY"),
        list_flag("ulimit", "", "Ulimit options"),
        string("user", "u", "Username or UID (format: <name|uid>[:<group|gid>])"),
        string("userns", "", "User namespace to use"),
        string("uts", "", "UTS namespace to use"),
        list_flag("volume", "v", "Bind mount a volume"),
        string("volume-driver", "", "Optional volume driver for the container"),
        list_flag("volumes-from", "", "Mount volumes from the specified container(s)"),
        string("workdir", "w", "Working directory inside the container"),
        bool_flag("disable-content-trust", "", "Skip image verification", default=True),
        list_flag("gpus", "", "GPU devices to add to the container ('all' to pass all GPUs)",
                  hidden=True),
    ]
    if detach:
        flags += [
            bool_flag("detach", "d", "Run container in background and print container ID"),
            bool_flag("sig-proxy", "", "Proxy received signals to the process", default=True),
        ]
    return flags


RUN_FLAGS = _flags(detach=True)
CREATE_FLAGS = _flags(detach=False)


def _flag_error(display: str, value: str, message: str) -> UsageError:
    return UsageError(f'invalid argument "{value}" for "{display}" flag: {message}')


def _validated(values: list[str], display: str, validator) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(validator(value))
        except opts.OptionError as error:
            raise _flag_error(display, value, str(error)) from None
    return out


def _duration(options, name: str) -> int:
    value = options[name.replace("-", "_")]
    if not value:
        return 0
    try:
        return opts.parse_go_duration(value)
    except opts.OptionError as error:
        raise _flag_error(f"--{name}", value, str(error)) from None


def _size(options, name: str, display: str, parser=opts.ram_in_bytes) -> int:
    value = options[name]
    if not value:
        return 0
    try:
        return parser(value)
    except opts.OptionError as error:
        raise _flag_error(display, value, str(error)) from None


def _endpoint_settings(aliases=None, ipv4="", ipv6="", driver_opts=None, mac="") -> dict:
    ipam = None
    if ipv4 or ipv6:
        ipam = {}
        if ipv4:
            ipam["IPv4Address"] = ipv4
        if ipv6:
            ipam["IPv6Address"] = ipv6
    return {
        "IPAMConfig": ipam,
        "Links": None,
        "Aliases": aliases or None,
        "MacAddress": mac,
        "DriverOpts": driver_opts or None,
        "GwPriority": 0,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


def _is_user_defined(network: str) -> bool:
    return network not in ("default", "bridge", "host", "none") and not network.startswith(
        "container:"
    )


def _networking(options) -> tuple[str, dict]:
    """(NetworkMode, EndpointsConfig) the way the docker CLI derives them."""
    attachments = []
    for value in options.network:
        try:
            attachments.append(opts.parse_network(value))
        except opts.OptionError as error:
            raise _flag_error("--network", value, str(error)) from None
    if not attachments:
        attachments = [{"Target": "default", "Aliases": [], "IPv4": "", "IPv6": "",
                        "DriverOpts": {}}]
        implicit = True
    else:
        implicit = False
    user_defined = [_is_user_defined(item["Target"]) for item in attachments]
    if any(user_defined) and not all(user_defined):
        raise ConfigError("conflicting options: cannot attach both user-defined and "
                           "non-user-defined network-modes")
    endpoints: dict = {}
    for index, attachment in enumerate(attachments):
        if index == 0:
            # The short flags (--ip, --network-alias) apply to the first network.
            if options.network_alias:
                if attachment["Aliases"]:
                    raise ConfigError("conflicting options: cannot specify both "
                                       "--network-alias and per-network alias")
                attachment["Aliases"] = list(options.network_alias)
            if options.ip:
                attachment["IPv4"] = options.ip
            if options.ip6:
                attachment["IPv6"] = options.ip6
        if attachment["Aliases"] and not _is_user_defined(attachment["Target"]):
            raise ConfigError("network-scoped aliases are only supported for user-defined "
                               "networks")
        settings = _endpoint_settings(attachment["Aliases"], attachment["IPv4"],
                                      attachment["IPv6"], attachment["DriverOpts"],
                                      options.mac_address if index == 0 else "")
        if attachment["Target"] in endpoints:
            raise ConfigError(f'network "{attachment["Target"]}" is specified multiple times')
        empty = settings == _endpoint_settings()
        if index == 0 and len(attachments) == 1 and empty and not implicit:
            continue
        endpoints[attachment["Target"]] = settings
    return attachments[0]["Target"], endpoints


def _host_config_defaults() -> dict:
    """HostConfig with every field the Go struct encodes, in its order, at zero value."""
    return {
        "Binds": None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "default",
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False,
        "VolumeDriver": "",
        "VolumesFrom": None,
        "ConsoleSize": [0, 0],
        "CapAdd": None,
        "CapDrop": None,
        "CgroupnsMode": "",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": None,
        "GroupAdd": None,
        "IpcMode": "",
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": False,
        "PublishAllPorts": False,
        "ReadonlyRootfs": False,
        "SecurityOpt": None,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 0,
        "Isolation": "",
        "CpuShares": 0,
        "Memory": 0,
        "NanoCpus": 0,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "MemoryReservation": 0,
        "MemorySwap": 0,
        "MemorySwappiness": -1,
        "OomKillDisable": False,
        "PidsLimit": 0,
        "Ulimits": [],
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": None,
        "ReadonlyPaths": None,
    }


# The order Go's container.HostConfig encodes its fields in (omitempty ones included), so
# the JSON we send is byte-for-byte what the docker CLI sends.
HOST_CONFIG_ORDER = [
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy",
    "AutoRemove", "VolumeDriver", "VolumesFrom", "ConsoleSize", "Annotations", "CapAdd",
    "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd",
    "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged", "PublishAllPorts",
    "ReadonlyRootfs", "SecurityOpt", "StorageOpt", "Tmpfs", "UTSMode", "UsernsMode", "ShmSize",
    "Sysctls", "Runtime", "Isolation", "CpuShares", "Memory", "NanoCpus", "CgroupParent",
    "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices",
    "DeviceCgroupRules", "DeviceRequests", "MemoryReservation", "MemorySwap",
    "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount", "CpuPercent",
    "IOMaximumIOps", "IOMaximumBandwidth", "Mounts", "MaskedPaths", "ReadonlyPaths", "Init",
]


def _in_go_order(host: dict) -> dict:
    position = {key: index for index, key in enumerate(HOST_CONFIG_ORDER)}
    return dict(sorted(host.items(), key=lambda item: position.get(item[0], len(position))))


def _sorted_map(mapping: dict) -> dict:
    """Go encodes maps with their keys sorted."""
    return dict(sorted(mapping.items()))


def _parse_ulimit(value: str) -> dict:
    name, equals, limits = value.partition("=")
    if not equals or not name:
        raise opts.OptionError(f"invalid ulimit argument: {value}")
    soft_text, _, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise opts.OptionError(f"invalid ulimit argument: {value}") from None
    if soft > hard:
        raise opts.OptionError(f"ulimit soft limit must be less than or equal to hard limit: "
                               f"{soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def _parse_device(value: str) -> dict:
    parts = value.split(":")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1] else host
    permissions = parts[2] if len(parts) > 2 else "rwm"
    if len(parts) > 3 or any(char not in "rwm" for char in permissions):
        raise opts.OptionError(f"invalid device specification: {value}")
    return {"PathOnHost": host, "PathInContainer": container,
            "CgroupPermissions": permissions}


def build_create_request(options, args: list[str], *, detach: bool,
                         console_size: tuple[int, int] = (0, 0), environ=None):
    """(query, body) for POST /containers/create from parsed run/create options."""
    image = args[0]
    command = args[1:] or None

    attach = _validated(options.attach, "-a, --attach", opts.validate_attach)
    env_from_flags = _validated(options.env, "-e, --env",
                                lambda value: opts.validate_env(value, environ))
    labels_from_flags = _validated(options.label, "-l, --label", opts.validate_label)
    extra_hosts = _validated(options.add_host, "--add-host", opts.validate_extra_host)
    mounts = _validated(options.mount, "--mount", opts.parse_mount)
    memory = _size(options, "memory", "-m, --memory")
    memory_reservation = _size(options, "memory_reservation", "--memory-reservation")
    memory_swap = _size(options, "memory_swap", "--memory-swap", opts.memory_swap_bytes)
    shm_size = _size(options, "shm_size", "--shm-size")
    nano_cpus = _size(options, "cpus", "--cpus", opts.parse_nano_cpus)
    health = {name: _duration(options, name) for name in (
        "health-interval", "health-timeout", "health-start-period", "health-start-interval")}
    ulimits = _validated(options.ulimit, "--ulimit", _parse_ulimit)
    devices = _validated(options.device, "--device", _parse_device)
    if "detach_keys" in options and options.detach_keys:
        _validated([options.detach_keys], "--detach-keys", opts.parse_detach_keys)

    try:
        env: list[str] = []
        for path in options.env_file:
            env.extend(opts.read_env_file(path, environ))
        env.extend(env_from_flags)
        label_values: list[str] = []
        for path in options.label_file:
            label_values.extend(opts.read_label_file(path))
        label_values.extend(labels_from_flags)
        exposed, bindings = opts.parse_publish(options.publish)
        for port in opts.parse_expose(options.expose):
            exposed.setdefault(port, {})
        restart = opts.parse_restart_policy(options.restart)
        binds: list[str] = []
        volumes: dict = {}
        for spec in options.volume:
            parsed = opts.parse_volume(spec)
            if parsed["Source"]:
                binds.append(opts.bind_string(spec) if parsed["Type"] == "bind" else spec)
            else:
                volumes[parsed["Target"]] = {}
        tmpfs = {}
        for value in options.tmpfs:
            path, tmpfs_options = opts.parse_tmpfs(value)
            tmpfs[path] = tmpfs_options
    except opts.OptionError as error:
        raise ConfigError(str(error)) from None

    if options.get("rm") and restart["Name"] not in ("", "no"):
        raise ConfigError("conflicting options: cannot specify both --restart and --rm")

    health_given = bool(options.health_cmd) or any(health.values()) or options.health_retries
    healthcheck = None
    if options.no_healthcheck:
        if health_given:
            raise ConfigError("--no-healthcheck conflicts with --health-* options")
        healthcheck = {"Test": ["NONE"]}
    elif health_given:
        for name in ("health-interval", "health-timeout", "health-start-period",
                     "health-start-interval"):
            if health[name] < 0:
                raise ConfigError(f"--{name} cannot be negative")
        if options.health_retries < 0:
            raise ConfigError("--health-retries cannot be negative")
        healthcheck = {}
        if options.health_cmd:
            healthcheck["Test"] = ["CMD-SHELL", options.health_cmd]
        for name, key in (("health-interval", "Interval"), ("health-timeout", "Timeout"),
                          ("health-start-period", "StartPeriod"),
                          ("health-start-interval", "StartInterval")):
            if health[name]:
                healthcheck[key] = health[name]
        if options.health_retries:
            healthcheck["Retries"] = options.health_retries

    attach_stdin = "stdin" in attach or options.interactive
    attach_stdout = "stdout" in attach or not attach
    attach_stderr = "stderr" in attach or not attach
    stdin_once = False
    if detach and options.get("detach"):
        if attach:
            raise CommandError("conflicting options: cannot specify both --attach and --detach",
                           exit_code=1)
        attach_stdin = attach_stdout = attach_stderr = False
    elif options.interactive and attach_stdin:
        stdin_once = True

    entrypoint = None
    if options.entrypoint:
        entrypoint = [options.entrypoint]
    elif "entrypoint" in options.given:
        entrypoint = [""]

    network_mode, endpoints = _networking(options)

    config: dict = {
        "Hostname": options.hostname,
        "Domainname": options.domainname,
        "User": options.user,
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    config.update({
        "Tty": options.tty,
        "OpenStdin": options.interactive,
        "StdinOnce": stdin_once,
        "Env": env or None,
        "Cmd": command,
    })
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    config.update({
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": options.workdir,
        "Entrypoint": entrypoint,
    })
    config["OnBuild"] = None
    config["Labels"] = opts.labels_to_map(label_values)
    if options.stop_signal:
        config["StopSignal"] = options.stop_signal
    if "stop_timeout" in options.given:
        config["StopTimeout"] = options.stop_timeout

    host = _host_config_defaults()
    host["Binds"] = binds or None
    host["ContainerIDFile"] = options.cidfile
    host["LogConfig"] = {"Type": options.log_driver,
                         "Config": opts.labels_to_map(options.log_opt)}
    host["NetworkMode"] = network_mode
    host["PortBindings"] = bindings
    host["RestartPolicy"] = restart
    host["AutoRemove"] = bool(options.get("rm"))
    host["VolumeDriver"] = options.volume_driver
    host["VolumesFrom"] = options.volumes_from or None
    host["ConsoleSize"] = list(console_size)
    capabilities_add, capabilities_drop = opts.effective_capabilities(options.cap_add,
                                                                      options.cap_drop)
    host["CapAdd"] = capabilities_add
    host["CapDrop"] = capabilities_drop
    host["CgroupnsMode"] = options.cgroupns
    host["Dns"] = list(options.dns)
    host["DnsOptions"] = list(options.dns_option)
    host["DnsSearch"] = list(options.dns_search)
    host["ExtraHosts"] = extra_hosts or None
    host["GroupAdd"] = options.group_add or None
    host["IpcMode"] = options.ipc
    host["Links"] = options.link or None
    host["OomScoreAdj"] = options.oom_score_adj
    host["PidMode"] = options.pid
    host["Privileged"] = options.privileged
    host["PublishAllPorts"] = options.publish_all
    host["ReadonlyRootfs"] = options.read_only
    host["SecurityOpt"] = options.security_opt or None
    if options.storage_opt:
        host["StorageOpt"] = opts.labels_to_map(options.storage_opt)
    if tmpfs:
        host["Tmpfs"] = tmpfs
    host["UTSMode"] = options.uts
    host["UsernsMode"] = options.userns
    host["ShmSize"] = shm_size
    if options.sysctl:
        host["Sysctls"] = opts.labels_to_map(options.sysctl)
    if options.runtime:
        host["Runtime"] = options.runtime
    host["Isolation"] = options.isolation
    host["CpuShares"] = options.cpu_shares
    host["Memory"] = memory
    host["NanoCpus"] = nano_cpus
    host["CpuPeriod"] = options.cpu_period
    host["CpuQuota"] = options.cpu_quota
    host["CpusetCpus"] = options.cpuset_cpus
    host["CpusetMems"] = options.cpuset_mems
    host["Devices"] = devices
    host["MemoryReservation"] = memory_reservation
    host["MemorySwap"] = memory_swap
    host["MemorySwappiness"] = options.memory_swappiness
    host["OomKillDisable"] = options.oom_kill_disable
    host["PidsLimit"] = options.pids_limit
    host["Ulimits"] = ulimits
    if mounts:
        host["Mounts"] = mounts
    if options.init:
        host["Init"] = True

    for key in ("ExposedPorts", "Volumes", "Labels"):
        if key in config:
            config[key] = _sorted_map(config[key])
    for key in ("PortBindings", "Tmpfs", "Sysctls", "StorageOpt"):
        if key in host:
            host[key] = _sorted_map(host[key])
    host["LogConfig"]["Config"] = _sorted_map(host["LogConfig"]["Config"])
    body = dict(config)
    body["HostConfig"] = _in_go_order(host)
    body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    query = {"name": options.name or None, "platform": options.platform or None}
    return query, body
