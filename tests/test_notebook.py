"""notebooks/quickstart.ipynb runs top to bottom in a real kernel (nbclient), as a researcher
would run it, and shows what it says it shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from kernels import kernel_manager  # noqa: E402

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The example prototype and the notebook laid out as in the repository."""
    for name in ("templates", "public", "notebooks"):
        shutil.copytree(REPO / name, tmp_path / name)
    for name in ("routes.py", "session-data-defaults.json"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    data = output.get("data", {})
    return str(data.get("text/plain", "")) + str(data.get("text/html", ""))


def test_the_quickstart_runs_top_to_bottom_and_shows_each_step(workspace: Path) -> None:
    path = workspace / "notebooks" / "quickstart.ipynb"
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.get("outputs") for cell in code_cells), "commit the notebook with outputs stripped"

    client = nbclient.NotebookClient(
        notebook,
        timeout=60,
        km=kernel_manager(workspace, "protonb-notebook-test"),
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()

    outputs = ["".join(_text(o) for o in cell.get("outputs", [])) for cell in code_cells]
    errors = [o for cell in code_cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors

    start, _dashboard, participant, labelled, renamed, frame, cleared = outputs
    assert "is running at" in start and "http://127.0.0.1:" in start
    view = "application/vnd.jupyter.widget-view+json"
    widget_views = [o for o in code_cells[1].get("outputs", []) if view in o.get("data", {})]
    assert widget_views, "the dashboard cell shows a widget"
    assert "302" in participant and "/over-18" in participant
    assert "Ada" in labelled and "Lovelace" in labelled
    assert "Grace" in renamed
    assert "first-name" in frame and "Grace" in frame
    assert "Ada" not in cleared and "Grace" not in cleared and "Lovelace" not in cleared
