"""Runner scale benchmark: one cycle of 1k, 10k and 100k generated cases via the real CLI.

Measures wall time (process start included) and peak RSS of ``tau-ops
--deployment-contract-runner`` on a fresh state dir, then the growth ratio
100k/10k (linear cost means about 10). Each size runs ``--repeat`` times and
the median is reported. Usage: ``python benchmarks/runner_scale.py [--sizes 1000 10000 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STRATEGY = {"kubernetes": "rolling", "container": "recreate", "wasm": "canary"}


def generate(n: int) -> dict[str, object]:
    """A realistic mix: 70% cloud successes, 20% wasm successes, 8% malformed, 2% retryable."""
    cases = []
    for i in range(n):
        bp = f"bp-{i % 50}"
        kind = i % 50
        base = {"schema_version": 1, "case_id": f"case-{i:07d}", "blueprint_id": bp,
                "environment": "production" if i % 3 else "staging", "region": f"r-{i % 7}",
                "replicas": 1 + i % 5}
        if kind < 35 or kind >= 46:
            target = "kubernetes" if i % 2 else "container"
            if kind == 49:
                base.update(deploy_target=target, runtime_profile="native",
                            container_image="img:1", simulate_retryable_failure=True)
                base["expected"] = {"outcome": "retryable_failure", "status_code": 503,
                                    "error_code": "deployment_backend_unavailable",
                                    "response_body": {"status": "retryable",
                                                      "reason": "control_plane_unavailable"}}
            elif kind >= 46:
                base.update(deploy_target=target, runtime_profile="native")
                base["expected"] = {"outcome": "malformed_input", "status_code": 400,
                                    "error_code": "deployment_missing_artifact",
                                    "response_body": {"status": "rejected",
                                                      "reason": "missing_container_image"}}
            else:
                base.update(deploy_target=target, runtime_profile="native",
                            container_image=f"ghcr.io/tau/{bp}:1.{i % 9}")
                base["expected"] = _ok(base, target, base["container_image"])
        else:
            base.update(deploy_target="wasm", runtime_profile="wasm_wasi",
                        wasm_module=f"modules/{bp}.wasm")
            base["expected"] = _ok(base, "wasm", base["wasm_module"])
        cases.append(base)
    return {"schema_version": 1, "name": f"scale-{n}", "cases": cases}


def _ok(case: dict[str, object], target: str, artifact: object) -> dict[str, object]:
    return {"outcome": "success", "status_code": 201 if target == "wasm" else 202,
            "error_code": "", "response_body": {
                "status": "accepted", "blueprint_id": case["blueprint_id"],
                "deploy_target": target, "runtime_profile": case["runtime_profile"],
                "environment": case["environment"], "region": case["region"],
                "replicas": case["replicas"], "rollout_strategy": STRATEGY[target],
                "artifact": artifact}}


def run_once(fixture: Path, n: int, workdir: Path) -> tuple[float, int]:
    state = Path(tempfile.mkdtemp(dir=workdir))
    cmd = [sys.executable, "-m", "tau_ops", "--deployment-state-dir", str(state),
           "--deployment-contract-runner", "--deployment-fixture", str(fixture),
           "--deployment-queue-limit", str(n), "--deployment-processed-case-cap", str(n)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    peak_kib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return elapsed, peak_kib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[int, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # Baseline: process start alone (import + a no-op inspect), to separate fixed cost.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
        starts = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tau_ops", "--deployment-state-dir",
                            str(work / "empty"), "--transport-health-inspect", "deployment"],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            starts.append(time.perf_counter() - t0)
        start_cost = statistics.median(starts)
        print(f"process start baseline: {start_cost:.3f} s")
        for n in args.sizes:
            fixture = work / f"fixture-{n}.json"
            fixture.write_text(json.dumps(generate(n)))
            runs = [run_once(fixture, n, work) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            results[n] = (wall, peak)
            print(f"cases={n:>7} wall={wall:7.3f} s  peak_rss={peak / 1024:7.1f} MiB  "
                  f"per_case={1e6 * (wall - start_cost) / n:7.1f} us  "
                  f"fixture={fixture.stat().st_size / 1e6:.1f} MB")
    if 10_000 in results and 100_000 in results:
        ratio = results[100_000][0] / results[10_000][0]
        net = (results[100_000][0] - start_cost) / (results[10_000][0] - start_cost)
        print(f"growth 100k/10k: wall ratio {ratio:.2f} (<= 12 wanted), "
              f"net of process start {net:.2f}")


if __name__ == "__main__":
    main()
