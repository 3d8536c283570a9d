"""`flotta network ...` commands."""

from actors.client import api
from actors.client.cli import Command, CommandError, UsageError, bool_flag, list_flag, string_flag
from actors.client.commands.common import (
    confirm,
    filter_flag,
    filters_query,
    for_each,
    format_flag,
    inspect_output,
    parse_filters,
    quote_path,
)

NETWORK_TABLE = "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}"
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                   "IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
                   "Label": "LABEL", "CreatedAt": "CREATED AT"}


def _key_values(values: list[str], display: str) -> dict:
    result = {}
    for value in values:
        key, _, text = value.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{value}" for "{display}" flag: invalid '
                             f"key/value pair format")
        result[key] = text
    return result


def network_create_body(options, name: str) -> dict:
    """The body `docker network create` sends (docker-api.md §2.13)."""
    subnets, gateways, ranges = options.subnet, options.gateway, options.ip_range
    if len(gateways) > len(subnets):
        raise CommandError("every ip-range or gateway must have a corresponding subnet")
    if len(ranges) > len(subnets):
        raise CommandError("every ip-range or gateway must have a corresponding subnet")
    auxiliary = _key_values(options.aux_address, "--aux-address")
    config = []
    for index, subnet in enumerate(subnets):
        entry = {"Subnet": subnet}
        if index < len(ranges):
            entry["IPRange"] = ranges[index]
        if index < len(gateways):
            entry["Gateway"] = gateways[index]
        if auxiliary and index == 0:
            entry["AuxiliaryAddresses"] = auxiliary
        config.append(entry)
    body = {
        "Driver": options.driver,
        "Scope": options.scope,
    }
    if "ipv6" in options.given:
        body["EnableIPv6"] = options.ipv6
    if "ipv4" in options.given:
        body["EnableIPv4"] = options.ipv4
    body.update({
        "IPAM": {"Driver": options.ipam_driver or "default",
                 "Options": _key_values(options.ipam_opt, "--ipam-opt"), "Config": config},
        "Internal": options.internal,
        "Attachable": options.attachable,
        "Ingress": options.ingress,
        "ConfigOnly": options.config_only,
        "ConfigFrom": {"Network": options.config_from} if options.config_from else None,
        "Options": _key_values(options.opt, "-o, --opt"),
        "Labels": _key_values(options.label, "--label"),
        "Name": name,
    })
    return body


def run_create(cli, options, args) -> int:
    body = network_create_body(options, args[0])
    result = cli.client.post_json("/networks/create", None, body) or {}
    if result.get("Warning"):
        cli.err(f"WARNING: {result['Warning']}\n")
    cli.out(f"{result.get('Id', '')}\n")
    return 0


def run_ls(cli, options, args) -> int:
    from actors.client import formatting, tables

    format_text = "{{.ID}}" if options.quiet else (options.format or NETWORK_TABLE)
    if format_text == "table":
        format_text = NETWORK_TABLE
    tables.validate(format_text, NETWORK_HEADERS)
    networks = cli.client.get_json("/networks", {
        "filters": filters_query(parse_filters(options.filter))}) or []
    networks = sorted(networks, key=lambda network: formatting.natural_key(
        network.get("Name") or ""))
    contexts = []
    for network in networks:
        identifier = network.get("Id") or ""
        fields = {
            "ID": identifier if options.no_trunc else formatting.truncate_id(identifier),
            "Name": network.get("Name") or "",
            "Driver": network.get("Driver") or "",
            "Scope": network.get("Scope") or "",
            "IPv4": "true" if network.get("EnableIPv4") else "false",
            "IPv6": "true" if network.get("EnableIPv6") else "false",
            "Internal": "true" if network.get("Internal") else "false",
            "Labels": tables.labels_text(network.get("Labels")),
            "CreatedAt": formatting.go_time_string_rfc3339(network.get("Created") or ""),
        }
        contexts.append(tables.MapContext(fields, NETWORK_HEADERS, network))
    cli.out(tables.render(format_text, contexts, NETWORK_HEADERS))
    return 0


def run_inspect(cli, options, args) -> int:
    objects, errors = [], []
    for name in args:
        query = {"verbose": True if options.verbose else None}
        try:
            objects.append(cli.client.get_json(f"/networks/{quote_path(name)}", query))
        except api.APIError as error:
            if error.status != 404:
                raise
            errors.append(str(error))
    inspect_output(cli, objects, options.format)
    if errors:
        raise CommandError("\n".join(errors))
    return 0


def run_rm(cli, options, args) -> int:
    def remove(name: str) -> None:
        try:
            cli.client.request("DELETE", f"/networks/{quote_path(name)}").close()
        except api.APIError as error:
            if options.force and error.status == 404:
                return
            raise

    return for_each(cli, args, remove)


def run_prune(cli, options, args) -> int:
    if not options.force and not confirm(
        cli, "WARNING! This will remove all custom networks not used by at least one "
        "container.\nAre you sure you want to continue?"
    ):
        return 0
    result = cli.client.post_json("/networks/prune", {
        "filters": filters_query(parse_filters(options.filter))}) or {}
    deleted = result.get("NetworksDeleted") or []
    if deleted:
        cli.out("Deleted Networks:\n" + "".join(f"{name}\n" for name in deleted))
    return 0


def run_connect(cli, options, args) -> int:
    from actors.client.createopts import _endpoint_settings

    settings = _endpoint_settings(options.alias, options.ip, options.ip6,
                                  _key_values(options.driver_opt, "--driver-opt"))
    settings["DriverOpts"] = _key_values(options.driver_opt, "--driver-opt")
    settings["Links"] = options.link or None
    if options.link_local_ip:
        settings["IPAMConfig"] = settings["IPAMConfig"] or {}
        settings["IPAMConfig"]["LinkLocalIPs"] = list(options.link_local_ip)
    body = {"Container": args[1], "EndpointConfig": settings}
    cli.client.request("POST", f"/networks/{quote_path(args[0])}/connect",
                       json_body=body).close()
    return 0


def run_disconnect(cli, options, args) -> int:
    body = {"Container": args[1], "Force": options.force}
    cli.client.request("POST", f"/networks/{quote_path(args[0])}/disconnect",
                       json_body=body).close()
    return 0


COMMANDS = {
    "create": Command(
        "create", "[OPTIONS] NETWORK", "Create a network",
        [
            list_flag("aux-address", "", "Auxiliary IPv4 or IPv6 addresses used by Network "
                      "driver"),
            bool_flag("attachable", "", "Enable manual container attachment"),
            string_flag("config-from", "", "The network from which to copy the configuration"),
            bool_flag("config-only", "", "Create a configuration only network"),
            string_flag("driver", "d", "Driver to manage the Network", default="bridge"),
            list_flag("gateway", "", "IPv4 or IPv6 Gateway for the master subnet"),
            bool_flag("ingress", "", "Create swarm routing-mesh network"),
            bool_flag("internal", "", "Restrict external access to the network"),
            list_flag("ip-range", "", "Allocate container ip from a sub-range"),
            string_flag("ipam-driver", "", "IP Address Management Driver", default="default"),
            list_flag("ipam-opt", "", "Set IPAM driver specific options"),
            bool_flag("ipv4", "", "Enable or disable IPv4 address assignment", default=True),
            bool_flag("ipv6", "", "Enable or disable IPv6 address assignment"),
            list_flag("label", "", "Set metadata on a network"),
            list_flag("opt", "o", "Set driver specific options"),
            string_flag("scope", "", "Control the network's scope"),
            list_flag("subnet", "", "Subnet in CIDR format that represents a network segment"),
        ],
        run_create, args_min=1, args_max=1,
    ),
    "ls": Command(
        "ls", "[OPTIONS]", "List networks",
        [filter_flag(), format_flag(), bool_flag("no-trunc", "", "Do not truncate the output"),
         bool_flag("quiet", "q", "Only display network IDs")],
        run_ls, args_max=0,
    ),
    "inspect": Command(
        "inspect", "[OPTIONS] NETWORK [NETWORK...]",
        "Display detailed information on one or more networks",
        [string_flag("format", "f", "Format output using a custom template"),
         bool_flag("verbose", "v", "Verbose output for diagnostics")],
        run_inspect, args_min=1,
    ),
    "rm": Command("rm", "NETWORK [NETWORK...]", "Remove one or more networks",
                  [bool_flag("force", "f", "Do not error if the network does not exist")],
                  run_rm, args_min=1),
    "prune": Command("prune", "[OPTIONS]", "Remove all unused networks",
                     [filter_flag(short=""), bool_flag("force", "f", "Do not prompt for confirmation")],
                     run_prune, args_max=0),
    "connect": Command(
        "connect", "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network",
        [list_flag("alias", "", "Add network-scoped alias for the container"),
         list_flag("driver-opt", "", "driver options for the network"),
         string_flag("ip", "", "IPv4 address (e.g., 172.30.100.104)"),
         string_flag("ip6", "", "IPv6 address (e.g., 2001:db8::33)"),
         list_flag("link", "", "Add link to another container"),
         list_flag("link-local-ip", "", "Add a link-local address for the container")],
        run_connect, args_min=2, args_max=2,
    ),
    "disconnect": Command(
        "disconnect", "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network",
        [bool_flag("force", "f", "Force the container to disconnect from a network")],
        run_disconnect, args_min=2, args_max=2,
    ),
}
