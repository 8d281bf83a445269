"""The fleet's rows, policy and report, and the verdict the policy gives over the rows.

:mod:`tau_ops.fleet` reads and judges the members; this module holds the
shapes it reports in and :func:`fleet_verdict`, which folds the members'
rows into one fleet gate under a :class:`FleetPolicy`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from tau_ops.models import RolloutGate
from tau_ops.timefmt import plural

MemberKind = Literal["state_dir", "snapshot", "gateway"]

FLEET_GATE_REASONS: tuple[str, ...] = (
    "no_members",
    "member_unreadable",
    "member_timeout",
    "member_held",
    "required_label_missing",
    "required_member_held",
    "members_below_pass_fraction",
)
"""Reasons a fleet holds, in the order they are listed in ``fleet_gate_reasons``."""


class FleetMember(BaseModel):
    """One row of a fleet: a member's gate, health and what it was read from.

    Examples
    --------
    >>> row = FleetMember(name="a", kind="state_dir", labels={}, readable=False,
    ...                   error="no state.json", rollout_gate="hold",
    ...                   rollout_gate_reasons=["invalid_state"])
    >>> row.rollout_gate, row.queue_depth
    ('hold', 0)
    """

    name: str = Field(description="the member as given (path, archive or URL)")
    kind: MemberKind = Field(description="state_dir, snapshot or gateway")
    labels: dict[str, str] = Field(description="policy labels given with the member")
    readable: bool = Field(description="false when the member could not be read in time")
    error: str = Field(default="", description="why the member could not be read (one line)")
    rollout_gate: RolloutGate = Field(description="the member's own gate: pass or hold")
    rollout_gate_reasons: list[str] = Field(description="why the member's gate holds")
    health_state: str = Field(default="", description="healthy, degraded or failing ('' if unread)")
    health_reason: str = Field(default="", description="one-line reason for the health state")
    updated_unix_ms: int = Field(default=0, description="when the member's last cycle ended (ms)")
    state_age_ms: int = Field(default=0, description="age of the last cycle when judged (ms)")
    failure_streak: int = Field(default=0, description="consecutive cycles with failed cases")
    queue_depth: int = Field(default=0, description="cases left in the backlog (cases)")
    elapsed_ms: int = Field(default=0, description="time taken to read the member (ms)")


_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def exact_fraction(value: object) -> float:
    """A pass fraction as a float that holds exactly the decimal given (0 to 1).

    Text and :class:`decimal.Decimal` are taken as the decimal written and refused
    when the float would differ (``1e-400`` would become 0, a 30-digit third
    0.3333333333333333); a float is taken as its shortest decimal (``0.07``).

    Parameters
    ----------
    value : float, int, str or decimal.Decimal
        The fraction.

    Returns
    -------
    float
        The fraction.

    Raises
    ------
    ValueError
        Not a plain decimal number (ASCII digits, optional exponent), outside
        0..1, or not held exactly by a float.

    Examples
    --------
    >>> exact_fraction("0.07"), exact_fraction(1)
    (0.07, 1.0)
    >>> exact_fraction("1e-400")
    Traceback (most recent call last):
    ...
    ValueError: 1e-400 is not held exactly by a fraction (it would be 0.0): write it with \
at most 15 significant digits
    """
    if isinstance(value, bool):
        raise ValueError("expected a number from 0 to 1, got a boolean")
    if isinstance(value, float | int):
        text = repr(float(value))
    elif isinstance(value, str | Decimal):
        text = str(value).strip()
    else:
        raise ValueError(f"expected a number from 0 to 1, got {type(value).__name__}")
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"expected a number from 0 to 1, got {text!r}")
    exact = Decimal(text)
    if not 0 <= exact <= 1:
        raise ValueError(f"must be from 0 to 1, got {text}")
    number = float(exact)
    if Decimal(repr(number)) != exact:
        raise ValueError(f"{text} is not held exactly by a fraction (it would be {number!r}): "
                         "write it with at most 15 significant digits")
    return number


class FleetPolicy(BaseModel):
    """When the fleet passes.

    By default every member must pass. ``min_pass_fraction`` lowers that to a
    share of the members; every ``require`` label (``region=iad``) needs at
    least one member carrying it, and all of those must pass. A member that
    cannot be read or answers late holds the fleet whatever the policy.

    Examples
    --------
    >>> FleetPolicy(min_pass_fraction=0.5, require=["region=iad"]).model_dump()
    {'min_pass_fraction': 0.5, 'require': ['region=iad']}
    """

    min_pass_fraction: float = Field(default=1.0, ge=0.0, le=1.0,
                                     description="share of members that must pass (0..1)")
    require: list[str] = Field(default_factory=list,
                               description="labels (key=value) whose members must all pass")

    @field_validator("min_pass_fraction", mode="before")
    @classmethod
    def _exact(cls, value: object) -> float:
        return exact_fraction(value)


class FleetReport(BaseModel):
    """``tau-ops fleet status|gate --json``: one row per member and the fleet verdict.

    Examples
    --------
    >>> report = FleetReport(fleet_gate="pass", fleet_gate_reasons=[], fleet_gate_details=[],
    ...                      policy=FleetPolicy(), member_count=0, pass_count=0,
    ...                      generated_unix_ms=0, members=[])
    >>> report.fleet_gate, report.policy.min_pass_fraction
    ('pass', 1.0)
    """

    fleet_gate: RolloutGate = Field(description="pass or hold for the whole fleet")
    fleet_gate_reasons: list[str] = Field(description="why the fleet holds (codes, in order)")
    fleet_gate_details: list[str] = Field(description="one human line per reason")
    policy: FleetPolicy = Field(description="the policy the fleet was judged by")
    member_count: int = Field(description="members read")
    pass_count: int = Field(description="members whose own gate passes")
    generated_unix_ms: int = Field(description="when the fleet was judged (ms)")
    members: list[FleetMember] = Field(description="one row per member, in the order given")


def _required(fraction: float, members: int) -> int:
    """Members that must pass: the fraction of the fleet, rounded up, computed exactly.

    The fraction is taken as the decimal it is written as (``0.07`` is 7/100, not the
    binary float just above it), so 0.07 of 100 is 7, 0.6 of 5 is 3, and any positive
    fraction, however small, needs at least one passing member.
    """
    exact = Fraction(repr(fraction))
    return -((-exact.numerator * members) // exact.denominator)


def fleet_verdict(rows: Sequence[FleetMember], policy: FleetPolicy) -> tuple[
        RolloutGate, list[str], list[str]]:
    """The fleet's gate, its reason codes and one detail line per reason.

    Holds when any member is unreadable or late, whatever the policy; then,
    by default, when any member holds (``member_held``); with
    ``min_pass_fraction`` below 1, when fewer members pass than that share of
    the fleet, rounded up; and when a ``require`` label has no member, or one
    of its members holds. Reasons come in :data:`FLEET_GATE_REASONS` order.

    Parameters
    ----------
    rows : sequence of FleetMember
        The members' rows (:func:`read_member`).
    policy : FleetPolicy
        When the fleet passes.

    Returns
    -------
    tuple of (str, list of str, list of str)
        ``pass`` or ``hold``; the fleet reason codes; one human line per
        held member or missing label, grouped by reason.

    Examples
    --------
    >>> fleet_verdict([], FleetPolicy())
    ('hold', ['no_members'], ['the fleet has no members'])
    >>> rows = [FleetMember(name=name, kind="state_dir", labels={"region": region},
    ...                     readable=True, rollout_gate=gate,
    ...                     rollout_gate_reasons=[] if gate == "pass" else ["stale_state"])
    ...         for name, region, gate in [("a", "iad", "pass"), ("b", "fra", "hold")]]
    >>> fleet_verdict(rows, FleetPolicy(min_pass_fraction=0.5))
    ('pass', [], [])
    >>> fleet_verdict(rows, FleetPolicy(min_pass_fraction=0.5, require=["region=fra"]))
    ('hold', ['required_member_held'], ['b (region=fra) holds: stale_state'])
    """
    found: dict[str, list[str]] = {}

    def hold(code: str, detail: str) -> None:
        found.setdefault(code, []).append(detail)

    if not rows:
        hold("no_members", "the fleet has no members")
    for row in rows:
        if not row.readable:
            hold(row.rollout_gate_reasons[0], f"{row.name}: {row.error}")
    for label in policy.require:
        key, _, value = label.partition("=")
        group = [r for r in rows if r.labels.get(key) == value]
        if not group:
            hold("required_label_missing", f"no member carries {label}")
        for row in group:
            if row.readable and row.rollout_gate != "pass":
                hold("required_member_held", f"{row.name} ({label}) holds: "
                     + ",".join(row.rollout_gate_reasons))
    passing = sum(1 for r in rows if r.rollout_gate == "pass")
    if policy.min_pass_fraction >= 1.0:
        for row in rows:
            if row.readable and row.rollout_gate != "pass":
                hold("member_held", f"{row.name} holds: " + ",".join(row.rollout_gate_reasons))
    elif rows and passing < _required(policy.min_pass_fraction, len(rows)):
        hold("members_below_pass_fraction",
             f"{passing} of {plural(len(rows), 'member')} {'passes' if passing == 1 else 'pass'}; "
             f"the policy needs "
             f"{_required(policy.min_pass_fraction, len(rows))} "
             f"(min_pass_fraction {policy.min_pass_fraction!r})")
    reasons = [code for code in FLEET_GATE_REASONS if code in found]
    details = [line for code in reasons for line in found[code]]
    return ("hold" if reasons else "pass"), reasons, details
