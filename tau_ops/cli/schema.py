"""``tau-ops schema NAME``: print the JSON Schema of a file format, generated from its model.

An operator points an editor at the output (``"$schema"`` or the editor's JSON
schema mapping) to validate a fixture or a manifest while writing it. The
schemas come from the same pydantic models the readers use, so they cannot
drift from what tau-ops accepts.
"""

from __future__ import annotations

import argparse
import importlib
import json

from pydantic import BaseModel

from tau_ops.cli._base import Subcommand, parse, sub_parser

# name -> (module, model, what it describes); imported only when asked for.
SCHEMAS: dict[str, tuple[str, str, str]] = {
    "fixture": ("tau_ops.models", "Fixture", "deployment contract fixture"),
    "state": ("tau_ops.models", "DeploymentState", "state.json"),
    "event": ("tau_ops.models", "RuntimeEvent", "one runtime-events.jsonl line"),
    "manifest": ("tau_ops.wasm.manifest", "WasmManifest",
                 "WASM deliverable manifest"),
    "did": ("tau_ops.identity.payload", "DidPayload", "persisted browser DID payload"),
    "snapshot": ("tau_ops.ops.snapshot", "SnapshotReport",
                 "snapshot manifest (<archive>.manifest.json)"),
}


def schema_of(name: str) -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of one format.

    Parameters
    ----------
    name : str
        One of the keys of :data:`SCHEMAS` (``fixture``, ``state``, ``event``,
        ``manifest``, ``did``, ``snapshot``).

    Returns
    -------
    dict
        The schema, with ``$schema`` and ``$id``-free ``title``/``description``.

    Raises
    ------
    KeyError
        ``name`` is not a known format.

    Examples
    --------
    >>> schema_of("fixture")["properties"]["schema_version"]["const"]
    1
    """
    module, attr, description = SCHEMAS[name]
    model = getattr(importlib.import_module(module), attr)
    assert issubclass(model, BaseModel)
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **model.model_json_schema(),
    }
    schema.setdefault("description", description)
    return schema


def add_flags(parser: argparse.ArgumentParser) -> None:
    """No runbook flags: ``schema`` is a subcommand."""


def dispatch(args: argparse.Namespace) -> int | None:
    """Runbook flags never reach this module."""
    return None


def _schema(argv: list[str]) -> int:
    """``tau-ops schema``: print the JSON Schema of a file format (fixture, state, ...)."""
    parser = sub_parser(
        "schema", "Print the JSON Schema of a file format (generated from tau-ops's models)."
    )
    parser.add_argument(
        "name",
        choices=sorted(SCHEMAS),
        help="the format: " + "; ".join(f"{k}: {v[2]}" for k, v in sorted(SCHEMAS.items())),
    )
    args = parse(parser, argv)
    print(json.dumps(schema_of(args.name), indent=2, ensure_ascii=False))
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {"schema": _schema}
