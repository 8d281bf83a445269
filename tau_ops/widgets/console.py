"""The rollout console: run cycles, watch health and the gate, package and inspect WASM modules.

Every button calls one library function (``run_cycle``, ``deployment_status``,
``package_module``, ``inspect_manifest``) and shows its report; nothing is
decided here. Building the console only reads the state dir; actions write
only to it.

Progress: the runner has no progress callback, so a cycle is one step. With
"drain backlog" ticked the console feeds the fixture to the runner in
queue-sized chunks (in the runner's own queue order), one real cycle per
chunk, and advances the bar per chunk; each chunk records its own event line
and health, exactly as successive CLI runs over those chunks would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as w

from tau_ops.clock import Clock, Sleeper, real_sleep, wall_clock_ms
from tau_ops.contract import load_fixture, parse_fixture
from tau_ops.errors import NonCompliantModule, StateError, TauOpsError, UsageError
from tau_ops.health import GateDecision, gate_decision
from tau_ops.models import Fixture
from tau_ops.runner import CycleReport, RunnerConfig, queue_order, run_cycle
from tau_ops.status import DeploymentStatusReport, deployment_status, read_pause
from tau_ops.timefmt import plural
from tau_ops.wasm import PROFILES, InspectReport, PackageReport, inspect_manifest, package_module
from tau_ops.widgets._display import (
    codes_html,
    esc,
    kv_table,
    message_html,
    row,
    show_gate,
    show_posture,
)

DEFAULTS = RunnerConfig()
WIDE = w.Layout(width="36em")
LABEL = {"description_width": "8em"}


def fixture_chunks(fixture: Fixture, size: int) -> list[Fixture]:
    """``fixture`` cut into runner-queue-sized fixtures, in the runner's queue order.

    Parameters
    ----------
    fixture : Fixture
        A loaded fixture.
    size : int
        Cases per chunk (the runner's ``queue_limit``), at least 1.

    Returns
    -------
    list of Fixture
        ``[fixture]`` when it fits in one chunk, else fixtures named
        ``name [i/n]`` holding consecutive queue-order slices.

    Examples
    --------
    >>> from tau_ops import load_fixture
    >>> from tau_ops._data import data_path
    >>> chunks = fixture_chunks(load_fixture(data_path("rollout-pass.json")), 2)
    >>> [(c.name, len(c.cases)) for c in chunks]
    [('rollout-pass [1/2]', 2), ('rollout-pass [2/2]', 1)]
    """
    ordered = queue_order(fixture.cases)
    count = max(1, -(-len(ordered) // size))
    if count == 1:
        return [fixture]
    return [
        fixture.model_copy(update={
            "name": f"{fixture.name} [{index + 1}/{count}]",
            "cases": ordered[index * size:(index + 1) * size],
        })
        for index in range(count)
    ]


def _text(label: str, value: str, placeholder: str) -> w.Text:
    return w.Text(value=value, description=label, placeholder=placeholder, layout=WIDE,
                  style=LABEL)


def _int_box(label: str, value: int, low: int, high: int) -> w.BoundedIntText:
    return w.BoundedIntText(value=value, min=low, max=high, description=label, style=LABEL)


class RolloutConsole:
    """Run deployment cycles against ``state_dir`` and watch the rollout gate.

    ``fixture`` is a fixture path or an already loaded :class:`Fixture`.
    Widgets are public attributes so scripts and tests can drive them
    (set ``.value``, call ``.click()``); display the console as a cell's result.

    Parameters
    ----------
    state_dir : Path or str
        The deployment state dir the cycles write to.
    fixture : Path, str or Fixture, optional
        The fixture to run (a path is read when Run is pressed); none by default.
    wasm_module : Path or str, optional
        A WASM module to prefill the package panel with.
    clock : callable, optional
        ``() -> int``, Unix time in milliseconds (default: the wall clock).
    sleeper : callable, optional
        ``(seconds) -> None`` for retry backoff (default: ``time.sleep``).

    Examples
    --------
    >>> import tempfile
    >>> console = RolloutConsole(tempfile.mkdtemp())
    >>> console.rollout_gate, console.rollout_gate_reasons
    ('hold', ['no_cycle'])
    """

    def __init__(
        self,
        state_dir: Path | str,
        fixture: Path | str | Fixture | None = None,
        *,
        wasm_module: Path | str | None = None,
        clock: Clock = wall_clock_ms,
        sleeper: Sleeper = real_sleep,
    ) -> None:
        self.state_dir = Path(state_dir)
        self._clock = clock
        self._sleeper = sleeper
        self._fixture: Fixture | None = fixture if isinstance(fixture, Fixture) else None
        self.reports: list[CycleReport] = []
        self.status: DeploymentStatusReport | None = None
        self.rollout_gate = "hold"
        self.rollout_gate_reasons: list[str] = []
        self.package_report: PackageReport | None = None
        self.inspect_report: InspectReport | None = None

        path = "" if fixture is None or isinstance(fixture, Fixture) else str(fixture)
        self.fixture_path = _text("Fixture", path, "path/to/fixture.json")
        self.fixture_upload = w.FileUpload(accept=".json", multiple=False,
                                           description="Upload")
        self.fixture_info = w.HTML()
        self.queue_limit = _int_box("Queue limit", DEFAULTS.queue_limit, 1, 10_000_000)
        self.processed_case_cap = _int_box("Processed cap", DEFAULTS.processed_case_cap, 0,
                                           100_000_000)
        self.retry_max_attempts = _int_box("Retry attempts", DEFAULTS.retry_max_attempts, 1, 1000)
        self.retry_base_delay_ms = _int_box("Base delay ms", DEFAULTS.retry_base_delay_ms, 0,
                                            60_000)
        self.drain = w.Checkbox(value=False, description="Drain backlog in queue-sized cycles",
                                indent=False)
        self.run_button = w.Button(description="Run cycle", button_style="primary",
                                   icon="play")
        self.run_button.add_class("tau-run-cycle")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.progress = w.IntProgress(style=LABEL, value=0, min=0, max=1, description="Progress")
        self.message = w.HTML()

        self.gate_label = w.HTML()
        self.gate_label.add_class("tau-gate")
        self.gate_reasons_label = w.HTML()
        self.health_label = w.HTML()
        self.health_label.add_class("tau-health")
        self.reason_label = w.HTML()
        self.recommendation_label = w.HTML()
        self.failure_streak_label = w.HTML()
        self.queue_depth_label = w.HTML()
        self.reason_codes_label = w.HTML()
        self.cycles_label = w.HTML()

        self.wasm_module = _text("Module", str(wasm_module or ""), "path/to/module.wasm")
        self.blueprint_id = w.Text(style=LABEL, value="edge-wasm", description="Blueprint")
        self.runtime_profile = w.Dropdown(style=LABEL, options=sorted(PROFILES), value="wasm_wasi",
                                          description="Profile")
        self.package_button = w.Button(description="Package module", icon="archive")
        self.manifest_path = _text("Manifest", "", "path/to/x.manifest.json")
        self.inspect_button = w.Button(description="Inspect manifest", icon="search")
        self.wasm_result = w.HTML()

        self.fixture_path.observe(self._on_path, names="value")
        self.fixture_upload.observe(self._on_upload, names="value")
        self.run_button.on_click(lambda _: self.run())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.package_button.on_click(lambda _: self.package())
        self.inspect_button.on_click(lambda _: self.inspect())

        self.widget = w.VBox([
            w.HTML(f"<b>Rollout console</b> &mdash; state dir <code>{esc(self.state_dir)}</code>"),
            w.HBox([self.fixture_path, self.fixture_upload]),
            self.fixture_info,
            w.HBox([self.queue_limit, self.processed_case_cap]),
            w.HBox([self.retry_max_attempts, self.retry_base_delay_ms]),
            self.drain,
            w.HBox([self.run_button, self.refresh_button, self.progress]),
            self.message,
            w.VBox([
                row("Rollout gate", self.gate_label),
                row("Gate reasons", self.gate_reasons_label),
                row("Health", self.health_label),
                row("Reason", self.reason_label),
                row("Action", self.recommendation_label),
                row("Failure streak", self.failure_streak_label),
                row("Queue depth", self.queue_depth_label),
                row("Reason codes", self.reason_codes_label),
                row("This run", self.cycles_label),
            ], layout=w.Layout(border="1px solid #ccc", padding="6px", margin="6px 0")),
            w.HTML("<b>WASM deliverables</b>"),
            w.HBox([self.wasm_module, self.package_button]),
            w.HBox([self.blueprint_id, self.runtime_profile]),
            w.HBox([self.manifest_path, self.inspect_button]),
            self.wasm_result,
        ])
        self.widget.add_class("tau-rollout-console")
        self._describe_fixture()
        self.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # fixture selection

    def _on_path(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._fixture = None
        self._describe_fixture()

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        try:
            self._fixture = parse_fixture(bytes(item["content"]), source=str(item["name"]))
        except TauOpsError as exc:
            self._fail(exc)
            return
        self.fixture_path.value = ""  # the upload replaces the path; an empty path keeps it
        self._describe_fixture()

    def _describe_fixture(self) -> None:
        if self._fixture is not None:
            self.fixture_info.value = (f"fixture <b>{esc(self._fixture.name)}</b> "
                                       f"({plural(len(self._fixture.cases), 'case')}, "
                                       "uploaded or passed in)")
        elif self.fixture_path.value.strip():
            self.fixture_info.value = ""
        else:
            self.fixture_info.value = "<em>choose a fixture file or upload one</em>"

    def _selected_fixture(self) -> Fixture:
        if self._fixture is not None:
            return self._fixture
        path = self.fixture_path.value.strip()
        if not path:
            raise UsageError("no fixture chosen: enter a path or upload a fixture file")
        return load_fixture(path)

    # actions

    def config(self) -> RunnerConfig:
        """The runner options as set in the console."""
        return RunnerConfig(
            state_dir=self.state_dir,
            queue_limit=self.queue_limit.value,
            processed_case_cap=self.processed_case_cap.value,
            retry_max_attempts=self.retry_max_attempts.value,
            retry_base_delay_ms=self.retry_base_delay_ms.value,
        )

    def run(self) -> list[CycleReport]:
        """Run the chosen fixture (one cycle, or one per queue-sized chunk when draining)."""
        self.run_button.disabled = True
        reports: list[CycleReport] = []
        try:
            config = self.config()
            fixture = self._selected_fixture()
            chunks = fixture_chunks(fixture, config.queue_limit) if self.drain.value else [fixture]
            self.progress.max, self.progress.value = len(chunks), 0
            self.progress.bar_style = "info"
            for chunk in chunks:
                reports.append(run_cycle(chunk, config, clock=self._clock, sleeper=self._sleeper))
                self.progress.value += 1
            self.progress.bar_style = "success"
            self.message.value = message_html(
                f"ran {len(reports)} cycle(s) of {fixture.name}: "
                f"health {reports[-1].health_state}", ok=True)
        except TauOpsError as exc:
            self.progress.bar_style = "danger"
            self._fail(exc)
        finally:
            self.run_button.disabled = False
            self.reports = reports
            self.cycles_label.value = "".join(
                f"<div>cycle {i}: {esc(r.health_state)}, applied={r.applied_cases} "
                f"failed={r.failed_cases} malformed={r.malformed_cases} "
                f"backlog={r.backlog_cases}</div>"
                for i, r in enumerate(reports, start=1)
            ) or "<em>no cycle run here yet</em>"
            self.refresh(keep_message=True)
        return reports

    def refresh(self, *, keep_message: bool = False) -> DeploymentStatusReport | None:
        """Re-read the state dir and show its gate, reasons, health and last reason codes.

        A state that cannot be read (corrupt, impossible values) shows as a
        hold with ``invalid_state``, decided by the same gate function.
        """
        now = self._clock()
        try:
            status = deployment_status(self.state_dir, now_ms=now)
        except StateError as exc:
            self.status = None
            self._show(gate_decision(None, now_ms=now, pause=read_pause(self.state_dir),
                                     invalid=str(exc)), codes=[])
            self._fail(exc)
            return None
        except TauOpsError as exc:
            self._fail(exc)
            return None
        self.status = status
        self._show(status, codes=status.last_reason_codes)
        if not self.cycles_label.value:
            self.cycles_label.value = "<em>no cycle run here yet</em>"
        if not keep_message:
            self.message.value = ""
        return status

    def _show(self, verdict: DeploymentStatusReport | GateDecision, *, codes: list[str]) -> None:
        if isinstance(verdict, GateDecision):
            reason, streak, depth = verdict.reason, "", ""
        else:
            reason = verdict.rollout_gate_reason
            streak, depth = str(verdict.failure_streak), str(verdict.queue_depth)
        self.rollout_gate = verdict.rollout_gate
        self.rollout_gate_reasons = list(verdict.rollout_gate_reasons)
        show_gate(self.gate_label, verdict.rollout_gate)
        self.gate_reasons_label.value = codes_html(self.rollout_gate_reasons)
        show_posture(self.health_label, verdict.health_state, self.rollout_gate_reasons)
        self.reason_label.value = esc(reason)
        self.recommendation_label.value = esc(verdict.recommendation)
        self.failure_streak_label.value = streak
        self.queue_depth_label.value = depth
        self.reason_codes_label.value = codes_html(codes)

    def package(self) -> PackageReport | None:
        """Package the module into the state dir's artifacts and fill in its manifest path."""
        try:
            module = self.wasm_module.value.strip()
            if not module:
                raise UsageError("no module chosen: enter the path of a .wasm file")
            report = package_module(module, state_dir=self.state_dir,
                                    blueprint_id=self.blueprint_id.value,
                                    runtime_profile=self.runtime_profile.value,
                                    clock=self._clock)
        except NonCompliantModule as exc:
            self.wasm_result.value = (message_html("refused: nothing was written", ok=False)
                                      + "<br>reason codes: " + codes_html(exc.reason_codes))
            return None
        except TauOpsError as exc:
            self.wasm_result.value = message_html(f"error: {exc}", ok=False)
            return None
        self.package_report = report
        self.manifest_path.value = report.manifest_path
        self.wasm_result.value = message_html("packaged", ok=True) + kv_table({
            "manifest_path": report.manifest_path,
            "artifact_sha256": report.artifact_sha256,
            "artifact_size_bytes": report.artifact_size_bytes,
            "constraint_profile_id": report.constraint_profile_id,
            "observed_import_modules": report.observed_import_modules,
            "compliance_reason_codes": report.compliance_reason_codes,
        })
        self.refresh(keep_message=True)
        return report

    def inspect(self) -> InspectReport | None:
        """Re-verify the manifest against its artifact and show the inspect report."""
        try:
            path = self.manifest_path.value.strip()
            if not path:
                raise UsageError("no manifest chosen: package a module or enter a manifest path")
            report = inspect_manifest(Path(path))
        except TauOpsError as exc:
            self.wasm_result.value = message_html(f"error: {exc}", ok=False)
            return None
        self.inspect_report = report
        verdict = "compliant" if report.compliant else "NOT compliant"
        self.wasm_result.value = message_html(verdict, ok=report.compliant) + kv_table({
            "manifest_path": report.manifest_path,
            "blueprint_id": report.blueprint_id,
            "runtime_profile": report.runtime_profile,
            "constraint_profile_id": report.constraint_profile_id,
            "reason_codes": report.reason_codes,
            "observed_import_modules": report.observed_import_modules,
            "max_artifact_size_bytes": report.max_artifact_size_bytes,
        })
        return report

    def _fail(self, exc: TauOpsError) -> None:
        self.message.value = message_html(f"error: {exc}", ok=False)
