"""Generate training/colab_training.ipynb from the modules in training/.

The notebook inlines data.py, train.py and export.py verbatim (Colab cannot import this repo), so
the code the tests run on a CPU is the code Colab runs. After editing any of them, regenerate:

    python -m training.build_notebook           # writes the notebook
    python -m training.build_notebook --check   # exits 1 if the notebook is out of date (tests run this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "colab_training.ipynb"
INLINED = ("data.py", "train.py", "export.py")

# Keep these pins in step with the venv the tests run in (training/README.md lists them too).
PINNED = (
    "transformers==5.23.0",
    "peft==0.21.2",
    "accelerate==1.15.0",
    "bitsandbytes==0.50.2",
    "datasets==5.2.0",
)

INTRO = """\
# Offline Coder: fine-tune a coding adapter (QLoRA)

This notebook fine-tunes **Qwen2.5-Coder-Instruct** with QLoRA on CodeAlpaca-20k and
Evol-Instruct-Code (and, if you like, your own chats exported from the app) and ends with a
download of `<name>-lora.zip`. Import that file in the app: **Adapters panel → Import adapter…**.

**Run it:** *Runtime → Change runtime type → T4 GPU*, then *Runtime → Run all*. The free T4 is
enough for every size below; with the defaults (200 steps of 16 examples) the 1.5B model takes
roughly half an hour including downloads, 3B about an hour, 7B two hours or more (lower `MAX_STEPS`
for it). Nothing leaves Colab except the zip you download.

Change the settings in the next cell before running. The code cells after it are copied from
`training/*.py` in the Offline Coder repository, where they are tested; do not edit them here.
"""

PARAMETERS = """\
# Which Qwen2.5-Coder-Instruct to adapt: "1.5B" (default, fastest), "3B" or "7B" (slowest; fits a T4 in 4-bit).
MODEL_SIZE = "1.5B"
# Overrides MODEL_SIZE: any Hugging Face repo id or local folder of a chat model with a chat template.
BASE_MODEL = None
# "hub": download CodeAlpaca-20k and Evol-Instruct-Code. "local": read the JSONL files in LOCAL_FILES.
DATA_SOURCE = "hub"
# For DATA_SOURCE = "local": source name -> JSONL path, with raw rows of that source, e.g.
# {"codealpaca": "codealpaca.jsonl", "evol_instruct": "evol.jsonl", "my_chats": "chats.jsonl"}
LOCAL_FILES = {}
# Optional: your chats exported from the app (JSONL). Upload it in the Files panel, then give its
# path here, e.g. "/content/offline-coder-chats.jsonl". Empty: not used.
MY_CHATS = ""
# At most this many examples from each source (a seeded random sample), to bound the time.
MAX_PER_SOURCE = 2000
# Optimiser steps; each one sees 16 examples.
MAX_STEPS = 200
# Also adapt the MLP projections (gate/up/down): more capacity, a 3x larger adapter, slower steps.
INCLUDE_MLP = False
# The download is named OUTPUT_NAME + "-lora.zip"; empty: the base model's name.
OUTPUT_NAME = ""
# Where the zip is written.
OUTPUT_DIR = "."
# Seed for sampling, splitting, shuffling and LoRA initialisation.
SEED = 0
"""

_PIN_LINES = "".join(f'    "{pin}",\n' for pin in PINNED)

INSTALL = f'''\
# Install the pinned libraries on Colab/Kaggle only; elsewhere use what is installed.
# Colab's own torch is kept (reinstalling it would download GBs and may not match its CUDA).
import os
import subprocess
import sys

IN_COLAB = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
IN_KAGGLE = "KAGGLE_KERNEL_RUN_TYPE" in os.environ
PINNED = [
{_PIN_LINES}]

if IN_COLAB or IN_KAGGLE:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *PINNED])
else:
    print("Not on Colab or Kaggle: nothing installed, using this environment's packages.")
'''

DATA = """\
# Load, normalise, de-duplicate and split the data.
from pathlib import Path

if DATA_SOURCE == "hub":
    from datasets import load_dataset

    raw = {
        "codealpaca": load_dataset("sahil2801/CodeAlpaca-20k", split="train").to_list(),
        "evol_instruct": load_dataset("nickrosh/Evol-Instruct-Code-80k-v1", split="train").to_list(),
    }
elif DATA_SOURCE == "local":
    raw = {name: read_jsonl(path) for name, path in LOCAL_FILES.items()}
else:
    raise ValueError(f'DATA_SOURCE must be "hub" or "local", not {DATA_SOURCE!r}')
if MY_CHATS:
    if not Path(MY_CHATS).is_file():
        raise FileNotFoundError(f"MY_CHATS: no file {MY_CHATS!r} (upload it in the Files panel first)")
    raw["my_chats"] = read_jsonl(MY_CHATS)

data = prepare({name: normalise(name, rows) for name, rows in raw.items()},
               seed=SEED, max_per_source=MAX_PER_SOURCE)
print(format_summary(data.summary))
"""

MODEL = """\
# Load the base model (4-bit on a GPU) and add the LoRA adapter.
import torch

# Micro-batch x accumulation = 16 examples a step for every size; bigger models take smaller
# micro-batches so that a T4's 15 GB holds their activations.
BATCHING = {"1.5B": (4, 4), "3B": (2, 8), "7B": (1, 16)}
if MODEL_SIZE not in BATCHING:
    raise ValueError(f"MODEL_SIZE must be one of {', '.join(BATCHING)}, not {MODEL_SIZE!r}")
batch_size, grad_accum = BATCHING[MODEL_SIZE]
cfg = TrainConfig(
    base_model=BASE_MODEL or f"Qwen/Qwen2.5-Coder-{MODEL_SIZE}-Instruct",
    target_modules=lora_targets(INCLUDE_MLP),
    max_steps=MAX_STEPS,
    batch_size=batch_size,
    grad_accum=grad_accum,
    seed=SEED,
)
if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(0))
else:
    print("No GPU: training on the CPU in fp32 (fine for a tiny test model, far too slow for Qwen). "
          "On Colab: Runtime -> Change runtime type -> T4 GPU.")
model, tokenizer = load_base(cfg)
model = add_lora(model, cfg)
model.print_trainable_parameters()
"""

TRAIN = """\
# Train, measuring the validation loss before and after.
def show_progress(step, total, loss):
    if step == 1 or step == total or step % 10 == 0:
        print(f"step {step}/{total}  loss {loss:.4f}", flush=True)


result = train(model, tokenizer, data.train, data.eval, cfg, progress=show_progress)

def show_loss(value):
    return "n/a (no eval rows)" if value is None else f"{value:.4f}"


print(f"eval loss before: {show_loss(result.eval_loss_before)}")
print(f"eval loss after:  {show_loss(result.eval_loss_after)}")
print(f"{result.steps} steps in {result.seconds:.0f} s")
"""

EXPORT = """\
# Package the adapter for the app.
# Default name: the base model's, e.g. qwen2.5-coder-1.5b-instruct-lora.zip
name = OUTPUT_NAME or cfg.base_model.rstrip("/").split("/")[-1].lower()
manifest = build_manifest(model, cfg, result, data.summary)
# The validation rows travel in the zip: the app measures the adapter on them when importing it.
zip_path = export_zip(model, manifest, Path(OUTPUT_DIR) / f"{name}-lora.zip", validation=data.eval)
print(f"wrote {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
"""

DOWNLOAD = """\
# Download the zip (Colab); elsewhere it stays where the previous cell wrote it.
if IN_COLAB:
    from google.colab import files

    files.download(str(zip_path))
else:
    print(f"Adapter: {zip_path.resolve()}")
"""


def _cell(kind: str, source: str, cell_id: str, tags: list[str] | None = None):
    """A cell with a fixed id (nbformat would pick random ones, and the file must be reproducible)."""
    cell = new_markdown_cell(source) if kind == "markdown" else new_code_cell(source)
    cell.id = cell_id
    if tags:
        cell.metadata["tags"] = tags
    return cell


def build() -> nbformat.NotebookNode:
    """The notebook, from the module sources as they are on disk now."""
    cells = [
        _cell("markdown", INTRO, "intro"),
        _cell("code", PARAMETERS, "parameters", ["parameters"]),
        _cell("markdown", "## Install", "install-md"),
        _cell("code", INSTALL, "install"),
    ]
    for filename in INLINED:
        stem = filename.removesuffix(".py")
        cells.append(_cell("markdown", f"## `training/{filename}`\nInlined from the repository; "
                                       f"regenerate with `python -m training.build_notebook`.", f"module-{stem}-md"))
        cells.append(_cell("code", (HERE / filename).read_text(encoding="utf-8"), f"module-{stem}"))
    cells += [
        _cell("markdown", "## Data", "data-md"),
        _cell("code", DATA, "data"),
        _cell("markdown", "## Model", "model-md"),
        _cell("code", MODEL, "model"),
        _cell("markdown", "## Train", "train-md"),
        _cell("code", TRAIN, "train"),
        _cell("markdown", "## Export and download", "export-md"),
        _cell("code", EXPORT, "export"),
        _cell("code", DOWNLOAD, "download"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        # Colab reads these and offers a T4 runtime when the notebook is opened.
        "accelerator": "GPU",
        "colab": {"provenance": [], "gpuType": "T4"},
    }
    return nb


def render() -> str:
    """The notebook file's exact text."""
    nb = build()
    ids = [cell.id for cell in nb.cells]
    if len(set(ids)) != len(ids):  # nbformat would silently replace duplicates with random ids
        raise RuntimeError(f"duplicate cell ids: {ids}")
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the notebook is not up to date")
    parser.add_argument("--output", type=Path, default=NOTEBOOK, help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
        if current != text:
            print(f"{args.output} is out of date: run python -m training.build_notebook", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
