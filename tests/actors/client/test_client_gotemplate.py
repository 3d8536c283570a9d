"""The Go text/template subset: a table of cases, properties, and error messages."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.client.gotemplate import HEADER_FUNCTIONS, Template, TemplateError, format_value, render

DATA = {
    "Name": "web",
    "Id": "abc123",
    "Count": 3,
    "Zero": 0,
    "Empty": "",
    "Yes": True,
    "No": False,
    "Nil": None,
    "Ratio": 1.5,
    "Big": 1000000.0,
    "List": ["a", "b", "c"],
    "Nums": [1, 2, 3],
    "EmptyList": [],
    "Map": {"b": "2", "a": "1"},
    "Nested": {"Inner": {"Deep": "value"}, "Key with space": "s"},
    "Env": ["A=1", "B=2"],
    "Mixed": "Hello World",
}

CASES = [
    ("plain text", "plain text"),
    ("{{.Name}}", "web"),
    ("{{ .Name }}", "web"),
    ("{{.Nested.Inner.Deep}}", "value"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Nil}}", "<no value>"),
    ("{{.Count}}-{{.Ratio}}-{{.Big}}", "3-1.5-1e+06"),
    ("{{.Yes}} {{.No}}", "true false"),
    ("{{.List}}", "[a b c]"),
    ("{{.Map}}", "map[a:1 b:2]"),
    ("{{json .List}}", '["a","b","c"]'),
    ("{{json .Map}}", '{"a":"1","b":"2"}'),
    ("{{.Map | json}}", '{"a":"1","b":"2"}'),
    ("{{json .Nested.Inner}}", '{"Deep":"value"}'),
    ("{{json .Nil}}", "null"),
    ("{{json .Name}}", '"web"'),
    ("{{index .Map \"a\"}}", "1"),
    ("{{index .Nested \"Key with space\"}}", "s"),
    ("{{index .List 1}}", "b"),
    ("{{index .Map \"zz\"}}", "<no value>"),
    ("{{range .List}}[{{.}}]{{end}}", "[a][b][c]"),
    ("{{range $i, $v := .List}}{{$i}}={{$v}} {{end}}", "0=a 1=b 2=c "),
    ("{{range $k, $v := .Map}}{{$k}}:{{$v}},{{end}}", "a:1,b:2,"),
    ("{{range .EmptyList}}x{{else}}none{{end}}", "none"),
    ("{{range .List}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}", "a"),
    ("{{range .List}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}", "ac"),
    ("{{if .Yes}}y{{else}}n{{end}}", "y"),
    ("{{if .Empty}}y{{else if .Count}}c{{else}}n{{end}}", "c"),
    ("{{if and .Yes .Count}}both{{end}}", "both"),
    ("{{if or .Zero .Empty}}x{{else}}neither{{end}}", "neither"),
    ("{{or .Empty \"fallback\"}}", "fallback"),
    ("{{and .Yes .Name}}", "web"),
    ("{{if not .No}}ok{{end}}", "ok"),
    ("{{with .Nested.Inner}}{{.Deep}}{{end}}", "value"),
    ("{{with .Empty}}x{{else}}empty{{end}}", "empty"),
    ("{{join .List \",\"}}", "a,b,c"),
    ("{{join .Env \" \"}}", "A=1 B=2"),
    ("{{split .Mixed \" \"}}", "[Hello World]"),
    ("{{lower .Mixed}} {{upper .Mixed}} {{title \"hello wide world\"}}",
     "hello world HELLO WORLD Hello Wide World"),
    ("{{println .Name}}", "web\n"),
    ("{{println .Name .Count}}", "web 3\n"),
    ("{{print .Name .Count}}", "web3"),
    ("{{print 1 2}}", "1 2"),
    ("{{printf \"%s=%d\" .Name .Count}}", "web=3"),
    ("{{printf \"%-5s|%5s|\" \"ab\" \"cd\"}}", "ab   |   cd|"),
    ("{{printf \"%q %v %t\" .Name .List .Yes}}", '"web" [a b c] true'),
    ("{{printf \"%.2f\" .Ratio}}", "1.50"),
    ("{{len .List}} {{len .Map}} {{len .Name}}", "3 2 3"),
    ("{{slice .Name 1 3}}", "eb"),
    ("{{eq .Count 3}} {{ne .Count 3}} {{lt .Count 4}} {{le .Count 3}} {{gt .Count 3}} "
     "{{ge .Count 4}}", "true false true true false false"),
    ("{{eq .Name \"x\" \"web\"}}", "true"),
    ("{{pad .Name 2 1}}|", "  web |"),
    ("{{truncate .Mixed 5}}", "Hello"),
    ("a  {{- .Name -}}  b", "awebb"),
    ("a\n\t{{- .Name}}", "aweb"),
    ("{{.Name -}}\n  x", "webx"),
    ("x{{/* a comment */}}y", "xy"),
    ("x {{- /* trimmed comment */ -}} y", "xy"),
    ("{{$n := .Name}}{{$n}}-{{$n}}", "web-web"),
    ("{{$n := 1}}{{$n = 2}}{{$n}}", "2"),
    ("{{range .List}}{{$.Name}}{{end}}", "webwebweb"),
    ("{{(index .Nested \"Inner\").Deep}}", "value"),
    ("{{\"quoted \\\"x\\\"\\n\"}}", 'quoted "x"\n'),
    ("{{`raw \\n`}}", "raw \\n"),
    ("{{'a'}}", "97"),
    ("{{html \"<a>\"}}", "&lt;a&gt;"),
    ("{{urlquery \"a b&c\"}}", "a+b%26c"),
    ("{{.Name | printf \"%s!\"}}", "web!"),
    ("{{.Nums | len}}", "3"),
    ("{{print nil}}", "<nil>"),
    ("{{-1}} {{0x10}} {{1e3}}", "-1 16 1000"),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_cases(source, expected):
    assert render(source, DATA) == expected


ERRORS = [
    ("{{.Name", "template: :1: unclosed action"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if .Yes}}x", "template: :1: unexpected EOF"),
    ("{{nosuch .Name}}", 'template: :1: function "nosuch" not defined'),
    ("{{index .List 9}}", 'template: :1:2: executing "" at <index .List 9>: error calling '
                          "index: index out of range: 9"),
    ("{{.Name.Sub}}", 'template: :1:7: executing "" at <.Name.Sub>: can\'t evaluate field Sub '
                      "in type string"),
    ("{{\"unterminated}}", "template: :1: unterminated quoted string"),
    ("{{define \"x\"}}{{end}}", "template: :1: {{define}} is not supported"),
    ("{{break}}", "template: :1: break or continue outside range"),
    ("{{$undefined}}", "template: :1: undefined variable: $undefined"),
    ("{{/* unclosed", "template: :1: unclosed comment"),
]


@pytest.mark.parametrize(("source", "message"), ERRORS)
def test_errors(source, message):
    with pytest.raises(TemplateError) as caught:
        render(source, DATA)
    assert str(caught.value) == message


def test_missing_key_error_mode_and_line_numbers():
    with pytest.raises(TemplateError) as caught:
        Template("line one\n  {{.Nope}}").execute(DATA, missing_key_error=True)
    assert str(caught.value) == ('template: :2:4: executing "" at <.Nope>: map has no entry '
                                 'for key "Nope"')


class Context:
    go_type_name = "*formatter.ContainerContext"

    def ID(self):
        return "abc"

    def Label(self, name):
        return {"tier": "web"}.get(name, "")

    Size = "1B"


def test_methods_and_fields_of_objects():
    assert render('{{.ID}} {{.Label "tier"}} {{.Size}}', Context()) == "abc web 1B"
    with pytest.raises(TemplateError) as caught:
        render("{{.Nope}}", Context())
    assert str(caught.value) == ('template: :1:2: executing "" at <.Nope>: can\'t evaluate '
                                 "field Nope in type *formatter.ContainerContext")


def test_header_functions_leave_titles_alone():
    headers = {"Names": "NAMES", "Labels": "LABELS"}
    template = Template("{{.Names | upper}}\t{{json .Labels}}\t{{truncate .Names 2}}")
    assert template.execute(headers, HEADER_FUNCTIONS) == "NAMES\tLABELS\tNAMES"


safe_text = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=40)


@given(safe_text)
def test_text_without_actions_is_unchanged(text):
    assert render(text, {}) == text


@given(st.dictionaries(st.from_regex(r"[A-Z][A-Za-z0-9]{0,8}", fullmatch=True),
                       st.text(max_size=10), min_size=1, max_size=5))
def test_fields_render_their_values(data):
    for key, value in data.items():
        assert render("{{." + key + "}}", data) == value


json_data = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4),
                                                                      children, max_size=3),
    max_leaves=10,
)


@given(json_data)
def test_json_function_round_trips(value):
    assert json.loads(render("{{json .}}", value)) == value


@given(safe_text, safe_text, st.text(alphabet="abc", max_size=5))
def test_trim_markers(before, after, value):
    assert render(before + "{{- .V -}}" + after, {"V": value}) == (
        before.rstrip(" \t\r\n") + value + after.lstrip(" \t\r\n"))


@given(st.lists(st.text(alphabet="xyz", max_size=3), max_size=6), st.text(alphabet=",;", max_size=2))
def test_range_and_join_agree(items, separator):
    joined = render("{{join .L .S}}", {"L": items, "S": separator})
    assert joined == separator.join(items)
    assert render("{{range .L}}{{.}}|{{end}}", {"L": items}) == "".join(f"{i}|" for i in items)


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_comparisons_match_python(left, right):
    out = render("{{eq .A .B}} {{ne .A .B}} {{lt .A .B}} {{le .A .B}} {{gt .A .B}} {{ge .A .B}}",
                 {"A": left, "B": right})
    expected = [left == right, left != right, left < right, left <= right, left > right,
                left >= right]
    assert out == " ".join("true" if item else "false" for item in expected)


@pytest.mark.parametrize(("value", "text"), [
    (1e21, "1e+21"), (123456.0, "123456"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001"),
    (0.00001, "1e-05"), (-2.5, "-2.5"), (3.0, "3"), (0.5, "0.5"), (67108864.0, "6.7108864e+07"),
])
def test_floats_print_like_go(value, text):
    assert format_value(value) == text
