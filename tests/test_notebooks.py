"""The notebooks are stored with their outputs (`make notebooks`: every figure as PNG, no error) and run top to
bottom (small inputs)."""

import re
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
#: A code cell that calls pyplot draws a figure (as scripts/run_notebooks.py decides).
DRAWS = re.compile(r"\bplt\.")
RERUN = "re-run it with `make notebooks`"


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    first = ["01_training_inference_gap.ipynb", "02_freeinit.ipynb", "03_your_model.ipynb"]
    assert names in (first, first + ["04_noise_sampler_or_vae.ipynb"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_with_its_outputs(path):
    nb = nbformat.read(path, as_version=4)
    cells = [(i + 1, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    counts = [c.execution_count for _, c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: not stored from one top-to-bottom run; {RERUN}"
    errors = [i for i, c in cells if any(o.output_type == "error" for o in c.outputs)]
    assert not errors, f"{path.name}: cells {errors} store an error"
    has_png = lambda c: any("image/png" in o.get("data", {}) for o in c.outputs)  # noqa: E731
    no_png = [i for i, c in cells if DRAWS.search(c.source) and not has_png(c)]
    assert not no_png, f"{path.name}: cells {no_png} draw a figure but store no image/png output; {RERUN}"
    assert not any("execution" in c.metadata for _, c in cells), f"{path.name}: stores execution timing; {RERUN}"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec that runs this interpreter (not whatever `python` is first on PATH)."""
    import json

    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(prefix=str(prefix), kernel_name="freqscope-test")
    spec = json.loads((prefix / "share" / "jupyter" / "kernels" / "freqscope-test" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return prefix / "share" / "jupyter"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, kernel_env, monkeypatch):
    """A copy in memory runs top to bottom without error; the stored file is never written."""
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", str(kernel_env))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")  # figures are drawn but not rendered: the stored PNGs are checked above
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="freqscope-test", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
