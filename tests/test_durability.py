"""Crash safety and concurrency: SIGKILL mid-cycle, and two runners on one state dir."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from builders import REPO, success_case, write_fixture

from tau_ops import read_state
from tau_ops.storage import read_jsonl

# Runs the fixture in chunks of N cases, one cycle per chunk (a queue only ever takes
# the sorted prefix of one fixture, so progress through many cases needs many fixtures).
DRIVER = """
import sys
from pathlib import Path
from tau_ops import RunnerConfig, load_fixture, run_cycle
fixture = load_fixture(sys.argv[1])
chunk = int(sys.argv[3])
config = RunnerConfig(state_dir=Path(sys.argv[2]), queue_limit=chunk)
for start in range(0, len(fixture.cases), chunk):
    part = fixture.model_copy(update={"cases": fixture.cases[start:start + chunk]})
    run_cycle(part, config)
"""


def _start(fixture: Path, state: Path, chunk: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    env["TAU_LOG_ROTATION_MAX_BYTES"] = "20000"
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(fixture), str(state), str(chunk)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _all_files_parse(state: Path) -> None:
    json.loads((state / "state.json").read_text())
    for path in state.rglob("*.jsonl*"):
        _, invalid = read_jsonl(path)
        assert invalid == 0, path


def test_sigkill_mid_cycle_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    total, per_cycle = 3000, 60
    cases = [success_case(f"case-{i:05d}", blueprint_id=f"bp-{i % 7}") for i in range(total)]
    fixture = write_fixture(tmp_path, *cases)
    state = tmp_path / "state"
    rng = random.Random(7)
    kills = 0
    for _ in range(12):
        proc = _start(fixture, state, per_cycle)
        time.sleep(rng.uniform(0.3, 0.9))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        if (state / "state.json").exists():
            _all_files_parse(state)
    assert kills >= 6
    final = _start(fixture, state, per_cycle)
    assert final.wait(timeout=120) == 0
    _all_files_parse(state)
    loaded = read_state(state)
    assert loaded is not None
    keys = [f"kubernetes:native:staging:bp-{i % 7}:case-{i:05d}" for i in range(total)]
    assert sorted(loaded.processed_case_keys) == sorted(keys)
    assert sorted(r.case_key for r in loaded.rollouts) == sorted(keys)
    logged = []
    for path in (state / "channel-store/deployment").glob("*/log.jsonl"):
        records, _ = read_jsonl(path)
        logged += [r["event_key"] for r in records]
    assert sorted(logged) == sorted(keys), "each case is logged exactly once"
    assert not (state / ".cycle-journal.json").exists()
    assert list(state.glob(".*.tmp")) == []


def test_two_runners_on_one_state_dir_keep_both_updates(tmp_path: Path) -> None:
    state = tmp_path / "state"
    left = write_fixture(tmp_path, *[success_case(f"l{i}", blueprint_id="left")
                                     for i in range(300)], name="left")
    right = write_fixture(tmp_path, *[success_case(f"r{i}", target="container",
                                                   blueprint_id="right")
                                      for i in range(300)], name="right")
    procs = [_start(left, state, 30), _start(right, state, 30)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    loaded = read_state(state)
    assert loaded is not None
    assert len(loaded.processed_case_keys) == 600
    assert {r.blueprint_id for r in loaded.rollouts} == {"left", "right"}
    assert len(loaded.rollouts) == 600
    events = sum(len(read_jsonl(p)[0]) for p in state.glob("runtime-events.jsonl*"))
    assert events == 20


# Every round: pause + resume, a planted journal naming an impossible path (with an
# uncommitted event line behind it), a quarantine of a corrupt state in a second dir,
# then one cycle. SIGKILL can land anywhere in any of them.
NEW_PATHS_DRIVER = """
import json, os, secrets, sys
from pathlib import Path
from tau_ops import RunnerConfig, load_fixture, run_cycle, storage
from tau_ops.ops.pause import pause_runner, resume_runner
from tau_ops.state import load_state_for_update
fixture = load_fixture(sys.argv[1])
state, quarantine, chunk = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
config = RunnerConfig(state_dir=state, queue_limit=chunk)
for start in range(0, len(fixture.cases), chunk):
    pause_runner(state, reason="kill test")
    resume_runner(state)
    with storage.state_lock(quarantine):
        load_state_for_update(quarantine, now_ms=1)
        token = secrets.token_hex(8)
        storage.atomic_write_text(quarantine / "state.json", "corrupt " + token, root=quarantine)
        storage.append_lines(quarantine / "tokens.log", [token], root=quarantine)
        load_state_for_update(quarantine, now_ms=1)
    with storage.state_lock(state):
        # A crash leaves at most one journal: plant one only where a killed cycle left none
        # (overwriting a real journal would make its appends impossible to roll back).
        events = state / "runtime-events.jsonl"
        if not (state / ".cycle-journal.json").exists():
            size = events.stat().st_size if events.exists() else 0
            storage.atomic_write_json(state / ".cycle-journal.json", {
                "state_sha256": "0" * 64, "rewrites": {},
                "append_sizes": {"runtime-events.jsonl": size,
                                 "channel-store/deployment/" + "y" * 300 + "/log.jsonl": 0}},
                root=state)
            storage.append_lines(events, ['{"planted": true}'], root=state)
    part = fixture.model_copy(update={"cases": fixture.cases[start:start + chunk]})
    run_cycle(part, config)
"""


def test_sigkill_in_pause_quarantine_and_impossible_recovery_loses_nothing(
    tmp_path: Path,
) -> None:
    total, per_cycle = 1200, 40
    cases = [success_case(f"case-{i:05d}", blueprint_id=f"bp-{i % 5}") for i in range(total)]
    fixture = write_fixture(tmp_path, *cases)
    state, quarantine = tmp_path / "state", tmp_path / "quarantine"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    env["TAU_LOG_ROTATION_MAX_BYTES"] = "20000"
    argv = [sys.executable, "-c", NEW_PATHS_DRIVER, str(fixture), str(state), str(quarantine),
            str(per_cycle)]
    rng = random.Random(11)
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 0.9))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 6
    final = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=300)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    _all_files_parse(state)
    loaded = read_state(state)
    assert loaded is not None
    keys = [f"kubernetes:native:staging:bp-{i % 5}:case-{i:05d}" for i in range(total)]
    assert sorted(loaded.processed_case_keys) == sorted(keys)
    logged = []
    for path in (state / "channel-store/deployment").glob("*/log.jsonl"):
        logged += [r["event_key"] for r in read_jsonl(path)[0]]
    assert sorted(logged) == sorted(keys), "each case is logged exactly once"
    events = [r for p in state.glob("runtime-events.jsonl*") for r in read_jsonl(p)[0]]
    assert [e for e in events if "planted" in e] == [], "uncommitted lines are rolled back"
    assert not (state / ".cycle-journal.json").exists()
    assert not (state / "runner-paused.json").exists()
    assert list(state.rglob(".*.tmp")) == []
    tokens = (quarantine / "tokens.log").read_text().split()
    kept = {p.read_text() for p in quarantine.glob("state.json*")}
    assert {f"corrupt {t}" for t in tokens} <= kept, "no quarantined file was overwritten"
    assert len(tokens) >= total // per_cycle
