"""Runner scale benchmark: one cycle of 1k, 10k and 100k generated cases via the real CLI.

Measures wall time (process start included), CPU time and peak RSS of one
runner cycle (``load_fixture`` + ``run_cycle`` in a fresh process) on a fresh
state dir, then the growth ratio 100k/10k (linear cost means about 10). Each
size runs ``--repeat`` times and the median is reported. ``--baseline-src DIR``
runs another checkout (say a worktree of 0.1) alternately on the same fixtures
and prints this/baseline ratios, which a shared, loaded machine cannot spoil
the way it spoils absolute times. Usage: ``python benchmarks/runner_scale.py
[--sizes 1000 10000 100000] [--baseline-src /tmp/old]``.
"""

from __future__ import annotations

import argparse
import json
import os
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


# One cycle through the library in a fresh process: the CLI caps --deployment-queue-limit
# at 65536 (docs/decisions.md), so a 100k-case cycle can only be run this way; the same
# driver works on the 0.1 tree, so --baseline-src compares like with like.
DRIVER = (
    "import sys; from pathlib import Path; "
    "from tau_ops import RunnerConfig, load_fixture, run_cycle; "
    "n = int(sys.argv[3]); "
    "run_cycle(load_fixture(Path(sys.argv[1])), "
    "RunnerConfig(state_dir=Path(sys.argv[2]), queue_limit=n, processed_case_cap=n))"
)


def _env(src: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS KiB) of one child process, from its own rusage."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, cmd)
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def run_once(fixture: Path, n: int, workdir: Path, src: Path | None = None
             ) -> tuple[float, float, int]:
    """One cycle of ``n`` cases on a fresh state dir: (wall s, CPU s, peak RSS KiB)."""
    state = Path(tempfile.mkdtemp(dir=workdir))
    cmd = [sys.executable, "-c", DRIVER, str(fixture), str(state), str(n)]
    return _timed(cmd, _env(src))


def start_cost(workdir: Path, src: Path | None, repeat: int) -> float:
    """Median wall time of process start alone (import + a no-op inspect), seconds."""
    cmd = [sys.executable, "-m", "tau_ops", "--deployment-state-dir", str(workdir / "empty"),
           "--transport-health-inspect", "deployment"]
    return statistics.median(_timed(cmd, _env(src))[0] for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="DIR",
                        help="another checkout (e.g. a git worktree of 0.1) run in the same "
                             "session, alternating with this one, on the same fixtures")
    args = parser.parse_args()
    trees: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline_src is not None:
        trees.append(("baseline", args.baseline_src.resolve()))
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    results: dict[tuple[str, int], tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        starts = {name: start_cost(work, src, args.repeat) for name, src in trees}
        for name in starts:
            print(f"[{name}] process start baseline: {starts[name]:.3f} s")
        for n in args.sizes:
            fixture = work / f"fixture-{n}.json"
            fixture.write_text(json.dumps(generate(n)))
            runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _ in trees}
            for _ in range(args.repeat):  # alternate the trees so load changes hit both
                for name, src in trees:
                    runs[name].append(run_once(fixture, n, work, src))
            for name, _ in trees:
                wall = statistics.median(r[0] for r in runs[name])
                cpu = statistics.median(r[1] for r in runs[name])
                peak = max(r[2] for r in runs[name])
                results[(name, n)] = (wall, cpu, peak)
                print(f"[{name}] cases={n:>7} wall={wall:7.3f} s  cpu={cpu:7.3f} s  "
                      f"peak_rss={peak / 1024:7.1f} MiB  "
                      f"per_case={1e6 * (wall - starts[name]) / n:7.1f} us  "
                      f"fixture={fixture.stat().st_size / 1e6:.1f} MB", flush=True)
            if len(trees) == 2:
                this, base = results[("this", n)], results[("baseline", n)]
                print(f"cases={n:>7} this/baseline: wall {this[0] / base[0]:.2f}x, "
                      f"cpu {this[1] / base[1]:.2f}x")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    for name, _ in trees:
        if (name, 10_000) in results and (name, 100_000) in results:
            big, small = results[(name, 100_000)][0], results[(name, 10_000)][0]
            net = (big - starts[name]) / (small - starts[name])
            print(f"[{name}] growth 100k/10k: wall ratio {big / small:.2f} (<= 12 wanted), "
                  f"net of process start {net:.2f}")


if __name__ == "__main__":
    main()
