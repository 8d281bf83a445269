"""Fleet benchmarks: the fleet gate over many state dirs and gateways, export, and trends.

Each figure is reported with a baseline measured in the same run (this machine
may be shared), as the issue asks, and with its CPU time (user + system of the
child process, far less sensitive to other load than wall time):

- ``fleet gate`` over ``--dirs`` local state dirs (whole process, median of
  ``--repeat``) against the bare interpreter start (``python -c pass``) and
  ``python -m tau_ops --help``; goal < 2 s wall, process start included;
- ``fleet gate`` over ``--gateways`` loopback gateways (real uvicorn servers,
  one per state dir, in one helper process) against the same over one
  gateway; goal < 1 s;
- ``export events`` of ``--lines`` event lines across ``--sources`` sources:
  time, peak RSS, bytes on disk against the JSONL bytes;
- reason-code trends on the export: polars, duckdb and Spark ``local[2]``
  (when pyspark and Java are there), no goal for Spark.

Child processes run with a byte-code cache (``PYTHONPYCACHEPREFIX`` in the
temporary folder, warmed once), as an installed wheel has one, even when
``PYTHONDONTWRITEBYTECODE`` is set. The last lines are one verdict per goal.

Usage: ``python benchmarks/fleet.py [--dirs 1000] [--gateways 50] [--lines 10000000]
[--sources 100] [--parts dirs,gateways,export,trends] [--no-spark] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


GOALS = {"dirs": 2.0, "gateways": 1.0}
"""Wall-time goals in seconds: fleet gate over 1,000 state dirs, over 50 gateways."""

ENV = {k: v for k, v in os.environ.items()
       if not k.startswith("TAU_") and k != "PYTHONDONTWRITEBYTECODE"}


def _timed(argv: list[str], *, repeat: int, ok: tuple[int, ...] = (0, 1)) -> tuple[float, float]:
    """Median wall and CPU seconds (user + system of the child) of ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=ENV)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if result.returncode not in ok:
            raise SystemExit(f"{argv[:5]} failed: {result.stderr[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def _tau(*args: str) -> list[str]:
    return [sys.executable, "-m", "tau_ops", *args]


def _baselines(repeat: int) -> dict[str, float]:
    """Bare interpreter start and ``tau-ops --help`` (every CLI feature imported)."""
    bare, bare_cpu = _timed([sys.executable, "-c", "pass"], repeat=repeat, ok=(0,))
    helps, help_cpu = _timed(_tau("--help"), repeat=repeat, ok=(0,))
    return {"python_start_s": bare, "python_start_cpu_s": bare_cpu,
            "help_s": helps, "help_cpu_s": help_cpu}


def _seed(root: Path) -> Path:
    seed = root / "seed" / "deployment"
    if not (seed / "state.json").exists():
        subprocess.run(_tau("--deployment-state-dir", str(seed), "--deployment-contract-runner",
                            "--deployment-fixture", str(FIXTURE)), check=True,
                       capture_output=True, env=ENV)
    return seed


def bench_dirs(root: Path, count: int, repeat: int) -> dict[str, float]:
    """fleet gate over ``count`` state dirs: copies of one real runner state."""
    seed = _seed(root)
    for index in range(count):
        target = root / "dirs" / f"m{index:04d}" / "deployment"
        target.mkdir(parents=True)
        shutil.copy(seed / "state.json", target / "state.json")
    argv = _tau("fleet", "gate", str(root / "dirs" / "*" / "deployment"))
    figures = _baselines(repeat)
    gate, gate_cpu = _timed(argv, repeat=repeat)
    figures |= {"members": count, "fleet_gate_s": gate, "fleet_gate_cpu_s": gate_cpu,
                "ratio_to_python_start": gate / figures["python_start_s"],
                "ratio_to_help": gate / figures["help_s"],
                "cpu_ratio_to_help": gate_cpu / figures["help_cpu_s"]}
    return figures


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


def bench_gateways(root: Path, count: int, repeat: int) -> dict[str, float]:
    """fleet gate over ``count`` loopback gateways, against the same over one gateway."""
    (root / "gw").mkdir()
    shutil.copy(_seed(root) / "state.json", root / "gw" / "seed.json")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(root / "gw"), str(count), "600"],
                            stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout is not None
        ports = proc.stdout.readline().split()
        urls = [f"http://127.0.0.1:{port}/gateway/status" for port in ports]
        figures = _baselines(repeat)
        one, one_cpu = _timed(_tau("fleet", "gate", urls[0]), repeat=repeat)
        many, many_cpu = _timed(_tau("fleet", "gate", *urls), repeat=repeat)
        poll, server_cpu = _poll_in_process(urls, proc.pid, repeat)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    figures |= {"members": count, "fleet_gate_s": many, "fleet_gate_cpu_s": many_cpu,
                "one_gateway_s": one, "one_gateway_cpu_s": one_cpu, "ratio_to_one": many / one,
                "ratio_to_help": many / figures["help_s"], "poll_in_process_s": poll,
                "server_cpu_ms_per_request": server_cpu * 1000}
    return figures


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _poll_in_process(urls: list[str], server: int, repeat: int) -> tuple[float, float]:
    """The poll alone (no process start): median seconds of ``fleet_status`` over every URL,
    and the gateways' CPU seconds per request (all served by the one helper process here)."""
    from tau_ops.fleet import fleet_status

    fleet_status(urls[:1])
    walls = []
    before = _cpu_of(server)
    for _ in range(repeat):
        start = time.perf_counter()
        fleet_status(urls)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), (_cpu_of(server) - before) / (repeat * len(urls))


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
                            text=True, check=True, timeout=4 * 3600, env=ENV)
    # The last line is ours: a library may print progress above it at this size.
    seconds, added, rss_kib = result.stdout.strip().splitlines()[-1].split()
    parquet = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    again = subprocess.run([sys.executable, "-c", code, str(out), *names], capture_output=True,
                           text=True, check=True, timeout=4 * 3600,
                           env=ENV).stdout.strip().splitlines()[-1].split()
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
    relation = duckdb.sql(
        f"SELECT time_bucket(INTERVAL 1 HOUR, timestamp) AS bucket, source, code, count(*) "
        f"FROM (SELECT timestamp, source, unnest(reason_codes) AS code FROM read_parquet("
        f"'{out}/source=*/date=*/part-0.parquet', hive_partitioning = true)) "
        f"GROUP BY ALL ORDER BY ALL")
    assert relation is not None
    duck_rows = relation.fetchall()
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


def _progress(name: str, figures: dict[str, float]) -> None:
    """A finished part's figures on stderr at once (a long run keeps what it measured)."""
    print(f"done {name}: {json.dumps(figures)}", file=sys.stderr, flush=True)


def verdicts(results: dict[str, dict[str, float]]) -> list[str]:
    """One line per goal: met or missed, with the figure and its in-run baselines."""
    lines = []
    if "dirs" in results:
        r = results["dirs"]
        lines.append(
            f"verdict dirs: {'MET' if r['fleet_gate_s'] < GOALS['dirs'] else 'MISSED'} "
            f"fleet gate over {r['members']:g} state dirs {r['fleet_gate_s']:.2f} s "
            f"(goal < {GOALS['dirs']:g} s, CPU {r['fleet_gate_cpu_s']:.2f} s); "
            f"{r['ratio_to_help']:.2f}x tau-ops --help, "
            f"{r['ratio_to_python_start']:.1f}x bare python start")
    if "gateways" in results:
        r = results["gateways"]
        lines.append(
            f"verdict gateways: {'MET' if r['fleet_gate_s'] < GOALS['gateways'] else 'MISSED'} "
            f"fleet gate over {r['members']:g} gateways {r['fleet_gate_s']:.2f} s "
            f"(goal < {GOALS['gateways']:g} s, CPU {r['fleet_gate_cpu_s']:.2f} s); "
            f"{r['ratio_to_one']:.2f}x one gateway, {r['ratio_to_help']:.2f}x tau-ops --help; "
            f"the poll alone {r['poll_in_process_s']:.2f} s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dirs", type=int, default=1000)
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5, help="runs per timed command (median)")
    parser.add_argument("--parts", default="dirs,gateways,export,trends",
                        help="comma-separated parts to run (trends needs export)")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    results: dict[str, dict[str, float]] = {}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tau-fleet-bench-") as tmp:
        root = Path(tmp)
        ENV["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        _timed(_tau("--help"), repeat=1, ok=(0,))  # warm the byte-code cache
        if "dirs" in parts:
            results["dirs"] = bench_dirs(root, args.dirs, args.repeat)
        if "gateways" in parts:
            results["gateways"] = bench_gateways(root, args.gateways, args.repeat)
        if "export" in parts:
            results["export"] = bench_export(root, args.lines, args.sources)
            _progress("export", results["export"])
            if "trends" in parts:
                results["trends"] = bench_trends(root, not args.no_spark)
    load = f"load average (1 min) at start {load_start:.1f}, at end {os.getloadavg()[0]:.1f}"
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, figures in results.items():
            shown = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in figures.items())
            print(f"{name}: {shown}")
    print(load, file=sys.stderr if args.json else sys.stdout)
    for line in verdicts(results):
        print(line, file=sys.stderr if args.json else sys.stdout)


if __name__ == "__main__":
    main()
