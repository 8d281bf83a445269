"""Runbook flags of WASM packaging and inspection, and the ``wasm-smoke`` subcommand."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tau_ops.cli._base import (
    Subcommand,
    int_range,
    json_flag,
    kv,
    parse,
    print_json,
    state_dir_flag,
    sub_parser,
)
from tau_ops.errors import NonCompliantModule

if TYPE_CHECKING:  # the wasm package pulls in wasmtime: import it only when a flag needs it
    from tau_ops.wasm.inspect import InspectReport
    from tau_ops.wasm.package import PackageReport
    from tau_ops.wasm.smoke import SmokeReport

# Defaults repeated here (and checked by a test) so --help needs no wasmtime import.
DEFAULT_BLUEPRINT_ID = "edge-wasm"
DEFAULT_RUNTIME_PROFILE = "wasm_wasi"
DEFAULT_FUEL = 50_000_000
DEFAULT_MEMORY_MIB = 64
DEFAULT_PROBE_TIMEOUT_S = 60
RUNTIME_PROFILES = ("channel_automation_wasi", "wasm_wasi")
FUEL_RANGE = (1, 10_000_000_000)
MEMORY_MIB_RANGE = (1, 4096)  # wasm32 addresses at most 4 GiB
PROBE_TIMEOUT_S_RANGE = (1, 600)


def runtime_profile_arg(text: str) -> str:
    """argparse type: ``wasm-wasi``/``wasm_wasi``/``channel-automation-wasi``/... -> canonical."""
    name = text.strip().lower().replace("-", "_")
    if name not in RUNTIME_PROFILES:
        accepted = ", ".join(f"{p.replace('_', '-')}/{p}" for p in RUNTIME_PROFILES)
        raise argparse.ArgumentTypeError(f"unknown runtime profile {text!r} (accepted: {accepted})")
    return name


def add_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("wasm deliverables")
    g.add_argument("--deployment-wasm-package-module", type=Path, metavar="MODULE",
                   help="package this .wasm module, core module or component (default none)")
    g.add_argument("--deployment-wasm-package-blueprint-id", default=DEFAULT_BLUEPRINT_ID,
                   metavar="ID", help=f"blueprint id (default {DEFAULT_BLUEPRINT_ID})")
    g.add_argument("--deployment-wasm-package-runtime-profile", type=runtime_profile_arg,
                   default=DEFAULT_RUNTIME_PROFILE, metavar="PROFILE",
                   help="wasm-wasi or channel-automation-wasi (default %(default)s)")
    g.add_argument("--deployment-wasm-package-output-dir", type=Path, metavar="DIR",
                   help="artifact root (default <state dir>/wasm-artifacts)")
    g.add_argument("--deployment-wasm-package-json", action="store_true",
                   help="print the package report as one JSON document (default false: text)")
    g.add_argument("--deployment-wasm-inspect-manifest", type=Path, metavar="MANIFEST",
                   help="re-verify a packaged manifest and its artifact (default none)")
    g.add_argument("--deployment-wasm-inspect-json", action="store_true",
                   help="print the inspect report as one JSON document (default false: text)")


def dispatch(args: argparse.Namespace) -> int | None:
    if args.deployment_wasm_package_module is not None:
        return _package(args)
    if args.deployment_wasm_inspect_manifest is not None:
        return _inspect(args.deployment_wasm_inspect_manifest, args.deployment_wasm_inspect_json)
    return None


def _package(args: argparse.Namespace) -> int:
    from tau_ops.wasm.package import NonCompliantPackage, package_module

    try:
        report = package_module(
            args.deployment_wasm_package_module,
            state_dir=args.deployment_state_dir,
            blueprint_id=args.deployment_wasm_package_blueprint_id,
            runtime_profile=args.deployment_wasm_package_runtime_profile,
            output_dir=args.deployment_wasm_package_output_dir,
        )
    except NonCompliantPackage as exc:
        if args.deployment_wasm_package_json:
            print_json({**exc.check.model_dump(mode="json"), "error": exc.message})
        raise
    if args.deployment_wasm_package_json:
        print_json(report)
    else:
        print(render_package(report))
    return 0


def _inspect(path: Path, as_json: bool) -> int:
    from tau_ops.wasm.inspect import inspect_manifest

    report = inspect_manifest(path)
    if as_json:
        print_json(report)
    else:
        print(render_inspect(report))
    if not report.compliant:
        raise NonCompliantModule(
            f"manifest {path} does not verify: reason_codes={','.join(report.reason_codes)}",
            reason_codes=report.reason_codes,
        )
    return 0


def _codes(values: list[str]) -> str:
    """The seed's list rendering: comma-joined, ``none`` when empty."""
    return ",".join(values) or "none"


def render_package(report: PackageReport) -> str:
    """Text form of a package report: the seed's line, then tau-ops' own details.

    Examples
    --------
    The first line is ``deployment wasm package: blueprint_id=... runtime_profile=...
    artifact_path=... artifact_sha256=... artifact_size_bytes=... manifest_path=...
    state_path=... state_updated=true constraint_profile_id=...
    compliance_reason_codes=... constraints=...`` (the seed's format).
    """
    seed = (
        f"deployment wasm package: blueprint_id={report.blueprint_id} "
        f"runtime_profile={report.runtime_profile} artifact_path={report.artifact_path} "
        f"artifact_sha256={report.artifact_sha256} "
        f"artifact_size_bytes={report.artifact_size_bytes} "
        f"manifest_path={report.manifest_path} state_path={report.state_path} "
        f"state_updated={kv(report.state_updated)} "
        f"constraint_profile_id={report.constraint_profile_id} "
        f"compliance_reason_codes={_codes(report.compliance_reason_codes)} "
        f"constraints={','.join(report.capability_constraints)}"
    )
    extra = (
        f"wasm package: module_kind={report.module_kind} "
        f"observed_import_modules={_codes(report.observed_import_modules)} "
        f"source_module_path={report.source_module_path}"
    )
    return f"{seed}\n{extra}"


def render_inspect(report: InspectReport) -> str:
    """Text form of an inspect report: the seed's line, tau-ops' details, one line per problem.

    Examples
    --------
    The first line is ``deployment wasm inspect: manifest_path=... blueprint_id=...
    runtime_profile=... constraint_profile_id=... constraint_target_role=...
    required_runtime_profile=... required_abi=... compliant=... reason_codes=...
    observed_import_modules=... required_feature_gates=... max_artifact_size_bytes=...``.
    """
    lines = [
        f"deployment wasm inspect: manifest_path={report.manifest_path} "
        f"blueprint_id={report.blueprint_id} runtime_profile={report.runtime_profile} "
        f"constraint_profile_id={report.constraint_profile_id} "
        f"constraint_target_role={report.constraint_target_role} "
        f"required_runtime_profile={report.required_runtime_profile} "
        f"required_abi={report.required_abi} compliant={kv(report.compliant)} "
        f"reason_codes={_codes(report.reason_codes)} "
        f"observed_import_modules={_codes(report.observed_import_modules)} "
        f"required_feature_gates={_codes(report.required_feature_gates)} "
        f"max_artifact_size_bytes={report.max_artifact_size_bytes}",
        f"wasm inspect: module_kind={report.module_kind or 'unknown'} "
        f"artifact_path={report.artifact_path} "
        f"artifact_size_bytes={report.artifact_size_bytes} "
        f"capability_constraints={_codes(report.capability_constraints)}",
    ]
    lines += [f"problem: {detail}" for detail in report.details]
    return "\n".join(lines)


def render_smoke(report: SmokeReport) -> str:
    """One line per module, one per probe, then the summary line."""
    lines = []
    for m in report.modules:
        run = m.run
        probes = " ".join(f"{k}={v}" for k, v in sorted(m.probes.items()))
        lines.append(
            f"wasm smoke module: path={m.path} origin={m.origin} kind={m.kind or 'unknown'} "
            f"expect={m.expect} run={run.label} entry={run.entry_point or 'none'} "
            f"fuel_used={run.fuel_used} compile_ms={run.compile_ms:.1f} "
            f"wall_ms={run.wall_ms:.1f} stubbed_imports={len(run.stubbed_imports)} "
            f"{probes + ' ' if probes else ''}verdict={m.verdict}"
            + (f" detail={m.detail}" if m.detail else "")
        )
    for p in report.probes:
        lines.append(f"wasm smoke probe: {p.name}={p.status} ({p.detail})")
    probe_summary = " ".join(f"{p.name}={p.status}" for p in report.probes)
    lines.append(
        f"wasm smoke summary: status={report.status} modules={len(report.modules)} "
        f"passed={report.passed} failed={report.failed} stopped={report.stopped} "
        f"{probe_summary + ' ' if probe_summary else ''}fuel_limit={report.fuel_limit} "
        f"memory_limit_bytes={report.memory_limit_bytes}"
    )
    return "\n".join(lines)


def _smoke(argv: list[str]) -> int:
    """``tau-ops wasm-smoke``: run WASM modules in a sandbox, then probe edge runtimes."""
    parser = sub_parser("wasm-smoke", "Compile and run WASM modules in a sandbox, then probe "
                        "edge runtimes. Without --module, smoke every packaged deliverable.")
    state_dir_flag(parser)
    parser.add_argument("--module", type=Path, action="append", default=[], metavar="WASM",
                        help="smoke this module (repeatable; default none: every packaged "
                        "deliverable)")
    parser.add_argument("--expect-stopped", type=Path, action="append", default=[],
                        metavar="WASM", help="a runaway module the sandbox must stop "
                        "(repeatable; default none)")
    parser.add_argument("--deliverables", action="store_true",
                        help="also smoke every packaged deliverable when modules are given "
                        "(default false)")
    parser.add_argument("--fuel", type=int_range(*FUEL_RANGE), default=DEFAULT_FUEL,
                        metavar="N", help="fuel budget per module in wasmtime fuel units, "
                        "{}..{} (default %(default)s)".format(*FUEL_RANGE))
    parser.add_argument("--memory-mib", type=int_range(*MEMORY_MIB_RANGE, "MiB"),
                        default=DEFAULT_MEMORY_MIB, metavar="MIB",
                        help="linear memory cap per module in MiB, {}..{} "
                        "(default %(default)s)".format(*MEMORY_MIB_RANGE))
    parser.add_argument("--preopen-dir", type=Path, action="append", default=[], metavar="DIR",
                        help="grant the module read-only access to DIR (repeatable; "
                        "default none)")
    parser.add_argument("--no-edge-probes", action="store_true",
                        help="skip the node/deno/wrangler probes (default false)")
    parser.add_argument("--probe-timeout-s", type=int_range(*PROBE_TIMEOUT_S_RANGE, "s"),
                        default=DEFAULT_PROBE_TIMEOUT_S, metavar="S",
                        help="time limit of each edge probe in seconds, {}..{} "
                        "(default %(default)s)".format(*PROBE_TIMEOUT_S_RANGE))
    json_flag(parser, "the smoke report")
    args = parse(parser, argv)
    from tau_ops.wasm.smoke import SandboxPolicy, smoke_run

    report = smoke_run(
        args.module,
        state_dir=args.deployment_state_dir,
        expect_stopped=args.expect_stopped,
        include_deliverables=True if args.deliverables else None,
        policy=SandboxPolicy(fuel=args.fuel, memory_bytes=args.memory_mib * 1024 * 1024,
                             preopened_dirs=tuple(args.preopen_dir)),
        edge_probes=not args.no_edge_probes,
        probe_timeout_s=float(args.probe_timeout_s),
    )
    if args.json:
        print_json(report)
    else:
        print(render_smoke(report))
    return 0 if report.status == "pass" else 1


SUBCOMMANDS: dict[str, Subcommand] = {"wasm-smoke": _smoke}
