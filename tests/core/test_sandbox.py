"""The Run sandbox, with real processes: streaming, limits, killing, no network, no secrets.

The network test makes its own network namespace with a TCP server in it (tests/netns.py) and
first shows that an ordinary process CAN reach it, so the sandbox's failure to is meaningful.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from app.core.run import sandbox
from app.no_telemetry import NO_TELEMETRY
from app.core.run.result import NETNS, PYTHON_GUARD, READ_ONLY, RunResult, SandboxLimits
from app.core.run.sandbox import SandboxError, language_of, run_code
from tests.support.netns import Namespace, can_make_namespaces

NO_NS = can_make_namespaces()
needs_ns = pytest.mark.skipif(NO_NS is not None, reason=f"network namespace tests: {NO_NS}")
linux_root = pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                                reason="the namespaces are certain to work only as root on Linux")


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) host processes whose command line contains marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def gone(marker: str, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while processes_with(marker):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


SPAWN_SLEEPERS = """
import subprocess, sys
code = "import time; time.sleep(1000)"
subprocess.Popen([sys.executable, "-c", code, "{marker}"])
subprocess.Popen([sys.executable, "-c", code, "{marker}"], start_new_session=True)  # escapes killpg
print("started", flush=True)
"""


def test_language_of_fence_info():
    for info in ("python", "py", "Python3", "python title=x.py", "{.python}"):
        assert language_of(info) == "python", info
    for info in ("bash", "sh", "shell", "console"):
        assert language_of(info) == "shell", info
    for info in ("", "js", "text", "diff", "pycon-ish"):
        assert language_of(info) is None, info


def test_output_streams_while_the_code_runs():
    seen: list[tuple[float, str, str]] = []
    code = ("import sys, time\nprint('first')\nprint('warn', file=sys.stderr)\ntime.sleep(1)\nprint('second')\n")
    r = run_code(code, on_output=lambda stream, text: seen.append((time.monotonic(), stream, text)))
    ended = time.monotonic()
    assert r.exit_code == 0 and not (r.timed_out or r.cancelled or r.memory_exceeded), r
    assert r.stdout == "first\nsecond\n" and r.stderr == "warn\n"
    first = next(t for t, s, text in seen if "first" in text)
    assert ended - first > 0.7, "the first line only arrived when the process ended"
    assert "".join(text for _, s, text in seen if s == "stdout") == "first\nsecond\n"
    assert all(text.endswith("\n") for _, s, text in seen), "lines came in pieces"
    assert r.summary().startswith("exited with 0 in ")


def test_time_limit_kills_the_whole_process_tree():
    marker = f"sandbox-sleeper-{uuid.uuid4().hex}"
    seen: list[str] = []
    code = SPAWN_SLEEPERS.format(marker=marker) + "while True:\n    pass\n"
    started = time.monotonic()
    r = run_code(code, limits=SandboxLimits(time_s=2), on_output=lambda s, t: seen.append(t))
    assert time.monotonic() - started < 8
    assert "started" in "".join(seen)
    assert r.timed_out and not r.memory_exceeded and not r.cancelled
    assert 1.9 <= r.duration_s < 6
    assert r.summary() == "stopped: time limit (2 s)"
    if r.isolation == NETNS:  # the PID namespace takes even the setsid'd one with it
        assert gone(marker), f"left running: {processes_with(marker)}"
    else:
        pytest.skip("no PID namespace here: the python-guard refuses to start programs instead")


def test_background_processes_end_with_the_run():
    marker = f"sandbox-leftover-{uuid.uuid4().hex}"
    r = run_code(SPAWN_SLEEPERS.format(marker=marker))
    if r.isolation != NETNS:
        pytest.skip("no PID namespace here")
    assert r.exit_code == 0 and r.duration_s < 5, r
    assert gone(marker), f"left running: {processes_with(marker)}"


def test_memory_hog_is_stopped_with_a_clear_summary():
    code = "chunks = []\nfor _ in range(20):\n    chunks.append(bytearray(100 * 1024 * 1024))\nprint('survived')\n"
    r = run_code(code, limits=SandboxLimits(time_s=20, memory_mb=512))
    assert r.memory_exceeded and not r.timed_out, r
    assert "survived" not in r.stdout
    assert r.summary() == "stopped: memory limit (512 MB)"


@needs_ns
def test_sandboxed_code_cannot_reach_a_server_the_host_can(monkeypatch):
    with Namespace(8) as ns:
        ns.serve()
        client = (f"import socket\ns = socket.create_connection(('{ns.ns_ip}', {ns.port}), timeout=3)\n"
                  "print(s.recv(2).decode())\n")
        host = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, timeout=20)
        assert host.stdout.strip() == "hi", host.stderr  # so the test below could fail
        r = run_code(client, limits=SandboxLimits(time_s=15))
        assert r.isolation == NETNS
        assert "hi" not in r.stdout and r.exit_code != 0
        assert "Network is unreachable" in r.stderr or "refused" in r.stderr, r.stderr
        # The fallback for systems without namespaces refuses it too.
        monkeypatch.setattr(sandbox, "USE_NAMESPACES", False)
        r = run_code(client, limits=SandboxLimits(time_s=15))
        assert r.isolation == PYTHON_GUARD
        assert "hi" not in r.stdout and "The sandbox has no network" in r.stderr, r.stderr


@linux_root
def test_loopback_inside_the_sandbox_still_works():
    code = ("import socket, threading\nsrv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
            "threading.Thread(target=lambda: srv.accept()[0].sendall(b'hi'), daemon=True).start()\n"
            "print(socket.create_connection(srv.getsockname(), timeout=3).recv(2).decode())\n")
    r = run_code(code)
    assert r.isolation == NETNS and r.stdout == "hi\n", r


def test_environment_has_no_secrets_and_home_is_inside(monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", "sk-secret")
    code = ("import os\nfor k, v in sorted(os.environ.items()):\n    print(k, v)\n"
            "print('CWD', os.getcwd())\n")
    r = run_code(code)
    assert r.exit_code == 0, r
    assert "sk-secret" not in r.stdout and "TAVILY" not in r.stdout
    env = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert set(env) <= {"PATH", "LANG", "HOME", "TMPDIR", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE",
                        "PYTHONUNBUFFERED", "CWD"} | set(NO_TELEMETRY)
    assert all(env.get(k) == v for k, v in NO_TELEMETRY.items()), env  # the no-telemetry switches
    assert env["HOME"].startswith(env["CWD"] + os.sep) and env["TMPDIR"].startswith(env["CWD"] + os.sep)
    assert not Path(env["CWD"]).exists(), "the sandbox folder was not deleted"


def test_files_outside_the_sandbox_folder_are_untouched(tmp_path):
    name = f"escape-{uuid.uuid4().hex}.txt"
    outside = tmp_path / "absolute.txt"
    code = (f"import os\nopen('inside.txt', 'w').write('ok')\n"
            f"for path in ('../{name}', {str(outside)!r}):\n"
            "    try:\n        open(path, 'w').write('escaped')\n        print('wrote', path)\n"
            "    except OSError as e:\n        print('refused', path, e.strerror)\n"
            "print('CWD', os.getcwd())\n")
    r = run_code(code, keep_dir=True)
    cwd = r.directory
    try:
        assert r.exit_code == 0, r
        cwd = Path(r.stdout.split("CWD ", 1)[1].strip())
        assert r.directory == cwd and (cwd / "inside.txt").read_text() == "ok"
        assert not (cwd.parent / name).exists(), "a relative write left the sandbox folder"
        if r.filesystem == READ_ONLY:
            assert not outside.exists() and "Read-only file system" in r.stdout
        elif sys.platform.startswith("linux") and os.geteuid() == 0:
            pytest.fail(f"as root on Linux the file system should be read-only: {r}")
    finally:
        (cwd.parent / name).unlink(missing_ok=True)
        shutil.rmtree(cwd)


def test_shell_needs_confirmation():
    with pytest.raises(SandboxError, match="Shell code runs only after you confirm it"):
        run_code("echo hi", "shell")
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        r = run_code("echo hi", "shell", confirmed_shell=True)
        assert (r.exit_code, r.stdout, r.isolation) == (0, "hi\n", NETNS), r


def test_shell_refused_without_a_network_namespace(monkeypatch):
    monkeypatch.setattr(sandbox, "USE_NAMESPACES", False)
    with pytest.raises(SandboxError, match="cannot run here"):
        run_code("echo hi", "shell", confirmed_shell=True)


def test_python_guard_refuses_starting_programs(monkeypatch):
    monkeypatch.setattr(sandbox, "USE_NAMESPACES", False)
    r = run_code("import subprocess\nsubprocess.run(['echo', 'hi'])\n")
    assert r.isolation == PYTHON_GUARD and r.exit_code == 1
    assert "cannot start other programs" in r.stderr and "hi" not in r.stdout


def test_cancel_kills_quickly():
    marker = f"sandbox-cancel-{uuid.uuid4().hex}"
    go: list[float] = []
    code = SPAWN_SLEEPERS.format(marker=marker) + "import time\ntime.sleep(60)\n"
    r = run_code(code, on_output=lambda s, t: go.append(time.monotonic()) if "started" in t else None,
                 cancelled=lambda: bool(go))
    assert go and time.monotonic() - go[0] < 5
    assert r.cancelled and not r.timed_out and r.summary().startswith("stopped: cancelled after")
    if r.isolation == NETNS:
        assert gone(marker)


def test_output_is_capped():
    r = run_code("import sys\nfor i in range(3000):\n    print('x' * 99)\nprint('end', file=sys.stderr)\n",
                 limits=SandboxLimits(output_bytes=10_000))
    assert r.output_truncated and r.exit_code == 0
    assert len(r.stdout.encode()) < 10_100 and "[output cut" in r.stdout
    assert r.summary().endswith("output cut at 10 kB")


def test_callback_error_does_not_leave_the_run_going():
    marker = f"sandbox-raise-{uuid.uuid4().hex}"

    def boom(stream: str, text: str) -> None:
        raise ValueError("ui went away")
    with pytest.raises(ValueError):
        run_code(SPAWN_SLEEPERS.format(marker=marker) + "import time\ntime.sleep(60)\n", on_output=boom)
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        assert gone(marker)


def test_unknown_language_is_refused():
    with pytest.raises(SandboxError, match="cannot be run"):
        run_code("console.log(1)", "javascript")


def test_summary_wording():
    base = dict(exit_code=0, stdout="", stderr="", timed_out=False, memory_exceeded=False, cancelled=False,
                duration_s=0.34, isolation="netns", output_truncated=False)
    assert RunResult(**base).summary() == "exited with 0 in 0.3 s"
    assert RunResult(**{**base, "exit_code": -11}).summary() == "killed by SIGSEGV after 0.3 s"
    assert RunResult(**{**base, "timed_out": True}, limits=SandboxLimits(time_s=10)).summary() \
        == "stopped: time limit (10 s)"


# ---- what is not the code's business: the user's home, /home, /root, the app's own data ----------
READ_SECRETS = """
import os
paths = {paths!r}
for name, path in sorted(paths.items()):
    try:
        print("READ", name, open(path).read())
    except OSError as e:
        print("DENIED", name, type(e).__name__)
for folder in {folders!r}:
    try:
        print("LIST", folder, sorted(os.listdir(folder)))
    except OSError as e:
        print("LIST", folder, type(e).__name__)
"""


def plant_secrets(base: Path) -> tuple[Path, Path, dict[str, Path], str]:
    """A home with an SSH key and a keyring, and an app folder with a chat database; each file
    holds the same unique secret text. Returns (home, app home, {name: file}, secret)."""
    secret = f"TOP-SECRET-{uuid.uuid4().hex}"
    home, app_home = base / "home", base / "app-home"
    files = {"ssh": home / ".ssh" / "id_rsa", "keyring": home / ".local/share/keyrings/login.keyring",
             "chats": app_home / "data" / "chats.db"}
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"-----BEGIN {secret}-----\n")
    (home / ".ssh").chmod(0o700)
    files["ssh"].chmod(0o600)
    return home, app_home, files, secret


def read_secrets_code(files: dict[str, Path], folders: list[Path]) -> str:
    return READ_SECRETS.format(paths={k: str(v) for k, v in files.items()}, folders=[str(f) for f in folders])


def assert_nothing_read(r: RunResult, files: dict[str, Path], secret: str) -> None:
    assert secret not in r.stdout and secret not in r.stderr, r
    lines = r.stdout.splitlines()
    for name in files:
        assert any(line in (f"DENIED {name} FileNotFoundError", f"DENIED {name} PermissionError")
                   for line in lines), (name, r.stdout, r.stderr)


@pytest.fixture
def planted(tmp_path, monkeypatch):
    home, app_home, files, secret = plant_secrets(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OFFLINE_CODER_HOME", str(app_home))
    return home, app_home, files, secret


@linux_root
def test_home_and_the_apps_data_are_hidden_from_python(planted):
    home, app_home, files, secret = planted
    r = run_code(read_secrets_code(files, [home, Path("/root"), Path("/home")]))
    assert r.isolation == NETNS and r.filesystem == READ_ONLY and r.exit_code == 0, r
    assert_nothing_read(r, files, secret)
    for folder in (home, "/home"):
        assert f"LIST {folder} []" in r.stdout, r.stdout  # an empty folder where it was
    # /root is empty too, but for the way to the interpreter when it lives there (pyenv)
    way = sorted({Path(p).relative_to("/root").parts[0] for p in (sys.prefix, sys.base_prefix)
                  if p.startswith("/root/")})
    assert f"LIST /root {way}" in r.stdout, r.stdout
    hidden = set(r.hidden)
    assert {str(home), str(app_home), "/root"} <= hidden, r.hidden
    assert not r.notes, r.notes
    assert (files["ssh"].read_text().startswith("-----BEGIN")), "the real files are untouched"


@linux_root
def test_home_is_hidden_from_shell_code_too(planted):
    home, app_home, files, secret = planted
    code = "".join(f"cat {path}\n" for path in files.values()) + f"ls -A {home}\necho done\n"
    r = run_code(code, "shell", confirmed_shell=True)
    assert r.isolation == NETNS and r.stdout == "done\n", r
    assert secret not in r.stdout + r.stderr
    assert r.stderr.count("No such file or directory") == len(files), r.stderr


@linux_root
def test_a_sandbox_folder_under_the_hidden_home_still_works(planted, monkeypatch):
    """TMPDIR inside home: the run's own folder comes back, writable; the rest of home does not."""
    home, app_home, files, secret = planted
    tmp = home / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    code = read_secrets_code(files, [home]) + "open('made.txt', 'w').write('ok')\nprint('CWD', os.getcwd())\n"
    r = run_code(code, keep_dir=True)
    try:
        assert r.exit_code == 0 and r.isolation == NETNS, r
        assert r.directory.parent == tmp and (r.directory / "made.txt").read_text() == "ok"
        assert_nothing_read(r, files, secret)
        assert f"LIST {home} ['tmp']" in r.stdout, r.stdout  # only the way to the sandbox folder
        assert str(home) in r.hidden
    finally:
        shutil.rmtree(r.directory, ignore_errors=True)


def test_the_python_guard_hides_nothing_and_says_so(planted, monkeypatch):
    monkeypatch.setattr(sandbox, "USE_NAMESPACES", False)
    home, app_home, files, secret = planted
    r = run_code("print('hi')\n")
    assert r.isolation == PYTHON_GUARD and r.hidden == [] and r.stdout == "hi\n", r
    assert any("not hidden" in note for note in r.notes), r.notes


NOBODY = 65534
AS_NOBODY = """
import json, sys
from app.core.run.sandbox import run_code
code, shell = sys.argv[1], sys.argv[2]
out = {}
for name, (text, language) in {"python": (code, "python"), "shell": (shell, "shell")}.items():
    try:
        r = run_code(text, language, confirmed_shell=True)
        out[name] = {"stdout": r.stdout, "stderr": r.stderr, "exit": r.exit_code, "isolation": r.isolation,
                     "hidden": r.hidden, "notes": r.notes, "filesystem": r.filesystem}
    except Exception as e:
        out[name] = {"error": str(e)}
print(json.dumps(out))
"""


def python_for(uid: int) -> str | None:
    """An interpreter that user can run (ours may live under /root), with the app importable."""
    for candidate in (sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")):
        try:
            if candidate and subprocess.run([candidate, "-c", "import sys; assert sys.version_info >= (3, 9)"],
                                            user=uid, capture_output=True, cwd="/").returncode == 0:
                return candidate
        except OSError:  # that user may not even reach it (ours is under /root here)
            continue
    return None


@linux_root
def test_home_is_hidden_for_an_ordinary_user_too():
    """As an ordinary user (uid 65534) the sandbox takes the user-namespace path; hiding works there too."""
    python = python_for(NOBODY)
    if python is None:
        pytest.skip("no Python interpreter that uid 65534 can run")
    import platformdirs
    repo = Path(__file__).resolve().parents[2]
    pythonpath = os.pathsep.join([str(repo), str(Path(platformdirs.__file__).parent.parent)])
    if subprocess.run([python, "-c", "import app.core.run.sandbox"], user=NOBODY, capture_output=True, cwd="/",
                      env={"PYTHONPATH": pythonpath, "PATH": os.defpath}).returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot read the app's source at {repo}")
    base = Path(tempfile.mkdtemp(prefix="sandbox-nobody-", dir="/tmp"))
    try:
        home, app_home, files, secret = plant_secrets(base)
        for dirpath, dirnames, filenames in os.walk(base):
            for name in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
                os.chown(name, NOBODY, NOBODY)
        base.chmod(0o755)
        shell = "".join(f"cat {path}\n" for path in files.values()) + "echo done\n"
        env = {"PYTHONPATH": pythonpath, "PATH": os.defpath, "HOME": str(home), "OFFLINE_CODER_HOME": str(app_home)}
        done = subprocess.run([python, "-c", AS_NOBODY, read_secrets_code(files, [home]), shell], user=NOBODY,
                              capture_output=True, text=True, cwd="/", env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        if out["python"].get("isolation") != NETNS:
            pytest.skip(f"uid {NOBODY} cannot make namespaces here: {out}")
        py, sh = out["python"], out["shell"]
        assert py["exit"] == 0 and py["filesystem"] == READ_ONLY, py
        assert secret not in py["stdout"] + py["stderr"] and secret not in sh["stdout"] + sh["stderr"], out
        for name in files:
            assert f"DENIED {name} FileNotFoundError" in py["stdout"], py
        assert f"LIST {home} []" in py["stdout"] and {str(home), str(app_home)} <= set(py["hidden"]), py
        assert sh["stdout"] == "done\n" and sh["stderr"].count("No such file or directory") == len(files), sh
    finally:
        shutil.rmtree(base, ignore_errors=True)


@linux_root
def test_a_folder_whose_contents_cannot_come_back_is_shown_again_with_a_note(planted, monkeypatch):
    """Hiding never fails a run: when what a run needs cannot be brought back under a hidden folder
    (here the covering tmpfs has no room for the way to the interpreter under /root), that folder
    is shown again, left out of ``hidden`` and noted; the other hidden folders stay hidden."""
    if not sys.base_prefix.startswith("/root/"):
        pytest.skip("needs the interpreter under /root (a pyenv Python, as in CI)")
    from app.core.run import mounts
    monkeypatch.setattr(mounts, "COVER_OPTIONS", "size=64k,nr_inodes=1,mode=755")
    home, app_home, files, secret = planted
    r = run_code(read_secrets_code(files, [home]))
    assert r.exit_code == 0 and r.isolation == NETNS and r.filesystem == READ_ONLY, r
    assert "/root" not in r.hidden and str(home) in r.hidden, r.hidden
    assert any(note.startswith("/root not hidden") for note in r.notes), r.notes
    assert_nothing_read(r, files, secret)
