"""ipywidgets front-ends over the library: the rollout console, the fleet view and
the incident review.

Both are thin: every button calls a public tau-ops function and shows its
report. Importing this package loads ipywidgets, so ``import tau_ops`` does
not import it.
"""

from __future__ import annotations

from tau_ops.widgets.console import RolloutConsole, fixture_chunks
from tau_ops.widgets.fleet import FleetView
from tau_ops.widgets.review import IncidentReview

__all__ = [
    "FleetView",
    "IncidentReview",
    "RolloutConsole",
    "fixture_chunks",
]
