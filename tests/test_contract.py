"""Fixture loading, validation and case evaluation (SPEC section 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import TESTDATA, fixture, malformed_case, retryable_case, success_case

from tau_ops import FixtureError, case_key, evaluate_case, load_fixture, parse_fixture
from tau_ops.contract import check_expected
from tau_ops.errors import ContractViolation, ManifestError
from tau_ops.models import FixtureCase


def _case(**overrides: Any) -> FixtureCase:
    raw = success_case("c1")
    raw.update(overrides)
    return FixtureCase.model_validate(raw)


def _body(result: Any) -> dict[str, Any]:
    return {"outcome": result.outcome, "status_code": result.status_code,
            "error_code": result.error_code, "response_body": result.response_body}


def _rejected(status: int, code: str, reason: str) -> dict[str, Any]:
    return {"outcome": "malformed_input", "status_code": status, "error_code": code,
            "response_body": {"status": "rejected", "reason": reason}}


def test_checked_in_fixtures_load() -> None:
    passing = load_fixture(TESTDATA / "deployment-contract/rollout-pass.json")
    mixed = load_fixture(TESTDATA / "deployment-contract/mixed-outcomes.json")
    assert {c.expected.outcome for c in passing.cases} == {"success"}
    assert {c.expected.outcome for c in mixed.cases} == {
        "success", "malformed_input", "retryable_failure"}


def test_simulated_retryable_failure_row() -> None:
    result = evaluate_case(_case(simulate_retryable_failure=True))
    assert _body(result) == {
        "outcome": "retryable_failure", "status_code": 503,
        "error_code": "deployment_backend_unavailable",
        "response_body": {"status": "retryable", "reason": "control_plane_unavailable"},
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"deploy_target": "lambda"},
         _rejected(400, "deployment_invalid_blueprint", "unsupported_target")),
        ({"runtime_profile": "jvm"},
         _rejected(400, "deployment_invalid_blueprint", "unsupported_runtime_profile")),
        ({"environment": "qa"},
         _rejected(400, "deployment_invalid_blueprint", "unsupported_environment")),
        ({"runtime_profile": "wasm_wasi"},
         _rejected(422, "deployment_unsupported_runtime", "runtime_target_mismatch")),
        ({"container_image": "  "},
         _rejected(400, "deployment_missing_artifact", "missing_container_image")),
        ({"deploy_target": "wasm", "runtime_profile": "wasm_wasi", "wasm_module": ""},
         _rejected(400, "deployment_missing_artifact", "missing_wasm_module")),
    ],
)
def test_rejection_rows(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    assert _body(evaluate_case(_case(**overrides))) == expected


def test_first_rule_wins_target_before_runtime() -> None:
    result = evaluate_case(_case(deploy_target="lambda", runtime_profile="jvm", environment="qa"))
    assert result.response_body["reason"] == "unsupported_target"


class _Manifest:
    def __init__(self, runtime: str) -> None:
        self.runtime_profile = runtime
        self.artifact_path = "abc.wasm"
        self.artifact_sha256 = "a" * 64
        self.artifact_size_bytes = 8
        self.capability_constraints = ["no_native_process_exec"]


def _wasm_manifest_case() -> FixtureCase:
    return _case(deploy_target="wasm", runtime_profile="wasm_wasi", container_image="",
                 wasm_module="", wasm_manifest="m.manifest.json")


def test_invalid_manifest_row() -> None:
    def broken(path: Path) -> _Manifest:
        raise ManifestError(f"bad manifest {path}")

    result = evaluate_case(_wasm_manifest_case(), manifest_loader=broken)
    assert _body(result) == _rejected(400, "deployment_missing_artifact", "invalid_wasm_manifest")


def test_manifest_runtime_mismatch_row() -> None:
    result = evaluate_case(_wasm_manifest_case(),
                           manifest_loader=lambda p: _Manifest("channel_automation_wasi"))
    assert _body(result) == _rejected(
        422, "deployment_unsupported_runtime", "wasm_manifest_runtime_mismatch")


def test_manifest_success_body_carries_artifact_fields() -> None:
    result = evaluate_case(_wasm_manifest_case(), manifest_loader=lambda p: _Manifest("wasm_wasi"))
    assert result.status_code == 201
    assert result.response_body == {
        "status": "accepted", "blueprint_id": "cloud-api", "deploy_target": "wasm",
        "runtime_profile": "wasm_wasi", "environment": "staging", "region": "us-east-1",
        "replicas": 1, "rollout_strategy": "canary", "artifact": "abc.wasm",
        "artifact_sha256": "a" * 64, "artifact_size_bytes": 8,
        "artifact_manifest": "m.manifest.json",
        "runtime_constraints": ["no_native_process_exec"],
    }


@pytest.mark.parametrize(("target", "status", "strategy"),
                         [("kubernetes", 202, "rolling"), ("container", 202, "recreate"),
                          ("wasm", 201, "canary")])
def test_success_rows_normalize_and_pick_strategy(target: str, status: int, strategy: str) -> None:
    raw = success_case("c1", target=target, environment="staging")
    raw["deploy_target"] = f"  {target.upper()} "
    raw["environment"] = " Staging"
    result = evaluate_case(FixtureCase.model_validate(raw))
    assert result.outcome == "success" and result.status_code == status
    assert result.response_body["deploy_target"] == target
    assert result.response_body["environment"] == "staging"
    assert result.response_body["rollout_strategy"] == strategy


def test_case_key_trims_and_lowercases() -> None:
    raw = success_case(" Case-1 ", blueprint_id=" Edge ")
    raw["deploy_target"], raw["environment"] = "KUBERNETES", "Staging "
    assert case_key(FixtureCase.model_validate(raw)) == "kubernetes:native:staging:edge:Case-1"


def test_contract_violation_names_case_and_field() -> None:
    raw = success_case("c9")
    raw["expected"]["response_body"]["replicas"] = 5
    case = FixtureCase.model_validate(raw)
    with pytest.raises(ContractViolation) as info:
        check_expected(case, evaluate_case(case))
    assert (info.value.case_id, info.value.field) == ("c9", "response_body")
    assert "c9" in str(info.value) and "response_body" in str(info.value)


def _refused(doc: Any) -> FixtureError:
    with pytest.raises(FixtureError) as info:
        parse_fixture(json.dumps(doc), source="f.json")
    return info.value


@pytest.mark.parametrize(
    ("mutate", "case_id", "field"),
    [
        (lambda c: c.update(replicas=0), "c1", "replicas"),
        (lambda c: c.update(replicas=65536), "c1", "replicas"),
        (lambda c: c.update(region="  "), "c1", "region"),
        (lambda c: c.pop("blueprint_id"), "c1", "blueprint_id"),
        (lambda c: c.update(schema_version=2), "c1", "schema_version"),
        (lambda c: c["expected"].update(outcome="maybe"), "c1", "expected.outcome"),
        (lambda c: c["expected"].update(error_code="deployment_invalid_blueprint"),
         "c1", "expected.error_code"),
        (lambda c: c["expected"].update(status_code=200 + 300), "c1", "expected.status_code"),
        (lambda c: c.update(simulate_retryable_failure=True), "c1", "simulate_retryable_failure"),
        (lambda c: c.update(deploy_target="lambda"), "c1", "deploy_target"),
        (lambda c: c.update(runtime_profile="jvm"), "c1", "runtime_profile"),
        (lambda c: c.update(environment="qa"), "c1", "environment"),
        (lambda c: c.update(runtime_profile="wasm_wasi"), "c1", "runtime_profile"),
        (lambda c: c.update(container_image=""), "c1", "container_image"),
        (lambda c: c.update(replicas="3"), "c1", "replicas"),
    ],
)
def test_invalid_case_is_refused_naming_case_and_field(
    mutate: Any, case_id: str, field: str
) -> None:
    case = success_case("c1")
    mutate(case)
    error = _refused(fixture(case))
    assert (error.case_id, error.field) == (case_id, field)
    assert f"case '{case_id}'" in str(error) and field in str(error)


def test_wasm_case_without_artifact_is_refused() -> None:
    case = success_case("w1", target="wasm")
    case["wasm_module"] = ""
    assert _refused(fixture(case)).field == "wasm_module"


def test_retryable_case_needs_error_code_and_4xx() -> None:
    case = retryable_case("r1")
    case["expected"]["status_code"] = 302
    assert _refused(fixture(case)).field == "expected.status_code"
    case = retryable_case("r1")
    case["expected"]["error_code"] = "oops"
    assert _refused(fixture(case)).field == "expected.error_code"


def test_malformed_expectation_skips_support_checks() -> None:
    doc = fixture(malformed_case("m1", status=400, error_code="deployment_invalid_blueprint",
                                 reason="unsupported_target", deploy_target="lambda"))
    assert parse_fixture(json.dumps(doc)).cases[0].deploy_target == "lambda"


def test_duplicate_case_ids_are_refused() -> None:
    error = _refused(fixture(success_case("dup"), success_case(" dup ", blueprint_id="other")))
    assert (error.case_id, error.field) == ("dup", "case_id")


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"schema_version": 1, "name": "x", "cases": []}, "field 'cases'"),
        ({"schema_version": 2, "name": "x", "cases": [success_case("a")]}, "schema_version"),
        ({"schema_version": 1, "name": " ", "cases": [success_case("a")]}, "field 'name'"),
        ([1, 2], "top level must be a JSON object"),
    ],
)
def test_fixture_level_errors(doc: Any, fragment: str) -> None:
    assert fragment in str(_refused(doc))


def test_invalid_json_reports_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"schema_version": 1,\n "name": ')
    with pytest.raises(FixtureError, match=r"invalid JSON: .* line 2 column"):
        load_fixture(path)


def test_unreadable_fixture_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="cannot read fixture"):
        load_fixture(tmp_path / "missing.json")


# --- Issue 11.3 / 11.4: path-forming fields and collisions are refused at load ---------------


def _refusal(*cases: dict[str, Any]) -> FixtureError:
    with pytest.raises(FixtureError) as info:
        parse_fixture(json.dumps(fixture(*cases)), source="f.json")
    return info.value


@pytest.mark.parametrize("field", ["blueprint_id", "case_id"])
def test_path_forming_field_over_128_bytes_is_refused_at_load(field: str) -> None:
    case = success_case("c1", blueprint_id="b" * 300) if field == "blueprint_id" else \
        success_case("c" * 300)
    error = _refusal(case)
    assert (error.field, error.message.split(": ", 2)[2]) == (
        field, "is 300 bytes long; at most 128 bytes (UTF-8) are allowed because it names files")


def test_path_forming_field_limit_counts_utf8_bytes_and_allows_128() -> None:
    assert parse_fixture(json.dumps(fixture(success_case("c", blueprint_id="b" * 128))))
    error = _refusal(success_case("c", blueprint_id="é" * 65))  # 130 bytes, 65 characters
    assert error.field == "blueprint_id"


def test_colliding_case_keys_are_refused_naming_both_cases() -> None:
    first = success_case("c", blueprint_id="a:b")
    second = success_case("b:c", blueprint_id="a")
    error = _refusal(first, second)
    assert (error.case_id, error.field, error.message) == (
        "b:c", "blueprint_id",
        "fixture f.json: case 'b:c' field 'blueprint_id': case key "
        "'kubernetes:native:staging:a:b:c' collides with case 'c'")


def test_blueprints_sharing_a_channel_folder_are_refused_naming_both_cases() -> None:
    error = _refusal(success_case("one", blueprint_id="team/api"),
                     success_case("two", blueprint_id="team_api"))
    assert error.message == (
        "fixture f.json: case 'two' field 'blueprint_id': blueprint 'team_api' and blueprint "
        "'team/api' of case 'one' would share the channel folder 'team_api'")


def test_same_blueprint_in_many_cases_is_not_a_collision() -> None:
    loaded = parse_fixture(json.dumps(fixture(success_case("a"), success_case("b"))))
    assert [c.case_id for c in loaded.cases] == ["a", "b"]


# --- Issue 12.1: string fields are trimmed as the seed trims them ------------------------------


def test_padded_strings_are_trimmed_before_use() -> None:
    raw = success_case("c1", region="eu-west-1", blueprint_id="edge")
    raw.update(region=" eu-west-1 ", blueprint_id=" edge ", case_id=" c1 ",
               container_image=" ghcr.io/tau/app:1.0 ")
    case = FixtureCase.model_validate(raw)
    result = evaluate_case(case)
    check_expected(case, result)  # the trimmed expected body matches
    assert (case_key(case), result.response_body["region"], result.response_body["artifact"]) == (
        "kubernetes:native:staging:edge:c1", "eu-west-1", "ghcr.io/tau/app:1.0")


def test_padded_error_code_is_accepted_trimmed() -> None:
    raw = malformed_case("m", status=422, error_code=" deployment_unsupported_runtime ",
                         reason="runtime_target_mismatch", runtime_profile="wasm_wasi")
    loaded = parse_fixture(json.dumps(fixture(raw)))
    case = loaded.cases[0]
    assert case.expected.error_code == "deployment_unsupported_runtime"
    check_expected(case, evaluate_case(case))


def test_padded_manifest_path_is_loaded_trimmed(tmp_path: Path) -> None:
    seen: list[Path] = []

    class Manifest:
        runtime_profile = "wasm_wasi"
        artifact_path = "a.wasm"
        artifact_sha256 = "0" * 64
        artifact_size_bytes = 8
        capability_constraints = ["no_native_process_exec"]

    def loader(path: Path) -> Manifest:
        seen.append(path)
        return Manifest()

    case = _case(deploy_target="wasm", runtime_profile="wasm_wasi",
                 wasm_manifest="  out/edge.manifest.json  ")
    result = evaluate_case(case, manifest_loader=loader)
    assert (seen, result.response_body["artifact_manifest"]) == (
        [Path("out/edge.manifest.json")], "out/edge.manifest.json")


# --- Issue 12.12: JSON values compare by JSON type; duplicate keys refused ---------------------


@pytest.mark.parametrize(("field", "value"), [("replicas", True), ("replicas", 1.0)])
def test_response_body_compares_by_json_type(field: str, value: Any) -> None:
    raw = success_case("c1")
    raw["expected"]["response_body"][field] = value
    case = parse_fixture(json.dumps(fixture(raw))).cases[0]
    with pytest.raises(ContractViolation) as info:
        check_expected(case, evaluate_case(case))
    assert info.value.field == "response_body"


def test_json_equal_distinguishes_types() -> None:
    from tau_ops.contract import json_equal

    assert [json_equal(a, b) for a, b in [
        (True, 1), (3.0, 3), (0, False), ({"a": [1]}, {"a": [1.0]}), ({"a": [1]}, {"a": [1]}),
        ([1, 2], [1, 2, 3]), (None, None), ("x", "x"), (-0.0, 0.0)]] == [
        False, False, False, False, True, False, True, True, True]


def test_duplicate_key_in_a_fixture_is_refused() -> None:
    text = json.dumps(fixture(success_case("c1")))
    text = text.replace('"replicas": 1,', '"replicas": 1, "replicas": 2,', 1)
    with pytest.raises(FixtureError) as info:
        parse_fixture(text, source="f.json")
    assert info.value.message == "fixture f.json: invalid JSON: duplicate key 'replicas'"


# --- Issue 13.1 / 13.4 / 13.5: depth, non-regular files, strict integers ----------------------


def test_deeply_nested_fixture_is_bad_input() -> None:
    raw = success_case("c1")
    text = json.dumps(fixture(raw)).replace('"status": "accepted"',
                                            '"status": "accepted", "x": ' + "[" * 1000 + "]" * 1000)
    with pytest.raises(FixtureError) as info:
        parse_fixture(text, source="f.json")
    assert info.value.message == "fixture f.json: invalid JSON: nesting deeper than 64 levels"


def test_dev_zero_fixture_is_refused_without_reading() -> None:
    with pytest.raises(FixtureError) as info:
        load_fixture("/dev/zero")
    assert info.value.message == (
        "cannot read fixture /dev/zero: fixture /dev/zero is not a regular file "
        "(character device)")


@pytest.mark.parametrize(("where", "value"), [
    ("top", True), ("top", 1.0), ("case", True), ("case", 1.0)])
def test_schema_version_must_be_the_json_integer_1(where: str, value: Any) -> None:
    doc = fixture(success_case("c1"))
    (doc if where == "top" else doc["cases"][0])["schema_version"] = value
    with pytest.raises(FixtureError) as info:
        parse_fixture(json.dumps(doc))
    assert (info.value.field, info.value.message.rsplit(": ", 1)[1]) == (
        "schema_version", f"must be 1 (got {json.dumps(value)})")


@pytest.mark.parametrize(("field", "value"), [
    ("replicas", True), ("replicas", 2.0), ("expected.status_code", 202.0),
    ("expected.status_code", True)])
def test_integer_fields_refuse_bool_and_float(field: str, value: Any) -> None:
    raw = success_case("c1")
    if field == "replicas":
        raw["replicas"] = value
    else:
        raw["expected"]["status_code"] = value
    with pytest.raises(FixtureError) as info:
        parse_fixture(json.dumps(fixture(raw)))
    assert info.value.field == field


@pytest.mark.parametrize("image", ["img:" + "[" * 100, 'img:\\"' + "{" * 100, "img:\\\\"])
def test_brackets_inside_strings_are_not_nesting(image: str) -> None:
    raw = success_case("c1", image=json.loads(f'"{image}"'))
    loaded = parse_fixture(json.dumps(fixture(raw)))
    assert loaded.cases[0].container_image == json.loads(f'"{image}"')
