"""Fleets: one rollout verdict over many runners (state dirs, snapshot archives, gateways).

A team runs the deployment runtime on many machines, one state dir each.
:func:`fleet_status` reads every member, judges each with the same gate as
``tau-ops gate`` (:func:`tau_ops.health.gate_decision`), and folds the rows
into one fleet verdict under a :class:`FleetPolicy`. Members are read
concurrently with a bounded pool and a per-member deadline; a member that
cannot be read, or answers late, holds the fleet with that reason.

Member kinds (told apart by their text):

- ``http://`` / ``https://`` URL: a gateway's ``/gateway/status`` (a bare
  base URL gets that path), with ``Authorization: Bearer $TAU_GATEWAY_AUTH_TOKEN``
  when the variable is set;
- a path ending in ``.tar.gz`` or ``.tgz``: a ``tau-ops snapshot`` archive,
  read in memory without extracting anything;
- any other path: a state dir. Paths may be globs (``/srv/*/deployment``).

A member may carry labels for the policy, written ``key=value,...@member``
(``region=iad@/srv/iad/deployment``).
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from tau_ops import health
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.errors import TauOpsError, UsageError
from tau_ops.fleet_gateway import gateway_url, gateway_verdict, read_gateway
from tau_ops.fleet_policy import (
    FLEET_GATE_REASONS,
    FleetMember,
    FleetPolicy,
    FleetReport,
    MemberKind,
    fleet_verdict,
)
from tau_ops.fleet_pool import read_all
from tau_ops.fleet_read import MemberRead, one_line, read_snapshot, read_state_dir

__all__ = [
    "FLEET_GATE_REASONS", "MAX_MEMBERS", "MAX_WORKERS", "FleetMember", "FleetPolicy",
    "FleetReport", "MemberKind", "MemberSpec", "dumps", "expand_members", "fleet_status",
    "fleet_verdict", "read_member",
]

MAX_MEMBERS = 10_000
MAX_WORKERS = 32


@dataclass(frozen=True)
class MemberSpec:
    """A member to read: its location, kind and labels.

    Made by :func:`expand_members` from the command line's member arguments.

    Attributes
    ----------
    location : str
        A state dir path, a snapshot archive path (``.tar.gz``/``.tgz``) or a
        gateway URL.
    kind : {"state_dir", "snapshot", "gateway"}
        How the member is read (told apart by its text).
    labels : tuple of (str, str)
        The ``key=value`` labels given with it, sorted by key.

    Examples
    --------
    >>> spec = expand_members(["region=iad,tier=edge@/srv/iad/deployment"])[0]
    >>> spec.location, spec.kind, spec.labels
    ('/srv/iad/deployment', 'state_dir', (('region', 'iad'), ('tier', 'edge')))
    """

    location: str
    kind: MemberKind
    labels: tuple[tuple[str, str], ...] = ()


def _labels(text: str, *, what: str = "fleet member label") -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{what} {item!r} must be KEY=VALUE")
        if key.strip() in pairs:
            raise UsageError(f"{what} {text!r} gives {key.strip()!r} twice")
        pairs[key.strip()] = value.strip()
    return tuple(sorted(pairs.items()))


def _kind(location: str) -> MemberKind:
    if location.lower().startswith(("http://", "https://")):
        return "gateway"
    if location.endswith((".tar.gz", ".tgz")):
        return "snapshot"
    return "state_dir"


def _identity(path: str) -> object:
    """What makes two paths one member: the same file or folder (device and inode, one
    ``stat`` however deep the path), or for a path that does not exist, its resolved text."""
    try:
        info = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (info.st_dev, info.st_ino)


def expand_members(members: Sequence[str]) -> list[MemberSpec]:
    """Turn member arguments into specs: labels split off, globs expanded, sorted within a glob.

    Parameters
    ----------
    members : sequence of str
        State dirs, snapshot archives or gateway URLs, each optionally
        ``key=value,...@`` prefixed; paths may be globs.

    Returns
    -------
    list of MemberSpec
        One per member, in the order given (a glob's matches sorted).

    Raises
    ------
    UsageError
        No members, a glob that matches nothing, a malformed label, a member
        listed twice (a path after resolving links, a gateway URL after
        :func:`~tau_ops.fleet_gateway.gateway_url`), a malformed gateway URL, or
        more than ``MAX_MEMBERS`` members.

    Examples
    --------
    >>> expand_members(["region=iad@https://iad.example/"])[0].kind
    'gateway'
    """
    specs: list[MemberSpec] = []
    for raw in members:
        labels: tuple[tuple[str, str], ...] = ()
        location = raw
        head, sep, tail = raw.partition("@")
        if sep and "=" in head and "/" not in head:
            labels, location = _labels(head), tail
        location = location.strip()
        if not location:
            raise UsageError(f"fleet member {raw!r} names nothing")
        kind = _kind(location)
        if kind != "gateway" and glob.has_magic(location):
            matches = sorted(glob.glob(location))
            if not matches:
                raise UsageError(f"fleet member glob {location!r} matches nothing")
            specs.extend(MemberSpec(m, _kind(m), labels) for m in matches)
        else:
            specs.append(MemberSpec(location, kind, labels))
        if len(specs) > MAX_MEMBERS:
            raise UsageError(f"a fleet has at most {MAX_MEMBERS} members")
    if not specs:
        raise UsageError("a fleet needs at least one member")
    seen: dict[object, str] = {}
    for spec in specs:
        key = gateway_url(spec.location) if spec.kind == "gateway" else _identity(spec.location)
        if key in seen:
            raise UsageError(f"fleet member {spec.location!r} is the same as {seen[key]!r}: "
                             "list each member once")
        seen[key] = spec.location
    return specs


def _judge(spec: MemberSpec, read: MemberRead, *, now_ms: int, stale_after_ms: int,
           skew_tolerance_ms: int, elapsed_ms: int) -> FleetMember:
    labels = dict(spec.labels)
    if read.document is not None:
        verdict = gateway_verdict(read.document, now_ms=now_ms, stale_after_ms=stale_after_ms,
                                  skew_tolerance_ms=skew_tolerance_ms)
        return FleetMember(
            name=spec.location, kind=spec.kind, labels=labels, readable=True,
            rollout_gate="hold" if verdict.rollout_gate_reasons else "pass",
            rollout_gate_reasons=verdict.rollout_gate_reasons,
            health_state=verdict.health_state, health_reason=verdict.health_reason,
            updated_unix_ms=verdict.updated_unix_ms, state_age_ms=verdict.state_age_ms,
            failure_streak=verdict.failure_streak, queue_depth=verdict.queue_depth,
            elapsed_ms=elapsed_ms,
        )
    snapshot = read.state.health if read.state and read.state.health else None
    decision = health.gate_decision(
        snapshot, now_ms=now_ms, stale_after_ms=stale_after_ms,
        skew_tolerance_ms=skew_tolerance_ms,
        pause=health.PauseMarker() if read.paused else None, invalid=read.invalid or None)
    return FleetMember(
        name=spec.location, kind=spec.kind, labels=labels, readable=True,
        rollout_gate=decision.rollout_gate,
        rollout_gate_reasons=decision.rollout_gate_reasons,
        health_state="" if read.invalid else decision.health_state,
        health_reason=decision.reason if read.invalid else decision.health_reason,
        updated_unix_ms=snapshot.updated_unix_ms if snapshot else 0,
        state_age_ms=0 if read.invalid else decision.state_age_ms,
        failure_streak=snapshot.failure_streak if snapshot else 0,
        queue_depth=snapshot.queue_depth if snapshot else 0,
        elapsed_ms=elapsed_ms,
    )


def _unreadable(spec: MemberSpec, error: str, *, timed_out: bool, elapsed_ms: int) -> FleetMember:
    return FleetMember(
        name=spec.location, kind=spec.kind, labels=dict(spec.labels), readable=False,
        error=error, rollout_gate="hold",
        rollout_gate_reasons=["member_timeout" if timed_out else "member_unreadable"],
        elapsed_ms=elapsed_ms,
    )


def _late(spec: MemberSpec, error: str, elapsed_ms: int) -> FleetMember:
    return _unreadable(spec, error, timed_out=True, elapsed_ms=elapsed_ms)


def read_member(spec: MemberSpec, *, now_ms: int, stale_after_ms: int, timeout_s: float,
                skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
                ) -> FleetMember:
    """Read and judge one member; never raises for a member's own fault.

    Every kind is judged here by :func:`tau_ops.health.gate_decision` with
    the fleet's freshness and skew limits, as ``tau-ops gate`` judges a state
    dir: a state dir or verified snapshot archive from its ``state.json`` and
    pause marker, a gateway from the stored health and pause its
    ``/gateway/status`` reports (once checked for consistency), with the
    gateway's own hold reasons added (:func:`tau_ops.fleet_gateway.gateway_verdict`).

    Parameters
    ----------
    spec : MemberSpec
        The member.
    now_ms : int
        When the fleet is judged, Unix epoch ms.
    stale_after_ms : int
        Freshness limit for every member, in ms.
    timeout_s : float
        Deadline for the read, in seconds (a gateway's socket timeout; a
        slower read of any kind is reported as timed out).
    skew_tolerance_ms : int, default 5 minutes
        How far ahead of ``now_ms`` a member's last cycle may lie before it
        holds with ``clock_skew``, in ms.

    Returns
    -------
    FleetMember
        The member's row; ``readable`` false with ``member_unreadable`` or
        ``member_timeout`` when it could not be read in time (missing, not a
        state dir, a tampered archive, an HTTP error, a refused redirect...).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     row = read_member(MemberSpec(tmp, "state_dir"), now_ms=1_767_225_600_000,
    ...                       stale_after_ms=86_400_000, timeout_s=5.0)
    >>> row.readable, row.rollout_gate, row.rollout_gate_reasons
    (True, 'hold', ['no_cycle'])
    >>> row = read_member(MemberSpec("/nonexistent/state", "state_dir"),
    ...                   now_ms=1_767_225_600_000, stale_after_ms=86_400_000, timeout_s=5.0)
    >>> row.readable, row.rollout_gate_reasons, row.error
    (False, ['member_unreadable'], 'state dir /nonexistent/state does not exist')
    """
    start = time.monotonic()
    try:
        if spec.kind == "gateway":
            read = read_gateway(spec.location, timeout_s)
        elif spec.kind == "snapshot":
            read = read_snapshot(spec.location)
        else:
            read = read_state_dir(spec.location)
    except TimeoutError as exc:
        return _unreadable(spec, f"no answer within {timeout_s:g} s ({one_line(exc)})",
                           timed_out=True, elapsed_ms=int((time.monotonic() - start) * 1000))
    except (OSError, ValueError, ValidationError, EOFError, TauOpsError) as exc:
        return _unreadable(spec, one_line(exc), timed_out=False,
                           elapsed_ms=int((time.monotonic() - start) * 1000))
    elapsed = int((time.monotonic() - start) * 1000)
    if elapsed > timeout_s * 1000:
        return _unreadable(spec, f"read took {elapsed} ms, over {timeout_s:g} s",
                           timed_out=True, elapsed_ms=elapsed)
    return _judge(spec, read, now_ms=now_ms, stale_after_ms=stale_after_ms,
                  skew_tolerance_ms=skew_tolerance_ms, elapsed_ms=elapsed)


def fleet_status(
    members: Sequence[str],
    *,
    policy: FleetPolicy | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    timeout_s: float = 5.0,
    max_workers: int = 16,
    clock: Clock = wall_clock_ms,
    reader: Callable[..., FleetMember] = read_member,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
) -> FleetReport:
    """Read every member concurrently and judge the fleet.

    Parameters
    ----------
    members : sequence of str
        State dirs (paths or globs), snapshot archives (``*.tar.gz``) and
        gateway URLs, each optionally prefixed with ``key=value,...@`` labels.
    policy : FleetPolicy, optional
        When the fleet passes; default: every member passes.
    stale_after_ms : int, default 24 h
        Freshness limit for every member, gateways included, in ms.
    timeout_s : float, default 5.0
        Deadline per member, in seconds; a later answer holds the fleet.
    max_workers : int, default 16
        Members read at once (1..32).
    clock : callable, optional
        Milliseconds since the epoch; injected for tests.
    reader : callable, optional
        Reads one member (tests inject slow or failing readers).
    skew_tolerance_ms : int, default 5 minutes
        How far ahead of this clock a member's last cycle may lie, in ms.

    Returns
    -------
    FleetReport
        One row per member, in the order given, and the fleet verdict.

    Raises
    ------
    UsageError
        No members, a glob matching nothing, a bad label, or a value out of range.

    Examples
    --------
    >>> import tempfile
    >>> report = fleet_status([tempfile.mkdtemp()])
    >>> report.fleet_gate, report.fleet_gate_reasons, report.members[0].rollout_gate_reasons
    ('hold', ['member_held'], ['no_cycle'])
    """
    policy = policy or FleetPolicy()
    if not 0 < timeout_s <= 600:
        raise UsageError(f"timeout must be within (0, 600] s, got {timeout_s}")
    if not 1 <= max_workers <= MAX_WORKERS:
        raise UsageError(f"max_workers must be within 1..{MAX_WORKERS}, got {max_workers}")
    for label in policy.require:
        _labels(label, what="fleet --require value")
    specs = expand_members(members)
    now_ms = clock()
    rows = read_all(specs, lambda spec: reader(spec, now_ms=now_ms, stale_after_ms=stale_after_ms,
                                               timeout_s=timeout_s,
                                               skew_tolerance_ms=skew_tolerance_ms),
                    timeout_s=timeout_s, max_workers=max_workers, late=_late)
    gate, reasons, details = fleet_verdict(rows, policy)
    return FleetReport(
        fleet_gate=gate, fleet_gate_reasons=reasons, fleet_gate_details=details, policy=policy,
        member_count=len(rows), pass_count=sum(1 for r in rows if r.rollout_gate == "pass"),
        generated_unix_ms=now_ms, members=rows,
    )


def dumps(report: FleetReport) -> str:
    """The report as one JSON document (what ``tau-ops fleet status --json`` prints).

    Parameters
    ----------
    report : FleetReport
        A fleet report.

    Returns
    -------
    str
        Indented JSON, non-ASCII kept as is.

    Examples
    --------
    >>> report = FleetReport(fleet_gate="hold", fleet_gate_reasons=["no_members"],
    ...                      fleet_gate_details=[], policy=FleetPolicy(), member_count=0,
    ...                      pass_count=0, generated_unix_ms=0, members=[])
    >>> import json
    >>> text = dumps(report)
    >>> text.splitlines()[1], json.loads(text)["policy"]
    ('  "fleet_gate": "hold",', {'min_pass_fraction': 1.0, 'require': []})
    """
    return json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False)
