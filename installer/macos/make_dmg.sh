#!/usr/bin/env bash
# macOS: build "Offline Coder.app" with PyInstaller (build.spec) and pack it in a .dmg with a
# link to /Applications, for drag-and-drop installation.
#
#     bash scripts/bootstrap.sh && bash installer/macos/make_dmg.sh
#
# makes dist/Offline Coder.app and dist/OfflineCoder-<version>.dmg. PyInstaller cannot build for
# another system, so this runs on a Mac (Apple Silicon builds run on Apple Silicon only; build
# on an Intel Mac or with an x86_64 Python for Intel). The app is signed ad hoc (what
# PyInstaller does); set CODESIGN_IDENTITY="Developer ID Application: ..." to sign it for
# distribution (notarizing with `xcrun notarytool` is then a separate step). Written here, not
# run: our machines are Linux (tests/gui/test_installer.py checks its syntax only).
#
# Uninstalling: drag the app to the Bin. Settings, chats and models stay in
# ~/Library/Application Support/OfflineCoder (delete that folder to remove them too).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(uname -s)" != Darwin ]; then
    echo "error: run this on macOS; PyInstaller cannot build a macOS app elsewhere" >&2
    exit 1
fi
py=${PYTHON:-.venv/bin/python}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' app/__init__.py)
app="dist/Offline Coder.app"
dmg="dist/OfflineCoder-$version.dmg"

"$py" -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller build.spec
[ -d "$app" ] || { echo "error: PyInstaller did not make $app" >&2; exit 1; }
if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$app"
fi
codesign --verify --deep --strict "$app"

# The smoke check the Linux tests run, on this Mac (window offscreen, model loaded, closed).
smoke=$(OFFLINE_CODER_HOME=$(mktemp -d) OFFLINE_CODER_SMOKE=full QT_QPA_PLATFORM=offscreen \
        "$app/Contents/MacOS/offline-coder")
echo "$smoke"
case "$smoke" in *"smoke: model ready"*) ;; *) echo "error: the app's smoke check failed" >&2; exit 1 ;; esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
rm -f "$dmg"
hdiutil create -volname "Offline Coder" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
echo "$dmg"
