"""A hostile tester's findings on ``tau-ops export events``: each test failed before its fix."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from builders import event_line, run_cli, write_event_log

from tau_ops.analysis.export import export_events, scan_export, source_name
from tau_ops.errors import InputError, UsageError
from tau_ops.ops import create_snapshot

DAY_MS = 86_400_000
D0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _log(folder: Path, *stamps: int, append: bool = False) -> Path:
    write_event_log(folder / "runtime-events.jsonl",
                    *(event_line(ms, "degraded", ["retry_attempted"], failure_streak=i % 3)
                      for i, ms in enumerate(stamps)), append=append)
    return folder


def _one_error_line(result: object, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


# --- 1. cycles dated before the newest exported day ----------------------------------------

def test_cycles_dated_before_the_newest_exported_day_are_added(tmp_path: Path) -> None:
    inc = _log(tmp_path / "inc", D0 + DAY_MS, D0 + 2 * DAY_MS + 5, D0 + 3 * DAY_MS)
    out = str(tmp_path / "out")
    assert export_events([f"inc={inc}"], out).cycles_added == 3
    # Lines dated earlier than the newest exported day: one on an exported day, one on a new day.
    _log(inc, D0 + DAY_MS + 60_000, D0 + 1000, append=True)
    again = export_events([f"inc={inc}"], out)
    assert (again.cycles_added, again.partitions_written) == (2, 2)
    frame = scan_export(out).collect().sort("timestamp")
    assert frame["date"].to_list() == [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 2),
                                       date(2026, 1, 3), date(2026, 1, 4)]
    quiet = export_events([f"inc={inc}"], out)
    assert (quiet.cycles_added, quiet.partitions_written) == (0, 0)


def test_a_cycle_dated_9999_does_not_stop_later_exports(tmp_path: Path) -> None:
    inc = _log(tmp_path / "inc", 253_402_214_400_000)  # 9999-12-31
    out = str(tmp_path / "out")
    assert export_events([f"inc={inc}"], out).cycles_added == 1
    _log(inc, D0, D0 + DAY_MS, append=True)
    assert export_events([f"inc={inc}"], out).cycles_added == 2
    assert scan_export(out).collect().height == 3


# --- 2. partition values keep their types -------------------------------------------------

def test_all_numeric_source_names_read_back_as_strings_and_dates_as_dates(tmp_path: Path) -> None:
    a, b, c = (_log(tmp_path / n, D0 + i, D0 + DAY_MS + i) for i, n in enumerate("abc"))
    out = tmp_path / "o"
    result = run_cli("export", "events", "--to", out, f"01={a}", f"1={b}", f"007={c}")
    assert result.returncode == 0, result.stderr
    frame = scan_export(str(out)).collect()
    assert (frame.schema["source"], frame.schema["date"]) == (pl.String, pl.Date)
    counts = frame.group_by("source").len().sort("source")
    assert counts.rows() == [("007", 2), ("01", 2), ("1", 2)]
    # The duckdb query the fleet guide shows.
    rows = duckdb.sql(
        f"SELECT source, typeof(source), typeof(date), count(*) FROM read_parquet("
        f"'{out}/source=*/date=*/part-0.parquet', hive_partitioning = true, "
        "hive_types = {'source': VARCHAR, 'date': DATE}) GROUP BY ALL ORDER BY source").fetchall()
    assert rows == [("007", "VARCHAR", "DATE", 2), ("01", "VARCHAR", "DATE", 2),
                    ("1", "VARCHAR", "DATE", 2)]


# --- 3. one source twice, names that would merge ------------------------------------------

def test_one_source_given_twice_under_two_spellings_is_refused(tmp_path: Path) -> None:
    _log(tmp_path / "inc", D0)
    result = run_cli("export", "events", "--to", tmp_path / "o", "inc", "./inc", cwd=tmp_path)
    _one_error_line(result, "same source")
    assert not (tmp_path / "o").exists()
    with pytest.raises(InputError, match="same source"):
        export_events([f"a={tmp_path / 'inc'}", f"b={tmp_path / 'inc' / 'runtime-events.jsonl'}"],
                      str(tmp_path / "o"))


@pytest.mark.parametrize("name", ["é", "ü", "a b", "__HIVE_DEFAULT_PARTITION__",
                                  "__hive_default_partition__", ".", ".."])
def test_a_name_that_could_merge_or_read_back_null_is_refused(tmp_path: Path, name: str) -> None:
    _log(tmp_path / "inc", D0)
    result = run_cli("export", "events", "--to", tmp_path / "o", f"{name}=inc", cwd=tmp_path)
    _one_error_line(result, repr(name))
    assert not (tmp_path / "o").exists()


def test_default_names_never_merge_two_paths(tmp_path: Path) -> None:
    _log(tmp_path / "a_b", D0)
    _log(tmp_path / "a" / "b", D0 + 1)
    out = str(tmp_path / "o")
    first = run_cli("export", "events", "--to", out, "a_b", cwd=tmp_path)
    second = run_cli("export", "events", "--to", out, "a/b", cwd=tmp_path)
    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    assert sorted(scan_export(out).collect()["source"].to_list()) == ["a_2Fb", "a_5Fb"]
    assert [source_name(t) for t in ("/srv/iad", "é", "a-b.c")] == ["_2Fsrv_2Fiad", "_C3_A9",
                                                                     "a-b.c"]


# --- 4. writes outside DIR ----------------------------------------------------------------

def test_a_file_url_inside_a_source_is_refused(tmp_path: Path) -> None:
    inc2 = _log(tmp_path / "inc2", D0)
    result = run_cli("export", "events", "--to", f"file://{inc2}/hist", f"A={inc2}")
    _one_error_line(result, "lies inside source")
    assert sorted(p.name for p in inc2.iterdir()) == ["runtime-events.jsonl"]


def test_a_symlink_under_the_dataset_is_refused_without_following_it(tmp_path: Path) -> None:
    inc = _log(tmp_path / "inc", D0)
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "o"
    out.mkdir()
    (out / "source=A").symlink_to("../victim")
    result = run_cli("export", "events", "--to", out, f"A={inc}")
    _one_error_line(result, "symbolic link", "source=A")
    assert list(victim.iterdir()) == []
    # One level down too: a date folder linked elsewhere.
    (out / "source=A").unlink()
    (out / "source=A").mkdir()
    (out / "source=A" / "date=2026-01-01").symlink_to(victim)
    _one_error_line(run_cli("export", "events", "--to", out, f"A={inc}"), "symbolic link")
    assert list(victim.iterdir()) == []


# --- 5. wrong refusals --------------------------------------------------------------------

def test_an_archive_source_beside_the_destination_is_exported(tmp_path: Path) -> None:
    state = _log(tmp_path / "s2", D0, D0 + DAY_MS)
    archive = create_snapshot(state, output=tmp_path / "s2.tar.gz").archive_path
    result = run_cli("export", "events", "--to", "snapout", "S=s2.tar.gz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert scan_export(str(tmp_path / "snapout")).collect()["source"].to_list() == ["S", "S"]
    with pytest.raises(UsageError, match="is the archive"):
        export_events([f"S={archive}"], str(archive))


def test_a_missing_source_is_named_as_missing(tmp_path: Path) -> None:
    result = run_cli("export", "events", "--to", "o", "X=nonexistent", cwd=tmp_path)
    _one_error_line(result, "no such state dir or events file: nonexistent")


# --- 6. bad input exits 2 -----------------------------------------------------------------

def test_a_truncated_partition_file_exits_2_naming_it(tmp_path: Path) -> None:
    inc = _log(tmp_path / "inc", D0)
    out = tmp_path / "o"
    assert run_cli("export", "events", "--to", out, f"A={inc}").returncode == 0
    part = out / "source=A" / "date=2026-01-01" / "part-0.parquet"
    part.write_bytes(part.read_bytes()[:40])
    _one_error_line(run_cli("export", "events", "--to", out, f"A={inc}"), str(part))


def test_a_stray_date_folder_exits_2_naming_it(tmp_path: Path) -> None:
    inc = _log(tmp_path / "inc", D0)
    out = tmp_path / "o"
    (out / "source=A" / "date=2026-13-45").mkdir(parents=True)
    _one_error_line(run_cli("export", "events", "--to", out, f"A={inc}"), "date=2026-13-45")


def test_an_s3_url_without_a_bucket_exits_2(tmp_path: Path) -> None:
    inc = _log(tmp_path / "inc", D0)
    env = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    _one_error_line(run_cli("export", "events", "--to", "s3://", f"A={inc}", env=env), "s3://")


def test_source_names_keep_symlinked_sources_readable(tmp_path: Path) -> None:
    """A source reached through a link is still one source (identity is the log file)."""
    inc = _log(tmp_path / "inc", D0)
    os.symlink(inc, tmp_path / "link")
    with pytest.raises(InputError, match="same source"):
        export_events([f"a={inc}", f"b={tmp_path / 'link'}"], str(tmp_path / "o"))
    shutil.rmtree(tmp_path / "o", ignore_errors=True)


def test_an_export_with_nothing_new_reads_no_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tau_ops.analysis import export

    inc = _log(tmp_path / "inc", *(D0 + i * 3_600_000 for i in range(100)))
    out = str(tmp_path / "o")
    assert export_events([f"inc={inc}"], out).partitions_written == 5

    def refuse(*_: object) -> None:
        raise AssertionError("a partition was read although nothing was new")

    monkeypatch.setattr(export, "_read_partition", refuse)
    quiet = export_events([f"inc={inc}"], out)
    assert (quiet.cycles_added, quiet.partitions_written) == (0, 0)


def test_rows_removed_from_a_partition_by_another_tool_are_exported_again(
    tmp_path: Path,
) -> None:
    import pyarrow.parquet as pq

    inc = _log(tmp_path / "inc", *(D0 + i * 60_000 for i in range(10)))
    out = tmp_path / "o"
    assert export_events([f"inc={inc}"], str(out)).cycles_added == 10
    (part,) = out.rglob("part-0.parquet")
    table = pq.read_table(part)
    pq.write_table(table.slice(0, 8), part)  # keeps the footer's fingerprint, drops 2 rows
    assert export_events([f"inc={inc}"], str(out)).cycles_added == 2
    assert pq.read_table(part).num_rows == 10


@pytest.mark.parametrize("destination,says", [
    ("mock:///x", "in-memory test filesystem"),
    ("file:/abs/p", "looks like a URL without '//'"),
])
def test_a_destination_that_would_keep_nothing_or_land_elsewhere_is_refused(
    tmp_path: Path, destination: str, says: str,
) -> None:
    inc = _log(tmp_path / "inc", D0)
    result = run_cli("export", "events", "--to", destination, f"inc={inc}", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert says in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "file:").exists()
