"""Interpolation: the specification's rules as a table, then properties and file-level behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.compose.errors import Diagnostics
from actors.compose.interpolation import (
    InvalidTemplate,
    MissingRequiredVariable,
    escape,
    interpolate_tree,
    substitute,
)
from actors.compose.yamlload import Override, Reset

ENV = {"SET": "value", "EMPTY": "", "B": "bee", "PORT": "8080", "NESTED": "${SET}"}

CASES = [
    # plain references
    ("$SET", "value"),
    ("${SET}", "value"),
    ("pre-${SET}-post", "pre-value-post"),
    ("$SET$SET", "valuevalue"),
    ("$SET-x", "value-x"),
    ("${SET}x", "valuex"),
    ("$SETx", ""),  # the name is SETx, which is unset
    ("$UNSET", ""),
    ("${UNSET}", ""),
    ("${EMPTY}", ""),
    # defaults
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${SET:-dflt}", "value"),
    ("${UNSET-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${SET-dflt}", "value"),
    ("${UNSET:-}", ""),
    ("${UNSET:-a b c}", "a b c"),
    ("${UNSET:-with:colon}", "with:colon"),
    # alternatives
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${UNSET:+alt}", ""),
    ("${SET+alt}", "alt"),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    # nesting
    ("${UNSET:-${B}}", "bee"),
    ("${UNSET:-${ALSO_UNSET:-c}}", "c"),
    ("${SET:-${ALSO_UNSET:?never evaluated}}", "value"),
    ("${UNSET:-$B}", "bee"),
    ("${UNSET:-x${B}y}z", "xbeeyz"),
    ("${SET:+${B}}", "bee"),
    # escaping and literal dollars
    ("$$", "$"),
    ("$$SET", "$SET"),
    ("$${SET}", "${SET}"),
    ("$$$SET", "$value"),
    ("price: 5$", "price: 5$"),
    ("$ 5", "$ 5"),
    ("$1", "$1"),
    ("a$-b", "a$-b"),
    ("no dollars at all", "no dollars at all"),
    # values are not re-interpolated
    ("${NESTED}", "${SET}"),
    # names are case-sensitive and may contain underscores and digits
    ("${set:-lower}", "lower"),
    ("${_A1:-u}", "u"),
    ("${PORT}:80", "8080:80"),
]


@pytest.mark.parametrize(("template", "expected"), CASES)
def test_substitution_table(template: str, expected: str) -> None:
    assert substitute(template, ENV.get) == expected


@pytest.mark.parametrize(
    ("template", "variable", "reason"),
    [
        ("${UNSET:?must be set}", "UNSET", "must be set"),
        ("${EMPTY:?must not be empty}", "EMPTY", "must not be empty"),
        ("${UNSET?}", "UNSET", ""),
        ("${UNSET?need $SET}", "UNSET", "need value"),
        ("${UNSET:-${OTHER:?inner}}", "OTHER", "inner"),
    ],
)
def test_required_variables_fail_with_the_message(
    template: str, variable: str, reason: str
) -> None:
    with pytest.raises(MissingRequiredVariable) as caught:
        substitute(template, ENV.get)
    assert caught.value.variable == variable
    assert caught.value.reason == reason
    assert variable in str(caught.value)


def test_required_variable_set_but_empty_passes_the_plain_question_mark() -> None:
    assert substitute("${EMPTY?x}", ENV.get) == ""
    assert substitute("${SET:?x}", ENV.get) == "value"


@pytest.mark.parametrize(
    "template", ["${", "${SET", "${}", "${1A}", "${SET/a/b}", "${SET:x}", "${ SET}", "${SET:-${B}"]
)
def test_malformed_templates_are_errors(template: str) -> None:
    with pytest.raises(InvalidTemplate) as caught:
        substitute(template, ENV.get)
    assert "invalid interpolation format" in str(caught.value)


def test_unset_variables_are_reported() -> None:
    unset: list[str] = []
    assert substitute("$A ${B_UNSET} ${C:-x} ${D:+y} $SET", ENV.get, unset) == "  x  value"
    assert unset == ["A", "B_UNSET"]


@given(st.text())
def test_escaped_text_expands_to_itself(text: str) -> None:
    assert substitute(escape(text), ENV.get) == text


@given(st.text().filter(lambda text: "$" not in text))
def test_text_without_dollars_is_unchanged(text: str) -> None:
    assert substitute(text, {}.get) == text


@given(
    st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True),
    st.one_of(st.none(), st.text(alphabet="ab$:-", max_size=5)),
    st.text(alphabet="xyz", max_size=4),
)
def test_defaults_agree_with_a_small_model(name: str, value: str | None, word: str) -> None:
    environment = {} if value is None else {name: value}
    unset_or_empty = value is None or value == ""
    assert substitute(f"${{{name}:-{word}}}", environment.get) == (
        word if unset_or_empty else value
    )
    assert substitute(f"${{{name}-{word}}}", environment.get) == (word if value is None else value)
    assert substitute(f"${{{name}:+{word}}}", environment.get) == ("" if unset_or_empty else word)
    assert substitute(f"${{{name}+{word}}}", environment.get) == ("" if value is None else word)


def test_tree_interpolates_values_not_keys_and_keeps_markers() -> None:
    diagnostics = Diagnostics()
    tree = {
        "services": {
            "web": {
                "image": "nginx:${TAG:-1.25}",
                "labels": {"$SET": "${SET}"},
                "ports": ["${PORT}:80", 8443],
                "environment": Override({"A": "$SET"}),
                "command": Reset(["${UNSET:?not evaluated under reset}"]),
            }
        }
    }
    result = interpolate_tree(tree, ENV.get, diagnostics, "compose.yaml")
    web = result["services"]["web"]
    assert web["image"] == "nginx:1.25"
    assert web["labels"] == {"$SET": "value"}
    assert web["ports"] == ["8080:80", 8443]
    assert web["environment"] == Override({"A": "value"})
    assert isinstance(web["command"], Reset)
    assert diagnostics.problems == []


def test_tree_reports_file_and_path_of_each_problem() -> None:
    diagnostics = Diagnostics()
    tree = {
        "services": {
            "web": {
                "image": "${IMAGE:?set IMAGE to the image to run}",
                "ports": ["80", "${BAD"],
                "environment": {"A": "$NOPE"},
            }
        }
    }
    interpolate_tree(tree, ENV.get, diagnostics, "compose.yaml")
    assert [str(problem) for problem in diagnostics.problems] == [
        "compose.yaml: services.web.image: required variable IMAGE is missing a value: "
        "set IMAGE to the image to run",
        "compose.yaml: services.web.ports[1]: invalid interpolation format in '${BAD': "
        "you may need to escape any $ with another $",
    ]
    assert diagnostics.warnings == [
        'compose.yaml: services.web.environment.A: the "NOPE" variable is not set, '
        "defaulting to a blank string"
    ]


def test_the_environment_order_is_shell_then_env_file(load) -> None:  # type: ignore[no-untyped-def]
    project = load(
        """
        services:
          web:
            image: "busybox:${TAG}"
            command: ["echo", "$$HOME", "${COMPOSE_PROJECT_NAME}"]
        """,
        env={"TAG": "1.36"},
    ).project
    assert project.services["web"].image == "busybox:1.36"
    assert project.services["web"].command == ("echo", "$HOME", "test")


def test_missing_required_variable_in_a_file_names_file_and_path(problems) -> None:  # type: ignore[no-untyped-def]
    assert problems(
        """
        services:
          web:
            image: ${IMAGE:?please set IMAGE}
        """
    ) == [
        "compose.yaml: services.web.image: required variable IMAGE is missing a value: please set IMAGE"
    ]


def test_unset_variable_without_default_warns_and_becomes_empty(load) -> None:  # type: ignore[no-untyped-def]
    loaded = load(
        """
        services:
          web:
            image: busybox
            environment:
              A: "x${NOT_SET}y"
        """
    )
    assert loaded.project.services["web"].environment == {"A": "xy"}
    assert any('"NOT_SET" variable is not set' in warning for warning in loaded.warnings)


def test_interpolated_values_are_typed_afterwards(load) -> None:  # type: ignore[no-untyped-def]
    project = load(
        """
        services:
          web:
            image: busybox
            tty: ${TTY}
            scale: ${REPLICAS:-2}
            ports:
              - target: ${TARGET}
                published: ${PUBLISHED}
        """,
        env={"TTY": "true", "TARGET": "80", "PUBLISHED": "8080"},
    ).project
    web = project.services["web"]
    assert web.tty is True
    assert web.replicas == 2
    assert (web.ports[0].target, web.ports[0].published) == (80, "8080")
