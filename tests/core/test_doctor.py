"""The system check (app/core/doctor, ``python -m app doctor``) on a real setup: a real copy of the
starter model registered in a temporary home, a real project indexed with the shipped embedder,
llama.cpp's real build info, a real keyring backend (in memory), and, as root (CI), the real
nftables rule loaded by the app's own helper for a stand-in app process.

Each broken condition is made for real (file deleted, a byte of the model changed, embedder files
missing, keyring's "fail" backend, the nftables table deleted, a disk probe reporting little space)
and must turn exactly its own check red, with its remedy, and the exit status non-zero."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.core import doctor, hardware
from app.core.doctor import FAIL, OK, WARN
from app.core.doctor.network import FirewallView, check_firewall, check_offline, window_firewall
from app.core.doctor.system import CPU_FLAG, build_features, compare_build, cpu_flags, read_system_info
from app.core.index.embed import Embedder, default_model_dir
from app.core.index.indexer import ProjectIndex, index_dir_for
from app.core.models import embedded
from app.core.models.registry import InstalledModel, ModelRegistry
from app.core.net import guard, policy
from app.core.net.audit import LOG, AuditLog
from app.core.net.firewall import linux_nft
from app.core.net.firewall.client import FirewallClient
from app.core.paths import app_paths
from app.core.settings import Settings
from tests.support.index_project import make_project

ROOT = Path(__file__).resolve().parents[2]
IDS = ["python", "llama_build", "active_model", "starter_model", "embedder", "disk", "offline", "firewall",
       "index", "keyring", "adapters", "storage"]
SECRET = "tvly-DOCTOR-PLANTED-SECRET-5a4b3c"
IS_ROOT = os.geteuid() == 0


# ---- a healthy setup ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def indexed_project(tmp_path_factory):
    """A real project and its real index (built once; each home gets a copy of the index)."""
    base = tmp_path_factory.mktemp("doctor")
    root = make_project(base / "shop")
    cache = base / "template-cache"
    pi = ProjectIndex(root, index_dir_for(root, cache), Embedder())
    pi.update()
    pi.close()
    return root, cache / "indexes"


def make_home(home: Path, project: Path | None = None, index_template: Path | None = None,
              record_sha: bool = True, model_name: str = "coder-copy.gguf"):
    """A home whose active model is a registered copy of the starter model (models.json records
    its SHA-256 unless ``record_sha`` is False) and whose open project is already indexed."""
    paths = app_paths(home).ensure()
    model = paths.models_dir / model_name
    shutil.copyfile(embedded.starter_model().path, model)
    ModelRegistry(paths.models_dir).add(InstalledModel(
        id="coder-copy", name="Coder copy", path=str(model), size=model.stat().st_size, source="copy",
        sha256=embedded.SHA256 if record_sha else "", architecture="llama", quantization="Q4_1"))
    settings = Settings(model_path=str(model), project_dir=str(project) if project else "")
    settings.save(paths.settings_file)
    if index_template is not None:
        shutil.copytree(index_template, paths.cache_dir / "indexes", dirs_exist_ok=True)
    return paths, settings, model


@pytest.fixture
def healthy(tmp_path, indexed_project, memory_keyring):
    """(paths, settings, model file) of a healthy home, in a process started like the app (the
    guard installed, offline mode from the settings)."""
    root, template = indexed_project
    paths, settings, model = make_home(tmp_path / "home", root, template)
    guard.install()
    policy.set_offline(settings.offline)
    return paths, settings, model


def by_id(checks) -> dict:
    return {c.id: c for c in checks}


def assert_only_red(checks, red: str, remedy_words: str) -> None:
    got = by_id(checks)
    assert list(got) == IDS
    assert got[red].status == FAIL, got[red]
    assert remedy_words in got[red].remedy, got[red]
    others = {c.id: (c.status, c.detail) for c in checks if c.id != red and c.status != OK}
    assert others == {}, others
    assert doctor.exit_code(checks) != 0


# ---- the stand-in app process under the real firewall rule (root) --------------------------------
def _firewall_missing() -> str | None:
    if not IS_ROOT:
        return "loading the nftables rule needs root (CI is root)"
    if not linux_nft.nft_available():
        return "needs nftables (the nft command; .ci/run installs it)"
    return None


@pytest.fixture
def app_under_firewall():
    """A process the app's own helper moved into its cgroup and blocked (as the window does at
    start); the table and the cgroup are removed afterwards."""
    if _firewall_missing():
        pytest.skip(_firewall_missing())
    child = subprocess.Popen(["sleep", "300"])
    try:
        status = FirewallClient(pid=child.pid).on()
        assert status.active, status
        yield child
    finally:
        child.kill()
        child.wait()
        FirewallClient().off()  # deletes the table and the now empty cgroup


@pytest.fixture
def app_maybe_under_firewall(request):
    """The same where root and nftables are here; else None (no app window running, so the
    firewall check needs no rule), so the healthy run is checked on every machine."""
    if _firewall_missing():
        yield None
    else:
        yield request.getfixturevalue("app_under_firewall")


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OFFLINE_CODER_HOME=str(home), PYTHON_KEYRING_BACKEND="tests.support.memory_keyring.MemoryKeyring")
    return subprocess.run([sys.executable, "-m", "app", "doctor", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


# ---- the command line --------------------------------------------------------------------------
def test_cli_on_a_healthy_setup_reports_every_check_ok_and_exits_0(tmp_path, indexed_project, app_maybe_under_firewall):
    root, template = indexed_project
    make_home(tmp_path / "home", root, template)
    r = run_cli(tmp_path / "home", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["exit_code"] == 0
    checks = {c["id"]: c for c in doc["checks"]}
    assert list(checks) == IDS
    assert {i: c["status"] for i, c in checks.items() if c["status"] != OK} == {}
    # What each one found, not just that it said OK.
    assert "checksum OK (the checksum recorded when it was installed (models.json))" in checks["active_model"]["detail"]
    assert "coder-copy.gguf" in checks["active_model"]["detail"] and "llama, Q4_1" in checks["active_model"]["detail"]
    assert "this CPU has all of them" in checks["llama_build"]["detail"]
    assert "reproduces the reference vectors" in checks["embedder"]["detail"]
    if app_maybe_under_firewall is not None:
        assert f"app-0-{app_maybe_under_firewall.pid}" in checks["firewall"]["detail"]
        assert "Offline rule loaded (read from nftables)" in checks["firewall"]["detail"]
    else:
        assert "no app window is running, so no firewall rule is needed now" in checks["firewall"]["detail"]
    assert "guard is installed" in checks["offline"]["detail"]
    assert f"{root}:" in checks["index"]["detail"] and "0 stale files" in checks["index"]["detail"]
    assert "Keys are kept in test memory keyring" in checks["keyring"]["detail"]
    assert str(tmp_path / "home" / "data" / "app.db") in checks["storage"]["detail"]
    assert all(c["remedy"] == "" or c["status"] != OK for c in doc["checks"])


def test_cli_firewall_expected_on_but_no_rule_is_red_and_exits_1(tmp_path, indexed_project, app_under_firewall):
    root, template = indexed_project
    make_home(tmp_path / "home", root, template)
    # the rule vanishes under the running app (a firewall reload does this)
    subprocess.run(["nft", "delete", "table", "inet", linux_nft.TABLE], check=True)
    r = run_cli(tmp_path / "home", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    checks = [doctor.Check(**c) for c in json.loads(r.stdout)["checks"]]
    assert_only_red(checks, "firewall", "Turn Offline off and on again")
    assert "the OS firewall does not block running app windows" in by_id(checks)["firewall"].detail


def test_cli_text_report_names_the_deleted_model_with_the_remedy(tmp_path):
    paths, _, model = make_home(tmp_path / "home")
    model.unlink()
    r = run_cli(tmp_path / "home")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    red = [i for i, ln in enumerate(lines) if ln.startswith("FAIL")]
    assert len(red) == 1 and "Active model" in lines[red[0]] and str(model) in lines[red[0]]
    assert lines[red[0] + 1].strip().startswith("→ Choose another model in Models")
    assert sum(ln.startswith("OK ") for ln in lines) == len(IDS) - 1


# ---- each broken condition, in process -----------------------------------------------------------
def test_healthy_in_process_and_fast(healthy):
    import time
    paths, settings, _ = healthy
    t0 = time.monotonic()
    checks = doctor.run_checks(paths, settings)
    took = time.monotonic() - t0
    assert [c.id for c in checks] == IDS
    assert {c.id: c.detail for c in checks if c.status != OK} == {}
    assert doctor.exit_code(checks) == 0
    assert took < 15, f"the system check took {took:.1f} s"


def test_model_file_deleted_turns_only_the_active_model_red(healthy):
    paths, settings, model = healthy
    model.unlink()
    checks = doctor.run_checks(paths, settings)
    assert_only_red(checks, "active_model", "Choose another model in Models")
    assert "does not exist" in by_id(checks)["active_model"].detail


def test_model_checksum_altered_turns_only_the_active_model_red(healthy):
    paths, settings, model = healthy
    assert by_id(doctor.run_checks(paths, settings))["active_model"].status == OK  # hash now cached
    size = model.stat().st_size
    with open(model, "r+b") as f:  # one byte in the middle of the weights: same size, valid header
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    assert model.stat().st_size == size
    checks = doctor.run_checks(paths, settings)
    assert_only_red(checks, "active_model", "download or import it again")
    assert "not b179c9523d0e6a0f" in by_id(checks)["active_model"].detail
    assert "models.json" in by_id(checks)["active_model"].detail


def test_checksum_without_a_recorded_one_is_checked_against_the_first_system_check(tmp_path, memory_keyring):
    paths, settings, model = make_home(tmp_path / "home", record_sha=False)
    guard.install()
    policy.set_offline(settings.offline)
    first = by_id(doctor.run_checks(paths, settings))["active_model"]
    assert first.status == OK and "the first system check recorded" in first.detail
    again = by_id(doctor.run_checks(paths, settings))["active_model"]
    assert again.status == OK and "unchanged since it was last hashed" in again.detail
    data = bytearray(model.read_bytes())
    data[-100] ^= 0x01
    model.write_bytes(bytes(data))
    checks = doctor.run_checks(paths, settings)
    assert_only_red(checks, "active_model", "download or import it again")
    # --full re-reads even when size, mtime and inode look unchanged
    st = model.stat()
    data[-100] ^= 0x01
    model.write_bytes(bytes(data))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert by_id(doctor.run_checks(paths, settings, full_hash=True))["active_model"].status == OK


def test_embedding_model_missing_turns_only_the_embedder_red(healthy, tmp_path):
    paths, settings, _ = healthy
    partial = tmp_path / "embedder"
    partial.mkdir()
    shutil.copyfile(default_model_dir() / "tokenizer.json", partial / "tokenizer.json")  # model.onnx missing
    checks = doctor.run_checks(paths, settings, embedder_dir=partial)
    assert_only_red(checks, "embedder", "Reinstall Offline Coder")
    assert str(partial / "model.onnx") in by_id(checks)["embedder"].detail


def test_no_keyring_backend_turns_only_the_key_store_red(healthy, no_keyring):
    paths, settings, _ = healthy  # no_keyring: what keyring picks on a headless Linux box
    checks = doctor.run_checks(paths, settings)
    assert_only_red(checks, "keyring", "Secret Service")


def test_disk_below_the_threshold_turns_only_the_disk_red(healthy):
    paths, settings, _ = healthy

    def nearly_full(path):
        return dataclasses.replace(hardware.probe(path), free_disk=300_000_000)

    checks = doctor.run_checks(paths, settings, probe=nearly_full)
    assert_only_red(checks, "disk", "Free some disk space")
    assert "0.3 GB free" in by_id(checks)["disk"].detail


def test_an_exception_inside_one_check_is_its_own_red_line(healthy):
    paths, settings, _ = healthy

    def probe(path):
        if Path(path).name == "indexes":
            raise PermissionError(13, "Permission denied", str(path))
        return hardware.probe(path)

    checks = doctor.run_checks(paths, settings, probe=probe)
    assert_only_red(checks, "disk", "Copy the report")
    assert "PermissionError" in by_id(checks)["disk"].detail


def test_stale_files_and_the_index_database_is_only_read(healthy, indexed_project):
    paths, settings, _ = healthy
    root, _ = indexed_project
    db = index_dir_for(root, paths.cache_dir) / "index.db"
    before = db.read_bytes()
    edited = root / "shop" / "cart.py"
    text, st = edited.read_text(), edited.stat()
    try:
        edited.write_text(text + "\n# changed\n")
        c = by_id(doctor.run_checks(paths, settings))["index"]
        assert c.status == WARN and "1 stale files" in c.detail and "Update index" in c.remedy
    finally:  # the project is shared by this module's tests: put back the bytes and the time stamp
        edited.write_text(text)
        os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert db.read_bytes() == before


def test_an_enabled_adapter_is_checked_against_the_active_model_and_a_damaged_one_is_red(healthy, tmp_path):
    from app.core.adapters.importer import ModelChoice, import_adapter
    from app.core.adapters.store import AdapterStore
    from tests.support.adapter_zip import make_adapter_zip

    paths, settings, model = healthy
    store = AdapterStore(paths.data_dir / "adapters")
    # Checked and converted for real; the child-process test load is test_adapters.py's subject (20 s here).
    a = import_adapter(make_adapter_zip(tmp_path / "style-lora.zip"), store, [ModelChoice("Coder copy", model)],
                       probe=False)
    store.set_enabled(a.id, True)
    c = by_id(doctor.run_checks(paths, settings))["adapters"]
    assert c.status == OK and "1 imported; 1 on for the active model" in c.detail
    with open(a.file, "r+b") as f:  # cut short, as a disk error or a half copy would
        f.truncate(a.file.stat().st_size // 2)
    checks = doctor.run_checks(paths, settings)
    assert_only_red(checks, "adapters", "import its zip again")
    assert "style" in by_id(checks)["adapters"].detail and "truncated" in by_id(checks)["adapters"].detail


# ---- offline mode and the firewall --------------------------------------------------------------
def test_last_blocked_attempts_come_from_the_audit_log(healthy):
    log = AuditLog()
    guard.install(log)
    try:
        with pytest.raises(PermissionError):
            socket.create_connection(("192.0.2.1", 80), timeout=1)  # refused by the guard, no packet sent
        c = check_offline(True, log.events())
    finally:
        guard.install(LOG)
    assert c.status == OK and "Last blocked attempts (1 in all)" in c.detail and "192.0.2.1:80" in c.detail


def test_offline_in_settings_but_not_in_this_process_is_red(healthy):
    policy.set_offline(False)
    c = check_offline(True, [])
    assert c.status == FAIL and "Turn Offline off and on again" in c.remedy


def test_a_rule_for_another_process_does_not_cover_this_window(app_under_firewall):
    # This test process was never moved into a cgroup, like a second window whose rule was replaced.
    c = check_firewall(True, window_firewall(FirewallClient(), None))
    assert c.status == FAIL and f"app-0-{app_under_firewall.pid}" in c.detail and "does not block this window" in c.detail
    ok = check_firewall(True, FirewallView(True, linux_nft.status, [f"/offline-coder/app-0-{app_under_firewall.pid}"]))
    assert ok.status == OK


def test_firewall_not_managed_is_a_warning_and_online_needs_no_rule():
    assert check_firewall(True, FirewallView(managed=False)).status == WARN
    assert check_firewall(False, FirewallView(managed=False)).status == OK
    never_read = check_firewall(True, FirewallView(True, lambda: None, ["/offline-coder/app-0-1"]))
    assert never_read.status == FAIL and "never read back" in never_read.detail


# ---- llama.cpp build vs this CPU ------------------------------------------------------------------
def test_llama_build_is_compared_with_this_cpu():
    info, flags = read_system_info(), cpu_flags()
    assert "AVX2 = 1" in info and flags and "avx2" in flags
    assert compare_build(info, flags).status == OK
    needs_avx512 = info.replace("AVX2 = 1", "AVX2 = 1 | AVX512 = 1")
    bad = compare_build(needs_avx512, flags - {"avx512f"})
    assert bad.status == FAIL and "AVX512" in bad.detail and "pip cache remove llama_cpp_python" in bad.remedy
    unused = next(f for f in ("AMX_INT8", "AVX_VNNI", "AVX512") if f not in build_features(info))
    more = compare_build(info, flags | {CPU_FLAG[unused]})
    assert more.status == OK and f"also has {unused}" in more.detail


# ---- the report ------------------------------------------------------------------------------------
def test_report_never_contains_a_planted_secret(tmp_path, memory_keyring):
    from app.core import secrets
    secrets.set_key("tavily", SECRET)
    project = make_project(tmp_path / f"proj-{SECRET}")
    (project / "config.py").write_text(f'TAVILY = "{SECRET}"\nCONTENT_MARKER_7731 = 1\n')
    paths, settings, model = make_home(tmp_path / "home", project, model_name=f"m-{SECRET}.gguf")
    settings.system_prompt = f"Use key {SECRET} and token hf_{'a' * 30}"
    settings.save(paths.settings_file)
    pi = ProjectIndex(project, index_dir_for(project, paths.cache_dir), Embedder())
    pi.update()
    pi.close()
    guard.install()
    policy.set_offline(settings.offline)
    checks = doctor.run_checks(paths, settings)
    # The raw details do name the planted paths: the report must take the secret out.
    assert any(SECRET in c.detail for c in checks)
    text, js = doctor.format_report(checks), doctor.to_json(checks)
    for out in (text, js):
        assert SECRET not in out
        assert "<tavily key removed>" in out
        assert "CONTENT_MARKER_7731" not in out and "hf_aaaa" not in out
    assert json.loads(js)["checks"][0]["id"] == "python" and "Active model" in text
