"""Deployment contract: load and validate fixtures, evaluate cases, check expectations.

A fixture is refused whole at load time (before anything is written) when it
breaks a rule of SPEC section 2. Evaluation is a pure function of the case
(plus the manifest file a WASM case names), so a cycle can evaluate its whole
queue before it changes any state.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from tau_ops import jsonio
from tau_ops._gc import paused_gc
from tau_ops.errors import ContractViolation, FixtureError, InputError
from tau_ops.jsonio import LIMITS, JSONPolicyError, parse_json, read_bounded
from tau_ops.models import (
    ERROR_CODES,
    MAX_PATH_FIELD_BYTES,
    CaseResult,
    Fixture,
    FixtureCase,
)
from tau_ops.storage import safe_component

SUPPORTED_TARGETS = ("container", "kubernetes", "wasm")
SUPPORTED_RUNTIMES = ("native", "wasm_wasi")
SUPPORTED_ENVIRONMENTS = ("staging", "production")
COMPATIBLE = {"container": "native", "kubernetes": "native", "wasm": "wasm_wasi"}
ROLLOUT_STRATEGY = {"kubernetes": "rolling", "container": "recreate", "wasm": "canary"}


class ManifestInfo(Protocol):
    """What a verified WASM manifest contributes to a rollout."""

    @property
    def runtime_profile(self) -> str: ...
    @property
    def artifact_path(self) -> str: ...
    @property
    def artifact_sha256(self) -> str: ...
    @property
    def artifact_size_bytes(self) -> int: ...
    @property
    def capability_constraints(self) -> list[str]: ...


ManifestLoader = Callable[[Path], ManifestInfo]


@functools.lru_cache(maxsize=4096)
def norm(value: str) -> str:
    """Trim and lower-case, as every comparison of targets, runtimes and environments does.

    Cached: a fixture repeats a handful of targets, runtimes and environments.
    """
    return value.strip().lower()


def case_key(case: FixtureCase) -> str:
    """The case's identity key, ``target:runtime:environment:blueprint_id:case_id``.

    The four scope fields are trimmed and lower-cased, the case id only
    trimmed (SPEC section 3); the runner uses the key to find duplicates and
    to record processed cases.

    Parameters
    ----------
    case : FixtureCase
        One validated fixture case.

    Returns
    -------
    str
        The colon-joined key.

    Examples
    --------
    >>> from tau_ops import FixtureCase
    >>> case = FixtureCase.model_validate({
    ...     "schema_version": 1, "case_id": " c-1 ", "deploy_target": "Container",
    ...     "runtime_profile": "native", "blueprint_id": "BP", "environment": "Prod",
    ...     "region": "iad", "expected": {"outcome": "success", "status_code": 201,
    ...                                   "response_body": {}}})
    >>> case_key(case)
    'container:native:prod:bp:c-1'
    """
    return ":".join(
        (
            norm(case.deploy_target),
            norm(case.runtime_profile),
            norm(case.environment),
            norm(case.blueprint_id),
            case.case_id.strip(),
        )
    )


def _describe_validation_error(exc: ValidationError, raw: Any) -> tuple[str, str | None, str]:
    errors = exc.errors()
    loc = list(errors[0]["loc"]) if errors else []
    case_id: str | None = None
    skip = 0
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        index = loc[1]
        try:
            cid = raw["cases"][index].get("case_id")
        except (KeyError, IndexError, TypeError, AttributeError):
            cid = None
        case_id = cid if isinstance(cid, str) and cid.strip() else f"#{index}"
        skip = 2
    field, message = jsonio.describe_schema_error(errors, skip=skip)
    if errors and errors[0]["type"] == "string_pattern_mismatch":
        message = "must not be empty"
    elif loc and loc[-1] == "schema_version" and errors[0]["type"] != "missing":
        message = f"must be 1 (got {jsonio.json_text(errors[0].get('input'))})"
    return field or "(fixture)", case_id, message


def _check_rules(fixture: Fixture, path: str) -> None:
    seen: dict[str, str] = {}
    keys: dict[str, str] = {}
    folders: dict[str, tuple[str, str]] = {}
    blueprints: set[str] = set()
    for case in fixture.cases:
        cid = case.case_id

        def fail(field: str, message: str, cid: str = cid) -> FixtureError:
            return FixtureError(
                f"fixture {path}: case '{cid}' field '{field}': {message}",
                path=path, case_id=cid, field=field,
            )

        for name in ("case_id", "blueprint_id"):
            size = len(getattr(case, name).encode("utf-8"))
            if size > MAX_PATH_FIELD_BYTES:
                raise fail(name, f"is {size} bytes long; at most {MAX_PATH_FIELD_BYTES} "
                                 "bytes (UTF-8) are allowed because it names files")
        if cid in seen:
            raise fail("case_id", "duplicate case_id")
        seen[cid] = cid
        key = case_key(case)
        other = keys.setdefault(key, cid)
        if other != cid:
            raise fail("blueprint_id", f"case key {key!r} collides with case '{other}'")
        if case.blueprint_id in blueprints:
            _check_expectation(case, fail)
            continue
        blueprints.add(case.blueprint_id)
        folder = safe_component(case.blueprint_id)
        owner = folders.setdefault(folder.lower(), (case.blueprint_id, cid))
        if owner[0] != case.blueprint_id:
            raise fail(
                "blueprint_id",
                f"blueprint {case.blueprint_id!r} and blueprint {owner[0]!r} of case "
                f"'{owner[1]}' would share the channel folder {folder!r}",
            )
        _check_expectation(case, fail)


def _check_expectation(case: FixtureCase, fail: Callable[[str, str], FixtureError]) -> None:
    exp = case.expected
    retryable = exp.outcome == "retryable_failure"
    if case.simulate_retryable_failure != retryable:
        raise fail(
            "simulate_retryable_failure",
            "must be true exactly when expected.outcome is retryable_failure",
        )
    if exp.outcome == "success":
        if exp.error_code:
            raise fail("expected.error_code", "must be empty for outcome success")
        if not 200 <= exp.status_code <= 299:
            raise fail("expected.status_code", "must be 2xx for outcome success")
    else:
        if exp.error_code not in ERROR_CODES:
            raise fail(
                "expected.error_code",
                f"must be one of {', '.join(ERROR_CODES)} for outcome {exp.outcome}",
            )
        if exp.status_code < 400:
            raise fail("expected.status_code", f"must be >= 400 for outcome {exp.outcome}")
    if exp.outcome == "malformed_input":
        return
    target, runtime, env = norm(case.deploy_target), norm(case.runtime_profile), norm(
        case.environment
    )
    if target not in SUPPORTED_TARGETS:
        raise fail("deploy_target", f"unsupported target {case.deploy_target!r}")
    if runtime not in SUPPORTED_RUNTIMES:
        raise fail("runtime_profile", f"unsupported runtime {case.runtime_profile!r}")
    if env not in SUPPORTED_ENVIRONMENTS:
        raise fail("environment", f"unsupported environment {case.environment!r}")
    if COMPATIBLE[target] != runtime:
        raise fail("runtime_profile", f"runtime {runtime} is incompatible with target {target}")
    if target == "wasm":
        if not case.wasm_module and not case.wasm_manifest:
            raise fail("wasm_module", "a wasm case needs wasm_module or wasm_manifest")
    elif not case.container_image:
        raise fail("container_image", f"a {target} case needs container_image")


def parse_fixture(data: bytes | str, *, source: str = "<fixture>") -> Fixture:
    """Parse and validate fixture JSON under the one JSON policy of :mod:`tau_ops.jsonio`.

    Parameters
    ----------
    data : bytes or str
        The fixture document (UTF-8).
    source : str
        Where it came from, for messages.

    Returns
    -------
    Fixture
        The validated fixture; every string field trimmed.

    Raises
    ------
    FixtureError
        Invalid JSON (duplicate key, NaN, nesting deeper than 64, ...), a field of
        the wrong JSON type (``true`` or ``1.0`` where an integer is required), or
        a rule of SPEC section 2 broken; the message names the case and field.

    Examples
    --------
    >>> parse_fixture('{"schema_version": true}')
    Traceback (most recent call last):
    ...
    tau_ops.errors.FixtureError: fixture <fixture>: field 'schema_version': must be 1 (got true)
    """
    # One pause of the cyclic collector over the whole bulk allocation: each pause's end
    # scans every object made during it once, so two pauses would scan the parse twice.
    with paused_gc():
        try:
            raw = parse_json(data)
        except JSONPolicyError as exc:
            raise FixtureError(f"fixture {source}: invalid JSON: {exc}", path=source) from exc
        if not isinstance(raw, dict):
            raise FixtureError(f"fixture {source}: top level must be a JSON object", path=source)
        try:
            fixture = Fixture.model_validate(raw)
        except ValidationError as exc:
            field, case_id, message = _describe_validation_error(exc, raw)
            where = f"case '{case_id}' field '{field}'" if case_id else f"field '{field}'"
            raise FixtureError(
                f"fixture {source}: {where}: {message}", path=source, case_id=case_id, field=field
            ) from exc
        del raw
        _check_rules(fixture, source)
    return fixture


def load_fixture(path: Path | str) -> Fixture:
    """Read and validate a fixture file; the whole file is refused on the first bad field.

    Parameters
    ----------
    path : Path or str
        A regular file of at most ``jsonio.LIMITS["fixture"]`` bytes.

    Returns
    -------
    Fixture
        The validated fixture.

    Raises
    ------
    FixtureError
        The file is missing, not a regular file (``/dev/zero``, a FIFO), too
        large, unreadable, or invalid (see :func:`parse_fixture`).

    Examples
    --------
    >>> try:
    ...     load_fixture("/dev/zero")
    ... except FixtureError as exc:
    ...     print(exc.message.split(": ", 1)[1])
    fixture /dev/zero is not a regular file (character device)
    """
    path = Path(path)
    try:
        data = read_bounded(path, max_bytes=LIMITS["fixture"], what="fixture")
    except OSError as exc:
        raise FixtureError(
            f"cannot read fixture {path}: {exc.strerror or exc}", path=path
        ) from exc
    return parse_fixture(data, source=str(path))


def _rejected(status: int, error_code: str, reason: str) -> CaseResult:
    return CaseResult(
        outcome="malformed_input",
        status_code=status,
        error_code=error_code,
        response_body={"status": "rejected", "reason": reason},
    )


def default_manifest_loader(path: Path) -> ManifestInfo:
    """Load and fully verify a packaged WASM manifest (hash, size, parse, compliance)."""
    from tau_ops.wasm.inspect import load_verified_manifest

    return load_verified_manifest(path)


def evaluate_case(
    case: FixtureCase, *, manifest_loader: ManifestLoader = default_manifest_loader
) -> CaseResult:
    """Evaluate one case by the first rule of SPEC section 2 that applies.

    The rules, in order: a simulated retryable failure (503), an unsupported
    target, runtime profile or environment (400), a runtime that does not fit
    the target (422), a WASM case whose manifest is missing or unverifiable
    (400 ``deployment_missing_artifact``), else accepted (201). Status codes
    and error codes are the seed's.

    Parameters
    ----------
    case : FixtureCase
        One validated fixture case.
    manifest_loader : callable, optional
        ``Path -> ManifestInfo``; loads the WASM manifest named by the case. The
        default verifies it fully (hash, size, parse, compliance); an
        ``InputError`` from the loader makes the case a rejection, not an error.

    Returns
    -------
    CaseResult
        ``outcome`` (``success``, ``malformed_input`` or ``retryable_failure``),
        ``status_code`` (HTTP), ``error_code`` and ``response_body``.

    Examples
    --------
    >>> from tau_ops import FixtureCase
    >>> case = FixtureCase.model_validate({
    ...     "schema_version": 1, "case_id": "c-1", "deploy_target": "mainframe",
    ...     "runtime_profile": "native", "blueprint_id": "bp", "environment": "prod",
    ...     "region": "iad", "expected": {"outcome": "malformed_input", "status_code": 400,
    ...                                   "response_body": {}}})
    >>> result = evaluate_case(case)
    >>> result.status_code, result.error_code, result.response_body["reason"]
    (400, 'deployment_invalid_blueprint', 'unsupported_target')
    """
    if case.simulate_retryable_failure:
        return CaseResult(
            outcome="retryable_failure",
            status_code=503,
            error_code="deployment_backend_unavailable",
            response_body={"status": "retryable", "reason": "control_plane_unavailable"},
        )
    target, runtime, env = norm(case.deploy_target), norm(case.runtime_profile), norm(
        case.environment
    )
    if target not in SUPPORTED_TARGETS:
        return _rejected(400, "deployment_invalid_blueprint", "unsupported_target")
    if runtime not in SUPPORTED_RUNTIMES:
        return _rejected(400, "deployment_invalid_blueprint", "unsupported_runtime_profile")
    if env not in SUPPORTED_ENVIRONMENTS:
        return _rejected(400, "deployment_invalid_blueprint", "unsupported_environment")
    if COMPATIBLE[target] != runtime:
        return _rejected(422, "deployment_unsupported_runtime", "runtime_target_mismatch")
    body: dict[str, Any] = {
        "status": "accepted",
        "blueprint_id": case.blueprint_id,
        "deploy_target": target,
        "runtime_profile": runtime,
        "environment": env,
        "region": case.region,
        "replicas": case.replicas,
        "rollout_strategy": ROLLOUT_STRATEGY[target],
    }
    if target == "wasm":
        if case.wasm_manifest.strip():
            try:
                manifest = manifest_loader(Path(case.wasm_manifest))
            except InputError:
                return _rejected(400, "deployment_missing_artifact", "invalid_wasm_manifest")
            if norm(manifest.runtime_profile) != runtime:
                return _rejected(
                    422, "deployment_unsupported_runtime", "wasm_manifest_runtime_mismatch"
                )
            body.update(
                artifact=manifest.artifact_path,
                artifact_sha256=manifest.artifact_sha256,
                artifact_size_bytes=manifest.artifact_size_bytes,
                artifact_manifest=case.wasm_manifest,
                runtime_constraints=list(manifest.capability_constraints),
            )
        elif case.wasm_module.strip():
            body["artifact"] = case.wasm_module
        else:
            return _rejected(400, "deployment_missing_artifact", "missing_wasm_module")
        return CaseResult(
            outcome="success", status_code=201, error_code="", response_body=body
        )
    if not case.container_image.strip():
        return _rejected(400, "deployment_missing_artifact", "missing_container_image")
    body["artifact"] = case.container_image
    return CaseResult(
        outcome="success", status_code=202, error_code="", response_body=body
    )


def json_equal(left: Any, right: Any) -> bool:
    """Compare two parsed JSON values by JSON type, as ``serde_json::Value`` does.

    ``true`` is not ``1`` and ``3.0`` is not ``3`` (Python's ``==`` says they are).

    Parameters
    ----------
    left, right : Any
        Values as :func:`tau_ops.jsonio.parse_json` returns them.

    Returns
    -------
    bool
        True when both have the same JSON type and value, recursively.

    Examples
    --------
    >>> json_equal({"a": [1, True]}, {"a": [1, True]}), json_equal(True, 1), json_equal(3.0, 3)
    (True, False, False)
    """
    kind = left.__class__
    if kind is not right.__class__:
        return False
    if kind is dict:
        if len(left) != len(right):
            return False
        for key, value in left.items():
            other = right.get(key, _MISSING)
            if value.__class__ is not other.__class__:
                return False
            if value.__class__ in _CONTAINERS:
                if not json_equal(value, other):
                    return False
            elif value != other:
                return False
        return True
    if kind is list:
        return len(left) == len(right) and all(
            json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)


_MISSING = object()
_CONTAINERS = (dict, list)


def check_expected(case: FixtureCase, observed: CaseResult) -> None:
    """Raise :class:`ContractViolation` naming the first field where observed != expected.

    Values are compared by JSON type (:func:`json_equal`).
    """
    expected = case.expected
    # outcome, status_code and error_code are typed by the models; only the body is free JSON.
    for field in ("outcome", "status_code", "error_code", "response_body"):
        want, got = getattr(expected, field), getattr(observed, field)
        if (want != got) if field != "response_body" else not json_equal(want, got):
            raise ContractViolation(
                f"contract violation in case '{case.case_id}' field '{field}': "
                f"expected {json.dumps(want, sort_keys=True)}, "
                f"observed {json.dumps(got, sort_keys=True)}",
                case_id=case.case_id,
                field=field,
            )
