"""Fleet benchmarks: the fleet gate over many state dirs and gateways, export, and trends.

Each figure is reported with a baseline measured in the same run (this machine
is noisy), as the issue asks:

- ``fleet gate`` over ``--dirs`` local state dirs (whole process, median of 3)
  against the bare process start of ``python -m tau_ops --help``; goal < 2 s;
- ``fleet gate`` over ``--gateways`` loopback gateways (real uvicorn servers,
  one per state dir, in one helper process) against the same over one
  gateway; goal < 1 s;
- ``export events`` of ``--lines`` event lines across ``--sources`` sources:
  time, peak RSS, bytes on disk against the JSONL bytes;
- reason-code trends on the export: polars, duckdb and Spark ``local[2]``
  (when pyspark and Java are there), no goal for Spark.

Usage: ``python benchmarks/fleet.py [--dirs 1000] [--gateways 50] [--lines 10000000]
[--sources 100] [--no-spark] [--json]``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eventgen import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "testdata/deployment-contract/rollout-pass.json"


def _timed(argv: list[str], *, repeat: int = 3, ok: tuple[int, ...] = (0, 1)) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - start)
        if result.returncode not in ok:
            raise SystemExit(f"{argv[:5]} failed: {result.stderr[-500:]}")
    return statistics.median(times)


def _tau(*args: str) -> list[str]:
    return [sys.executable, "-m", "tau_ops", *args]


def bench_dirs(root: Path, count: int) -> dict[str, float]:
    """fleet gate over ``count`` state dirs: copies of one real runner state."""
    seed = root / "seed" / "deployment"
    subprocess.run(_tau("--deployment-state-dir", str(seed), "--deployment-contract-runner",
                        "--deployment-fixture", str(FIXTURE)), check=True, capture_output=True)
    for index in range(count):
        target = root / "dirs" / f"m{index:04d}" / "deployment"
        target.mkdir(parents=True)
        shutil.copy(seed / "state.json", target / "state.json")
    start = _timed(_tau("--help"), ok=(0,))
    gate = _timed(_tau("fleet", "gate", str(root / "dirs" / "*" / "deployment")))
    return {"members": count, "fleet_gate_s": gate, "process_start_s": start,
            "ratio_to_start": gate / start}


SERVE = r"""
import asyncio, shutil, sys
from pathlib import Path
import uvicorn
from tau_ops.gateway.app import create_app

async def main(root, count):
    servers = []
    for index in range(count):
        state = Path(root) / f"g{index:03d}" / "deployment"
        state.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(root) / "seed.json", state / "state.json")
        config = uvicorn.Config(create_app(state_dir=state), host="127.0.0.1", port=0,
                                log_level="error", lifespan="off")
        servers.append(uvicorn.Server(config))
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    while not all(s.started for s in servers):
        await asyncio.sleep(0.05)
    ports = [s.servers[0].sockets[0].getsockname()[1] for s in servers]
    print(" ".join(map(str, ports)), flush=True)
    await asyncio.sleep(float(sys.argv[3]))
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def bench_gateways(root: Path, count: int) -> dict[str, float]:
    """fleet gate over ``count`` loopback gateways, against the same over one gateway."""
    (root / "gw").mkdir()
    shutil.copy(root / "seed" / "deployment" / "state.json", root / "gw" / "seed.json")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(root / "gw"), str(count), "120"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ports = proc.stdout.readline().split()
        urls = [f"http://127.0.0.1:{port}/gateway/status" for port in ports]
        one = _timed(_tau("fleet", "gate", urls[0]))
        many = _timed(_tau("fleet", "gate", *urls))
    finally:
        proc.kill()
        proc.wait(timeout=30)
    return {"members": count, "fleet_gate_s": many, "one_gateway_s": one,
            "ratio_to_one": many / one}


def bench_export(root: Path, lines: int, sources: int) -> dict[str, float]:
    """export events: time, peak RSS and bytes, from a separate process."""
    names = []
    jsonl = 0
    for index in range(sources):
        folder = root / "src" / f"s{index:03d}"
        paths = generate(folder, lines=lines // sources, seed=index, files=1)
        jsonl += sum(p.stat().st_size for p in paths)
        names.append(f"s{index:03d}={folder}")
    out = root / "export"
    code = (
        "import resource, sys, time\n"
        "from tau_ops.analysis.export import export_events\n"
        "t = time.perf_counter()\n"
        "r = export_events(sys.argv[2:], sys.argv[1], cache=False)\n"
        "print(time.perf_counter() - t, r.cycles_added,"
        " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(out), *names], capture_output=True,
                            text=True, check=True, timeout=3600)
    seconds, added, rss_kib = result.stdout.split()
    parquet = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    again = subprocess.run([sys.executable, "-c", code, str(out), *names], capture_output=True,
                           text=True, check=True, timeout=3600).stdout.split()
    return {"lines": int(added), "sources": sources, "export_s": float(seconds),
            "peak_rss_mib": int(rss_kib) / 1024, "jsonl_mb": jsonl / 1e6,
            "parquet_mb": parquet / 1e6, "parquet_to_jsonl": parquet / jsonl,
            "second_export_s": float(again[0]), "second_export_added": int(again[1])}


def bench_trends(root: Path, spark: bool) -> dict[str, float]:
    """Hourly reason-code trends on the export: polars, duckdb, Spark local[2]."""
    import duckdb

    from tau_ops.analysis.export import scan_export
    from tau_ops.analysis.questions import reason_code_trends

    out = str(root / "export")
    start = time.perf_counter()
    polars_rows = reason_code_trends(scan_export(out).drop("date"), every="1h").collect().height
    figures: dict[str, float] = {"polars_s": time.perf_counter() - start,
                                 "rows": polars_rows}
    start = time.perf_counter()
    duck_rows = duckdb.sql(
        f"SELECT time_bucket(INTERVAL 1 HOUR, timestamp) AS bucket, source, code, count(*) "
        f"FROM (SELECT timestamp, source, unnest(reason_codes) AS code FROM read_parquet("
        f"'{out}/source=*/date=*/part-0.parquet', hive_partitioning = true)) "
        f"GROUP BY ALL ORDER BY ALL").fetchall()
    figures["duckdb_s"] = time.perf_counter() - start
    figures["duckdb_rows"] = len(duck_rows)
    if spark and shutil.which("java"):
        from tau_ops.analysis import spark as tau_spark

        session = tau_spark.local_session("tau-ops-bench")
        session.sparkContext.setLogLevel("ERROR")
        try:
            start = time.perf_counter()
            frame = tau_spark.read_export(session, out).drop("date")
            figures["spark_rows"] = tau_spark.reason_code_trends(frame, every="1h").count()
            figures["spark_s"] = time.perf_counter() - start
        finally:
            session.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dirs", type=int, default=1000)
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tau-fleet-bench-") as tmp:
        root = Path(tmp)
        results["dirs"] = bench_dirs(root, args.dirs)
        results["gateways"] = bench_gateways(root, args.gateways)
        if args.lines:
            results["export"] = bench_export(root, args.lines, args.sources)
            results["trends"] = bench_trends(root, not args.no_spark)
    print(f"load average at end: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, figures in results.items():
        shown = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in figures.items())
        print(f"{name}: {shown}")


if __name__ == "__main__":
    main()
