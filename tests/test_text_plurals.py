"""Issue 14 item 5: text for people says "1 case", "1 byte", never "1 cases"."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from builders import success_case, write_fixture

from tau_ops.clock import FakeClock
from tau_ops.errors import FixtureError, WasmModuleError
from tau_ops.fleet import FleetMember, FleetPolicy, fleet_verdict
from tau_ops.jsonio import read_bounded
from tau_ops.wasm.parse import parse_module


def _row(gate: str) -> FleetMember:
    return FleetMember(name="m", kind="state_dir", labels={}, readable=True,
                       rollout_gate=gate,  # type: ignore[arg-type]
                       rollout_gate_reasons=[] if gate == "pass" else ["health_degraded"])


def test_fleet_detail_agrees_in_number_with_one_passing_member() -> None:
    rows = [_row("pass"), _row("hold")]
    details = fleet_verdict(rows, FleetPolicy(min_pass_fraction=0.9))[2]
    assert details == ["1 of 2 members passes; the policy needs 2 (min_pass_fraction 0.9)"]
    details = fleet_verdict([_row("hold")], FleetPolicy(min_pass_fraction=0.5))[2]
    assert details == ["0 of 1 member pass; the policy needs 1 (min_pass_fraction 0.5)"]


def test_one_byte_module_is_one_byte_short_of_a_header() -> None:
    with pytest.raises(WasmModuleError) as caught:
        parse_module(b"\0", source="m.wasm")
    assert str(caught.value) == "m.wasm is truncated (1 byte, a header needs 8)"


def test_one_byte_file_over_a_zero_byte_limit(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b"1")
    with pytest.raises(OSError) as caught:
        read_bounded(path, max_bytes=0, what="fixture")
    assert str(caught.value) == f"fixture {path} is 1 byte, over the 0-byte limit"


def test_console_names_a_one_case_fixture_in_the_singular(tmp_path: Path) -> None:
    from tau_ops.widgets import RolloutConsole

    fixture = write_fixture(tmp_path, success_case("only"), name="single")
    console = RolloutConsole(tmp_path / "state", clock=FakeClock())
    console.fixture_upload.value = ({
        "name": "single.json", "type": "application/json", "size": fixture.stat().st_size,
        "content": memoryview(fixture.read_bytes()),
        "last_modified": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    },)
    assert console.fixture_info.value == "fixture <b>single</b> (1 case, uploaded or passed in)"


def test_json_syntax_error_names_its_place_once(tmp_path: Path) -> None:
    from tau_ops.contract import load_fixture

    path = tmp_path / "bad.json"
    path.write_text('{\n  "schema_version": 1,\n  "cases": ,\n}\n')
    with pytest.raises(FixtureError) as caught:
        load_fixture(path)
    assert str(caught.value) == (
        f"fixture {path}: invalid JSON: Expecting value at line 3 column 12")
    assert json.dumps(str(caught.value)).count(" at ") == 1
