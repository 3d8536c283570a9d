"""Tables, human durations and sizes, ports, IDs, commands, and the format contexts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.client import formatting, tables


def test_tabwriter_pads_to_widest_cell_plus_three_with_minimum_ten():
    text = "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox:latest\tweb\n"
    assert formatting.tabwrite(text) == (
        "CONTAINER ID   IMAGE            NAMES\n"
        "abc            busybox:latest   web\n")


def test_tabwriter_last_cell_and_short_columns():
    assert formatting.tabwrite("a\tb\n") == "a         b\n"
    assert formatting.tabwrite("a\t\tc\n") == "a                   c\n"
    assert formatting.tabwrite("only\n") == "only\n"


def test_tabwriter_column_blocks_restart_after_a_line_without_tabs():
    text = "long-cell-value\tx\nheading\nab\ty\n"
    assert formatting.tabwrite(text) == "long-cell-value   x\nheading\nab        y\n"


@given(st.lists(st.lists(st.text(alphabet="abcxyz -", max_size=12), min_size=3, max_size=3),
                min_size=1, max_size=6))
def test_tabwriter_columns_line_up(rows):
    text = "".join("\t".join(row) + "\n" for row in rows)
    lines = formatting.tabwrite(text).splitlines()
    for column in range(2):
        width = max(max(len(row[column]) for row in rows) + 3, 10)
        starts = set()
        for row, line in zip(rows, lines, strict=True):
            offset = sum(max(max(len(r[c]) for r in rows) + 3, 10) for c in range(column))
            assert line[offset:offset + len(row[column])] == row[column]
            starts.add(offset + width)
        assert len(starts) == 1


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"), (3600, "About an hour"),
    (5400, "2 hours"), (9000, "3 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
    (13 * 86400, "13 days"), (14 * 86400, "2 weeks"), (59 * 86400, "8 weeks"),
    (60 * 86400, "2 months"), (400 * 86400, "13 months"), (2 * 365 * 86400, "2 years"),
])
def test_human_duration(seconds, text):
    assert formatting.human_duration(seconds) == text


@pytest.mark.parametrize(("size", "precision", "text"), [
    (0, 3, "0B"), (999, 3, "999B"), (1000, 3, "1kB"), (4261234, 3, "4.26MB"),
    (123456789, 3, "123MB"), (2048, 4, "2.048kB"), (1_500_000_000, 3, "1.5GB"),
    (999_999, 3, "1e+03kB"),
])
def test_human_size(size, precision, text):
    assert formatting.human_size(size, precision) == text


@pytest.mark.parametrize(("size", "text"), [(0, "0B"), (1536, "1.5KiB"),
                                            (2 * 1024**3, "2GiB"), (1023, "1023B")])
def test_binary_size(size, text):
    assert formatting.binary_size(size) == text


def test_truncate_id_ellipsis_and_quote():
    assert formatting.truncate_id("sha256:" + "ab" * 32) == "ab" * 6
    assert formatting.truncate_id("0123456789abcdef") == "0123456789ab"
    assert formatting.ellipsis("sh -c 'while true; do'", 20) == "sh -c 'while true; …"
    assert formatting.ellipsis("short", 20) == "short"
    assert formatting.go_quote('say "hi"\n\x01') == '"say \\"hi\\"\\n\\x01"'


@pytest.mark.parametrize(("ports", "text"), [
    ([], ""),
    ([{"PrivatePort": 80, "Type": "tcp"}], "80/tcp"),
    ([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
      {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
     "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"),
    ([{"PrivatePort": 91, "Type": "tcp"}, {"PrivatePort": 90, "Type": "tcp"},
      {"PrivatePort": 92, "Type": "tcp"}, {"PrivatePort": 53, "Type": "udp"}],
     "53/udp, 90-92/tcp"),
    ([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 80, "Type": "tcp"},
      {"IP": "0.0.0.0", "PrivatePort": 81, "PublicPort": 81, "Type": "tcp"}],
     "0.0.0.0:80-81->80-81/tcp"),
    ([{"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 82, "Type": "tcp"}],
     "80/tcp, 82/tcp"),
])
def test_displayable_ports(ports, text):
    assert formatting.displayable_ports(ports) == text


def test_parse_rfc3339():
    assert formatting.parse_rfc3339("2024-01-02T03:04:05Z") == 1704164645
    assert formatting.parse_rfc3339("2024-01-02T03:04:05.5+01:00") == 1704164645 - 3600 + 0.5
    assert formatting.parse_rfc3339("2024-01-02T03:04:05.123456789Z") == pytest.approx(
        1704164645.123456789)
    assert formatting.parse_rfc3339("yesterday") is None


def test_container_context_fields():
    container = {
        "Id": "f" * 64, "Names": ["/web", "/other/link"], "Image": "docker.io/library/nginx:1",
        "ImageID": "sha256:" + "e" * 64, "Command": "a very long command line indeed",
        "Created": 1000, "Labels": {"b": "2", "a": "1"}, "SizeRw": 1234, "SizeRootFs": 5_000_000,
        "Mounts": [{"Name": "a-rather-long-volume-name", "Driver": "local"},
                   {"Source": "/host", "Driver": ""}],
        "NetworkSettings": {"Networks": {"net2": {}, "bridge": {}}}, "State": "exited",
    }
    context = tables.ContainerContext(container, now=1000 + 90)
    assert context.ID() == "f" * 12
    assert context.Names() == "web"
    assert context.Image() == "nginx:1"
    assert context.Command() == '"a very long command…"'
    assert context.RunningFor() == "About a minute ago"
    assert context.Labels() == "a=1,b=2"
    assert context.Label("b") == "2"
    assert context.Size() == "1.23kB (virtual 5MB)"
    assert context.Mounts() == "a-rather-long-…,/host"
    assert context.Networks() == "bridge,net2"
    assert context.LocalVolumes() == "1"
    untruncated = tables.ContainerContext(container, trunc=False)
    assert untruncated.Names() == "web,other/link"
    assert untruncated.Image() == "docker.io/library/nginx:1"
    same_as_id = tables.ContainerContext({"Image": "e" * 64, "ImageID": "sha256:" + "e" * 64})
    assert same_as_id.Image() == "e" * 12


def test_image_rows_follow_docker():
    image = {"RepoTags": ["a:1", "a:2", "b:latest"], "RepoDigests": ["a@sha256:" + "1" * 64,
                                                                     "c@sha256:" + "2" * 64]}
    assert tables.image_rows(image, digests=False) == [
        ("a", "1", "<none>"), ("a", "2", "<none>"), ("b", "latest", "<none>"), ("c", "<none>", "")]
    assert tables.image_rows(image, digests=True) == [
        ("a", "1", "sha256:" + "1" * 64), ("a", "2", "sha256:" + "1" * 64),
        ("b", "latest", "<none>"), ("c", "<none>", "sha256:" + "2" * 64)]
    assert tables.image_rows({"RepoTags": None}, digests=False) == [("<none>", "<none>",
                                                                     "<none>")]


def test_render_table_json_and_errors():
    contexts = [tables.MapContext({"Name": "x", "Driver": "local"}, {"Name": "VOLUME NAME",
                                                                     "Driver": "DRIVER"})]
    headers = {"Name": "VOLUME NAME", "Driver": "DRIVER"}
    assert tables.render("table {{.Driver}}\\t{{.Name}}", contexts, headers) == (
        "DRIVER    VOLUME NAME\nlocal     x\n")
    assert tables.render("json", contexts, headers) == '{"Driver":"local","Name":"x"}\n'
    assert tables.render("{{.Name}}", [], headers) == ""
    assert tables.render("table {{.Name}}", [], headers) == "VOLUME NAME\n"
    with pytest.raises(tables.CommandError) as caught:
        tables.render("{{.Name", contexts, headers)
    assert caught.value.message == "failed to parse template: template: :1: unclosed action"


def test_natural_sort_compares_numbers_as_numbers():
    names = ["net10", "net2", "alpha", "net1", "beta20b", "beta3"]
    assert sorted(names, key=formatting.natural_key) == ["alpha", "beta3", "beta20b", "net1",
                                                         "net2", "net10"]
