"""The browser DID bootstrap keeps the seed's payload layout, report fields and text line.

Facts from the seed (njfio/rsBot): ``kamn-sdk`` ``BrowserDidInitReport`` and
``write_browser_did_init_report`` (pretty JSON plus a newline), ``kamn-core``
``BrowserDidIdentity``, and ``tau-deployment`` ``deployment_wasm_identity.rs``
(``DeploymentWasmBrowserDidReport`` and its one-line text rendering).
``testdata/did/seed-browser-did.json`` is what the seed writes for the runbook inputs.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from builders import TESTDATA, run_cli

SEED_PAYLOAD = TESTDATA / "did" / "seed-browser-did.json"
SEED_PAYLOAD_FIELDS = ["schema_version", "runtime", "interoperability_profile", "identity"]
SEED_IDENTITY_FIELDS = ["schema_version", "method", "network", "subject", "did", "key_id",
                        "fingerprint", "proof_material"]
SEED_REPORT_FIELDS = ["runtime", "interoperability_profile", "method", "network", "subject",
                      "did", "key_id", "fingerprint", "output_path", "persisted"]
SEED_TEXT_LINE = re.compile(
    r"deployment wasm browser did: runtime=(?P<runtime>\S+) profile=(?P<profile>\S+) "
    r"method=(?P<method>\S+) did=(?P<did>\S+) key_id=(?P<key_id>\S+) "
    r"fingerprint=(?P<fingerprint>[0-9a-f]{64}) output_path=(?P<output_path>\S+) "
    r"persisted=(?P<persisted>true|false)")
RUNBOOK = ["--deployment-wasm-browser-did-init",
           "--deployment-wasm-browser-did-entropy", "local-dev-seed",
           "--deployment-wasm-browser-did-output", "out/browser-did.json"]


def _shape(value: Any) -> Any:
    """The JSON type of every field the seed writes, nested."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


def _seed_part(value: dict[str, Any]) -> dict[str, Any]:
    identity = {key: value["identity"][key] for key in SEED_IDENTITY_FIELDS}
    return {**{key: value[key] for key in SEED_PAYLOAD_FIELDS}, "identity": identity}


def _proof_material_of(fingerprint: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(fingerprint)).decode().rstrip("=")


def test_the_payload_has_the_seeds_layout_field_for_field(tmp_path: Path) -> None:
    result = run_cli(*RUNBOOK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    raw = (tmp_path / "out" / "browser-did.json").read_text()
    ours = json.loads(raw)
    seed = json.loads(SEED_PAYLOAD.read_text())
    assert raw.endswith("}\n")
    assert list(ours)[:4] == SEED_PAYLOAD_FIELDS
    assert list(ours["identity"])[:8] == SEED_IDENTITY_FIELDS
    assert _shape(_seed_part(ours)) == _shape(seed)
    # Same values where the seed's rules apply; runtime, profile and the key are tau-ops's own.
    for value in (ours, seed):
        identity = value["identity"]
        assert (value["schema_version"], identity["schema_version"]) == (1, 1)
        assert (identity["method"], identity["network"], identity["subject"]) == (
            "key", "tau-devnet", "browser-agent")
        assert identity["proof_material"] == _proof_material_of(identity["fingerprint"])
    assert ours["identity"]["key_id"].startswith(ours["identity"]["did"] + "#")
    assert ours["did_document"]["id"] == ours["identity"]["did"]


def test_the_json_report_has_the_seeds_fields_in_order(tmp_path: Path) -> None:
    result = run_cli(*RUNBOOK, "--deployment-wasm-browser-did-json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert [key for key in report if key in SEED_REPORT_FIELDS] == SEED_REPORT_FIELDS
    assert (report["output_path"], report["persisted"]) == ("out/browser-did.json", True)


def test_the_text_output_starts_with_the_seeds_line(tmp_path: Path) -> None:
    result = run_cli(*RUNBOOK, cwd=tmp_path)
    first = result.stdout.splitlines()[0]
    match = SEED_TEXT_LINE.fullmatch(first)
    assert match is not None, first
    payload = json.loads((tmp_path / "out" / "browser-did.json").read_text())
    identity = payload["identity"]
    assert match.groupdict() == {
        "runtime": payload["runtime"], "profile": payload["interoperability_profile"],
        "method": "key", "did": identity["did"], "key_id": identity["key_id"],
        "fingerprint": identity["fingerprint"], "output_path": "out/browser-did.json",
        "persisted": "true"}
