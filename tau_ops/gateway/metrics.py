"""Prometheus metrics of a deployment status, for ``GET /metrics``.

The families follow Prometheus naming and OpenMetrics: base units in names
(``_seconds``), ``_info`` for the build, no ``_total``/``_count``/``_sum``/
``_bucket`` on gauges. Every value is a gauge read from the files (or the
build info): counts over the *retained* event files can drop when old backups
are rotated away, so none of them is exposed as a counter. Exposition is
``prometheus_client``'s, in the format the scraper asks for (Prometheus text
0.0.4 by default, OpenMetrics 1.0 when ``Accept`` asks for it).

A state that cannot be read still gives a valid exposition: build info,
``tau_state_exists 1``, ``tau_state_valid 0``, the gate at ``hold`` with the
reason ``invalid_state``, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from tau_ops.status import DeploymentStatusReport

METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of :func:`render_metrics` (Prometheus text format 0.0.4)."""

GATE_REASONS: Final = (
    "invalid_state", "no_cycle", "runner_paused", "clock_skew", "stale_state",
    "health_failing", "health_degraded",
)
"""Every rollout-gate reason code, in the order reports list them."""

GATES: Final = ("pass", "hold")
HEALTH_STATES: Final = ("healthy", "degraded", "failing")
CASE_OUTCOMES: Final = ("applied", "malformed", "failed", "duplicate")


def rollout_gate_reasons(report: DeploymentStatusReport | None) -> list[str]:
    """The rollout-gate reason codes of a status (``[]`` when the gate passes).

    The one adapter between status reports and the gate metrics: when the
    report carries ``rollout_gate_reasons`` that list is used as is; for a
    report without it the reasons are derived from its fields (no cycle,
    stale, health), and an unreadable state (``None``) is ``invalid_state``.

    Parameters
    ----------
    report : DeploymentStatusReport or None
        The status judged at scrape time; None when ``state.json`` is corrupt.

    Returns
    -------
    list of str
        Codes from :data:`GATE_REASONS`, in that order.

    Examples
    --------
    >>> rollout_gate_reasons(None)
    ['invalid_state']
    """
    if report is None:
        return ["invalid_state"]
    listed = getattr(report, "rollout_gate_reasons", None)
    if isinstance(listed, list):
        return [str(code) for code in listed]
    reasons: list[str] = []
    if not report.state_exists or report.updated_unix_ms <= 0:
        reasons.append("no_cycle")
    elif report.stale:
        reasons.append("stale_state")
    if report.health_state == "failing":
        reasons.append("health_failing")
    elif report.health_state == "degraded":
        reasons.append("health_degraded")
    return reasons


def _gauge(name: str, doc: str, value: float, unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value, unit=unit)


def _labelled(name: str, doc: str, label: str,
              values: Iterable[tuple[str, float]], unit: str = "") -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label], unit=unit)
    for key, value in values:
        family.add_metric([key], value)
    return family


def _gate_families(report: DeploymentStatusReport | None) -> Iterator[Metric]:
    reasons = rollout_gate_reasons(report)
    gate = "hold" if report is None or reasons else report.rollout_gate
    yield _labelled("tau_rollout_gate", "Rollout gate: 1 for the current value (pass or hold)",
                    "gate", ((g, float(gate == g)) for g in GATES))
    yield _labelled("tau_rollout_gate_reason",
                    "Why the rollout gate holds: 1 for each reason that applies now",
                    "reason", ((r, float(r in reasons)) for r in GATE_REASONS))


def _health_families(report: DeploymentStatusReport) -> Iterator[Metric]:
    yield _labelled("tau_health_state", "Health classification: 1 for the current state",
                    "state", ((s, float(report.health_state == s)) for s in HEALTH_STATES))
    yield _gauge("tau_failure_streak", "Consecutive cycles with failed cases",
                 report.failure_streak)
    yield _gauge("tau_queue_depth", "Cases the last cycle left in the backlog",
                 report.queue_depth)
    yield _gauge("tau_active_runs", "Runs in progress at the last cycle", report.active_runs)
    yield _gauge("tau_state_stale", "1 when the last cycle is older than the staleness limit "
                 "(or there is none)", float(report.stale))
    yield _gauge("tau_last_cycle_age_seconds", "Time since the last cycle, whole seconds "
                 "(0 when there is none)", report.state_age_ms // 1000)
    yield _gauge("tau_stale_after_seconds", "Age beyond which the state counts as stale",
                 report.stale_after_ms / 1000)
    yield _gauge("tau_last_cycle_timestamp_seconds", "Unix time of the last cycle (0: none)",
                 report.updated_unix_ms / 1000)
    yield _gauge("tau_last_cycle_duration_seconds", "Wall time the last cycle took",
                 report.cycle_duration_ms / 1000)
    yield _gauge("tau_last_cycle_discovered_cases", "Cases the last cycle found in its fixture",
                 report.last_cycle_discovered)
    applied = report.last_cycle_completed - report.last_cycle_malformed
    yield _labelled(
        "tau_last_cycle_cases", "Cases the last cycle processed, by outcome (they sum to the "
        "processed cases)", "outcome",
        zip(CASE_OUTCOMES, (applied, report.last_cycle_malformed, report.last_cycle_failed,
                            report.last_cycle_duplicates), strict=True))
    yield _gauge("tau_last_cycle_retry_attempts", "Retry attempts made by the last cycle",
                 report.last_cycle_retries)


def _record_families(report: DeploymentStatusReport) -> Iterator[Metric]:
    yield _labelled("tau_rollout_records", "Rollout records in state, by deploy target",
                    "deploy_target", report.deploy_target_counts.items())
    yield _gauge("tau_rollout_replicas", "Replicas across all rollout records",
                 report.total_replicas)
    yield _gauge("tau_processed_case_keys", "Case keys marked processed in state",
                 report.processed_case_count)
    yield _gauge("tau_wasm_deliverables", "WASM deliverables recorded in state",
                 report.wasm_deliverable_count)
    yield _gauge("tau_event_log_files", "Event files, rotated backups included",
                 report.event_files)
    yield _gauge("tau_event_log_cycle_reports", "Cycle reports in the retained event files",
                 report.cycle_reports)
    yield _gauge("tau_event_log_invalid_lines", "Unreadable lines in the retained event files",
                 report.invalid_cycle_reports)
    yield _labelled("tau_event_log_reason_code_cycles",
                    "Retained cycle reports that carry each reason code", "reason_code",
                    report.reason_code_counts.items())
    yield _labelled("tau_last_cycle_reason_code", "Reason codes of the last cycle (1 each)",
                    "reason_code", ((c, 1.0) for c in dict.fromkeys(report.last_reason_codes)))


class DeploymentCollector(Collector):
    """A ``prometheus_client`` collector of one status (taken at scrape time).

    Parameters
    ----------
    report : DeploymentStatusReport or None
        The status judged at scrape time; None when ``state.json`` is corrupt.
    state_exists : bool
        Whether ``state.json`` exists (a corrupt file exists).
    version : str
        The ``version`` label of ``tau_build_info``.
    """

    def __init__(self, report: DeploymentStatusReport | None, *, state_exists: bool,
                 version: str) -> None:
        self.report = report
        self.state_exists = state_exists
        self.version = version

    def collect(self) -> Iterator[Metric]:
        """Yield every family (see the module docstring and docs/guides/monitoring.md)."""
        yield InfoMetricFamily("tau_build", "tau-ops build serving these metrics",
                               value={"version": self.version})
        yield _gauge("tau_state_exists", "1 when state.json exists", float(self.state_exists))
        report = self.report
        valid = report is not None and "invalid_state" not in rollout_gate_reasons(report)
        yield _gauge("tau_state_valid", "1 when state.json is missing or readable and "
                     "consistent, 0 when it is corrupt or impossible", float(valid))
        yield from _gate_families(report)
        if report is not None:
            yield from _health_families(report)
            yield from _record_families(report)


def _version() -> str:
    from tau_ops import __version__  # late: tau_ops imports the gateway

    return __version__


def render_metrics(report: DeploymentStatusReport | None, *, state_exists: bool) -> str:
    """Prometheus text exposition (format 0.0.4) of a status.

    Parameters
    ----------
    report : DeploymentStatusReport or None
        The status judged at scrape time; None when ``state.json`` is corrupt.
    state_exists : bool
        Whether ``state.json`` exists.

    Returns
    -------
    str
        The exposition, ending with a newline; served as :data:`METRICS_CONTENT_TYPE`.

    Examples
    --------
    >>> text = render_metrics(None, state_exists=True)
    >>> "tau_state_valid 0.0" in text and 'tau_rollout_gate{gate="hold"} 1.0' in text
    True
    """
    body, _ = render_metrics_for(report, state_exists=state_exists, accept="")
    return body.decode()


def render_metrics_for(report: DeploymentStatusReport | None, *, state_exists: bool,
                       accept: str) -> tuple[bytes, str]:
    """The exposition in the format an ``Accept`` header asks for.

    Parameters
    ----------
    report : DeploymentStatusReport or None
        The status judged at scrape time; None when ``state.json`` is corrupt.
    state_exists : bool
        Whether ``state.json`` exists.
    accept : str
        The request's ``Accept`` header ("" for the default text format).

    Returns
    -------
    tuple of (bytes, str)
        The body and its content type: OpenMetrics 1.0 when ``accept`` asks for
        ``application/openmetrics-text``, else Prometheus text 0.0.4.
    """
    collector = DeploymentCollector(report, state_exists=state_exists, version=_version())
    encoder, content_type = choose_encoder(accept)
    return encoder(collector), content_type


class MetricsCache:
    """Rendered expositions, reused while nothing they show has changed.

    Rendering costs far more than judging a status, so the gateway judges on
    every scrape and renders again only when the inputs (files), the gate,
    its reasons, staleness or the whole seconds of the cycle age changed.
    One entry is kept per ``Accept`` header (at most ``max_entries``).

    Parameters
    ----------
    max_entries : int
        Distinct ``Accept`` headers remembered before the cache starts over.
    """

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self.renders = 0
        self._entries: dict[str, tuple[object, tuple[object, ...], bytes, str]] = {}

    def render(self, report: DeploymentStatusReport | None, *, state_exists: bool,
               accept: str, inputs: object) -> tuple[bytes, str]:
        """Same as :func:`render_metrics_for`, from cache when possible.

        Parameters
        ----------
        report : DeploymentStatusReport or None
            The status judged at scrape time; None when ``state.json`` is corrupt.
        state_exists : bool
            Whether ``state.json`` exists.
        accept : str
            The request's ``Accept`` header.
        inputs : object
            What ``report`` was judged from (same object: same files).

        Returns
        -------
        tuple of (bytes, str)
            The body and its content type.
        """
        key: tuple[object, ...] = (state_exists,)
        if report is not None:
            key = (state_exists, report.rollout_gate, tuple(rollout_gate_reasons(report)),
                   report.stale, report.state_age_ms // 1000, report.stale_after_ms)
        entry = self._entries.get(accept)
        if entry is not None and entry[0] is inputs and entry[1] == key:
            return entry[2], entry[3]
        body, content_type = render_metrics_for(report, state_exists=state_exists, accept=accept)
        self.renders += 1
        if len(self._entries) >= self.max_entries and accept not in self._entries:
            self._entries.clear()
        self._entries[accept] = (inputs, key, body, content_type)
        return body, content_type
