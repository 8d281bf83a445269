"""Write the generated pages of docs/reference/ from the code itself.

- ``cli.md``: the ``--help`` of the runbook flags and of every subcommand;
- ``fields.md``: every file format and report, field by field, from the
  pydantic models the readers and writers use (type, default, description);
- ``limits.md``: the input bounds of the JSON policy (``tau_ops.jsonio``).

Run after changing a flag, a model or a limit:

    .venv/bin/python scripts/gen_reference.py

``tests/test_reference_docs.py`` fails when a committed page differs from what
this script renders, so the reference cannot go out of date.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "reference"
WIDTH = "100"

# (section title, module, model name, what it is)
MODELS: list[tuple[str, str, str, str]] = [
    ("Fixture", "tau_ops.models", "Fixture", "a deployment contract fixture file"),
    ("Fixture case", "tau_ops.models", "FixtureCase", "one element of a fixture's `cases`"),
    ("Expected result", "tau_ops.models", "ExpectedResult", "a case's `expected` object"),
    ("state.json", "tau_ops.models", "DeploymentState", "`<state dir>/state.json`"),
    ("Health snapshot", "tau_ops.models", "HealthSnapshot", "`state.json` `health`"),
    ("Rollout record", "tau_ops.models", "RolloutRecord", "one element of `state.json` `rollouts`"),
    ("Event line", "tau_ops.models", "RuntimeEvent", "one line of `runtime-events.jsonl`"),
    ("Runner report", "tau_ops.runner", "CycleReport", "what one runner cycle returns"),
    ("WASM manifest", "tau_ops.wasm.manifest", "WasmManifest",
     "`wasm-artifacts/<blueprint_id>/<sha>.manifest.json`"),
    ("WASM deliverable entry", "tau_ops.wasm.manifest", "WasmDeliverable",
     "one element of `state.json` `wasm_deliverables`"),
    ("WASM package report", "tau_ops.wasm.package", "PackageReport",
     "`--deployment-wasm-package-json`"),
    ("WASM inspect report", "tau_ops.wasm.inspect", "InspectReport",
     "`--deployment-wasm-inspect-json`"),
    ("DID payload", "tau_ops.identity.payload", "DidPayload",
     "`--deployment-wasm-browser-did-output` file"),
    ("DID identity", "tau_ops.identity.payload", "DidIdentity", "a DID payload's `identity`"),
    ("DID bootstrap report", "tau_ops.identity.bootstrap", "DidReport",
     "`--deployment-wasm-browser-did-json`"),
    ("Channel-store inspect report", "tau_ops.channel_store", "ChannelInspectReport",
     "`--channel-store-inspect ... --channel-store-json`"),
    ("Transport health row", "tau_ops.status_models", "TransportHealthReport",
     "one row of `--transport-health-json` (a list) and `GET /transport/health`"),
    ("Deployment status", "tau_ops.status_models", "DeploymentStatusReport",
     "`--deployment-status-json` and `GET /deployment/status`"),
    ("Gateway status", "tau_ops.gateway.documents", "GatewayStatus", "`GET /gateway/status`"),
    ("Gate verdict", "tau_ops.ops.gate", "GateVerdict", "`tau-ops gate --json`"),
    ("Diagnosis", "tau_ops.ops.diagnosis", "Diagnosis", "`tau-ops diagnose --json`"),
    ("Pause status", "tau_ops.ops.pause", "PauseStatus", "`tau-ops runner status --json`"),
    ("Snapshot manifest", "tau_ops.ops.snapshot", "SnapshotReport",
     "`<archive>.manifest.json` and `tau-ops snapshot --json`"),
    ("Snapshot verification", "tau_ops.ops.snapshot", "VerifyReport",
     "`tau-ops snapshot --verify ... --json`"),
    ("Snapshot restore", "tau_ops.ops.restore", "RestoreReport",
     "`tau-ops snapshot restore ... --json`"),
    ("Smoke report", "tau_ops.wasm.smoke", "SmokeReport", "`tau-ops wasm-smoke --json`"),
    ("Report result", "tau_ops.analysis.report", "ReportResult", "`tau-ops report --json`"),
]


@contextlib.contextmanager
def _clean_environment() -> Any:
    """No TAU_* variable may leak into rendered defaults; a fixed terminal width."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("TAU_"):
            del os.environ[key]
    os.environ["COLUMNS"] = WIDTH
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _help(argv: list[str]) -> str:
    from tau_ops.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main([*argv, "--help"])
    return out.getvalue().rstrip() + "\n"


def render_cli() -> str:
    """``cli.md``."""
    from tau_ops.cli import FEATURES

    names = sorted(name for feature in FEATURES for name in feature.SUBCOMMANDS)
    parts = [
        "# Command-line reference\n",
        "Generated from the parsers by `scripts/gen_reference.py` (Python "
        f"{sys.version_info.major}.{sys.version_info.minor}); a test fails when it is out of "
        "date. Every option that takes a value can also come from the environment as `TAU_` "
        "plus the option name in upper snake case (see [environment](environment.md)); an "
        "option on the command line wins.\n",
        "## tau-ops (runbook flags)\n",
        "```text\n" + _help([]) + "```\n",
    ]
    for name in names:
        parts.append(f"## tau-ops {name}\n")
        parts.append("```text\n" + _help([name]) + "```\n")
        if name == "snapshot":
            parts.append("## tau-ops snapshot restore\n")
            parts.append("```text\n" + _help(["snapshot", "restore"]) + "```\n")
    return "\n".join(parts)


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "object (" + prop["$ref"].rsplit("/", 1)[-1] + ")"
    if "const" in prop:
        return f"`{prop['const']!r}`".replace("'", '"')
    if "enum" in prop:
        return " \\| ".join(f'`"{v}"`' for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_of(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return "array of " + _type_of(prop.get("items", {}))
    if kind == "object" and "additionalProperties" in prop:
        extra = prop["additionalProperties"]
        if isinstance(extra, dict):
            return "object of " + _type_of(extra)
    bounds = []
    if "minimum" in prop:
        bounds.append(f">= {prop['minimum']}")
    if "maximum" in prop:
        bounds.append(f"<= {prop['maximum']}")
    if "maxLength" in prop:
        bounds.append(f"at most {prop['maxLength']} chars")
    return str(kind) + (f" ({', '.join(bounds)})" if bounds else "")


_CONTRACT_POINTER = re.compile(r"\s*\(SPEC[^)]*\)|SPEC section \d+ ?")


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, no pointer to the internal contract file."""
    text = _CONTRACT_POINTER.sub("", text)
    return " ".join(text.split()).replace("|", "\\|")


def render_fields() -> str:
    """``fields.md``."""
    parts = [
        "# File formats and reports, field by field\n",
        "Generated from tau-ops's pydantic models by `scripts/gen_reference.py`; a test fails "
        "when it is out of date. `tau-ops schema NAME` prints the JSON Schema of a file "
        "format (`fixture`, `state`, `event`, `manifest`, `did`, `snapshot`) for an editor.\n",
    ]
    for title, module, name, what in MODELS:
        model = getattr(importlib.import_module(module), name)
        schema = model.model_json_schema(mode="serialization")
        required = set(schema.get("required", []))
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        parts.append(f"## {title}\n")
        parts.append(f"{what[0].upper()}{what[1:]}. {_cell(doc)} (`{module}.{name}`)\n")
        parts.append("| field | type | default | description |")
        parts.append("| --- | --- | --- | --- |")
        for field, prop in schema.get("properties", {}).items():
            default = "required" if field in required else (
                f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
            )
            parts.append(
                f"| `{field}` | {_cell(_type_of(prop))} | {_cell(default)} | "
                f"{_cell(prop.get('description', ''))} |"
            )
        extra = schema.get("additionalProperties")
        parts.append(
            "\nUnknown fields are " + ("kept." if extra is True else
                                       "refused." if extra is False else "ignored.") + "\n"
        )
    return "\n".join(parts)


def render_limits() -> str:
    """``limits.md``."""
    from tau_ops import jsonio

    rows = "\n".join(f"| {kind} | {size} | {size / jsonio.MIB:g} MiB |"
                     for kind, size in jsonio.LIMITS.items())
    return (
        "# Input limits\n\n"
        "Generated from `tau_ops.jsonio` by `scripts/gen_reference.py`. Every JSON document "
        "and line is read under one policy: UTF-8 without a byte-order mark, no duplicate "
        "keys, no `NaN`/`Infinity`, no lone surrogate escapes, and nesting at most "
        f"{jsonio.MAX_DEPTH} levels. Only regular files are read (a FIFO or a device is "
        "refused without reading it). Timestamps are milliseconds since the Unix epoch, at most "
        f"{jsonio.MAX_UNIX_MS} (9999-12-31T23:59:59.999Z).\n\n"
        "| input | bytes | size |\n| --- | --- | --- |\n" + rows + "\n"
    )


PAGES = {"cli.md": render_cli, "fields.md": render_fields, "limits.md": render_limits}


def render_all() -> dict[str, str]:
    """Every generated page, by file name."""
    with _clean_environment():
        return {name: render() for name, render in PAGES.items()}


def main() -> int:
    sys.path.insert(0, str(REPO))
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (REFERENCE / name).write_text(text, encoding="utf-8")
        print(f"wrote docs/reference/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
