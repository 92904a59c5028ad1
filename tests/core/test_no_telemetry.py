"""The no-telemetry switches (app/no_telemetry.py): forced by ``import app``, the same in the
frozen bundle's runtime hook, and present in the environment of every child process the app
starts. What they stop is shown for real in tests/test_leak.py."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from app.no_telemetry import NO_TELEMETRY

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "installer" / "pyinstaller_hooks" / "rthook_no_telemetry.py"
PRINT_SWITCHES = ("import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in %r}))"
                  % sorted(NO_TELEMETRY))


def turned_off() -> dict[str, str]:
    """The environment of a user who set every switch to "0"."""
    return {**os.environ, **{k: "0" for k in NO_TELEMETRY}, "PYTHONPATH": str(ROOT)}


def captured_env(monkeypatch, module, stdout: str) -> dict:
    """Patch ``module.subprocess.run`` to record its call and answer ``stdout``; returns the
    record (``env`` there is what the child gets: the given one, else this process's)."""
    seen: dict = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = list(cmd)
        seen["env"] = dict(kw["env"]) if kw.get("env") is not None else dict(os.environ)
        return subprocess.CompletedProcess(cmd, 0, stdout, "")
    monkeypatch.setattr(module.subprocess, "run", fake_run)
    return seen


def has_switches(env: dict) -> bool:
    return all(env.get(k) == v for k, v in NO_TELEMETRY.items())


def test_the_switches_are_the_ones_the_audit_found():
    assert NO_TELEMETRY == {"ORT_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1",
                            "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}


def test_import_app_forces_every_switch_over_the_users_environment():
    r = subprocess.run([sys.executable, "-c", "import app\n" + PRINT_SWITCHES], env=turned_off(), cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == NO_TELEMETRY
    # the first thing app/__init__.py does, before any dependency is imported
    r = subprocess.run([sys.executable, "-c", "import app, sys\nprint(sorted(m for m in ('onnxruntime', "
                        "'tokenizers', 'llama_cpp', 'huggingface_hub', 'PySide6') if m in sys.modules))"],
                       env=turned_off(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_the_runtime_hook_sets_the_same_values_without_importing_app():
    tree = ast.parse(HOOK.read_text(encoding="utf-8"))
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imports |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imports == {"os"}  # a runtime hook cannot import app
    values = next(ast.literal_eval(n.value) for n in tree.body
                  if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "_NO_TELEMETRY")
    assert values == NO_TELEMETRY
    # and running it (as the bootloader does, before anything else) forces them
    code = f"import runpy, sys\nrunpy.run_path({str(HOOK)!r})\nassert 'app' not in sys.modules\n" + PRINT_SWITCHES
    r = subprocess.run([sys.executable, "-I", "-c", code], env=turned_off(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == NO_TELEMETRY


def test_build_spec_names_the_runtime_hook():
    spec = (ROOT / "build.spec").read_text(encoding="utf-8")
    call = next(n for n in ast.walk(ast.parse(spec)) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "Analysis")
    hooks = next(k.value for k in call.keywords if k.arg == "runtime_hooks")
    assert re.search(r'"installer"\s*/\s*"pyinstaller_hooks"\s*/\s*"rthook_no_telemetry\.py"',
                     ast.get_source_segment(spec, hooks)), ast.get_source_segment(spec, hooks)
    # not picked up as an ordinary hook from hookspath (those are named hook-<module>.py)
    assert not HOOK.name.startswith("hook-")


# ---- every child process the app starts -----------------------------------------------------
def test_verify_probe_inherits_the_switches(monkeypatch):
    from app.core.net import verify
    seen = captured_env(monkeypatch, verify, '["refused", 0.01]\n')
    verify.probe("127.0.0.1", 9)
    assert seen["cmd"][:len(verify.probe_command())] == verify.probe_command()
    assert "-I" in seen["cmd"]   # isolated mode drops PYTHON* variables only, not these
    assert has_switches(seen["env"])


def test_adapter_probe_inherits_the_switches(monkeypatch, tmp_path):
    from app.core.adapters import probe
    seen = captured_env(monkeypatch, probe, '{"ok": true, "tokens": 3}\n')
    probe.probe_adapter(tmp_path / "model.gguf", tmp_path / "adapter.gguf")
    assert seen["cmd"][:len(probe.probe_command())] == probe.probe_command()
    assert has_switches(seen["env"])


def test_firewall_helper_inherits_the_switches_and_runs_app_code(monkeypatch):
    from app.core.net.firewall import client
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(client.FirewallClient, "command", lambda self, action: ["helper", action])
    status = {"active": False, "blocked_packets": 0, "cgroup": "", "detail": "", "destinations": []}
    seen = captured_env(monkeypatch, client, json.dumps({"ok": True, "status": status}) + "\n")
    client.FirewallClient().status()
    assert has_switches(seen["env"])
    # pkexec starts the helper with a clean environment: it is the app's own module (in the
    # bundle, the app binary), so ``import app`` sets the switches there again
    assert client.helper_command()[1:3] == ["-m", client.HELPER_MODULE]
    assert client.HELPER_MODULE.startswith("app.")


def test_doctor_llama_child_inherits_the_switches(monkeypatch):
    from app.core.doctor import system
    seen = captured_env(monkeypatch, system, "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 |\n")
    system.read_system_info()
    assert has_switches(seen["env"])


def test_sandbox_environment_sets_the_switches(tmp_path):
    from app.core.run import sandbox
    env = sandbox._environment(tmp_path, tmp_path / "home", tmp_path / "tmp")
    assert has_switches(env)


def test_project_tests_run_with_the_switches(tmp_path):
    """/fix's run of the project's own tests: a real run in the sandbox (clean environment)."""
    from app.core.run.project_tests import run_project_tests
    project = tmp_path / "proj"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_env.py").write_text(
        "import os\n\n\ndef test_switches():\n"
        f"    assert {{k: os.environ.get(k) for k in {sorted(NO_TELEMETRY)!r}}} == {NO_TELEMETRY!r}\n")
    run = run_project_tests(project)
    assert run.passed, run.output


# Every file of the app that starts a process, and why its child has the switches. A new one
# fails here until someone has checked that its child gets them (and added it).
CHILD_SITES = {
    "app/core/adapters/probe.py": "inherits (test above)",
    "app/core/doctor/system.py": "inherits (test above)",
    "app/core/net/verify.py": "inherits (test above)",
    "app/core/net/firewall/client.py": "inherits; under pkexec the helper is app code (test above)",
    "app/core/net/firewall/linux_nft.py": "runs nft, not Python; inherits",
    "app/core/run/sandbox.py": "sets them in _environment (test above)",
    "app/core/run/bootstrap.py": "the sandbox's child: execs the code with the environment the sandbox gave it",
    "app/core/run/mounts.py": "the project's python -I -S printing sys.prefix: sets them (and imports nothing)",
    "app/core/checks/run.py": "the runner inside the sandbox execs the linter with the sandbox's environment",
    "app/core/edits/git.py": "runs git, not Python; inherits (git_env copies the environment)",
}


def test_every_place_that_starts_a_process_is_known():
    pattern = re.compile(r"subprocess\.(run|Popen|call|check_call|check_output)\(|os\.(exec|spawn|posix_spawn)"
                         r"|QProcess|multiprocessing|create_subprocess_exec")
    found = {str(p.relative_to(ROOT)).replace(os.sep, "/") for p in (ROOT / "app").rglob("*.py")
             if pattern.search(p.read_text(encoding="utf-8"))}
    assert found <= set(CHILD_SITES), f"new child-process code; check its environment: {found - set(CHILD_SITES)}"
