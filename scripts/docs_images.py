"""Write the chart images of docs/images/ from the current charts over a demo history.

The history is generated with the real runner on a simulated clock, into a
fresh temporary state dir (nothing else is written): 10 cycles, 10 minutes
apart from 2026-01-01 00:00 UTC, of the repository's fixtures: 3 healthy
cycles, 4 of an outage (control plane down, malformed inputs, a queue limit
of 4 so backpressure shows; the failure streak reaches 4 and health
``failing``), then 3 healthy cycles. The browser test of notebook 02
(``tests/test_browser_review.py``) reviews the same history, and with
``TAU_UPDATE_SCREENSHOTS=1`` refreshes ``docs/images/incident-review.png``.

Run after changing a chart:

    .venv/bin/python scripts/docs_images.py [--output docs/images]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "testdata" / "deployment-contract"
MIDNIGHT_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
STEP_MS = 10 * 60_000
IMAGES = {
    "analysis-reason-code-trends.png": "reason_code_trend_chart",
    "analysis-health-timeline.png": "health_timeline_chart",
    "analysis-failure-streak-queue-depth.png": "streak_backlog_chart",
}


def incident_history(state: Path) -> None:
    """Write the demo incident history into ``state`` (a state dir without events).

    Parameters
    ----------
    state : pathlib.Path
        The state dir to write (created when missing).

    Examples
    --------
    >>> incident_history(Path(tempfile.mkdtemp()) / "state")  # doctest: +SKIP
    """
    import tau_ops
    from tau_ops.clock import FakeClock

    passing = tau_ops.load_fixture(FIXTURES / "rollout-pass.json")
    mixed = tau_ops.load_fixture(FIXTURES / "mixed-outcomes.json")

    def renamed(fixture: tau_ops.Fixture, suffix: str) -> tau_ops.Fixture:
        cases = [c.model_copy(update={"case_id": f"{c.case_id}-{suffix}"})
                 for c in fixture.cases]
        return fixture.model_copy(update={"cases": cases})

    plan = ([(renamed(passing, f"warm{i}"), 16) for i in range(3)]
            + [(renamed(mixed, f"out{i}"), 4) for i in range(4)]
            + [(renamed(passing, f"rec{i}"), 16) for i in range(3)])
    clock = FakeClock(MIDNIGHT_MS)
    for fixture, queue_limit in plan:
        tau_ops.run_cycle(fixture, tau_ops.RunnerConfig(state_dir=state, queue_limit=queue_limit),
                          clock=clock, sleeper=clock.sleep)
        clock.advance(STEP_MS)


def write_images(output: Path, *, every: str = "10m") -> list[Path]:
    """Render the three analysis charts of the demo history as PNG files into ``output``.

    Parameters
    ----------
    output : pathlib.Path
        Folder to write ``analysis-*.png`` into.
    every : str
        Bucket width of the charts (polars duration).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import vl_convert as vlc

    from tau_ops import analysis

    with tempfile.TemporaryDirectory(prefix="tau-docs-images-") as folder:
        state = Path(folder) / "deployment"
        incident_history(state)
        events = analysis.load_events(state, cache=False)
    written = []
    for name, function in IMAGES.items():
        chart = getattr(analysis, function)(events, every=every)
        path = output / name
        path.write_bytes(vlc.vegalite_to_png(chart.to_json(), scale=1))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--every", default="10m",
                        help="chart bucket width (default 10m: one cycle per bar)")
    args = parser.parse_args(argv)
    for path in write_images(args.output, every=args.every):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
