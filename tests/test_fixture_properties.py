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
