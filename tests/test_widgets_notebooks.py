"""The runbook notebooks are committed clean, parameterised, and run from the repository root too.

``make test`` runs every notebook with nbmake from ``notebooks/``; these tests
check the rest of the contract: no outputs committed, a ``parameters`` cell,
a timeout, and a run from the repository root against a state dir given as a
parameter (papermill style: a cell injected after the parameters cell).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from builders import REPO
from nbclient import NotebookClient

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_the_four_runbook_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-deployment-runbook.ipynb", "02-incident-review.ipynb",
        "03-wasm-deliverables.ipynb", "04-browser-did.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_parameters_and_timeout(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [(c.get("outputs"), c.get("execution_count")) for c in code] == [([], None)] * len(code)
    assert code[0].metadata.get("tags") == ["parameters"]
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert notebook.metadata["execution"] == {"timeout": 300}
    assert "state_dir = " in code[0].source


def run_from_repo_root(path: Path, **parameters: object) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{name} = {value!r}" for name, value in parameters.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(next(i for i, c in enumerate(notebook.cells)
                               if "parameters" in c.metadata.get("tags", [])) + 1, injected)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    client.execute()
    return notebook


def test_runbook_notebook_runs_from_repo_root_against_a_given_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "deployment"
    run_from_repo_root(REPO / "notebooks" / "01-deployment-runbook.ipynb", state_dir=str(state))
    saved = json.loads((state / "state.json").read_text())
    assert len(saved["rollouts"]) == 3
    assert [d["blueprint_id"] for d in saved["wasm_deliverables"]] == ["edge-wasm"]


def test_did_notebook_writes_its_payload_into_the_given_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "deployment"
    run_from_repo_root(REPO / "notebooks" / "04-browser-did.ipynb", state_dir=str(state),
                       subject="ops-console")
    payload = json.loads((state / "browser-did.json").read_text())
    assert payload["identity"]["subject"] == "ops-console"
    assert payload["did_document"]["id"] == payload["identity"]["did"]
