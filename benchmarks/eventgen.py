"""Deterministic generator of realistic ``runtime-events.jsonl`` logs for benchmarks.

A simulated deployment runs one cycle every ~30 s: long healthy stretches,
with queue backpressure now and then, broken by incident bursts (retries
first, then failed cases, a growing failure streak, a backlog that builds
up and drains). Lines are byte-for-byte what ``tau_ops.runner`` writes (same
field order, compact JSON), health comes from ``tau_ops.health.classify`` and
reason codes from ``tau_ops.runner.reason_codes_for``. The log is split into
rotated backups (``.N`` oldest ... ``.1``) and the active file, as rotation
leaves it. Same seed and size, same bytes.

    python benchmarks/eventgen.py DIR --lines 1000000 [--seed 7] [--files 3]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from tau_ops.health import classify
from tau_ops.models import CycleSummary, HealthSnapshot, RuntimeEvent
from tau_ops.runner import reason_codes_for

START_MS = 1_700_000_000_000
EVENTS_FILE = "runtime-events.jsonl"
_SPLIT_KEY = '"timestamp_unix_ms":'


def _line_parts(summary: CycleSummary, backlog: int, streak: int, duration: int) -> tuple[str, str]:
    """The event line split around its timestamp, so one body serves many cycles."""
    snapshot = HealthSnapshot(
        updated_unix_ms=1, cycle_duration_ms=duration, queue_depth=backlog,
        failure_streak=streak, last_cycle_discovered=summary.discovered_cases,
        last_cycle_failed=summary.failed_cases, last_cycle_malformed=summary.malformed_cases,
        last_cycle_retries=summary.retry_attempts,
    )
    verdict = classify(snapshot)
    event = RuntimeEvent(
        timestamp_unix_ms=0, health_state=verdict.state, health_reason=verdict.reason,
        reason_codes=reason_codes_for(summary, backlog), backlog_cases=backlog,
        failure_streak=streak, cycle_duration_ms=duration, **summary.model_dump(),
    )
    text = json.dumps(event.model_dump(mode="json"), separators=(",", ":"))
    head, _, tail = text.partition(_SPLIT_KEY + "0")
    return head + _SPLIT_KEY, tail + "\n"


class _Simulation:
    """The deployment's state from one cycle to the next."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.streak = 0
        self.backlog = 0
        self.incident_left = 0
        self.severity = 0
        self.parts: dict[tuple[int, ...], tuple[str, str]] = {}

    def step(self) -> tuple[str, str]:
        rng = self.rng
        roll = rng.random()
        if self.incident_left == 0 and roll < 0.0015:
            self.incident_left = 5 + int(rng.random() * 60)
            self.severity = 1 + int(rng.random() * 3)
        discovered = 20 + int(roll * 40)
        failed = retries = malformed = duplicates = 0
        if self.incident_left > 0:
            self.incident_left -= 1
            retries = self.severity * (1 + int(roll * 3))
            failed = self.severity if roll > 0.25 else 0
            discovered += 30 * self.severity
        elif roll > 0.985:
            malformed = 1 + int(roll * 1000) % 2
        if roll > 0.9:
            duplicates = int(roll * 100) % 5
        queued = min(discovered, 64)
        self.backlog = discovered - queued
        handled = queued - duplicates
        applied = max(0, handled - failed - malformed)
        wasm = applied // 4
        summary = CycleSummary(
            discovered_cases=discovered, queued_cases=queued, applied_cases=applied,
            duplicate_skips=duplicates, malformed_cases=malformed,
            retryable_failures=retries + failed, retry_attempts=retries, failed_cases=failed,
            upserted_rollouts=applied, wasm_rollouts=wasm, cloud_rollouts=applied - wasm,
        )
        self.streak = self.streak + 1 if failed else 0
        duration = 200 + (discovered * 37) % 900 + retries * 150
        key = (discovered, duplicates, malformed, retries, failed, self.streak, duration)
        parts = self.parts.get(key)
        if parts is None:
            parts = self.parts[key] = _line_parts(summary, self.backlog, self.streak, duration)
        return parts


def generate(
    state_dir: Path, *, lines: int, seed: int = 7, files: int = 3, interval_ms: int = 30_000
) -> list[Path]:
    """Write ``lines`` cycles into ``state_dir`` as ``files`` files; returns them oldest first."""
    state_dir.mkdir(parents=True, exist_ok=True)
    sim = _Simulation(seed)
    names = [f"{EVENTS_FILE}.{n}" for n in range(files - 1, 0, -1)] + [EVENTS_FILE]
    # Backups each hold an equal share; the active file holds the rest.
    share = lines // (files + 1) if files > 1 else lines
    counts = [share] * (files - 1) + [lines - share * (files - 1)]
    paths = []
    timestamp = START_MS
    for name, count in zip(names, counts, strict=True):
        path = state_dir / name
        with open(path, "w", encoding="utf-8", buffering=8 * 1024 * 1024) as handle:
            batch: list[str] = []
            for _ in range(count):
                head, tail = sim.step()
                timestamp += interval_ms + (timestamp // 1000 * 7919) % 2000
                batch.append(f"{head}{timestamp}{tail}")
                if len(batch) >= 50_000:
                    handle.write("".join(batch))
                    batch.clear()
            handle.write("".join(batch))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--files", type=int, default=3)
    args = parser.parse_args()
    paths = generate(args.state_dir, lines=args.lines, seed=args.seed, files=args.files)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {args.lines} lines, {total / 1e6:.1f} MB in {len(paths)} files")


if __name__ == "__main__":
    main()
