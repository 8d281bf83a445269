"""Snapshots: fixed root, no links or traversal in or out, bounded verify, restore."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from builders import REPO, fixture, run_cli, success_case

from tau_ops import FakeClock, RunnerConfig, parse_fixture, run_cycle
from tau_ops.errors import InputError, OperationFailed
from tau_ops.ops.restore import restore_snapshot
from tau_ops.ops.snapshot import create_snapshot, verify_snapshot


def cycle(state_dir: Path, *cases: dict[str, Any]) -> Any:
    clock = FakeClock()
    return run_cycle(parse_fixture(json.dumps(fixture(*cases))),
                     RunnerConfig(state_dir=state_dir), clock=clock, sleeper=clock.sleep)


def names(archive: str | Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return sorted(tar.getnames())


def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("spelling", ["dd/sub/..", ".", "dd"])
def test_members_have_a_fixed_root_name(tmp_path: Path, spelling: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cycle(tmp_path / "dd", success_case("a"))
    monkeypatch.chdir(tmp_path / "dd" if spelling == "." else tmp_path)
    (tmp_path / "dd/sub").mkdir(exist_ok=True)
    report = create_snapshot(spelling, output=tmp_path / "out/snap.tar.gz")
    assert all(n.startswith("state/") for n in names(report.archive_path))
    assert "state/state.json" in names(report.archive_path)
    assert verify_snapshot(report.archive_path).ok


def test_links_and_fifos_are_skipped_with_a_warning(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    secret = tmp_path / "shadow"
    secret.write_text("root:secret")
    (state / "evil").symlink_to(secret)
    (state / "evil-dir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(state / "pipe")
    report = create_snapshot(state, output=tmp_path / "snap.tar.gz")
    assert not {"state/evil", "state/pipe"} & set(names(report.archive_path))
    assert not any(n.startswith("state/evil-dir") for n in names(report.archive_path))
    with tarfile.open(report.archive_path) as tar:
        assert all(b"root:secret" not in tar.extractfile(m).read()  # type: ignore[union-attr]
                   for m in tar if m.isfile())
    warned = sorted(r.getMessage() for r in caplog.records)
    assert warned == sorted([f"snapshot skips {state / 'evil'}: it is a symbolic link",
                             f"snapshot skips {state / 'evil-dir'}: it is a symbolic link",
                             f"snapshot skips {state / 'pipe'}: it is a FIFO"])


def test_modes_are_kept_and_an_empty_dir_verifies(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    empty = create_snapshot(state, output=tmp_path / "empty.tar.gz")
    assert verify_snapshot(empty.archive_path).model_dump(include={"ok", "problems"}) == {
        "ok": True, "problems": []}
    (state / "key.pem").write_text("private")
    (state / "key.pem").chmod(0o600)
    report = create_snapshot(state, output=tmp_path / "snap.tar.gz")
    with tarfile.open(report.archive_path) as tar:
        assert tar.getmember("state/key.pem").mode == 0o600
    assert [(f.path, f.mode) for f in report.files] == [("key.pem", 0o600)]


def rebuilt(good: Path, out: Path, extra: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(good) as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member))
        for info, data in extra:
            dst.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return out


def member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE,
           link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info, data


@pytest.mark.parametrize(("extra", "problem"), [
    (member("state/../escape"), "state/../escape: not a plain relative path"),
    (member("/etc/cron.d/x"), "/etc/cron.d/x: not under state/"),
    (member("state/state.json", kind=tarfile.SYMTYPE, link="/etc/passwd"),
     "state/state.json: not a regular file (links, devices and FIFOs are refused)"),
    (member("state/passwd", kind=tarfile.LNKTYPE, link="/etc/passwd"),
     "state/passwd: not a regular file (links, devices and FIFOs are refused)"),
    (member("state/state.json", b"{}"), "state.json: appears more than once in the archive"),
])
def test_crafted_members_fail_verification(tmp_path: Path, extra: Any, problem: str) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    good = create_snapshot(state, output=tmp_path / "good.tar.gz")
    bad = rebuilt(Path(good.archive_path), tmp_path / "bad.tar.gz", [extra])
    checked = verify_snapshot(bad)
    assert not checked.ok and problem in checked.problems
    target = tmp_path / "restored"
    with pytest.raises(OperationFailed):
        restore_snapshot(bad, target)
    assert not target.exists() and not (tmp_path / "escape").exists()


def test_malformed_inner_manifest_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    archive = tmp_path / "x.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info, data = member("state/SNAPSHOT-MANIFEST.json", b'{"files": 3}')
        tar.addfile(info, io.BytesIO(data))
    checked = verify_snapshot(archive)
    assert not checked.ok
    assert checked.problems[0].startswith("SNAPSHOT-MANIFEST.json is not valid: ")
    cli = run_cli("snapshot", "--verify", archive)
    assert cli.returncode == 1 and "internal error" not in cli.stderr


def test_gzip_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    size = 400 * 1024 * 1024
    with gzip.open(archive, "wb", compresslevel=1) as raw:
        info = tarfile.TarInfo("state/zeros")
        info.size = size
        raw.write(info.tobuf())
        block = bytes(1 << 20)
        for _ in range(size >> 20):
            raw.write(block)
        raw.write(bytes(1024))
    assert archive.stat().st_size < 2 * 1024 * 1024
    started = time.monotonic()
    checked = verify_snapshot(archive)
    assert time.monotonic() - started < 2
    assert not checked.ok and "refused without reading further" in checked.problems[0]


def test_restore_round_trips_into_a_new_dir_and_never_over_live_state(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"), success_case("b", blueprint_id="edge"))
    (state / "key.pem").write_text("k")
    (state / "key.pem").chmod(0o600)
    report = create_snapshot(state, output=tmp_path / "snap.tar.gz")
    restored = tmp_path / "restored"
    done = run_cli("snapshot", "restore", report.archive_path,
                   "--deployment-state-dir", restored)
    assert done.returncode == 0, done.stderr
    expected = {k: v for k, v in tree(state).items() if k != ".tau-ops.lock"}
    assert tree(restored) == expected
    live_before = tree(state)
    refused = run_cli("snapshot", "restore", report.archive_path,
                      "--deployment-state-dir", state)
    assert refused.returncode == 2
    assert refused.stderr == (f"error: refusing to restore into {state}: it is not empty "
                              "(never over live state); give a new or empty directory\n")
    assert tree(state) == live_before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert restore_snapshot(report.archive_path, empty).file_count == len(expected)
    with pytest.raises(InputError):
        restore_snapshot(report.archive_path, empty)


def test_restore_refuses_a_tampered_archive(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    report = create_snapshot(state, output=tmp_path / "snap.tar.gz")
    archive = Path(report.archive_path)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    target = tmp_path / "restored"
    result = run_cli("snapshot", "restore", archive, "--deployment-state-dir", target)
    assert result.returncode == 1 and "failed verification" in result.stderr
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".restored")] == []


# Simulates a read-only file system: any open for writing under the state dir fails.
READ_ONLY = """
import errno, os, sys
state = os.path.abspath(sys.argv[1])
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        path = os.path.abspath(os.fsdecode(args[0]))
        writing = isinstance(args[1], str) and any(c in args[1] for c in "wax+")
        writing = writing or (isinstance(args[2], int) and args[2] & (
            os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if path == state or path.startswith(state + os.sep):
            if writing:
                raise OSError(errno.EROFS, "Read-only file system", path)
sys.addaudithook(hook)
from tau_ops.cli import main
sys.exit(main(["snapshot", "--deployment-state-dir", state, "--output", sys.argv[2]]))
"""


def test_snapshot_needs_only_read_access(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    before = tree(state)
    out = tmp_path / "snap.tar.gz"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    result = subprocess.run([sys.executable, "-c", READ_ONLY, str(state), str(out)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert verify_snapshot(out).ok and tree(state) == before


def test_an_existing_archive_is_never_overwritten(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    first = create_snapshot(state, output=tmp_path / "snap.tar.gz")
    before = Path(first.archive_path).read_bytes()
    cycle(state, success_case("b"))
    result = run_cli("snapshot", "--deployment-state-dir", state, "--output",
                     tmp_path / "snap.tar.gz")
    assert result.returncode == 2
    assert result.stderr.startswith("error: snapshot output ") and "already exists" in result.stderr
    assert Path(first.archive_path).read_bytes() == before
    assert verify_snapshot(first.archive_path).ok
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
