"""docker's `--format` handling and the per-object contexts its templates run against.

A format is "table" (the command's default columns), "table TEMPLATE" (a header row, then
one row per object, aligned), "json" (one JSON object per line), or a bare TEMPLATE (one
rendered line per object). `\\t` and `\\n` in the format are real tabs/newlines.
"""

from actors.client import formatting
from actors.client.cli import CommandError

TABLE_PREFIX = "table"


class FormatContext:
    """Base of the objects templates see; `HEADERS` maps each field to its column title."""

    HEADERS: dict[str, str] = {}
    go_type_name = "*formatter.Context"

    def template_json(self) -> dict:
        out = {}
        for name in sorted(self.HEADERS):
            attribute = getattr(self, name, None)
            if attribute is None or name == "Label":
                continue
            out[name] = attribute() if callable(attribute) else attribute
        return out


class _HeaderContext:
    def __init__(self, headers: dict) -> None:
        self._headers = headers

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        header = self._headers.get(name)
        if header is None:
            raise AttributeError(name)
        return lambda *args: header


def prepare(format_text: str) -> tuple[bool, str]:
    """Split off the table prefix and turn the `\\t`/`\\n` escapes into characters."""
    is_table = format_text.startswith(TABLE_PREFIX)
    text = format_text[len(TABLE_PREFIX) :] if is_table else format_text
    text = text.strip(" ")
    text = text.replace("\\t", "\t").replace("\\n", "\n")
    return is_table, text


def simple_fields(text: str, headers: dict) -> list[str] | None:
    """The field names of a format made only of `{{.Field}}` cells joined by tabs.

    Such formats (every default table, and -q's `{{.ID}}`) are rendered without the
    template engine, which `flotta ps` then never imports; the output is the same.
    """
    fields = []
    for cell in text.split("\t"):
        name = cell[3:-2]
        if not (cell.startswith("{{.") and cell.endswith("}}") and name.isidentifier()
                and name in headers and name != "Label"):
            return None
        fields.append(name)
    return fields


def parse(format_text: str):
    """Parse a --format value into (is_table, Template); errors use docker's wording."""
    from actors.client.gotemplate import Template, TemplateError

    if format_text == "json":
        format_text = "{{json .}}"
    is_table, text = prepare(format_text)
    try:
        return is_table, Template(text)
    except TemplateError as error:
        raise CommandError(f"failed to parse template: {error}") from None


def validate(format_text: str, headers: dict) -> None:
    """Fail early on a template that does not parse (simple formats need no parsing)."""
    if format_text != "json" and simple_fields(prepare(format_text)[1], headers) is not None:
        return
    parse(format_text)


def check(format_text: str, sample) -> None:
    """Parse and run the format once on an empty object, as `docker ps` does up front."""
    if simple_fields(prepare(format_text)[1], type(sample).HEADERS) is not None:
        return
    from actors.client.gotemplate import TemplateError

    _, template = parse(format_text)
    try:
        template.execute(sample)
    except TemplateError as error:
        raise CommandError(f"failed to execute template: {error}") from None


def _render_simple(is_table: bool, fields: list[str], contexts: list, headers: dict):
    rows = []
    for context in contexts:
        cells = []
        for name in fields:
            attribute = getattr(context, name)
            value = attribute() if callable(attribute) else attribute
            if not isinstance(value, str):
                return None
            cells.append(value)
        rows.append("\t".join(cells) + "\n")
    if not is_table:
        return "".join(rows)
    header = "\t".join(headers[name] for name in fields)
    return formatting.tabwrite(header + "\n" + "".join(rows))


def render(format_text: str, contexts: list, headers: dict) -> str:
    """Render objects with a --format value; the text ends with a newline per row."""
    if format_text != "json":
        is_table, text = prepare(format_text)
        fields = simple_fields(text, headers)
        if fields is not None:
            rendered = _render_simple(is_table, fields, contexts, headers)
            if rendered is not None:
                return rendered
    from actors.client.gotemplate import HEADER_FUNCTIONS, TemplateError

    is_table, template = parse(format_text)
    rows = []
    try:
        for context in contexts:
            rows.append(template.execute(context) + "\n")
        if not is_table:
            return "".join(rows)
        header = template.execute(_HeaderContext(headers), HEADER_FUNCTIONS)
    except TemplateError as error:
        raise CommandError(f"failed to execute template: {error}") from None
    return formatting.tabwrite(header + "\n" + "".join(rows))


def render_each(format_text: str, objects: list) -> str:
    """`inspect -f`: the template runs on each raw JSON object, one line each.

    Unlike table formats, docker leaves `\\t` and `\\n` in inspect templates alone.
    """
    from actors.client.gotemplate import Template, TemplateError

    try:
        template = Template(format_text)
    except TemplateError as error:
        raise CommandError(f"template parsing error: {error}") from None
    out = []
    for item in objects:
        try:
            out.append(template.execute(item, missing_key_error=True) + "\n")
        except TemplateError as error:
            raise CommandError(f"template parsing error: {error}") from None
    return "".join(out)


# --------------------------------------------------------------------------- containers

CONTAINER_TABLE = (
    "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}"
    "\\t{{.Names}}"
)


class ContainerContext(FormatContext):
    HEADERS = {
        "ID": "CONTAINER ID",
        "Names": "NAMES",
        "Image": "IMAGE",
        "Command": "COMMAND",
        "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED",
        "Ports": "PORTS",
        "State": "STATE",
        "Status": "STATUS",
        "Size": "SIZE",
        "Labels": "LABELS",
        "Label": "LABEL",
        "Mounts": "MOUNTS",
        "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES",
        "Platform": "PLATFORM",
    }
    go_type_name = "*formatter.ContainerContext"

    def __init__(self, container: dict, trunc: bool = True, now: float | None = None) -> None:
        self.c = container
        self.trunc = trunc
        self.now = now

    def ID(self) -> str:
        identifier = self.c.get("Id") or ""
        return formatting.truncate_id(identifier) if self.trunc else identifier

    def Names(self) -> str:
        names = [name[1:] if name.startswith("/") else name for name in self.c.get("Names") or []]
        if self.trunc:
            for name in names:
                if "/" not in name:
                    names = [name]
                    break
        return ",".join(names)

    def Image(self) -> str:
        image = self.c.get("Image") or ""
        if not image:
            return "<no image>"
        if self.trunc:
            image_id = self.c.get("ImageID") or ""
            if image_id and formatting.truncate_id(image_id) == formatting.truncate_id(image):
                return formatting.truncate_id(image_id)
            from actors.client.reference import ReferenceError, parse_normalized_named

            try:
                reference = parse_normalized_named(image)
            except ReferenceError:
                return image
            text = reference.familiar_name()
            if reference.tag:
                text += ":" + reference.tag
            return text
        return image

    def Command(self) -> str:
        command = self.c.get("Command") or ""
        if self.trunc:
            command = formatting.ellipsis(command, 20)
        return formatting.go_quote(command)

    def CreatedAt(self) -> str:
        return formatting.go_time_string(self.c.get("Created") or 0)

    def RunningFor(self) -> str:
        return formatting.since(self.c.get("Created") or 0, self.now)

    def Ports(self) -> str:
        return formatting.displayable_ports(self.c.get("Ports") or [])

    def State(self) -> str:
        return self.c.get("State") or ""

    def Status(self) -> str:
        return self.c.get("Status") or ""

    def Size(self) -> str:
        size_rw = self.c.get("SizeRw") or 0
        size_root = self.c.get("SizeRootFs") or 0
        text = formatting.human_size(size_rw, 3)
        if size_root > 0:
            text = f"{text} (virtual {formatting.human_size(size_root, 3)})"
        return text

    def Labels(self) -> str:
        labels = self.c.get("Labels") or {}
        return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))

    def Label(self, name: str) -> str:
        return (self.c.get("Labels") or {}).get(name, "")

    def Mounts(self) -> str:
        names = []
        for mount in self.c.get("Mounts") or []:
            name = mount.get("Name") or mount.get("Source") or ""
            if self.trunc:
                name = formatting.ellipsis(name, 15)
            names.append(name)
        return ",".join(names)

    def Networks(self) -> str:
        networks = (self.c.get("NetworkSettings") or {}).get("Networks") or {}
        return ",".join(sorted(networks))

    def Platform(self):
        platform = self.c.get("ImageManifestDescriptor", {}) or {}
        return platform.get("platform")

    def LocalVolumes(self) -> str:
        count = sum(1 for mount in self.c.get("Mounts") or [] if mount.get("Driver") == "local")
        return str(count)


# --------------------------------------------------------------------------- images

IMAGE_TABLE = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
IMAGE_TABLE_DIGESTS = (
    "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
)


class ImageContext(FormatContext):
    HEADERS = {
        "ID": "IMAGE ID",
        "Repository": "REPOSITORY",
        "Tag": "TAG",
        "Digest": "DIGEST",
        "CreatedSince": "CREATED",
        "CreatedAt": "CREATED AT",
        "Size": "SIZE",
        "Containers": "CONTAINERS",
        "SharedSize": "SHARED SIZE",
        "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "VIRTUAL SIZE",
    }
    go_type_name = "*formatter.imageContext"

    def __init__(self, image: dict, repository: str, tag: str, digest: str,
                 trunc: bool = True, now: float | None = None) -> None:
        self.i = image
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.trunc = trunc
        self.now = now

    def ID(self) -> str:
        identifier = self.i.get("Id") or ""
        return formatting.truncate_id(identifier) if self.trunc else identifier

    def Repository(self) -> str:
        return self.repository

    def Tag(self) -> str:
        return self.tag

    def Digest(self) -> str:
        return self.digest

    def CreatedSince(self) -> str:
        created = self.i.get("Created") or 0
        if created <= 0:
            return "N/A"
        return formatting.since(created, self.now)

    def CreatedAt(self) -> str:
        return formatting.go_time_string(self.i.get("Created") or 0)

    def Size(self) -> str:
        return formatting.human_size(self.i.get("Size") or 0, 3)

    def VirtualSize(self) -> str:
        # docker formats this one with go-units' default precision (4), unlike Size.
        return formatting.human_size(self.i.get("VirtualSize", self.i.get("Size")) or 0)

    def Containers(self) -> str:
        count = self.i.get("Containers", -1)
        return "N/A" if count is None or count < 0 else str(count)

    def SharedSize(self) -> str:
        shared = self.i.get("SharedSize", -1)
        if shared is None or shared < 0:
            return "N/A"
        return formatting.human_size(shared, 3)

    def UniqueSize(self) -> str:
        shared = self.i.get("SharedSize", -1)
        if shared is None or shared < 0:
            return "N/A"
        return formatting.human_size((self.i.get("Size") or 0) - shared, 3)


def image_rows(image: dict, digests: bool) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows for one image, like docker's imageFormat."""
    from actors.client.reference import ReferenceError, parse_normalized_named

    tags = image.get("RepoTags") or []
    digest_refs = image.get("RepoDigests") or []
    dangling = (not tags and not digest_refs) or (
        tags == ["<none>:<none>"] and digest_refs == ["<none>@<none>"]
    )
    if dangling:
        return [("<none>", "<none>", "<none>")]
    repo_tags: dict[str, list[str]] = {}
    repo_digests: dict[str, list[str]] = {}
    for text in tags:
        try:
            reference = parse_normalized_named(text)
        except ReferenceError:
            continue
        if reference.tag:
            repo_tags.setdefault(reference.familiar_name(), []).append(reference.tag)
    for text in digest_refs:
        try:
            reference = parse_normalized_named(text)
        except ReferenceError:
            continue
        if reference.digest:
            repo_digests.setdefault(reference.familiar_name(), []).append(reference.digest)
    rows = []
    for repository, tag_list in repo_tags.items():
        repository_digests = repo_digests.pop(repository, [])
        if not digests:
            repository_digests = []
        for tag in tag_list:
            if not repository_digests:
                rows.append((repository, tag, "<none>"))
                continue
            for digest in repository_digests:
                rows.append((repository, tag, digest))
    for repository, digest_list in repo_digests.items():
        if digests:
            for digest in digest_list:
                rows.append((repository, "<none>", digest))
        else:
            rows.append((repository, "<none>", ""))
    return rows


# --------------------------------------------------------------------------- the others


class MapContext(FormatContext):
    """A context whose fields are precomputed strings (networks, volumes, history...)."""

    go_type_name = "*formatter.Context"

    def __init__(self, fields: dict, headers: dict, raw: dict | None = None) -> None:
        self._fields = fields
        self.HEADERS = headers
        self._raw = raw or {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        fields = self.__dict__.get("_fields", {})
        if name == "Label":
            labels = self._raw.get("Labels") or {}
            return lambda key: labels.get(key, "")
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def template_json(self) -> dict:
        return dict(sorted(self._fields.items()))


def labels_text(labels: dict | None) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted((labels or {}).items()))
