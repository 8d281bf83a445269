"""Damaged modules are bad input (exit 2), non-compliant (1) or fine (0); never a crash.

Every truncation of every checked-in module and component is tried, and
hypothesis flips random bytes. The default example count keeps the suite
fast; ``TAU_OPS_WASM_FUZZ_EXAMPLES=5000`` runs a longer campaign on demand.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest
from builders import TESTDATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tau_ops.cli import main
from tau_ops.errors import TauOpsError
from tau_ops.wasm import check_module, inspect_manifest, package_module

WASM_DIR = TESTDATA / "deployment-wasm"
MODULES = {p.name: p.read_bytes() for p in sorted(WASM_DIR.glob("*.wasm"))}
EXAMPLES = int(os.environ.get("TAU_OPS_WASM_FUZZ_EXAMPLES", "40"))


def outcome_of_check(path: Path) -> int:
    """Exit code the API implies: 0 compliant, 1 non-compliant, 2 refused."""
    try:
        return 0 if check_module(path).compliant else 1
    except TauOpsError as exc:
        assert exc.exit_code == 2, exc
        return 2


def cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_truncation_is_refused_or_accepted_never_a_crash(name: str,
                                                               tmp_path: Path) -> None:
    data = MODULES[name]
    target = tmp_path / "cut.wasm"
    outcomes = set()
    for length in range(len(data)):
        target.write_bytes(data[:length])
        outcomes.add(outcome_of_check(target))
    assert outcomes <= {0, 1, 2}
    assert 2 in outcomes


def test_cut_core_module_through_the_cli_is_bad_input(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAU_OPS_DEBUG", "1")  # a bug would raise here instead of exit 1
    data = MODULES["wasi-p2-core.wasm"]
    target = tmp_path / "cut.wasm"
    for length in (11, 24, 60, 119):
        target.write_bytes(data[:length])
        code, err = cli("--deployment-state-dir", str(tmp_path / "state"),
                        "--deployment-wasm-package-module", str(target))
        assert (code, err.startswith(f"error: {target} does not validate: ")) == (2, True), err
    (tmp_path / "short.wasm").write_bytes(bytes.fromhex("0061736d01000000027f01"))
    code, err = cli("--deployment-state-dir", str(tmp_path / "state"),
                    "--deployment-wasm-package-module", str(tmp_path / "short.wasm"))
    assert (code, err) == (2, f"error: {tmp_path / 'short.wasm'} does not validate: "
                              "unexpected end-of-file (at offset 0xa)\n")
    assert not (tmp_path / "state").exists()


flips = st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
                 min_size=1, max_size=4)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 40,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(MODULES)), changes=flips)
def test_random_byte_flips_package_and_inspect_without_crashing(
        name: str, changes: list[tuple[int, int]]) -> None:
    data = bytearray(MODULES[name])
    for position, mask in changes:
        data[position % len(data)] ^= mask
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        module = root / "flipped.wasm"
        module.write_bytes(bytes(data))
        try:
            report = package_module(module, state_dir=root / "state")
        except TauOpsError as exc:
            assert exc.exit_code in (1, 2), exc
            return
        inspected = inspect_manifest(report.manifest_path)  # what was packaged re-verifies
        assert (inspected.compliant, inspected.reason_codes) == (
            True, report.compliance_reason_codes)


def _wasmtime_verdict(data: bytes) -> tuple[str, ...] | None:
    """What wasmtime itself says of the original bytes: host imports, or None if refused."""
    import wasmtime
    import wasmtime.component as wc

    from tau_ops.wasm.parse import _HOST_SUPPLIED, component_engine

    try:
        component = wc.Component(component_engine(), data)
    except wasmtime.WasmtimeError:
        return None
    imports = component.type.imports(component_engine())
    return tuple(sorted({n for n, item in imports.items() if isinstance(item.ty, _HOST_SUPPLIED)}))


def _tau_ops_verdict(data: bytes) -> tuple[str, ...] | None:
    from tau_ops.errors import WasmModuleError
    from tau_ops.wasm.parse import parse_module

    try:
        return parse_module(data).import_modules
    except WasmModuleError:
        return None


COMPONENTS = {n: d for n, d in MODULES.items() if d[4:8] == b"\x0d\x00\x01\x00"}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 40,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(COMPONENTS)), changes=flips, cut=st.integers(min_value=0))
def test_component_verdict_is_wasmtimes_on_the_original_bytes(
        name: str, changes: list[tuple[int, int]], cut: int) -> None:
    # tau-ops type-checks a skeleton (bodies replaced) for speed; it must agree with
    # wasmtime on the original bytes, whatever they are
    data = bytearray(COMPONENTS[name])
    for position, mask in changes:
        data[position % len(data)] ^= mask
    damaged = bytes(data[: max(8, len(data) - cut % 16)])
    assert _tau_ops_verdict(damaged) == _wasmtime_verdict(damaged)
