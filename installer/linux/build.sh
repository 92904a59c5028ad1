#!/usr/bin/env bash
# Build the Linux bundle with PyInstaller (build.spec) and the .deb from it.
#
#     bash installer/linux/build.sh [OUT_DIR]          # default OUT_DIR: dist
#
# makes OUT_DIR/offline-coder/ (the one-folder bundle: run OUT_DIR/offline-coder/offline-coder)
# and OUT_DIR/offline-coder_<version>_<arch>.deb. Needs the dev venv (bash scripts/bootstrap.sh,
# which installs PyInstaller from the dev extra), binutils (strip, readelf, objdump) and dpkg-deb.
# PyInstaller's work files go to WORK_DIR (default build/pyinstaller). About a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-dist}")
work=$(realpath -m "${WORK_DIR:-build/pyinstaller}")
py=${PYTHON:-.venv/bin/python}
if ! "$py" -c "import PyInstaller" 2>/dev/null; then
    echo "error: PyInstaller is not installed for $py; run: bash scripts/bootstrap.sh" >&2
    exit 1
fi
"$py" -m PyInstaller --noconfirm --log-level WARN --distpath "$out" --workpath "$work" build.spec
bash installer/linux/make_deb.sh "$out/offline-coder" "$out"
