"""Benchmark: ``tau-ops report`` on a small state dir against loading a big log, in one run.

Goals (issue 15.6): the report of a 3-cycle state dir (whole process, median of
``--repeat`` runs) under 1.0 s and at most 2x the cost of ``load_events`` +
``reason_code_trends`` on a fresh ``--lines`` log (cache built, imports not
timed, as ``benchmarks/events_analysis.py`` measures it); that load within
1.2x of a duckdb SQL of the same trend measured in the same run. The floor of
any eager load with this reader is measured too: duckdb reading all 18 columns
into polars with no checks, then the same trend.

Also measured, for the docs: the opt-in image files (``--image-format svg``,
vl-convert) and a bare ``python -c pass`` (interpreter start-up). Runs are
interleaved (one of each per round) so a change in the machine's load hits
every case alike; the load average is printed before and after.

    python benchmarks/report_start.py [--lines 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from eventgen import generate  # noqa: E402
from events_analysis import _measure  # noqa: E402

T0 = 1_790_000_000_000


def _small_state(folder: Path) -> None:
    codes = (["healthy_cycle"], ["retry_attempted", "cloud_rollout_applied"], ["healthy_cycle"])
    states = ("healthy", "degraded", "healthy")
    with open(folder / "runtime-events.jsonl", "w", encoding="utf-8") as out:
        for index, (state, code) in enumerate(zip(states, codes, strict=True)):
            out.write(json.dumps({
                "timestamp_unix_ms": T0 + index * 60_000, "health_state": state,
                "health_reason": f"{state} cycle", "reason_codes": code,
                "retry_attempts": 1 if state == "degraded" else 0,
            }) + "\n")


def _seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def _report(state_dir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tau_ops", "report", "--deployment-state-dir", str(state_dir),
            "--output", str(out), *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    loads_before = os.getloadavg()
    runs: dict[str, list[float]] = {"report": [], "report-svg": [], "python": [],
                                    "load": [], "sql": [], "floor": []}
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small", Path(tmp) / "big"
        small.mkdir()
        _small_state(small)
        generate(big, lines=args.lines)
        for _ in range(args.repeat):
            runs["python"].append(_seconds([sys.executable, "-c", "pass"]))
            runs["report"].append(_seconds(_report(small, Path(tmp) / "out")))
            runs["report-svg"].append(
                _seconds(_report(small, Path(tmp) / "out-svg", "--image-format", "svg")))
            shutil.rmtree(big / ".analysis-cache", ignore_errors=True)
            runs["load"].append(_measure("tau-load", big)["seconds"])
            runs["sql"].append(_measure("duckdb-sql", big)["seconds"])
            runs["floor"].append(_measure("duckdb-load", big)["seconds"])
    med = {case: statistics.median(values) for case, values in runs.items()}
    report, load, sql = med["report"], med["load"], med["sql"]
    print(f"load average before / after: {loads_before[0]:.1f} / {os.getloadavg()[0]:.1f}")
    print(f"python -c pass (process, median of {args.repeat}): {med['python']:.2f} s")
    print(f"report, 3-cycle state dir (process, median of {args.repeat}): {report:.2f} s")
    print(f"report --image-format svg, same state dir: {med['report-svg']:.2f} s")
    print(f"load_events + reason_code_trends, {args.lines:,} lines, fresh cache: {load:.2f} s")
    print(f"duckdb SQL of the same trend: {sql:.2f} s")
    print(f"floor of an eager load (duckdb reads all columns into polars, no checks) + the "
          f"same trend: {med['floor']:.2f} s = {med['floor'] / sql:.2f}x duckdb SQL")
    print(f"report / load = {report / load:.2f} (goal <= 2.0); load / duckdb = {load / sql:.2f} "
          f"(goal <= 1.2); report {'<' if report < 1.0 else '>='} 1.0 s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
