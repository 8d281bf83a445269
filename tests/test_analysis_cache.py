"""The incremental Parquet cache is invisible: cached loads equal uncached ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from builders import event_line, write_event_log

from tau_ops.analysis import load_events, read_events, scan_events
from tau_ops.analysis.cache import CACHE_DIR, wait_for_writes
from tau_ops.storage import rotate_if_needed

T0 = 1_700_000_000_000
LOG = "runtime-events.jsonl"


def _lines(start: int, count: int) -> list[str]:
    states = ["healthy", "degraded", "failing"]
    return [
        event_line(T0 + i * 1000, states[i % 3], ["retry_attempted"] if i % 3 else None,
                   retry_attempts=i % 3, backlog_cases=i)
        for i in range(start, start + count)
    ]


def _same(state_dir: Path) -> int:
    cached = read_events(state_dir)
    plain = read_events(state_dir, cache=False)
    assert cached.frame.equals(plain.frame)
    assert cached.invalid_lines == plain.invalid_lines
    assert scan_events(state_dir).collect().equals(plain.frame)
    return cached.frame.height


def test_appends_extend_the_cache_from_the_last_offset(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 5))
    assert _same(tmp_path) == 5
    write_event_log(tmp_path / LOG, *_lines(5, 3), "junk", append=True)
    assert _same(tmp_path) == 8
    segments = sorted(p.name for p in (tmp_path / CACHE_DIR).glob("*.parquet"))
    size = (tmp_path / LOG).stat().st_size
    assert len(segments) == 2 and segments[1].endswith(f"-{size}.parquet")
    assert read_events(tmp_path).invalid_lines == 1


def test_many_appends_are_compacted_and_stay_correct(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 1))
    for i in range(1, 12):
        write_event_log(tmp_path / LOG, *_lines(i, 1), append=True)
        assert _same(tmp_path) == i + 1
    assert len(list((tmp_path / CACHE_DIR).glob("*.parquet"))) <= 8


def test_rotation_keeps_backup_entries_and_prunes_deleted_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_FILES", "2")
    write_event_log(tmp_path / LOG, *_lines(0, 4))
    assert _same(tmp_path) == 4
    for round_ in range(2):
        (tmp_path / LOG).rename(tmp_path / f"{LOG}.1")
        write_event_log(tmp_path / LOG, *_lines(4 + 4 * round_, 4))
        assert _same(tmp_path) == 8
    monkeypatch.setenv("TAU_LOG_ROTATION_MAX_BYTES", "1")
    assert rotate_if_needed(tmp_path / LOG, 10)
    write_event_log(tmp_path / LOG, *_lines(20, 1))
    assert _same(tmp_path) == 5
    entries = list((tmp_path / CACHE_DIR).glob("*.json"))
    assert len(entries) == 2


def test_truncation_and_rewrite_rebuild_the_entry(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 6))
    assert _same(tmp_path) == 6
    with open(tmp_path / LOG, "r+b") as handle:  # as recover() undoes a torn append
        handle.truncate(sum(len(line) + 1 for line in _lines(0, 2)))
    assert _same(tmp_path) == 2
    write_event_log(tmp_path / LOG, *_lines(10, 6), append=True)  # regrows past the old end
    assert _same(tmp_path) == 8
    write_event_log(tmp_path / LOG, *_lines(30, 9))  # same inode, new content
    assert _same(tmp_path) == 9


def test_a_torn_last_line_is_never_cached(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 2))
    with open(tmp_path / LOG, "a") as handle:
        handle.write(_lines(2, 1)[0][:40])
    assert _same(tmp_path) == 2
    assert read_events(tmp_path).invalid_lines == 1
    with open(tmp_path / LOG, "a") as handle:  # the writer finishes its line
        handle.write(_lines(2, 1)[0][40:] + "\n")
    assert _same(tmp_path) == 3
    assert read_events(tmp_path).invalid_lines == 0


@pytest.mark.parametrize("victim", ["json", "parquet"])
def test_a_corrupted_cache_file_is_rebuilt(tmp_path: Path, victim: str) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 5))
    assert _same(tmp_path) == 5
    for path in (tmp_path / CACHE_DIR).glob(f"*.{victim}"):
        path.write_bytes(b"\x00garbage")
    assert _same(tmp_path) == 5


def test_a_truncated_parquet_segment_is_rebuilt(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 5))
    _same(tmp_path)
    for path in (tmp_path / CACHE_DIR).glob("*.parquet"):
        path.write_bytes(path.read_bytes()[:-20])
    assert _same(tmp_path) == 5


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_state_dir_still_loads(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 3))
    tmp_path.chmod(0o555)
    try:
        assert _same(tmp_path) == 3
        assert not (tmp_path / CACHE_DIR).exists()
    finally:
        tmp_path.chmod(0o755)


def test_an_unwritable_cache_folder_falls_back_to_parsing(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 3))
    (tmp_path / CACHE_DIR).write_text("a file where the cache folder should be")
    assert _same(tmp_path) == 3
    write_event_log(tmp_path / LOG, *_lines(3, 2), "junk", append=True)
    assert _same(tmp_path) == 5
    assert read_events(tmp_path).invalid_lines == 1


def test_cache_can_be_turned_off(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 3))
    assert load_events(tmp_path, cache=False).height == 3
    assert not (tmp_path / CACHE_DIR).exists()


def _cached_state(state_dir: Path) -> tuple[int, int, int]:
    """(bytes still to parse, rows, invalid) of the active file, as the cache now covers it."""
    from tau_ops.analysis.cache import EventCache

    parts = EventCache(state_dir / CACHE_DIR, LOG).sync(state_dir / LOG, writable=False)
    rows = sum(pl.read_parquet(p).height for p in parts.parquet)
    return parts.parsed_bytes, rows + sum(f.height for f in parts.frames), parts.invalid


def test_the_cache_written_after_the_load_is_complete_once_written(tmp_path: Path) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 7), "junk")
    frame = load_events(tmp_path)  # returns before the segment is written
    wait_for_writes()
    assert _cached_state(tmp_path) == (0, 7, 1)  # nothing left to parse: all of it cached
    assert read_events(tmp_path).frame.equals(frame)


def _child(code: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    script = "import sys\nfrom pathlib import Path\nstate = Path(sys.argv[1])\n" + code
    return subprocess.run([sys.executable, "-c", script, str(state_dir)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_process_that_exits_right_after_loading_leaves_a_complete_cache(
    tmp_path: Path,
) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 9))
    done = _child("from tau_ops.analysis import load_events\n"
                  "print(load_events(state).height)\n", tmp_path)  # exits at once
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "9", "")
    assert _cached_state(tmp_path) == (0, 9, 0)
    assert _same(tmp_path) == 9


KILL_AT = {
    # after the segment is in place, before the entry that makes it part of the cache
    "before_entry": "cache.atomic_write_json = lambda *a, **k: printed.wait() and kill()\n",
    # half-way through writing the segment's temporary file
    "mid_segment": (
        "def half(path, data, **k):\n"
        "    (path.parent / ('.' + path.name + '.x.tmp')).write_bytes(data[: len(data) // 2])\n"
        "    printed.wait() and kill()\n"
        "cache.atomic_write_bytes = half\n"
    ),
}


@pytest.mark.parametrize("moment", sorted(KILL_AT))
def test_a_process_killed_mid_cache_write_leaves_no_entry_read_as_valid(
    tmp_path: Path, moment: str
) -> None:
    write_event_log(tmp_path / LOG, *_lines(0, 6))
    _same(tmp_path)  # a valid cache of the first 6 lines
    write_event_log(tmp_path / LOG, *_lines(6, 5), append=True)
    done = _child(
        "import os, threading\nfrom tau_ops.analysis import cache, load_events\n"
        "printed = threading.Event()\nkill = lambda: os.kill(os.getpid(), 9)\n"
        + KILL_AT[moment] + "print(load_events(state).height, flush=True)\nprinted.set()\n",
        tmp_path)
    assert (done.returncode, done.stdout.strip()) == (-9, "11")  # loaded, then killed writing
    assert _cached_state(tmp_path)[:2] == (sum(len(x) + 1 for x in _lines(6, 5)), 11)
    assert _same(tmp_path) == 11  # the next load is right and completes the cache
    wait_for_writes()
    assert _cached_state(tmp_path) == (0, 11, 0)
