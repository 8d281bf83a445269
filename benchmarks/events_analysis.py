"""Benchmark: load a runtime-events log and answer ``reason_code_trends``, against baselines.

For each size, generates a deterministic log (``benchmarks/eventgen.py``,
three files as rotation leaves them) under ``benchmarks/.data/`` and runs, each
in a fresh process so peak memory (max RSS) is its own:

- ``duckdb-sql``: the question as one duckdb SQL query over ``read_json``;
- ``duckdb-load``: the floor of an eager load: duckdb reads all 18 columns into
  polars (no checks, no cache), then ``reason_code_trends``;
- ``polars-ndjson``: ``polars.read_ndjson`` + explode + group_by, by hand;
- ``pandas``: ``pandas.read_json(lines=True)`` + explode + groupby;
- ``tau-scan``: ``reason_code_trends(scan_events(dir))``, cold, no cache;
- ``tau-load``: ``load_events(dir)`` (builds the cache) + ``reason_code_trends``; the
  cache is written in a background thread after the load returns, so ``cache_s``
  also reports the time until it is on disk (``wait_for_writes``);
- ``tau-cached``: the same again, served from the cache, in a fresh process;
- ``tau-cached-warm``: the same, as the second load in one process (a notebook session);
- ``tau-grown``: the same after 1% more lines were appended.

Each case runs ``--repeat`` times (fastest kept; pandas and tau-grown once).
Prints seconds, peak MiB, and ratios to duckdb-sql and pandas.

    python benchmarks/events_analysis.py [--sizes 100000 1000000 10000000] [--skip pandas]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
LOG = "runtime-events.jsonl"
CASES = ("duckdb-sql", "duckdb-load", "polars-ndjson", "pandas", "tau-scan", "tau-load",
         "tau-cached", "tau-cached-warm", "tau-grown")


def _files(state_dir: Path) -> list[str]:
    from tau_ops.storage import rotated_files

    return [str(p) for p in rotated_files(state_dir / LOG)]


def run_case(case: str, state_dir: Path) -> int:
    """Run one case in this process; returns the number of result rows."""
    files = _files(state_dir)
    if case == "duckdb-sql":
        import duckdb

        query = f"""
            SELECT time_bucket(INTERVAL 1 HOUR, epoch_ms(timestamp_unix_ms)) AS bucket,
                   code AS reason_code, count(*) AS cycles
            FROM (SELECT timestamp_unix_ms, unnest(reason_codes) AS code
                  FROM read_json({files!r}, format='newline_delimited', ignore_errors=true,
                       columns={{timestamp_unix_ms: 'BIGINT', reason_codes: 'VARCHAR[]'}}))
            GROUP BY ALL ORDER BY ALL"""
        return len(duckdb.connect().sql(query).fetchall())
    if case == "duckdb-load":
        # The floor of an eager load: every column read by duckdb into polars, no checks,
        # with the batch reader the load uses.
        import duckdb
        import polars as pl

        from tau_ops.analysis import reason_code_trends
        from tau_ops.analysis._fast import _TYPES, record_batches

        types = ", ".join(f"{name}: '{kind}'" for name, kind in _TYPES.items())
        frame = pl.concat(record_batches(duckdb.connect(), (
            f"SELECT * FROM read_json({files!r}, format='newline_delimited', "
            f"ignore_errors=true, columns={{{types}}})")), rechunk=False)
        frame = frame.with_columns(
            pl.from_epoch("timestamp_unix_ms", time_unit="ms").dt.replace_time_zone("UTC")
            .alias("timestamp"))
        return int(reason_code_trends(frame, every="1h").height)
    if case == "polars-ndjson":
        import polars as pl

        frame = pl.concat([pl.read_ndjson(f) for f in files])
        return (
            frame.with_columns(pl.from_epoch("timestamp_unix_ms", time_unit="ms")
                               .dt.truncate("1h").alias("bucket"))
            .explode("reason_codes").group_by("bucket", "reason_codes").len().height
        )
    if case == "pandas":
        import pandas as pd

        frame = pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
        frame["bucket"] = pd.to_datetime(frame["timestamp_unix_ms"], unit="ms").dt.floor("h")
        return len(frame.explode("reason_codes").groupby(["bucket", "reason_codes"]).size())
    from tau_ops.analysis import load_events, reason_code_trends, scan_events

    if case == "tau-scan":
        lazy = reason_code_trends(scan_events(state_dir, cache=False), every="1h")
        return lazy.collect(engine="streaming").height
    return reason_code_trends(load_events(state_dir), every="1h").height


def _child(case: str, state_dir: Path) -> None:
    # Imports are not part of the measurement (each case pays for its own libraries).
    module = {"duckdb-sql": "duckdb", "polars-ndjson": "polars", "pandas": "pandas",
              "duckdb-load": "tau_ops.analysis"}
    __import__(module.get(case, "tau_ops.analysis"))
    if case == "tau-cached-warm":  # a repeated load in the same session (notebook, widget)
        run_case(case, state_dir)
    started, cpu = time.perf_counter(), time.process_time()  # cpu: all threads
    rows = run_case(case, state_dir)
    seconds = time.perf_counter() - started
    result = {"case": case, "seconds": seconds, "cpu_s": time.process_time() - cpu, "rows": rows}
    if case.startswith("tau-"):
        try:  # an older tau-ops (PYTHONPATH=old checkout, as a baseline) writes it in the load
            from tau_ops.analysis.cache import wait_for_writes
        except ImportError:
            wait_for_writes = None  # type: ignore[assignment]
        if wait_for_writes is not None:
            wait_for_writes()  # the background cache write, off the timed path
        result["cache_s"] = time.perf_counter() - started
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _measure(case: str, state_dir: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", case, str(state_dir)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _grow(state_dir: Path, fraction: float) -> int:
    """Append ``fraction`` more lines (a second deterministic run) to the active file."""
    sys.path.insert(0, str(HERE))
    from eventgen import generate

    extra = state_dir / "grow"
    lines = max(1, int(_line_count(state_dir) * fraction))
    generate(extra, lines=lines, seed=99, files=1)
    before = (state_dir / LOG).stat().st_size
    with open(state_dir / LOG, "ab") as out, open(extra / LOG, "rb") as src:
        shutil.copyfileobj(src, out)
    shutil.rmtree(extra)
    return before


def _line_count(state_dir: Path) -> int:
    return sum(Path(f).read_bytes().count(b"\n") for f in _files(state_dir))


def _best(case: str, state_dir: Path, repeat: int) -> dict[str, float]:
    """Fastest of ``repeat`` runs (the machine is shared and noisy); tau-load from a cold cache."""
    runs = []
    for _ in range(repeat if case not in ("pandas", "tau-grown") else 1):
        if case == "tau-load":
            shutil.rmtree(state_dir / ".analysis-cache", ignore_errors=True)
        runs.append(_measure(case, state_dir))
    return min(runs, key=lambda r: r["seconds"])


def bench(size: int, skip: set[str], keep: bool, repeat: int) -> list[dict[str, float]]:
    sys.path.insert(0, str(HERE))
    from eventgen import generate

    state_dir = DATA / f"events-{size}"
    if state_dir.exists():
        shutil.rmtree(state_dir)
    generate(state_dir, lines=size)
    megabytes = sum(os.path.getsize(f) for f in _files(state_dir)) / 1e6
    print(f"\n## {size:,} lines, {megabytes:,.0f} MB in {len(_files(state_dir))} files")
    results = []
    for case in CASES:
        if case in skip:
            continue
        if case == "tau-grown":
            _grow(state_dir, 0.01)
        results.append(_best(case, state_dir, repeat))
        r = results[-1]
        cached = f"  (cache on disk at {r['cache_s']:.2f} s)" if "cache_s" in r else ""
        print(f"{case:15} {r['seconds']:8.2f} s {r['peak_mib']:8.0f} MiB  rows={r['rows']:.0f}"
              + cached, flush=True)
    by: dict[str, dict[str, float]] = {str(r["case"]): r for r in results}
    base = by.get("duckdb-sql")
    pandas = by.get("pandas")
    for r in results:
        parts = []
        if base:
            parts.append(f"{r['seconds'] / base['seconds']:.2f}x duckdb time, "
                         f"{r['peak_mib'] / base['peak_mib']:.2f}x its memory")
        if pandas and r is not pandas:
            parts.append(f"{pandas['seconds'] / r['seconds']:.1f}x faster than pandas")
        print(f"  {r['case']:15} " + "; ".join(parts))
    if not keep:
        shutil.rmtree(state_dir)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--skip", nargs="*", default=[], choices=CASES)
    parser.add_argument("--keep", action="store_true", help="keep the generated logs")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per case, fastest kept (pandas and tau-grown run once)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    for size in args.sizes:
        bench(size, set(args.skip), args.keep, args.repeat)


if __name__ == "__main__":
    main()
