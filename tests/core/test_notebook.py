"""The Colab notebook: valid, in step with training/*.py, and runnable end to end on a CPU with the
tiny model and local data (the hub download, the pip install and the Colab download are the only
parts it cannot exercise here)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: never reach for the hub

import nbformat  # noqa: E402
import pytest  # noqa: E402

from tests.support.tiny_model import build_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "training" / "colab_training.ipynb"


@pytest.fixture(scope="module")
def notebook() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def cell(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.get("id") == cell_id)


def test_notebook_is_valid_and_shaped_for_colab(notebook):
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.cells[0].cell_type == "markdown"
    params = notebook.cells[1]
    assert params.cell_type == "code" and params.metadata.get("tags") == ["parameters"]
    namespace: dict = {}
    exec(params.source, namespace)
    assert namespace["MODEL_SIZE"] == "1.5B" and namespace["BASE_MODEL"] is None
    assert namespace["DATA_SOURCE"] == "hub" and namespace["LOCAL_FILES"] == {} and namespace["MY_CHATS"] == ""
    assert namespace["INCLUDE_MLP"] is False and namespace["OUTPUT_DIR"] == "."
    for name in ("MAX_PER_SOURCE", "MAX_STEPS", "OUTPUT_NAME"):
        assert name in namespace
    for module in ("data.py", "train.py", "export.py"):
        assert cell(notebook, f"module-{module[:-3]}").source == (REPO / "training" / module).read_text(encoding="utf-8")
    sources = "\n".join(c.source for c in notebook.cells)
    assert "sahil2801/CodeAlpaca-20k" in sources and "nickrosh/Evol-Instruct-Code-80k-v1" in sources
    assert "google.colab" in cell(notebook, "download").source


def test_every_code_cell_is_plain_python(notebook):
    for i, c in enumerate(notebook.cells):
        if c.cell_type == "code":
            compile(c.source, f"<cell {i}>", "exec")  # no !pip or %magics: runs anywhere
            assert not any(line.lstrip().startswith(("!", "%")) for line in c.source.splitlines()), i


def test_notebook_is_up_to_date():
    r = subprocess.run([sys.executable, "-m", "training.build_notebook", "--check"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pins_match_the_tested_versions(notebook):
    source = cell(notebook, "install").source
    for package in ("transformers", "peft", "accelerate"):
        assert f'"{package}=={importlib.metadata.version(package)}"' in source
    assert "bitsandbytes==" in source and "datasets==" in source


def _run_install_cell(notebook, monkeypatch, colab: bool) -> list:
    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, **kw: calls.append(cmd))
    for var in ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(var, raising=False)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(cell(notebook, "install").source, {})
    return calls


def test_install_runs_pip_on_colab_only(notebook, monkeypatch):
    assert _run_install_cell(notebook, monkeypatch, colab=False) == []
    [cmd] = _run_install_cell(notebook, monkeypatch, colab=True)
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert "transformers==5.23.0" in cmd and not any(arg.startswith("torch") for arg in cmd)


CODEALPACA = [
    {"instruction": f"Write a Python expression for {i} squared.", "input": "", "output": f"{i} ** 2"}
    for i in range(10)
] + [
    {"instruction": "Fix this code.", "input": "print 'hi'", "output": "print('hi')"},
    {"instruction": "Write a Python expression for 3 squared.", "input": "", "output": "3 ** 2"},  # duplicate
    {"instruction": "No answer", "input": "", "output": ""},  # dropped
]
EVOL = [{"instruction": f"Write a function returning {i}.", "output": f"def f():\n    return {i}"} for i in range(8)]
CHATS = [
    {"messages": [{"role": "system", "content": "You are Offline Coder."},
                  {"role": "user", "content": "How do I read a file?"},
                  {"role": "assistant", "content": "open(path).read()"}]},
    {"messages": [{"role": "user", "content": "unanswered"}]},  # dropped
]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_notebook_runs_end_to_end_on_cpu(notebook, tmp_path, tmp_path_factory, monkeypatch):
    from nbclient import NotebookClient

    model_dir = build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    files = {"codealpaca": write_jsonl(tmp_path / "codealpaca.jsonl", CODEALPACA),
             "evol_instruct": write_jsonl(tmp_path / "evol.jsonl", EVOL)}
    chats = write_jsonl(tmp_path / "chats.jsonl", CHATS)
    out = tmp_path / "out"

    nb = nbformat.from_dict(json.loads(json.dumps(notebook)))  # a copy
    overrides = nbformat.v4.new_code_cell(
        f"BASE_MODEL = {str(model_dir)!r}\nDATA_SOURCE = 'local'\nLOCAL_FILES = {files!r}\n"
        f"MY_CHATS = {chats!r}\nMAX_STEPS = 2\nOUTPUT_NAME = 'tiny'\nOUTPUT_DIR = {str(out)!r}\n")
    overrides.id = "test-overrides"
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 1, overrides)

    # A kernel spec that runs this interpreter (the venv's), and Jupyter/IPython state kept in tmp.
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # see tests/test_training.py: tiny matrices, busy cores
    for var in ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(var, raising=False)

    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    def output(cell_id: str) -> str:
        return "".join(o.get("text", "") for o in cell(nb, cell_id).outputs if o.output_type == "stream")

    assert "Not on Colab or Kaggle" in output("install")
    summary = output("data")
    assert "codealpaca" in summary and "evol_instruct" in summary and "my_chats" in summary
    assert "eval loss before:" in output("train") and "eval loss after:" in output("train")

    zip_path = out / "tiny-lora.zip"
    assert str(zip_path) in output("export") and "Adapter:" in output("download")
    with zipfile.ZipFile(zip_path) as z:
        assert sorted(z.namelist()) == ["adapter_config.json", "adapter_model.safetensors", "manifest.json",
                                        "validation.jsonl"]
        manifest = json.loads(z.read("manifest.json"))
        validation = [json.loads(line) for line in z.read("validation.jsonl").decode().splitlines()]
    # the eval split travels in the zip, for the app's verdict on the adapter
    assert len(validation) == manifest["data"]["eval"] >= 1
    assert all(set(row) == {"messages"} and row["messages"][-1]["role"] == "assistant" for row in validation)
    assert manifest["format"] == "offline-coder-lora" and manifest["base_model"] == str(model_dir)
    assert isinstance(manifest["eval_loss_before"], float) and isinstance(manifest["eval_loss_after"], float)
    assert manifest["train_steps"] == 2
    sources = manifest["data"]["sources"]
    assert sources["codealpaca"] == {"rows": 13, "invalid": 1, "duplicates": 1, "capped": 0, "used": 11}
    assert sources["evol_instruct"]["used"] == 8
    assert sources["my_chats"] == {"rows": 2, "invalid": 1, "duplicates": 0, "capped": 0, "used": 1}
    assert manifest["data"]["train"] + manifest["data"]["eval"] == 20
