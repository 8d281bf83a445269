"""Property tests: random and mutated fixtures are accepted or refused cleanly, never crash."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from builders import TESTDATA, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tau_ops import FixtureError, parse_fixture

BASE = json.loads((TESTDATA / "deployment-contract/mixed-outcomes.json").read_text())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


PATHS = _paths(BASE)


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue
    return doc


@settings(max_examples=300, deadline=None)
@given(mutated_fixtures())
def test_mutated_fixture_is_accepted_or_refused_with_message(doc: Any) -> None:
    try:
        fixture = parse_fixture(json.dumps(doc))
    except FixtureError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert fixture.cases


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, st.binary(max_size=64).map(lambda b: b.decode("latin-1"))))
def test_random_documents_never_crash_the_loader(doc: Any) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    try:
        parse_fixture(text)
    except FixtureError as exc:
        assert str(exc).startswith("fixture ")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_fixtures())
def test_cli_refuses_bad_fixture_with_one_error_line(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps(doc))
    try:
        parse_fixture(path.read_bytes())
        return  # a still-valid mutation is the runner's business, not this test's
    except FixtureError:
        pass
    result = run_cli("--deployment-state-dir", tmp_path / "s", "--deployment-contract-runner",
                     "--deployment-fixture", path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: fixture ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s" / "state.json").exists()


PADDABLE = ("case_id", "deploy_target", "runtime_profile", "blueprint_id", "environment",
            "region", "container_image", "wasm_module")
whitespace = st.text(alphabet=" \t\n\r", max_size=3)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(whitespace, whitespace), min_size=len(PADDABLE),
                max_size=len(PADDABLE)))
def test_padding_string_fields_changes_nothing(pads: list[tuple[str, str]]) -> None:
    from tau_ops import case_key, evaluate_case

    padded = copy.deepcopy(BASE)
    for case in padded["cases"]:
        for field, (left, right) in zip(PADDABLE, pads, strict=True):
            if field in case:
                case[field] = left + case[field] + right
        case["expected"]["error_code"] = pads[0][0] + case["expected"].get("error_code", "")
    plain, trimmed = parse_fixture(json.dumps(BASE)), parse_fixture(json.dumps(padded))
    assert trimmed == plain
    assert [case_key(c) for c in trimmed.cases] == [case_key(c) for c in plain.cases]
    assert [evaluate_case(c) for c in trimmed.cases] == [evaluate_case(c) for c in plain.cases]


# -0.0 == 0.0 for serde as for Python, but their JSON texts differ: leave negative zero out.
typed_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3)
    | st.floats(allow_nan=False).filter(lambda f: f != 0 or str(f) == "0.0")
    | st.sampled_from([0.0, 1.0, -1.0, 3.0]) | st.text(max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner,
                                                                 max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(typed_values, typed_values)
def test_json_equal_is_python_equality_plus_json_type(left: Any, right: Any) -> None:
    from tau_ops.contract import json_equal

    assert json_equal(left, left)
    # Equal by JSON type exactly when the JSON texts are equal (keys in the same order).
    same_text = json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)
    assert json_equal(left, right) == same_text
