"""The reference docs stand alone and cannot go out of date; the docs site builds strictly."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from builders import REPO

from tau_ops.cli.schema import SCHEMAS, schema_of


def _generator():  # type: ignore[no-untyped-def]
    path = REPO / "scripts/gen_reference.py"
    spec = importlib.util.spec_from_file_location("gen_reference", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_reference_pages_are_current() -> None:
    pages = _generator().render_all()
    cli = (REPO / "docs/reference/cli.md").read_text(encoding="utf-8")
    recorded = re.search(r"\(Python (\d+)\.(\d+)\)", cli)
    assert recorded, "cli.md must say which Python rendered it"
    for name, text in pages.items():
        if name == "cli.md" and tuple(map(int, recorded.groups())) != sys.version_info[:2]:
            continue  # argparse's help layout differs between Python versions
        committed = (REPO / "docs/reference" / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"docs/reference/{name} is out of date: run .venv/bin/python scripts/gen_reference.py"
        )


def test_cli_reference_lists_every_subcommand() -> None:
    from tau_ops.cli import FEATURES

    cli = (REPO / "docs/reference/cli.md").read_text(encoding="utf-8")
    for feature in FEATURES:
        for name in feature.SUBCOMMANDS:
            assert f"## tau-ops {name}\n" in cli


@pytest.mark.parametrize(
    "fixture",
    [p for p in sorted((REPO / "testdata/deployment-contract").glob("*.json"))
     if not p.name.startswith("invalid-")],  # those break rules a schema cannot express
    ids=lambda p: p.name,
)
def test_fixture_schema_accepts_the_shipped_valid_fixtures(fixture: Path) -> None:
    schema = json.loads(subprocess.run(
        [sys.executable, "-m", "tau_ops", "schema", "fixture"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout)
    document = json.loads(fixture.read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(document)) == []


def test_fixture_schema_refuses_what_the_loader_refuses() -> None:
    validator = jsonschema.Draft202012Validator(schema_of("fixture"))
    document = json.loads((REPO / "testdata/deployment-contract/rollout-pass.json").read_text())
    document["cases"][0]["replicas"] = 0
    document["schema_version"] = 2
    messages = sorted(e.message for e in validator.iter_errors(document))
    assert messages == ["0 is less than the minimum of 1", "1 was expected"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = schema_of(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_of_an_unknown_format_is_bad_usage() -> None:
    result = subprocess.run([sys.executable, "-m", "tau_ops", "schema", "nope"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_docs_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "api/index.html").read_text(encoding="utf-8")
    for name in ("run_cycle", "deployment_status", "RunnerConfig", "load_events"):
        assert f'id="tau_ops.{name}"' in api
    assert (tmp_path / "reference/codes/index.html").exists()


def test_docs_do_not_point_outside_the_repository() -> None:
    for page in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]:
        text = page.read_text(encoding="utf-8")
        assert "../shared/" not in text and not re.search(r"\bSPEC\b", text), page
