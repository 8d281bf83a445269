"""Gateway throughput: ``GET /gateway/status`` and ``GET /metrics`` against bare Starlette.

Both servers run in their own subprocess with the same uvicorn settings
(``tau_ops.gateway.serve_asgi``), on loopback, one after the other, and are
hammered by the same light keep-alive client (asyncio streams, ``--clients``
connections). The bare server answers each path with a constant body
(JSON for the status, the same size of Prometheus text for ``/metrics``).
Each round measures bare then gateway back to back, per path; the reported
ratio is the median of the per-round ratios, so load from other processes on
a shared machine hits both sides alike. Goal: ratio >= 0.7 on both paths.

    python benchmarks/gateway_load.py [--requests 3000] [--clients 8] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GOAL = 0.7
CONSTANT = {"service": "bare", "ok": True}
PATHS = ("/gateway/status", "/metrics")


def _bare_server(samples: int) -> None:
    """Child process: a one-route Starlette app served exactly like the gateway."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from tau_ops.gateway import METRICS_CONTENT_TYPE, BindAddress, serve_asgi

    metrics_text = "# HELP bare_value A constant.\n# TYPE bare_value gauge\n" + "".join(
        f'bare_value{{n="{i}"}} 1.0\n' for i in range(samples))

    async def constant(request: Request) -> Response:
        return JSONResponse(CONSTANT)

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(metrics_text, media_type=METRICS_CONTENT_TYPE)

    app = Starlette(routes=[Route("/gateway/status", constant, methods=["GET"]),
                            Route("/metrics", metrics, methods=["GET"])])
    serve_asgi(app, bind=BindAddress("127.0.0.1", 0),
               on_listening=lambda b: print(f"listening: port={b.port}", flush=True))


def build_state(state_dir: Path, cycles: int) -> None:
    """A realistic state dir: ``cycles`` real runner cycles of the shipped mixed fixture."""
    from tau_ops.contract import load_fixture
    from tau_ops.runner import RunnerConfig, run_cycle

    fixture = load_fixture(REPO / "testdata/deployment-contract/mixed-outcomes.json")
    for _ in range(cycles):
        run_cycle(fixture, RunnerConfig(state_dir=state_dir))


def start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server subprocess and wait (bounded) for its listening line."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            cwd=REPO)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 20
    line = b""
    while not line.endswith(b"\n"):
        if time.monotonic() > deadline or not sel.select(deadline - time.monotonic()):
            proc.kill()
            raise RuntimeError(f"server did not start: {argv}")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            raise RuntimeError(f"server exited with {proc.wait()}: {argv}")
        line += chunk
    match = re.search(rb"port=(\d+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"no port in {line!r}")
    return proc, int(match.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), for a noise-resistant figure."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


async def _client(port: int, path: str, count: int, bodies: list[bytes]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    ok = 0
    try:
        for i in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            body = await reader.readexactly(length)
            if status == 200:
                ok += 1
            if i == 0:
                bodies.append(body)
    finally:
        writer.close()
        await writer.wait_closed()
    return ok


async def load(port: int, path: str, requests: int, clients: int) -> tuple[float, int, bytes]:
    """Send ``requests`` GETs over ``clients`` keep-alive connections: (req/s, ok count, a body)."""
    shares = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    bodies: list[bytes] = []
    started = time.perf_counter()
    oks = await asyncio.gather(*(_client(port, path, n, bodies) for n in shares))
    elapsed = time.perf_counter() - started
    return requests / elapsed, sum(oks), bodies[0]


def run(requests: int, clients: int, rounds: int) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAU_")}
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp) / "state"
        build_state(state_dir, cycles=5)
        gateway, gateway_port = start(
            [sys.executable, "-m", "tau_ops", "gateway", "serve", "--deployment-state-dir",
             str(state_dir), "--gateway-openresponses-bind", "127.0.0.1:0"], env)
        bare: subprocess.Popen[bytes] | None = None
        try:
            warm = max(200, requests // 10)
            _, _, body = asyncio.run(load(gateway_port, "/gateway/status", warm, clients))
            document = json.loads(body)
            assert document["cycle_reports"] == 5, document
            _, _, metrics_body = asyncio.run(load(gateway_port, "/metrics", warm, clients))
            samples = sum(1 for line in metrics_body.splitlines() if not line.startswith(b"#"))
            bare, bare_port = start([sys.executable, __file__, "--bare-server", str(samples)],
                                    env)
            for path in PATHS:
                asyncio.run(load(bare_port, path, warm, clients))
            rates: dict[tuple[str, str], list[float]] = {}
            cpu: dict[tuple[str, str], float] = {}
            lost = 0
            for _ in range(rounds):
                for path in PATHS:
                    for side, proc, port in (("bare", bare, bare_port),
                                             ("gateway", gateway, gateway_port)):
                        before = cpu_seconds(proc.pid)
                        rate, ok, _ = asyncio.run(load(port, path, requests, clients))
                        cpu[side, path] = cpu.get((side, path), 0.0) + (
                            cpu_seconds(proc.pid) - before)
                        lost += requests - ok
                        rates.setdefault((side, path), []).append(rate)
        finally:
            codes = (stop(gateway), stop(bare) if bare is not None else None)
    total = requests * rounds
    result: dict[str, object] = {"requests_per_round": requests, "clients": clients,
                                 "rounds": rounds, "goal": GOAL}
    for path in PATHS:
        key = "status" if path == "/gateway/status" else "metrics"
        ratios = [g / b for g, b in zip(rates["gateway", path], rates["bare", path],
                                        strict=True)]
        bare_us = cpu["bare", path] / total * 1e6
        gateway_us = cpu["gateway", path] / total * 1e6
        result[key] = {
            "path": path,
            "bare_rps": round(statistics.median(rates["bare", path])),
            "gateway_rps": round(statistics.median(rates["gateway", path])),
            "round_ratios": [round(r, 3) for r in ratios],
            "ratio": round(statistics.median(ratios), 3),
            "bare_server_cpu_us_per_request": round(bare_us),
            "gateway_server_cpu_us_per_request": round(gateway_us),
            "cpu_ratio": round(bare_us / gateway_us, 3),
        }
    result.update({"lost_requests": lost, "exit_codes_after_sigterm": list(codes),
                   "gateway_body_bytes": len(body), "metrics_body_bytes": len(metrics_body),
                   "metrics_samples": samples})
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bare-server", nargs="?", const="40", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        _bare_server(int(args.bare_server))
        return 0
    result = run(args.requests, args.clients, args.rounds)
    parts: list[dict[str, Any]] = [result["status"], result["metrics"]]  # type: ignore[list-item]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for part in parts:
            print(f"{part['path']}: bare starlette {part['bare_rps']} req/s, gateway "
                  f"{part['gateway_rps']} req/s; ratio {part['ratio']} (goal >= {GOAL}); "
                  f"rounds {part['round_ratios']}; server CPU/request "
                  f"{part['bare_server_cpu_us_per_request']} us vs "
                  f"{part['gateway_server_cpu_us_per_request']} us (ratio {part['cpu_ratio']})")
        print(f"lost {result['lost_requests']}; {args.clients} clients x {args.rounds} rounds "
              f"of {args.requests} requests per path; /metrics body "
              f"{result['metrics_body_bytes']} bytes, {result['metrics_samples']} samples")
    ok = all(part["ratio"] >= GOAL for part in parts)
    return 0 if ok and result["lost_requests"] == 0 else 1

if __name__ == "__main__":
    raise SystemExit(main())
