"""Fleets: every member kind, every policy, unreadable and slow members, mixed fleets."""

from __future__ import annotations

import http.server
import json
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from builders import retryable_case, run_cli, success_case, write_fixture
from test_gateway import TOKEN, gateway

from tau_ops.contract import load_fixture
from tau_ops.errors import UsageError
from tau_ops.fleet import FleetPolicy, MemberSpec, expand_members, fleet_status, read_member
from tau_ops.ops import create_snapshot, pause_runner
from tau_ops.runner import RunnerConfig, run_cycle


def _cycles(state_dir: Path, *cases: dict[str, object], times: int = 1) -> Path:
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    path = write_fixture(state_dir.parent, *cases, name=f"fx-{state_dir.name}")
    for _ in range(times):
        run_cycle(load_fixture(path), RunnerConfig(state_dir=state_dir))
    return state_dir


def _healthy(root: Path, name: str) -> Path:
    return _cycles(root / name / "deployment", success_case(f"api-{name}"))


def _degraded(root: Path, name: str) -> Path:
    return _cycles(root / name / "deployment", success_case("api"), retryable_case("flaky"))


@pytest.fixture
def regions(tmp_path: Path) -> Path:
    """Three regions' state dirs: iad and fra healthy, syd degraded."""
    _healthy(tmp_path, "iad")
    _healthy(tmp_path, "fra")
    _degraded(tmp_path, "syd")
    return tmp_path


def _gates(report: object) -> list[tuple[str, str, list[str]]]:
    return [(Path(m.name).parent.name, m.rollout_gate, m.rollout_gate_reasons)
            for m in report.members]  # type: ignore[attr-defined]


def test_all_healthy_state_dirs_pass(tmp_path: Path) -> None:
    members = [str(_healthy(tmp_path, n)) for n in ("iad", "fra")]
    report = fleet_status(members)
    assert (report.fleet_gate, report.fleet_gate_reasons) == ("pass", [])
    assert (report.member_count, report.pass_count) == (2, 2)
    assert [m.health_state for m in report.members] == ["healthy", "healthy"]


def test_one_degraded_member_holds_the_fleet_naming_it(regions: Path) -> None:
    report = fleet_status([str(regions / "*" / "deployment")])
    assert _gates(report) == [("fra", "pass", []), ("iad", "pass", []),
                              ("syd", "hold", ["health_degraded"])]
    assert report.fleet_gate_reasons == ["member_held"]
    assert report.fleet_gate_details == [f"{regions}/syd/deployment holds: health_degraded"]


def test_pass_fraction_lets_a_share_of_members_hold(regions: Path) -> None:
    members = [str(regions / "*" / "deployment")]
    assert fleet_status(members, policy=FleetPolicy(min_pass_fraction=0.6)).fleet_gate == "pass"
    held = fleet_status(members, policy=FleetPolicy(min_pass_fraction=0.7))
    assert held.fleet_gate_reasons == ["members_below_pass_fraction"]
    assert held.fleet_gate_details == [
        "2 of 3 members pass; the policy needs 3 (min_pass_fraction 0.7)"]


def test_required_label_must_exist_and_all_its_members_pass(regions: Path) -> None:
    members = [f"region=iad@{regions}/iad/deployment", f"region=syd@{regions}/syd/deployment",
               f"region=fra@{regions}/fra/deployment"]
    loose = FleetPolicy(min_pass_fraction=0.0, require=["region=iad"])
    assert fleet_status(members, policy=loose).fleet_gate == "pass"
    syd = fleet_status(members, policy=FleetPolicy(min_pass_fraction=0.0, require=["region=syd"]))
    assert syd.fleet_gate_reasons == ["required_member_held"]
    missing = fleet_status(members,
                           policy=FleetPolicy(min_pass_fraction=0.0, require=["region=ams"]))
    assert missing.fleet_gate_reasons == ["required_label_missing"]
    assert missing.members[0].labels == {"region": "iad"}


def test_paused_stale_empty_and_corrupt_members_hold_with_their_reason(tmp_path: Path) -> None:
    paused = _healthy(tmp_path, "paused")
    pause_runner(paused, reason="incident 42")
    stale = _healthy(tmp_path, "stale")
    empty = tmp_path / "empty" / "deployment"
    empty.mkdir(parents=True)
    corrupt = _healthy(tmp_path, "corrupt")
    (corrupt / "state.json").write_text("{not json")
    report = fleet_status([str(p) for p in (paused, stale, empty, corrupt)])
    assert _gates(report)[0] == ("paused", "hold", ["runner_paused"])
    assert _gates(report)[2] == ("empty", "hold", ["no_cycle"])
    assert _gates(report)[3] == ("corrupt", "hold", ["invalid_state"])
    later = fleet_status([str(stale)], clock=lambda: int(time.time() * 1000) + 2 * 86_400_000)
    assert _gates(later) == [("stale", "hold", ["stale_state"])]


def test_missing_state_dir_is_an_unreadable_member(tmp_path: Path) -> None:
    report = fleet_status([str(tmp_path / "nowhere")])
    (member,) = report.members
    assert (member.readable, member.rollout_gate_reasons) == (False, ["member_unreadable"])
    assert report.fleet_gate_reasons == ["member_unreadable"]
    assert "does not exist" in member.error


def test_snapshot_archive_is_read_without_extracting(regions: Path, tmp_path: Path) -> None:
    healthy = create_snapshot(regions / "iad" / "deployment", output=tmp_path / "iad.tar.gz")
    degraded = create_snapshot(regions / "syd" / "deployment", output=tmp_path / "syd.tar.gz")
    before = sorted(p.name for p in tmp_path.iterdir())
    report = fleet_status([healthy.archive_path, degraded.archive_path])
    assert [(m.kind, m.rollout_gate, m.rollout_gate_reasons) for m in report.members] == [
        ("snapshot", "pass", []), ("snapshot", "hold", ["health_degraded"])]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_damaged_archive_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    bomb = tmp_path / "big.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = tarfile.TarInfo("d/state.json")
        info.size = 300 * 1024 * 1024
        tar.addfile(info, _Zeros(info.size))  # type: ignore[arg-type]
    started = time.monotonic()
    report = fleet_status([str(junk), str(bomb)], timeout_s=30)
    assert [m.rollout_gate_reasons for m in report.members] == [["member_unreadable"]] * 2
    # The bounded verifier refuses the bomb from its headers, long before any deadline.
    assert "archive expands past" in report.members[1].error
    assert time.monotonic() - started < 20


class _Zeros:
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


def test_gateway_members_with_token(regions: Path) -> None:
    env = {"TAU_GATEWAY_AUTH_TOKEN": TOKEN}
    with gateway(regions / "iad" / "deployment", env=env) as iad, \
            gateway(regions / "syd" / "deployment", env=env) as syd:
        without_token = fleet_status([iad.url])
        assert without_token.members[0].rollout_gate_reasons == ["member_unreadable"]
        assert "401" in without_token.members[0].error
        import os
        os.environ["TAU_GATEWAY_AUTH_TOKEN"] = TOKEN
        try:
            report = fleet_status([iad.url, syd.url + "/gateway/status"])
        finally:
            del os.environ["TAU_GATEWAY_AUTH_TOKEN"]
    assert [(m.kind, m.rollout_gate, m.health_state) for m in report.members] == [
        ("gateway", "pass", "healthy"), ("gateway", "hold", "degraded")]
    assert report.members[1].failure_streak == 1


@contextmanager
def _slow_server(delay_s: float) -> Iterator[str]:
    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            time.sleep(delay_s)
            body = json.dumps({"rollout_gate": "pass"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_slow_and_refusing_gateways_hold_the_fleet_within_the_deadline() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with _slow_server(3.0) as slow:
        start = time.monotonic()
        report = fleet_status([slow, f"http://127.0.0.1:{closed_port}/"], timeout_s=0.5)
        elapsed = time.monotonic() - start
    assert elapsed < 2.5  # both read at once, each bounded by the deadline
    assert [m.rollout_gate_reasons for m in report.members] == [["member_timeout"],
                                                                ["member_unreadable"]]
    assert report.fleet_gate_reasons == ["member_unreadable", "member_timeout"]


def test_a_document_that_is_not_a_gateway_status_is_unreadable() -> None:
    spec = MemberSpec("http://127.0.0.1:9/", "gateway")
    member = read_member(spec, now_ms=0, stale_after_ms=1, timeout_s=0.5)
    assert member.readable is False


def test_mixed_fleet_keeps_member_order_and_kinds(regions: Path, tmp_path: Path) -> None:
    archive = create_snapshot(regions / "fra" / "deployment", output=tmp_path / "fra.tgz")
    with gateway(regions / "iad" / "deployment") as iad:
        report = fleet_status([iad.url, archive.archive_path, str(regions / "syd/deployment")])
    assert [(m.kind, m.rollout_gate) for m in report.members] == [
        ("gateway", "pass"), ("snapshot", "pass"), ("state_dir", "hold")]


@pytest.mark.parametrize("members,message", [
    ([], "at least one member"),
    (["/nonexistent-dir-*/x"], "matches nothing"),
    (["region=iad@  "], "names nothing"),
    (["=x@/tmp"], "must be KEY=VALUE"),
])
def test_bad_members_are_usage_errors(members: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        expand_members(members)


def test_cli_gate_exit_codes_and_json(regions: Path) -> None:
    ok = run_cli("fleet", "gate", f"{regions}/iad/deployment", f"{regions}/fra/deployment")
    assert ok.returncode == 0, ok.stderr
    first = ok.stdout.splitlines()[0]
    assert first == "fleet gate: rollout_gate=pass members=2 pass=2 reasons=none"
    held = run_cli("fleet", "gate", f"{regions}/*/deployment", "--json")
    assert held.returncode == 1
    doc = json.loads(held.stdout)
    assert (doc["fleet_gate"], doc["fleet_gate_reasons"], doc["pass_count"]) == (
        "hold", ["member_held"], 2)
    status = run_cli("fleet", "status", f"{regions}/*/deployment")
    assert status.returncode == 0
    assert "syd/deployment" in status.stdout and "health_degraded" in status.stdout


@pytest.mark.parametrize("args", [
    ["fleet", "gate"],
    ["fleet", "gate", "/nonexistent-*"],
    ["fleet", "gate", ".", "--min-pass-fraction", "1.5"],
    ["fleet", "gate", ".", "--timeout-s", "0"],
    ["fleet", "gate", ".", "--max-workers", "100"],
    ["fleet", "explode", "."],
])
def test_cli_bad_input_exits_2_with_one_line(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


# --- hostile members (found by a breaker) --------------------------------------------------

@contextmanager
def _http(handler_body: object) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback server whose GET runs ``handler_body(handler)``; records request headers."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(dict(self.headers))
            handler_body(self)  # type: ignore[operator]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _answer(body: bytes, status: int = 200, **headers: str) -> object:
    def reply(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return reply


def test_a_redirect_is_refused_and_the_token_never_follows_it(monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    monkeypatch.setenv("TAU_GATEWAY_AUTH_TOKEN", "s3cret-token")
    with _http(_answer(b"{}")) as (other, other_seen), \
            _http(_answer(b"", 302, Location=other + "/steal")) as (first, _):
        report = fleet_status([first + "/gateway/status"], timeout_s=2)
    assert report.members[0].rollout_gate_reasons == ["member_unreadable"]
    assert "redirect" in report.members[0].error
    assert other_seen == []


@pytest.mark.parametrize("body", [
    b'{"rollout_gate": "pass"}',
    b'{"rollout_gate": "pass", "rollout_gate_reasons": [], "health_state": "failing"}',
    b'{"rollout_gate": "hold", "rollout_gate_reasons": [], "health_state": "healthy"}',
    b'[1, 2]',
    *(b'{"rollout_gate": "pass", "rollout_gate_reasons": [], "health_state": "healthy", '
      + field for field in (
          b'"updated_unix_ms": 1000000000000000000000000000000}', b'"updated_unix_ms": -5}',
          b'"updated_unix_ms": 1e300}', b'"queue_depth": true}', b'"runner_paused": true}',
          b'"runner_paused": "no"}')),
])
def test_a_document_that_is_not_a_consistent_gateway_status_is_unreadable(body: bytes) -> None:
    with _http(_answer(body)) as (url, _):
        report = fleet_status([url], timeout_s=2)
    assert (report.fleet_gate, report.members[0].rollout_gate_reasons) == (
        "hold", ["member_unreadable"])


def test_a_server_dripping_bytes_is_timed_out_at_the_deadline() -> None:
    def drip(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(40):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.2)

    with _http(drip) as (url, _):
        start = time.monotonic()
        report = fleet_status([url], timeout_s=0.8)
        elapsed = time.monotonic() - start
    assert report.members[0].rollout_gate_reasons == ["member_timeout"]
    assert elapsed < 2.0


def test_a_fifo_named_like_an_archive_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "member.tar.gz"
    os.mkfifo(fifo)
    start = time.monotonic()
    report = fleet_status([str(fifo)], timeout_s=1)
    assert time.monotonic() - start < 1.5
    assert report.members[0].rollout_gate_reasons in (["member_unreadable"], ["member_timeout"])


def _rewrite(archive: Path, out: Path, change: object) -> Path:
    """Copy ``archive`` member by member, letting ``change(name, data)`` edit or add entries."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            handle = src.extractfile(member)
            data = handle.read() if handle else b""
            for name, body in change(member.name, data):  # type: ignore[operator]
                info = tarfile.TarInfo(name)
                info.size = len(body)
                import io
                dst.addfile(info, io.BytesIO(body))
    return out


def test_tampered_doubled_and_two_root_archives_are_unreadable(regions: Path,
                                                               tmp_path: Path) -> None:
    good = Path(create_snapshot(regions / "syd" / "deployment",
                                output=tmp_path / "syd.tar.gz").archive_path)
    healthy = (regions / "iad" / "deployment" / "state.json").read_bytes()

    def tamper(name: str, data: bytes) -> list[tuple[str, bytes]]:
        return [(name, healthy if name.endswith("/state.json") else data)]

    def doubled(name: str, data: bytes) -> list[tuple[str, bytes]]:
        return ([(name, healthy), (name, data)] if name.endswith("/state.json")
                else [(name, data)])

    def two_roots(name: str, data: bytes) -> list[tuple[str, bytes]]:
        return [(name, data)] + ([("other/state.json", healthy)]
                                 if name.endswith("/state.json") else [])

    archives = [_rewrite(good, tmp_path / f"{fn.__name__}.tar.gz", fn)
                for fn in (tamper, doubled, two_roots)]
    report = fleet_status([str(a) for a in archives])
    assert [m.rollout_gate_reasons for m in report.members] == [["member_unreadable"]] * 3
    assert report.fleet_gate == "hold"


def test_the_same_member_twice_is_refused(regions: Path) -> None:
    with pytest.raises(UsageError, match="list each member once"):
        expand_members([f"{regions}/iad/deployment", f"{regions}/iad/../iad/deployment"])


def test_conflicting_labels_are_refused() -> None:
    with pytest.raises(UsageError, match="twice"):
        expand_members(["a=1,a=2@/tmp"])


def test_pass_fraction_rounds_up_exactly() -> None:
    from tau_ops.fleet import FleetMember, fleet_verdict

    def row(gate: str) -> FleetMember:
        return FleetMember(name="m", kind="state_dir", labels={}, readable=True,
                           rollout_gate=gate, rollout_gate_reasons=[] if gate == "pass"
                           else ["health_degraded"])  # type: ignore[arg-type]

    rows = [row("pass")] * 7 + [row("hold")] * 93
    assert fleet_verdict(rows, FleetPolicy(min_pass_fraction=0.07))[0] == "pass"
    gate, reasons, details = fleet_verdict(rows, FleetPolicy(min_pass_fraction=0.08))
    assert (gate, reasons) == ("hold", ["members_below_pass_fraction"])
    assert details == ["7 of 100 members pass; the policy needs 8 (min_pass_fraction 0.08)"]

