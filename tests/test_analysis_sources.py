"""Snapshot archives and mixed fleets as analysis sources: same answers, kept apart."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import fixture, retryable_case, run_cli, success_case

from tau_ops import FakeClock, RunnerConfig, parse_fixture, run_cycle
from tau_ops.analysis import (
    incidents,
    load_events,
    load_rollouts,
    read_events,
    reason_code_trends,
    scan_events,
    summary,
    write_report,
)
from tau_ops.errors import InputError
from tau_ops.ops.snapshot import create_snapshot

T0 = 1_700_000_000_000


def cycles(state: Path, plan: list[list[dict[str, Any]]], *, start: int = T0) -> None:
    for index, cases in enumerate(plan):
        clock = FakeClock(start + index * 60_000)
        run_cycle(parse_fixture(json.dumps(fixture(*cases))),
                  RunnerConfig(state_dir=state, retry_max_attempts=1),
                  clock=clock, sleeper=clock.sleep)


def snapshot(state: Path, archive: Path) -> Path:
    """An archive made by the real ``tau-ops snapshot``."""
    made = run_cli("snapshot", "--deployment-state-dir", state, "--output", archive)
    assert made.returncode == 0, made.stderr
    return archive


@pytest.fixture
def rotated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state dir whose log spans backups, with healthy, degraded and failing cycles."""
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "900")
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "20")
    state = tmp_path / "iad"
    cycles(state, [[success_case("a")], [retryable_case("r1")], [retryable_case("r2")],
                   [retryable_case("r3")], [success_case("m")], [success_case("b")]])
    assert (state / "runtime-events.jsonl.2").exists()
    return state


def test_an_archive_answers_as_its_state_dir_and_leaves_nothing_behind(
    tmp_path: Path, rotated_state: Path
) -> None:
    archive = snapshot(rotated_state, tmp_path / "out" / "iad.tar.gz")
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    direct = load_events(rotated_state, cache=False)
    assert direct.height == 6
    assert load_events(archive).equals(direct)
    assert scan_events(archive).collect().equals(direct)
    assert reason_code_trends(scan_events(archive), every="5m").collect().equals(
        reason_code_trends(direct, every="5m"))
    assert incidents(load_events(archive)).equals(incidents(direct))
    assert summary(load_events(archive)) == summary(direct)
    assert load_rollouts(archive).equals(load_rollouts(rotated_state))
    assert read_events(archive).invalid_lines == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before  # no cache, no copy


def test_an_archive_answers_as_its_restored_dir(tmp_path: Path, rotated_state: Path) -> None:
    archive = snapshot(rotated_state, tmp_path / "iad.tar.gz")
    restored = tmp_path / "restored"
    done = run_cli("snapshot", "restore", archive, "--deployment-state-dir", restored)
    assert done.returncode == 0, done.stderr
    assert load_events(archive).equals(load_events(restored, cache=False))


def test_dirs_and_archives_keep_their_sources_apart(
    tmp_path: Path, rotated_state: Path
) -> None:
    archive = snapshot(rotated_state, tmp_path / "iad-snap.tar.gz")
    ord_dir = tmp_path / "ord"
    cycles(ord_dir, [[success_case("x")], [success_case("y")]], start=T0 + 30_000)
    sources = [str(ord_dir), str(archive)]
    fleet = load_events(sources)
    assert fleet.get_column("source").cast(pl.String).value_counts(sort=True).rows() == [
        (str(archive), 6), (str(ord_dir), 2)]
    alone = {str(ord_dir): load_events(ord_dir, cache=False), str(archive): load_events(archive)}
    for name, own in alone.items():
        mine = fleet.filter(pl.col("source").cast(pl.String) == name).drop("source")
        assert mine.equals(own)
        trends = reason_code_trends(fleet, every="5m").filter(
            pl.col("source").cast(pl.String) == name).drop("source")
        assert trends.equals(reason_code_trends(own, every="5m"))
    assert scan_events(sources).collect().equals(fleet)
    posture = summary(fleet)
    assert list(posture.by_source) == sources
    assert {k: v.line for k, v in posture.by_source.items()} == {
        k: summary(v).line for k, v in alone.items()}


@pytest.mark.parametrize("twice", ["same", "log file", "relative spelling"])
def test_one_source_given_twice_is_refused(tmp_path: Path, rotated_state: Path,
                                           twice: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    other = {"same": str(rotated_state), "log file": str(rotated_state / "runtime-events.jsonl"),
             "relative spelling": "./iad"}[twice]
    with pytest.raises(InputError, match="are the same source"):
        load_events([str(rotated_state), other])
    with pytest.raises(InputError, match="are the same source"):
        scan_events([str(rotated_state), other])


def rebuilt(good: Path, target: Path, extra: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(good, "r:gz") as src, tarfile.open(target, "w:gz") as out:
        for info in src:
            handle = src.extractfile(info)
            out.addfile(info, io.BytesIO(handle.read() if handle else b""))
        for info, data in extra:
            out.addfile(info, io.BytesIO(data))
    return target


def hostile(kind: str, good: Path, tmp_path: Path) -> Path:
    bad = tmp_path / f"{kind}.tar.gz"
    if kind == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "flipped byte":
        data = bytearray(gzip.decompress(good.read_bytes()))
        at = data.index(b'"timestamp_unix_ms"')
        data[at + 1] = ord("T")
        bad.write_bytes(gzip.compress(bytes(data)))
    elif kind == "symlink":
        info = tarfile.TarInfo("state/runtime-events.jsonl.9")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        rebuilt(good, bad, [(info, b"")])
    elif kind == "traversal":
        info = tarfile.TarInfo("state/../../escape.jsonl")
        info.size = 2
        rebuilt(good, bad, [(info, b"{}")])
    else:  # a gzip bomb: 400 MiB of zeros in a tiny file
        with gzip.open(bad, "wb", compresslevel=1) as raw:
            info = tarfile.TarInfo("state/runtime-events.jsonl")
            info.size = 400 << 20
            raw.write(info.tobuf())
            for _ in range(400):
                raw.write(bytes(1 << 20))
    return bad


@pytest.mark.parametrize("kind", ["truncated", "flipped byte", "symlink", "traversal", "bomb"])
def test_a_corrupted_or_hostile_archive_is_refused(
    tmp_path: Path, rotated_state: Path, kind: str
) -> None:
    good = Path(create_snapshot(rotated_state, output=tmp_path / "good.tar.gz").archive_path)
    bad = hostile(kind, good, tmp_path)
    with pytest.raises(InputError, match="fails verification"):
        load_events(bad)
    with pytest.raises(InputError, match="fails verification"):
        scan_events([rotated_state, bad]).collect()
    if kind not in ("truncated", "symlink"):
        return  # the command line's answer is shown for one corrupted and one hostile archive
    result = run_cli("report", "--deployment-state-dir", bad, "--output", tmp_path / "r")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: snapshot archive ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "escape.jsonl").exists() and not (tmp_path.parent / "escape.jsonl"
                                                             ).exists()


def test_report_cli_takes_a_dir_and_an_archive_one_section_each(
    tmp_path: Path, rotated_state: Path
) -> None:
    archive = snapshot(rotated_state, tmp_path / "iad-snap.tar.gz")
    ord_dir = tmp_path / "ord"
    cycles(ord_dir, [[success_case("x")]], start=T0 + 30_000)
    result = run_cli("report", "--deployment-state-dir", ord_dir, "--deployment-state-dir",
                     archive, "--output", tmp_path / "r", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = write_report([ord_dir, archive], tmp_path / "r2", now_ms=T0)
    assert [line.split(": ", 1)[0] for line in report["summary"].splitlines()] == [
        str(ord_dir), str(archive)]
    assert report["cycles"] == expected.cycles == 7
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count('<section class="source">') == 2
    assert f"<h2>{archive}</h2>" in page and f"<h2>{ord_dir}</h2>" in page
    own = summary(load_events(archive)).line
    assert f'<p class="summary">{own}</p>' in page


def test_an_invalid_line_in_an_archive_is_reported_in_the_archive(
    tmp_path: Path, rotated_state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open(rotated_state / "runtime-events.jsonl", "a", encoding="utf-8") as log:
        log.write("not json\n")
    archive = snapshot(rotated_state, tmp_path / "iad.tar.gz")
    with caplog.at_level("WARNING", logger="tau_ops"):
        assert read_events(archive).invalid_lines == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"skipped 1 invalid line(s) in {archive}:runtime-events.jsonl"]


def test_a_hard_linked_events_file_given_twice_is_refused(tmp_path: Path) -> None:
    first = tmp_path / "a" / "runtime-events.jsonl"
    first.parent.mkdir()
    first.write_text('{"timestamp_unix_ms":1,"health_state":"healthy","health_reason":"ok",'
                     '"reason_codes":["healthy_cycle"]}\n', encoding="utf-8")
    second = tmp_path / "hard.jsonl"
    second.hardlink_to(first)
    with pytest.raises(InputError, match="are the same source"):
        load_events([first, second])
