"""The deterministic demo: package, run, inspect, end on gate ``pass``.

Returns each step's command line and report; the CLI renders them with the
same renderers as the individual commands, so the demo shows exactly what an
operator would see running those commands by hand.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from tau_ops._data import data_path
from tau_ops.channel_store import inspect_channel
from tau_ops.clock import Clock, FakeClock, Sleeper, real_sleep, wall_clock_ms
from tau_ops.contract import load_fixture
from tau_ops.errors import InputError
from tau_ops.runner import RunnerConfig, run_cycle
from tau_ops.state import StatePaths
from tau_ops.status import deployment_status_at, read_status_inputs, transport_health_at

DEMO_STATE_DIR = Path(".tau/demo-deployment")
# Shipped in the package (tau_ops/_data), so the demo runs from any directory.
DEMO_MODULE = data_path("edge-runtime.wasm")
DEMO_FIXTURE = data_path("rollout-pass.json")
DEMO_MARKER = ".tau-ops-demo"
"""File the demo puts in every state dir it creates; only such a dir is ever removed.

It names the directory it was made in (device and inode), so a marker copied
into another folder, or a copied demo folder, is not taken for the demo's own.
"""


def _identity(folder: Path) -> str:
    info = os.stat(folder, follow_symlinks=False)
    return f"created by tau-ops demo; removed by the next demo; dir {info.st_dev}:{info.st_ino}\n"


def _made_by_demo(folder: Path) -> bool:
    marker = folder / DEMO_MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return marker.read_text(encoding="utf-8", errors="replace")[:200] == _identity(folder)
    except OSError:
        return False


DEMO_ENTRIES = re.compile(
    r"(\.tau-ops-demo|\.tau-ops\.lock|state\.json|\.cycle-journal\.json|channel-store"
    r"|wasm-artifacts|\.analysis-cache|runtime-events\.jsonl(\.\d+)?|\..*\.tmp)"
)
"""Names a demo run leaves in its state dir; anything else there is the operator's."""


def _clear_demo_dir(state_dir: Path) -> None:
    """Remove what an earlier demo wrote; refuse, touching nothing, when anything else is there."""
    entries = sorted(os.listdir(state_dir))
    foreign = [name for name in entries if not DEMO_ENTRIES.fullmatch(name)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise InputError(f"refusing to use {state_dir} as the demo state dir: it holds files "
                         f"the demo did not write ({shown}); pick a new or empty directory",
                         path=state_dir)
    for name in entries:
        if name == DEMO_MARKER:
            continue
        path = state_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    (state_dir / DEMO_MARKER).unlink()


def prepare_demo_dir(state_dir: Path) -> None:
    """Make ``state_dir`` a fresh demo dir, removing only a dir an earlier demo created.

    Parameters
    ----------
    state_dir : Path
        Missing, empty, or holding the :data:`DEMO_MARKER` an earlier demo wrote
        in this very directory (then it is removed and recreated).

    Raises
    ------
    InputError
        ``state_dir`` is not a directory, is a symlink, is not empty and was
        not created by the demo, or holds files a demo did not write (for
        example the operator's, added after the demo ran); nothing is touched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "demo"
    >>> prepare_demo_dir(d); prepare_demo_dir(d); sorted(p.name for p in d.iterdir())
    ['.tau-ops-demo']
    """
    if state_dir.is_symlink() or (state_dir.exists() and not state_dir.is_dir()):
        raise InputError(f"refusing to use {state_dir} as the demo state dir: it is not a "
                         "plain directory; pick a new directory", path=state_dir)
    if state_dir.is_dir():
        if _made_by_demo(state_dir):
            _clear_demo_dir(state_dir)
        elif any(state_dir.iterdir()):
            raise InputError(f"refusing to use {state_dir} as the demo state dir: it is not "
                             "empty and the demo did not create it; pick a new or empty "
                             "directory", path=state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / DEMO_MARKER).write_text(_identity(state_dir), encoding="utf-8")


@dataclass(frozen=True)
class DemoStep:
    """One demo step: the equivalent command line and its report.

    Attributes
    ----------
    name : str
        ``package``, ``runner``, ``health``, ``status`` or ``channel``.
    command : str
        The ``tau-ops`` command line that does the same.
    report : BaseModel
        The step's report (``PackageReport``, ``CycleReport``, ...).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> steps = run_demo(state_dir=Path(tempfile.mkdtemp()) / "demo")
    >>> steps[1].name, steps[1].command.split()[3]
    ('runner', '--deployment-contract-runner')
    """

    name: str
    command: str
    report: BaseModel


def run_demo(
    *,
    state_dir: Path = DEMO_STATE_DIR,
    module: Path = DEMO_MODULE,
    fixture: Path = DEMO_FIXTURE,
    clock: Clock | None = None,
    sleeper: Sleeper | None = None,
) -> list[DemoStep]:
    """Run the demo into a fresh ``state_dir`` with the runbook's settings.

    ``state_dir`` is removed first only when an earlier demo created it (see
    :func:`prepare_demo_dir`); a non-empty directory of anything else is refused.

    By default the clock is frozen at the demo's start, so two runs print the
    same output apart from that one timestamp.

    Parameters
    ----------
    state_dir : Path
        Where the demo writes (default ``.tau/demo-deployment``).
    module : Path
        The WASM module to package (default: the packaged ``edge-runtime.wasm``).
    fixture : Path
        The fixture to run (default: the packaged ``rollout-pass.json``).
    clock : callable, optional
        ``() -> int``, Unix time in milliseconds (default: frozen at start).
    sleeper : callable, optional
        ``(seconds) -> None`` for retry backoff (default: the frozen clock's).

    Returns
    -------
    list of DemoStep
        package, runner, health, status and channel, in that order.

    Raises
    ------
    InputError
        ``module`` or ``fixture`` is missing, or ``state_dir`` is a non-empty
        folder the demo did not create.
    TauOpsError
        A step failed: the module is not compliant, the fixture invalid or
        violated, or the state dir cannot be written (the error's own class).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> steps = run_demo(state_dir=Path(tempfile.mkdtemp()) / "demo")
    >>> [s.name for s in steps], steps[3].report.rollout_gate
    (['package', 'runner', 'health', 'status', 'channel'], 'pass')
    """
    from tau_ops.wasm.package import package_module

    if clock is None:
        frozen = FakeClock(wall_clock_ms())
        clock, sleeper = frozen, sleeper or frozen.sleep
    sleeper = sleeper or real_sleep
    for needed in (module, fixture):
        if not needed.is_file():
            raise InputError(f"demo input {needed} not found: run the demo from the repository "
                             "root", path=needed)
    prepare_demo_dir(state_dir)
    sd = str(state_dir)
    steps = []
    package = package_module(module, state_dir=state_dir, blueprint_id="edge-wasm",
                             runtime_profile="wasm_wasi", clock=clock)
    steps.append(DemoStep(
        "package", f"tau-ops --deployment-state-dir {sd} --deployment-wasm-package-module "
        f"{module} --deployment-wasm-package-blueprint-id edge-wasm "
        "--deployment-wasm-package-runtime-profile wasm-wasi "
        f"--deployment-wasm-package-output-dir {sd}/wasm-artifacts", package))
    config = RunnerConfig(state_dir=state_dir, queue_limit=64, processed_case_cap=10_000,
                          retry_max_attempts=4, retry_base_delay_ms=0)
    cycle = run_cycle(load_fixture(fixture), config, clock=clock, sleeper=sleeper)
    steps.append(DemoStep(
        "runner", f"tau-ops --deployment-state-dir {sd} --deployment-contract-runner "
        f"--deployment-fixture {fixture} --deployment-queue-limit 64 "
        "--deployment-processed-case-cap 10000 --deployment-retry-max-attempts 4 "
        "--deployment-retry-base-delay-ms 0", cycle))
    now = clock()
    inputs = read_status_inputs(state_dir)
    steps.append(DemoStep(
        "health", f"tau-ops --deployment-state-dir {sd} --transport-health-inspect deployment",
        transport_health_at(inputs, now_ms=now)))
    steps.append(DemoStep(
        "status", f"tau-ops --deployment-state-dir {sd} --deployment-status-inspect",
        deployment_status_at(inputs, now_ms=now)))
    root = StatePaths(state_dir).channel_store
    steps.append(DemoStep(
        "channel", f"tau-ops --channel-store-root {root} --channel-store-inspect "
        "deployment/edge-wasm", inspect_channel(root, "deployment/edge-wasm")))
    return steps
