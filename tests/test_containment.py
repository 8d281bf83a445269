"""Issue 11/13: nothing lost, nothing escapes the state dir (demo, links, FIFOs, journal)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from builders import REPO, fixture, run_cli, success_case, write_fixture

from tau_ops import FakeClock, RunnerConfig, parse_fixture, read_state, run_cycle, storage
from tau_ops.errors import StateError
from tau_ops.models import Fixture
from tau_ops.ops.pause import pause_runner, resume_runner
from tau_ops.state import (
    StatePaths,
    committed_sizes,
    load_state_for_update,
    recover,
)


def cycle(state_dir: Path, *cases: dict[str, Any]) -> Any:
    clock = FakeClock()
    return run_cycle(parse_fixture(json.dumps(fixture(*cases))),
                     RunnerConfig(state_dir=state_dir), clock=clock, sleeper=clock.sleep)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


# --- item 1: the demo removes only what it created -------------------------------------------

def test_demo_ignores_the_operators_state_dir_env(tmp_path: Path) -> None:
    live = tmp_path / "data" / "deployment"
    cycle(live, success_case("a"))
    before = tree(live)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("testdata",):
        (work / name).symlink_to(REPO / name)
    result = run_cli("demo", cwd=work, env={"TAU_DEPLOYMENT_STATE_DIR": str(live)})
    assert result.returncode == 0, result.stderr
    assert tree(live) == before
    assert (work / ".tau/demo-deployment/state.json").is_file()


def test_demo_refuses_a_non_empty_dir_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("demo", "--deployment-state-dir", ".", "--module",
                     REPO / "testdata/deployment-wasm/edge-runtime.wasm",
                     "--fixture", REPO / "testdata/deployment-contract/rollout-pass.json",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: refusing to use . as the demo state dir")
    assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_demo_reuses_an_empty_dir_and_its_own_dir(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    target.mkdir()
    args = ("demo", "--deployment-state-dir", target, "--module",
            REPO / "testdata/deployment-wasm/edge-runtime.wasm",
            "--fixture", REPO / "testdata/deployment-contract/rollout-pass.json")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    (target / "runtime-events.jsonl").write_text("an earlier demo's events\n")
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert (target / ".tau-ops-demo").is_file()
    assert "an earlier demo" not in (target / "runtime-events.jsonl").read_text()


@pytest.mark.parametrize("how", ["marker copied", "demo dir copied"])
def test_a_copied_demo_marker_does_not_let_the_demo_empty_a_folder(tmp_path: Path,
                                                                   how: str) -> None:
    demo = tmp_path / "demo"
    args = ("--module", REPO / "testdata/deployment-wasm/edge-runtime.wasm",
            "--fixture", REPO / "testdata/deployment-contract/rollout-pass.json")
    assert run_cli("demo", "--deployment-state-dir", demo, *args).returncode == 0
    real = tmp_path / "real"
    if how == "marker copied":
        real.mkdir()
        (real / "keep.txt").write_text("mine")
        shutil.copy(demo / ".tau-ops-demo", real / ".tau-ops-demo")
    else:
        shutil.copytree(demo, real)
        (real / "keep.txt").write_text("mine")
    before = sorted(p.name for p in real.iterdir())
    result = run_cli("demo", "--deployment-state-dir", real, *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: refusing to use {real} as the demo state dir")
    assert sorted(p.name for p in real.iterdir()) == before


@pytest.mark.parametrize("where", ["demo", "."])
def test_the_demo_never_removes_files_added_after_it_ran(tmp_path: Path, where: str) -> None:
    work = tmp_path / "w"
    work.mkdir()
    args = ("demo", "--deployment-state-dir", where, "--module",
            REPO / "testdata/deployment-wasm/edge-runtime.wasm",
            "--fixture", REPO / "testdata/deployment-contract/rollout-pass.json")
    assert run_cli(*args, cwd=work).returncode == 0
    demo = work / where
    (demo / "notes.txt").write_text("precious")
    (demo / "src").mkdir()
    before = tree(demo)
    result = run_cli(*args, cwd=work)
    assert (result.returncode, result.stderr) == (
        2, f"error: refusing to use {where} as the demo state dir: it holds files the demo did "
           "not write (notes.txt, src); pick a new or empty directory\n")
    assert tree(demo) == before


# --- item 2: links inside the state dir are never written through ------------------------------

def test_events_file_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    outside = tmp_path / "outside.log"
    outside.write_bytes(b"line one\npartial tail")
    (state / "runtime-events.jsonl").unlink()
    (state / "runtime-events.jsonl").symlink_to(outside)
    before = tree(state)
    with pytest.raises(StateError) as caught:
        cycle(state, success_case("b"))
    assert str(caught.value).startswith(
        f"refusing to write {state / 'runtime-events.jsonl'}: it is a symbolic link")
    assert outside.read_bytes() == b"line one\npartial tail"
    assert tree(state) == before


def test_symlinked_channel_folder_gets_no_writes_and_no_cleanup(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a", blueprint_id="edge"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".precious.tmp").write_text("keep me")
    channel = state / "channel-store/deployment/edge"
    for child in channel.iterdir():
        child.unlink()
    channel.rmdir()
    channel.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StateError) as caught:
        cycle(state, success_case("b", blueprint_id="edge"))
    assert str(caught.value).startswith(f"refusing to write {channel}: it is a symbolic link")
    assert sorted(p.name for p in elsewhere.iterdir()) == [".precious.tmp"]
    assert read_state(state).processed_case_keys == [  # type: ignore[union-attr]
        "kubernetes:native:staging:edge:a"]
    assert len((state / "runtime-events.jsonl").read_text().splitlines()) == 1


def test_a_linked_channel_folder_gives_exactly_one_error_line(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a", blueprint_id="edge"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    channel = state / "channel-store/deployment/edge"
    shutil.rmtree(channel)
    channel.symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "f.json").write_text(json.dumps(fixture(success_case("b", blueprint_id="edge"))))
    result = run_cli("--deployment-contract-runner", "--deployment-fixture", tmp_path / "f.json",
                     "--deployment-state-dir", state)
    assert (result.returncode, result.stderr) == (
        2, f"error: refusing to write {channel}: it is a symbolic link, not a directory "
           "(tau-ops never writes through links or special files inside the state dir)\n")


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_non_file_named_like_a_temp_file_is_left_alone(tmp_path: Path, kind: str) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    odd = state / ".state.json.tmp"
    if kind == "directory":
        odd.mkdir()
        (odd / "inside").write_text("not ours")
    else:
        (tmp_path / "target").write_text("not ours")
        odd.symlink_to(tmp_path / "target")
    (tmp_path / "f.json").write_text(json.dumps(fixture(success_case("b"))))
    result = run_cli("--deployment-contract-runner", "--deployment-fixture", tmp_path / "f.json",
                     "--deployment-state-dir", state)
    assert (result.returncode, result.stderr) == (0, "")
    assert os.path.lexists(odd)
    assert (tmp_path / "target").exists() if kind == "symlink" else (odd / "inside").exists()


def test_state_dir_itself_may_be_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    cycle(link, success_case("a"))
    assert (real / "state.json").is_file()
    assert (real / "channel-store/deployment/cloud-api/log.jsonl").is_file()


def test_pause_marker_symlink_is_never_written_through(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    target = tmp_path / "target.json"
    target.write_text("{}")
    (state / "runner-paused.json").symlink_to(target)
    with pytest.raises(StateError, match="runner-paused.json: it is a symbolic link"):
        pause_runner(state, reason="x")
    assert target.read_text() == "{}"
    assert not resume_runner(state).paused  # removing the link removes the link only
    assert target.read_text() == "{}"


def test_symlinked_state_json_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    target = tmp_path / "elsewhere.json"
    target.write_text("not json")
    (state / "state.json").symlink_to(target)
    with pytest.raises(StateError, match="state.json: it is a symbolic link"):
        cycle(state, success_case("a"))
    assert target.read_text() == "not json"
    assert sorted(p.name for p in state.iterdir()) == [".tau-ops.lock", "state.json"]


# --- item 4: FIFOs are refused without blocking -------------------------------------------------

@pytest.mark.parametrize("name", ["state.json", "runtime-events.jsonl", ".cycle-journal.json"])
def test_fifo_in_state_dir_does_not_hang_the_runner(tmp_path: Path, name: str) -> None:
    state = tmp_path / "s"
    state.mkdir()
    os.mkfifo(state / name)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            cycle(state, success_case("a"))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert outcome, "the runner blocked on a FIFO"
    if name == ".cycle-journal.json":  # not ours: moved aside, the cycle runs
        assert outcome == [None]
        assert [p.name.startswith(".cycle-journal.json.invalid-")
                for p in state.glob(".cycle-journal.json*")] == [True]
    else:
        assert isinstance(outcome[0], StateError)
        assert "FIFO" in str(outcome[0])


@pytest.mark.parametrize("name", ["state.json", "runtime-events.jsonl",
                                  "channel-store/deployment/x/log.jsonl"])
def test_fifo_in_state_dir_does_not_hang_readers(tmp_path: Path, name: str) -> None:
    state = tmp_path / "s"
    (state / name).parent.mkdir(parents=True)
    os.mkfifo(state / name)
    status = run_cli("--deployment-state-dir", state, "--deployment-status-inspect", timeout=30)
    channel = run_cli("--channel-store-root", state / "channel-store",
                      "--channel-store-inspect", "deployment/x", timeout=30)
    snap = run_cli("snapshot", "--deployment-state-dir", state, "--output",
                   tmp_path / "snap.tar.gz", timeout=30)
    fifo_named = f"{state / name}"
    if name == "channel-store/deployment/x/log.jsonl":
        assert channel.returncode == 2 and fifo_named in channel.stderr
        assert "not a regular file" in channel.stderr and channel.stderr.count("\n") == 1
    else:
        assert status.returncode == 2 and fifo_named in status.stderr
        assert "FIFO" in status.stderr and status.stderr.count("\n") == 1
    assert snap.returncode == 0
    assert snap.stderr == f"warning: snapshot skips {state / name}: it is a FIFO\n"


# --- item 5: quarantine never overwrites ------------------------------------------------------

def test_two_corrupt_states_in_one_millisecond_are_both_kept(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    for content in (b"first {", b"second {"):
        (state / "state.json").write_bytes(content)
        load_state_for_update(state, now_ms=1_700_000_000_000)
    assert tree(state) == {"state.json.corrupt-1700000000000": b"first {",
                           "state.json.corrupt-1700000000000-2": b"second {"}


# --- item 3: recovery cannot wedge a state dir ----------------------------------------------

def test_unwritable_blueprint_path_rolls_back_and_later_writers_run(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    before = tree(state)
    # The fixture loader refuses such an id; a library caller can still build one.
    clock = FakeClock()
    unchecked = Fixture.model_validate(fixture(success_case("b", blueprint_id="x" * 300)))
    with pytest.raises(StateError) as caught:
        run_cycle(unchecked, RunnerConfig(state_dir=state), clock=clock, sleeper=clock.sleep)
    message = str(caught.value)
    assert message.startswith("cannot write ") and "File name too long" in message
    assert message.endswith("File name too long; nothing was written") and "x" * 300 in message
    assert tree(state) == before
    assert cycle(state, success_case("c")).applied_cases == 1


def test_journal_naming_an_impossible_path_is_rolled_back(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    events = state / "runtime-events.jsonl"
    size = events.stat().st_size
    events.write_bytes(events.read_bytes() + b'{"uncommitted":1}\n')
    journal = {"state_sha256": "0" * 64, "append_sizes": {
        "runtime-events.jsonl": size, f"channel-store/deployment/{'y' * 300}/log.jsonl": 0},
        "rewrites": {}}
    (state / ".cycle-journal.json").write_text(json.dumps(journal))
    assert recover(state) == "rolled_back"
    assert events.stat().st_size == size
    assert not (state / ".cycle-journal.json").exists()


def test_journal_that_cannot_be_undone_names_path_and_action(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    outside = tmp_path / "outside.log"
    outside.write_bytes(b"0123456789\n")
    (state / "runtime-events.jsonl").unlink()
    (state / "runtime-events.jsonl").symlink_to(outside)
    journal = {"state_sha256": "0" * 64, "append_sizes": {"runtime-events.jsonl": 0},
               "rewrites": {}}
    (state / ".cycle-journal.json").write_text(json.dumps(journal))
    with pytest.raises(StateError) as caught:
        recover(state)
    assert "cannot roll back the interrupted cycle" in str(caught.value)
    assert "Action: make that path a regular writable file again" in str(caught.value)
    assert outside.read_bytes() == b"0123456789\n"
    (state / "runtime-events.jsonl").unlink()  # the operator's action
    assert recover(state) == "rolled_back"


@pytest.mark.parametrize("journal", [
    {"state_sha256": "0", "append_sizes": {"../../outside.log": 0}, "rewrites": {}},
    {"state_sha256": "0", "append_sizes": {"/etc/passwd": 0}, "rewrites": {}},
    {"state_sha256": "0", "append_sizes": {"a": "12"}, "rewrites": {}},
    [1, 2],
])
def test_foreign_journal_is_moved_aside_not_obeyed(tmp_path: Path, journal: Any) -> None:
    state = tmp_path / "s"
    state.mkdir()
    outside = tmp_path / "outside.log"
    outside.write_text("keep\n")
    (state / ".cycle-journal.json").write_text(json.dumps(journal))
    assert recover(state) is None
    assert outside.read_text() == "keep\n"
    assert [p.name.startswith(".cycle-journal.json.invalid-") for p in state.iterdir()] == [True]


# --- item 10: readers see committed cycles only -----------------------------------------------

def test_committed_sizes_names_uncommitted_appends_only(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    events = state / "runtime-events.jsonl"
    size = events.stat().st_size
    assert committed_sizes(state) == {}
    journal = {"state_sha256": "0" * 64, "append_sizes": {"runtime-events.jsonl": size},
               "rewrites": {}}
    (state / ".cycle-journal.json").write_text(json.dumps(journal))
    assert committed_sizes(state) == {events: size}
    committed = json.loads(json.dumps(journal))
    import hashlib
    committed["state_sha256"] = hashlib.sha256((state / "state.json").read_bytes()).hexdigest()
    (state / ".cycle-journal.json").write_text(json.dumps(committed))
    assert committed_sizes(state) == {}


# --- item 14: out of space after the commit point ---------------------------------------------

def test_failure_after_commit_point_is_a_warning_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "s"
    real = storage.atomic_write_bytes

    def full_disk_for_memory(path: Path, data: bytes, **kw: Any) -> None:
        if path.name == "MEMORY.md":
            raise OSError(28, "No space left on device")
        real(path, data, **kw)

    monkeypatch.setattr(storage, "atomic_write_bytes", full_disk_for_memory)
    report = cycle(state, success_case("a"))
    memory = state / "channel-store/deployment/cloud-api/MEMORY.md"
    assert report.applied_cases == 1
    assert report.warnings == [f"cycle committed, but could not rewrite {memory}: "
                               "No space left on device; it is rewritten by the next cycle "
                               "of that blueprint"]
    monkeypatch.setattr(storage, "atomic_write_bytes", real)
    assert recover(state) == "finished"
    assert memory.is_file() and not (state / ".cycle-journal.json").exists()


def test_failure_before_commit_point_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    before = tree(state)
    real = storage.atomic_write_bytes

    def full_disk_for_state(path: Path, data: bytes, **kw: Any) -> None:
        if path.name == "state.json":
            raise OSError(28, "No space left on device")
        real(path, data, **kw)

    monkeypatch.setattr(storage, "atomic_write_bytes", full_disk_for_state)
    with pytest.raises(StateError) as caught:
        cycle(state, success_case("b"))
    assert str(caught.value) == (f"cannot write {state / 'state.json'}: No space left on "
                                 "device; the cycle was rolled back, nothing committed")
    assert tree(state) == before


# --- item 17: rotation settings have ranges ----------------------------------------------------

@pytest.mark.parametrize(("raw", "limits"), [
    (("5000000", "5000000000000"), (1024 ** 3, 100)),
    (("7", "4096"), (4096, 7)),
    (("0", "x"), (10 * 1024 * 1024, 5)),
])
def test_rotation_limits_are_clamped_to_documented_ranges(
    monkeypatch: pytest.MonkeyPatch, raw: tuple[str, str], limits: tuple[int, int]
) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", raw[0])
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", raw[1])
    assert storage.rotation_limits() == limits


def test_huge_max_files_rotates_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "5000000")
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "10")
    path = tmp_path / "e.jsonl"
    started = time.monotonic()
    for n in range(5):
        storage.rotate_if_needed(path, 8)
        storage.append_lines(path, [f'"line{n}"'])
    assert time.monotonic() - started < 2
    assert [p.name for p in storage.rotated_files(path)] == [
        "e.jsonl.4", "e.jsonl.3", "e.jsonl.2", "e.jsonl.1", "e.jsonl"]


def test_cli_refuses_symlinked_events_with_one_error_line(tmp_path: Path) -> None:
    state = tmp_path / "s"
    cycle(state, success_case("a"))
    outside = tmp_path / "outside.log"
    outside.write_text("x\n")
    (state / "runtime-events.jsonl").unlink()
    (state / "runtime-events.jsonl").symlink_to(outside)
    fx = write_fixture(tmp_path, success_case("b"))
    result = run_cli("--deployment-state-dir", state, "--deployment-contract-runner",
                     "--deployment-fixture", fx)
    assert result.returncode == 2
    assert result.stderr == (f"error: refusing to write {state / 'runtime-events.jsonl'}: it "
                             "is a symbolic link, not a regular file (tau-ops never writes "
                             "through links or special files inside the state dir)\n")
    assert StatePaths(state).journal.exists() is False
    assert outside.read_text() == "x\n"


def test_packager_does_not_write_through_a_symlinked_artifacts_folder(tmp_path: Path) -> None:
    from tau_ops.wasm.package import package_module

    state = tmp_path / "s"
    cycle(state, success_case("a"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (state / "wasm-artifacts").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StateError, match="wasm-artifacts: it is a symbolic link"):
        package_module(REPO / "testdata/deployment-wasm/edge-runtime.wasm", state_dir=state,
                       blueprint_id="edge-wasm", runtime_profile="wasm_wasi")
    assert list(elsewhere.rglob("*")) == []


def test_packager_refuses_a_linked_output_folder_in_a_fresh_state_dir(tmp_path: Path) -> None:
    """Found by a breaker: before any lock file exists, a planted link carried the artifacts out."""
    outside = tmp_path / "outside"
    outside.mkdir()
    state = tmp_path / "w2"
    (state / "art").mkdir(parents=True)
    (state / "art" / "edge-wasm").symlink_to(outside)
    result = run_cli("--deployment-state-dir", state, "--deployment-wasm-package-module",
                     REPO / "testdata/deployment-wasm/edge-runtime.wasm",
                     "--deployment-wasm-package-output-dir", state / "art")
    assert result.returncode == 2
    assert result.stderr.startswith("error: refusing to write ")
    assert "symbolic link" in result.stderr and len(result.stderr.splitlines()) == 1
    assert list(outside.iterdir()) == []
