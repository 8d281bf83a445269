"""Fleet analysis past one machine: incremental Parquet export, and Spark answering as polars."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from builders import REPO, event_line, run_cli, write_event_log
from polars.testing import assert_frame_equal

from tau_ops.analysis import load_events, questions
from tau_ops.analysis.export import export_events, scan_export
from tau_ops.errors import UsageError

BASE_MS = 1_764_000_000_000
CODES = ["retry_attempted", "case_processing_failed", "malformed_inputs_observed",
         "duplicate_cases_skipped", "queue_backpressure_applied"]


def _fleet(root: Path, members: int, cycles: int, *, seed: int = 7) -> list[str]:
    """``members`` state dirs with seeded random histories, 15 minutes apart across days."""
    rng = random.Random(seed)
    sources = []
    for m in range(members):
        lines = []
        for i in range(cycles):
            state = rng.choice(["healthy", "healthy", "healthy", "degraded", "failing"])
            codes = (sorted(rng.sample(CODES, rng.randint(1, 3))) if state != "healthy"
                     else ["cloud_rollout_applied"])
            if i % 7 == 0:  # a code listed twice: the cycle still counts once
                codes = [*codes, codes[0]]
            lines.append(event_line(BASE_MS + i * 900_000 + m * 1000, state, codes,
                                    failure_streak=rng.randint(0, 4),
                                    backlog_cases=rng.randint(0, 5)))
        folder = root / f"m{m:02d}"
        write_event_log(folder / "runtime-events.jsonl", *lines)
        sources.append(f"m{m:02d}={folder}")
    return sources


def test_export_is_hive_partitioned_by_source_and_utc_date(tmp_path: Path) -> None:
    sources = _fleet(tmp_path, 2, 200)
    report = export_events(sources, str(tmp_path / "out"))
    assert (report.cycles_added, [s.source for s in report.sources]) == (400, ["m00", "m01"])
    parts = sorted(p.relative_to(tmp_path / "out").as_posix()
                   for p in (tmp_path / "out").rglob("*.parquet"))
    assert parts[:3] == ["source=m00/date=2025-11-24/part-0.parquet",
                         "source=m00/date=2025-11-25/part-0.parquet",
                         "source=m00/date=2025-11-26/part-0.parquet"]
    frame = scan_export(str(tmp_path / "out")).collect()
    assert frame.height == 400
    assert frame.schema["date"] == pl.Date and frame.schema["source"] == pl.String
    assert (frame["timestamp"].dt.date() == frame["date"]).all()


def test_second_export_adds_only_new_cycles(tmp_path: Path) -> None:
    (source,) = _fleet(tmp_path, 1, 100)
    out = str(tmp_path / "out")
    assert export_events([source], out).cycles_added == 100
    again = export_events([source], out)
    assert (again.cycles_added, again.partitions_written) == (0, 0)
    log = tmp_path / "m00" / "runtime-events.jsonl"
    write_event_log(log, event_line(BASE_MS + 100 * 900_000, "degraded", ["retry_attempted"]),
                    append=True)
    more = export_events([source], out)
    assert (more.cycles_added, more.partitions_written) == (1, 1)
    frame = scan_export(out).collect()
    assert frame.height == 101 and frame.unique().height == 101


def test_a_killed_export_is_completed_by_the_next_without_duplicates(tmp_path: Path) -> None:
    sources = _fleet(tmp_path, 6, 400)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    argv = [sys.executable, "-m", "tau_ops", "export", "events", "--no-cache", *sources]
    start = time.monotonic()  # one whole export elsewhere times the kills below
    subprocess.run([*argv, "--to", str(tmp_path / "timing")], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    whole = time.monotonic() - start
    killed = 0
    for share in (0.5, 0.7, 0.8, 0.9, 0.95):
        proc = subprocess.Popen([*argv, "--to", str(out)], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(whole * share)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=60)
    assert killed >= 1
    result = run_cli("export", "events", "--to", out, "--no-cache", *sources)
    assert result.returncode == 0, result.stderr
    frame = scan_export(str(out)).collect()
    assert frame.height == 2400 and frame.unique().height == 2400
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("question", ["reason_code_trends", "incidents", "health_timeline"])
def test_answers_on_the_export_equal_answers_on_the_logs(tmp_path: Path, question: str) -> None:
    sources = _fleet(tmp_path, 3, 150)
    export_events(sources, str(tmp_path / "out"))
    exported = scan_export(str(tmp_path / "out")).collect().drop("date")
    loaded = load_events([s.split("=", 1)[1] for s in sources])
    names = {str(tmp_path / f"m{m:02d}"): f"m{m:02d}" for m in range(3)}
    loaded = loaded.with_columns(pl.col("source").cast(pl.String).replace_strict(names))
    expected = getattr(questions, question)(loaded)
    answer = getattr(questions, question)(exported)
    assert answer.height > 10
    assert_frame_equal(answer, expected, check_dtypes=False)


def test_export_cli_bad_input_exits_2(tmp_path: Path) -> None:
    for args in (["export", "events", "--to", tmp_path / "o"],
                 ["export", "events", "--to", tmp_path / "o", tmp_path / "missing"],
                 ["export", "events", "--to", tmp_path / "o", f"a={tmp_path}", f"a={tmp_path}"],
                 ["export", "nothing", "--to", tmp_path / "o", tmp_path],
                 ["export", "events", "--to", "", tmp_path],
                 ["export", "events", "--to", tmp_path / "inside", tmp_path]):
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_an_unreachable_gs_destination_is_refused_quickly_naming_it(tmp_path: Path) -> None:
    (source,) = _fleet(tmp_path, 1, 10)
    # No credentials anywhere and the metadata server on a closed loopback port: Google's
    # client would keep retrying for 15 minutes; the export gives up within its limit.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TAU_", "GOOGLE_", "CLOUDSDK_", "GCE_"))}
    env |= {"HOME": str(tmp_path), "GCE_METADATA_ROOT": "127.0.0.1:9",
            "GCE_METADATA_HOST": "127.0.0.1:9"}
    url = "gs://tau-ops-no-such-bucket/fleet"
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "tau_ops", "export", "events", "--to", url,
                             str(source)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    elapsed = time.monotonic() - start
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: cannot open export destination {url}: ")
    assert len(result.stderr.splitlines()) == 1
    assert elapsed < 90, elapsed  # GCS_RETRY_LIMIT_S (10 s) plus start-up on a loaded machine


def test_export_json_report(tmp_path: Path) -> None:
    (source,) = _fleet(tmp_path, 1, 10)
    result = run_cli("export", "events", "--to", tmp_path / "o", source, "--json")
    assert result.returncode == 0, result.stderr
    import json
    doc = json.loads(result.stdout)
    assert (doc["cycles_added"], doc["sources"][0]["source"]) == (10, "m00")


# --- Spark -------------------------------------------------------------------------------

def _spark_unavailable() -> str | None:
    if shutil.which("java") is None:
        return "no Java runtime (apt-get install default-jre-headless; .ci/run does this in CI)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'tau-ops[spark]')"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    reason = _spark_unavailable()
    if reason:
        pytest.skip(reason)
    from tau_ops.analysis.spark import local_session

    session = local_session("tau-ops-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _as_polars(spark_frame: Any, like: pl.DataFrame) -> pl.DataFrame:
    frame = pl.from_arrow(spark_frame.toArrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.cast(like.schema)  # Spark keeps microseconds; polars frames have ms


@pytest.mark.slow
@pytest.mark.parametrize("question,kwargs", [
    ("reason_code_trends", {"every": "1h"}),
    ("reason_code_trends", {"every": "15m"}),
    ("health_timeline", {"every": "1h"}),
    ("incidents", {}),
])
def test_spark_answers_equal_polars_row_for_row_on_a_20_member_fleet(
    spark: Any, tmp_path_factory: pytest.TempPathFactory, question: str,
    kwargs: dict[str, str],
) -> None:
    from tau_ops.analysis import spark as spark_questions

    root = tmp_path_factory.mktemp("fleet20")
    export_events(_fleet(root, 20, 120), str(root / "export"))
    expected = getattr(questions, question)(scan_export(str(root / "export")).collect()
                                            .drop("date"), **kwargs)
    frame = spark_questions.read_export(spark, str(root / "export")).drop("date")
    answer = _as_polars(getattr(spark_questions, question)(frame, **kwargs), expected)
    assert expected.height > 20
    assert answer.columns == expected.columns
    assert_frame_equal(answer, expected)


@pytest.mark.slow
def test_spark_reads_all_numeric_source_names_as_strings(spark: Any, tmp_path: Path) -> None:
    from tau_ops.analysis import spark as spark_questions

    (a, b, c) = [s.partition("=")[2] for s in _fleet(tmp_path, 3, 100)]
    out = str(tmp_path / "o")
    export_events([f"01={a}", f"1={b}", f"007={c}"], out)
    frame = spark_questions.read_export(spark, out)
    types = dict(frame.dtypes)
    assert (types["source"], types["date"]) == ("string", "date")
    counts = sorted((r["source"], r["count"]) for r in frame.groupBy("source").count().collect())
    assert counts == [("007", 100), ("01", 100), ("1", 100)]
    # The session's own setting is left as it was.
    key = "spark.sql.sources.partitionColumnTypeInference.enabled"
    assert spark.conf.get(key) == "true"


def test_spark_refuses_calendar_buckets() -> None:
    from tau_ops.analysis.spark import bucket_ms

    with pytest.raises(UsageError, match="fixed widths"):
        bucket_ms("1mo")
