"""Fleet members that are gateways: one URL per gateway, its status document, the fleet's verdict.

A gateway's ``/gateway/status`` document carries the whole deployment status
it judged (``deployment``, with the stored ``health`` snapshot and the pause).
The fleet does not take the gateway's verdict as it answers: it judges what
the gateway reports with the one gate decision
(:func:`tau_ops.health.gate_decision`) under the fleet's own freshness and
clock-skew settings, as it judges a state dir, and a document the gateway
itself marks stale or holding never passes. A document whose summary
contradicts its own deployment status cannot be judged (unreadable).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import posixpath
import re
import socket
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tau_ops import health, jsonio
from tau_ops.errors import UsageError
from tau_ops.fleet_read import MemberRead, one_line
from tau_ops.models import HEALTH_STATES, REASON_CODES, HealthSnapshot

if TYPE_CHECKING:
    import urllib.request

MAX_GATEWAY_BYTES = 8 * jsonio.MIB
GATEWAY_PATH = "/gateway/status"
DEFAULT_PORTS = {"http": 80, "https": 443}
_SUMMARY_COPIES = ("updated_unix_ms", "failure_streak", "queue_depth")


_UNRESERVED_ESCAPE = re.compile(
    "%(" + "|".join(f"{ord(c):02X}" for c in
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") + ")",
    re.IGNORECASE)


_IPV4_FORMS = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)(\.(0[xX][0-9a-fA-F]+|[0-9]+)){0,3}")


def _canonical_host(host: str) -> str:
    """An address written another way (``127.1``, ``0x7f000001``, ``::ffff:127.0.0.1``)
    as its usual form; a host name unchanged (no name is looked up)."""
    if _IPV4_FORMS.fullmatch(host):
        with contextlib.suppress(OSError):
            return socket.inet_ntoa(socket.inet_aton(host))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def gateway_url(location: str) -> str:
    """The one URL a gateway member is read from, and known by when looking for duplicates.

    Scheme and host lower-cased, the default port dropped, a bare base URL
    given the status path, dot segments and a trailing slash removed, query
    and fragment dropped, escapes of unreserved characters decoded
    (``%73`` is ``s``), an address written another way in its usual form
    (``127.1`` is ``127.0.0.1``). Host names are compared as written: ``localhost``
    and ``127.0.0.1`` stay two gateways (no name is looked up).

    Parameters
    ----------
    location : str
        An ``http://`` or ``https://`` URL as given on the command line.

    Returns
    -------
    str
        The normalised URL.

    Raises
    ------
    UsageError
        Not http(s), no host, a port that is not 1..65535, or credentials in
        the URL (the token comes from ``TAU_GATEWAY_AUTH_TOKEN``).

    Examples
    --------
    >>> gateway_url("HTTP://GW.Example:80/?x=1#top")
    'http://gw.example/gateway/status'
    >>> gateway_url("https://[::1]:8811/gateway/status/")
    'https://[::1]:8811/gateway/status'
    >>> gateway_url("http://gw:8811/gateway/%73tatus")
    'http://gw:8811/gateway/status'
    """
    try:
        parts = urllib.parse.urlsplit(location.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"gateway URL {location!r} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UsageError(f"gateway URL {location!r} must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise UsageError(f"gateway URL {location!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"gateway URL {location!r} must not carry credentials "
                         "(the token comes from TAU_GATEWAY_AUTH_TOKEN)")
    if port == 0:
        raise UsageError(f"gateway URL {location!r} has port 0")
    host = _canonical_host(host)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    # percent-escapes of unreserved characters are the characters (RFC 3986 6.2.2.2)
    raw = _UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), parts.path)
    path = posixpath.normpath("/" + raw.strip("/"))
    return f"{scheme}://{netloc}{GATEWAY_PATH if path == '/' else path}"


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """The HTTP opener, built on the first gateway read: redirects refused."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        """A redirect is refused: the bearer token must never follow it to another host."""

        def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                             headers: Any, newurl: str) -> urllib.request.Request | None:
            raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused",
                                         headers, fp)

    return urllib.request.build_opener(NoRedirect)


def _refuse(why: str) -> ValueError:
    return ValueError(f"not a /gateway/status document ({why})")


def gateway_document(document: Any) -> dict[str, Any]:
    """A ``/gateway/status`` document whose summary agrees with itself and its deployment.

    Parameters
    ----------
    document : object
        The parsed JSON body.

    Returns
    -------
    dict
        The same document.

    Raises
    ------
    ValueError
        It is not a status document (no ``deployment.health``, a reason code
        outside the shared list, a number out of range), or its gate, reasons,
        health and pause disagree, or its summary's time, streak, backlog or
        pause differ from its own deployment status.

    Examples
    --------
    >>> gateway_document([1])
    Traceback (most recent call last):
    ...
    ValueError: not a /gateway/status document (not an object)
    """
    if not isinstance(document, dict):
        raise _refuse("not an object")
    gate = document.get("rollout_gate")
    reasons = document.get("rollout_gate_reasons")
    state = document.get("health_state")
    if gate not in ("pass", "hold"):
        raise _refuse("no rollout_gate")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise _refuse("no rollout_gate_reasons list")
    unknown = [r for r in reasons if r not in health.GATE_REASONS]
    if unknown:
        raise _refuse(f"unknown rollout gate reason {jsonio.json_text(unknown[0])}")
    if state not in HEALTH_STATES:
        raise _refuse("no health_state")
    for key in ("updated_unix_ms", "state_age_ms", "failure_streak", "queue_depth"):
        value = document.get(key, 0)
        if not jsonio.is_json_int(value) or not 0 <= value <= jsonio.MAX_UNIX_MS:
            raise _refuse(f"{key} {jsonio.json_text(value)} is not a whole number in range")
    for key in ("runner_paused", "stale"):
        if not isinstance(document.get(key, False), bool):
            raise _refuse(f"{key} is not true or false")
    paused = document.get("runner_paused", False)
    if ((gate == "pass") != (not reasons) or (gate == "pass" and state != "healthy")
            or (gate == "pass" and paused)):
        raise ValueError(f"gateway status contradicts itself: rollout_gate={gate} "
                         f"health_state={state} runner_paused={str(paused).lower()} "
                         f"reasons={','.join(reasons) or 'none'}")
    deployment = document.get("deployment")
    if not isinstance(deployment, dict) or not isinstance(deployment.get("health"), dict):
        raise _refuse("no deployment.health: the fleet judges the gateway's stored health")
    inner = deployment["health"]
    for key in _SUMMARY_COPIES:
        if document.get(key, 0) != inner.get(key, 0):
            raise ValueError(f"gateway status contradicts itself: {key} "
                             f"{jsonio.json_text(document.get(key, 0))}, deployment.health."
                             f"{key} {jsonio.json_text(inner.get(key, 0))}")
    if deployment.get("runner_paused", False) is not paused:
        raise ValueError(f"gateway status contradicts itself: runner_paused "
                         f"{str(paused).lower()}, deployment.runner_paused "
                         f"{jsonio.json_text(deployment.get('runner_paused'))}")
    own_gate = deployment.get("rollout_gate", "pass")
    own_reasons = deployment.get("rollout_gate_reasons", [])
    if (own_gate not in ("pass", "hold") or not isinstance(own_reasons, list)
            or any(r not in health.GATE_REASONS for r in own_reasons)
            or (own_gate == "pass") != (not own_reasons)
            or deployment.get("health_state", state) not in HEALTH_STATES):
        raise _refuse("deployment's own rollout_gate, reasons or health_state are not the "
                      "shared ones, or disagree")
    if gate == "pass" and deployment.get("state_exists", True) is not True:
        raise ValueError("gateway status contradicts itself: rollout_gate pass, "
                         "deployment.state_exists " + jsonio.json_text(
                             deployment.get("state_exists")))
    if deployment.get("pause") is not None and not paused:
        raise ValueError("gateway status contradicts itself: runner_paused false, "
                         "deployment.pause set")
    codes = deployment.get("last_reason_codes", [])
    if not isinstance(codes, list) or any(c not in REASON_CODES for c in codes):
        raise _refuse("deployment.last_reason_codes holds a code outside the contract")
    HealthSnapshot.model_validate(inner)  # a ValidationError: unreadable, like any bad input
    return document


def read_gateway(location: str, timeout_s: float) -> MemberRead:
    """GET a gateway's status document from its normalised URL (:func:`gateway_url`).

    Parameters
    ----------
    location : str
        The gateway URL (``http://`` or ``https://``); the bearer token comes
        from ``TAU_GATEWAY_AUTH_TOKEN``. Redirects are refused.
    timeout_s : float
        Socket timeout for connecting and each read, in seconds.

    Returns
    -------
    MemberRead
        The status document (``document``) and its pause (``paused``); for a
        503 on a missing or corrupt state, no document (see Raises).

    Raises
    ------
    TimeoutError
        It answered late.
    OSError
        It could not be reached, refused, or answered an HTTP error or more
        than ``MAX_GATEWAY_BYTES``. A 503 saying its state dir has no
        ``state.json`` yet or a corrupt one is not an error: it is read as that
        state dir would be (``invalid`` and ``paused``), so the fleet judges it
        ``no_cycle`` or ``invalid_state`` as it judges the state dir.
    ValueError
        The body is not a consistent status document.

    Examples
    --------
    >>> read_gateway("http://127.0.0.1:9/", 1.0)  # nothing listens on port 9
    Traceback (most recent call last):
    ...
    urllib.error.URLError: <urlopen error [Errno 111] Connection refused>
    """
    import urllib.error
    import urllib.request

    request = urllib.request.Request(gateway_url(location),
                                     headers={"Accept": "application/json"})
    token = os.environ.get("TAU_GATEWAY_AUTH_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _opener().open(request, timeout=timeout_s) as response:
            body = response.read(MAX_GATEWAY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        unavailable = _unavailable(exc) if exc.code == 503 else None
        if unavailable is None:
            raise
        return unavailable
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise TimeoutError(one_line(exc)) from exc
        raise
    if len(body) > MAX_GATEWAY_BYTES:
        raise OSError(f"gateway answer over {MAX_GATEWAY_BYTES} bytes")
    document = gateway_document(jsonio.parse_json(body))
    return MemberRead(document=document, paused=document.get("runner_paused", False))


_UNAVAILABLE_REASONS = {"state_missing": "no_cycle", "state_corrupt": "invalid_state"}


def _unavailable(error: Any) -> MemberRead | None:
    """A gateway's 503 for a state dir with no ``state.json`` yet or a corrupt one, read as
    that state dir reads (no cycle, or invalid, and the pause), so it is judged the same;
    None when the body is not such an answer (then the 503 is an HTTP error)."""
    try:
        body = error.read(MAX_GATEWAY_BYTES + 1)
        document = jsonio.parse_json(body) if len(body) <= MAX_GATEWAY_BYTES else None
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    code, reasons = document.get("error"), document.get("rollout_gate_reasons")
    paused, message = document.get("runner_paused"), document.get("message")
    if (code not in _UNAVAILABLE_REASONS or document.get("rollout_gate") != "hold"
            or not isinstance(paused, bool) or not isinstance(reasons, list)
            or reasons != [_UNAVAILABLE_REASONS[code]] + (["runner_paused"] if paused else [])):
        return None
    invalid = (one_line(ValueError(message)) if isinstance(message, str) and message
               else "state.json is corrupt")
    return MemberRead(invalid=invalid[:200] if code == "state_corrupt" else "", paused=paused)


@dataclass(frozen=True)
class GatewayVerdict:
    """A gateway member judged by the fleet (see :func:`gateway_verdict`).

    Attributes
    ----------
    rollout_gate : str
        ``pass`` only when ``rollout_gate_reasons`` is empty.
    rollout_gate_reasons : list of str
        The fleet's own reasons and the gateway's, in the shared order.
    health_state, health_reason : str
        The worse of the fleet's reading and the gateway's, and why.
    updated_unix_ms, state_age_ms, failure_streak, queue_depth : int
        From the stored health; the age is the older of the fleet's and the
        gateway's (ms).
    """

    rollout_gate: str
    rollout_gate_reasons: list[str]
    health_state: str
    health_reason: str
    updated_unix_ms: int
    state_age_ms: int
    failure_streak: int
    queue_depth: int


def _whole(value: object, default: int = 0) -> int:
    """A whole number of ms from a document; ``default`` when it is anything else."""
    return value if isinstance(value, int) and jsonio.is_json_int(value) else default


def _pause(deployment: dict[str, Any]) -> health.PauseMarker:
    info = deployment.get("pause")
    info = info if isinstance(info, dict) else {}
    when = info.get("paused_unix_ms")
    by, why = info.get("paused_by"), info.get("reason")
    return health.PauseMarker(
        paused_unix_ms=when if isinstance(when, int) and jsonio.is_json_int(when) and when > 0
        else None,
        paused_by=by if isinstance(by, str) else None,
        reason=why if isinstance(why, str) else None)


def gateway_verdict(document: dict[str, Any], *, now_ms: int, stale_after_ms: int,
                    skew_tolerance_ms: int) -> GatewayVerdict:
    """Judge a gateway's status document by the fleet's gate, as a state dir is judged.

    The stored health and pause the gateway reports go through
    :func:`tau_ops.health.gate_decision` at the fleet's time with the fleet's
    freshness and skew limits; the gateway's own reasons are added, and
    ``stale_state`` when it marks its state stale or reports an age past the
    fleet's limit, so a document the gateway holds never passes.

    Parameters
    ----------
    document : dict
        A document :func:`gateway_document` accepted.
    now_ms : int
        When the fleet is judged, Unix epoch ms.
    stale_after_ms : int
        The fleet's freshness limit, ms.
    skew_tolerance_ms : int
        How far ahead of the fleet's clock a last cycle may lie, ms.

    Returns
    -------
    GatewayVerdict
        The member's gate, reasons and health.

    Examples
    --------
    >>> doc = {"rollout_gate": "pass", "rollout_gate_reasons": [], "health_state": "healthy",
    ...        "stale": True, "runner_paused": False, "deployment": {"health": {
    ...            "updated_unix_ms": 1_000, "last_cycle_discovered": 1,
    ...            "last_cycle_processed": 1, "last_cycle_completed": 1}}}
    >>> gateway_verdict(doc, now_ms=2_000, stale_after_ms=60_000,
    ...                 skew_tolerance_ms=0).rollout_gate_reasons
    ['stale_state']
    """
    deployment = document["deployment"]
    snapshot = HealthSnapshot.model_validate(deployment["health"])
    decision = health.gate_decision(
        snapshot, now_ms=now_ms, stale_after_ms=stale_after_ms,
        skew_tolerance_ms=skew_tolerance_ms,
        pause=_pause(deployment) if document.get("runner_paused") else None)
    reported_age = document.get("state_age_ms", 0)
    # the summary's reasons and the deployment section's own: a hold in either holds
    codes = (set(decision.rollout_gate_reasons) | set(document["rollout_gate_reasons"])
             | set(deployment.get("rollout_gate_reasons", [])))
    # the gateway's own view, in its summary or its deployment section, holds as well
    own_age = deployment.get("state_age_ms", 0)
    own_limit = deployment.get("stale_after_ms", stale_after_ms)
    if decision.has_cycle and (
            document.get("stale") or deployment.get("stale") or reported_age > stale_after_ms
            or _whole(own_age) > min(stale_after_ms, _whole(own_limit, stale_after_ms))):
        codes.add("stale_state")
    own_skew = _whole(deployment.get("clock_skew_ms", 0))
    own_tolerance = _whole(deployment.get("clock_skew_tolerance_ms", skew_tolerance_ms),
                           skew_tolerance_ms)
    if own_skew > min(skew_tolerance_ms, own_tolerance):
        codes.add("clock_skew")
    ours = decision.health_state
    theirs = max(document["health_state"], deployment.get("health_state", "healthy"),
                 key=HEALTH_STATES.index)
    worse = HEALTH_STATES.index(theirs) > HEALTH_STATES.index(ours)
    if theirs != "healthy":  # a non-healthy state reported anywhere holds as the gate would
        codes.add(f"health_{theirs}")
    reasons = [code for code in health.GATE_REASONS if code in codes]
    return GatewayVerdict(
        rollout_gate="hold" if reasons else "pass", rollout_gate_reasons=reasons,
        health_state=theirs if worse else ours,
        health_reason=str(document.get("health_reason", "")) if worse
        else decision.health_reason,
        updated_unix_ms=snapshot.updated_unix_ms,
        state_age_ms=max(decision.state_age_ms, reported_age) if decision.has_cycle else 0,
        failure_streak=snapshot.failure_streak, queue_depth=snapshot.queue_depth,
    )
