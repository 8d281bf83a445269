"""Inputs shipped inside the tau-ops package, read with :mod:`importlib.resources`.

- ``edge-runtime.wasm``: the demo's WASM module (a copy of
  ``testdata/deployment-wasm/edge-runtime.wasm``);
- ``rollout-pass.json``: the demo's fixture (a copy of
  ``testdata/deployment-contract/rollout-pass.json``).

``tests/test_wheel.py`` checks that the copies equal the test data and that an
installed wheel runs the demo from any directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_path(name: str) -> Path:
    """The file ``name`` of this package as a path on disk.

    Parameters
    ----------
    name : str
        A file of ``tau_ops/_data`` (``"edge-runtime.wasm"``, ``"rollout-pass.json"``).

    Returns
    -------
    Path
        Its location: inside the checkout, or in the installed package.

    Raises
    ------
    FileNotFoundError
        tau-ops is installed in a form without files on disk (a zip archive).

    Examples
    --------
    >>> data_path("rollout-pass.json").name
    'rollout-pass.json'
    """
    resource = files(__name__) / name
    if not isinstance(resource, Path):
        raise FileNotFoundError(f"packaged file {name} is not on disk ({resource!r})")
    return resource
