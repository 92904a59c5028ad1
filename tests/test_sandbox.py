"""The Run sandbox, with real processes: streaming, limits, killing, no network, no secrets.

The network test makes its own network namespace with a TCP server in it (tests/netns.py) and
first shows that an ordinary process CAN reach it, so the sandbox's failure to is meaningful.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from app.core import sandbox
from app.core.sandbox import RunResult, SandboxError, SandboxLimits, language_of, run_code
from tests.netns import Namespace, can_make_namespaces

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
    if r.isolation == sandbox.NETNS:  # the PID namespace takes even the setsid'd one with it
        assert gone(marker), f"left running: {processes_with(marker)}"
    else:
        pytest.skip("no PID namespace here: the python-guard refuses to start programs instead")


def test_background_processes_end_with_the_run():
    marker = f"sandbox-leftover-{uuid.uuid4().hex}"
    r = run_code(SPAWN_SLEEPERS.format(marker=marker))
    if r.isolation != sandbox.NETNS:
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
        assert r.isolation == sandbox.NETNS
        assert "hi" not in r.stdout and r.exit_code != 0
        assert "Network is unreachable" in r.stderr or "refused" in r.stderr, r.stderr
        # The fallback for systems without namespaces refuses it too.
        monkeypatch.setattr(sandbox, "USE_NAMESPACES", False)
        r = run_code(client, limits=SandboxLimits(time_s=15))
        assert r.isolation == sandbox.PYTHON_GUARD
        assert "hi" not in r.stdout and "The sandbox has no network" in r.stderr, r.stderr


@linux_root
def test_loopback_inside_the_sandbox_still_works():
    code = ("import socket, threading\nsrv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
            "threading.Thread(target=lambda: srv.accept()[0].sendall(b'hi'), daemon=True).start()\n"
            "print(socket.create_connection(srv.getsockname(), timeout=3).recv(2).decode())\n")
    r = run_code(code)
    assert r.isolation == sandbox.NETNS and r.stdout == "hi\n", r


def test_environment_has_no_secrets_and_home_is_inside(monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", "sk-secret")
    code = ("import os\nfor k, v in sorted(os.environ.items()):\n    print(k, v)\n"
            "print('CWD', os.getcwd())\n")
    r = run_code(code)
    assert r.exit_code == 0, r
    assert "sk-secret" not in r.stdout and "TAVILY" not in r.stdout
    env = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert set(env) <= {"PATH", "LANG", "HOME", "TMPDIR", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE",
                        "PYTHONUNBUFFERED", "CWD"}
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
        if r.filesystem == sandbox.READ_ONLY:
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
        assert (r.exit_code, r.stdout, r.isolation) == (0, "hi\n", sandbox.NETNS), r


def test_shell_refused_without_a_network_namespace(monkeypatch):
    monkeypatch.setattr(sandbox, "USE_NAMESPACES", False)
    with pytest.raises(SandboxError, match="cannot run here"):
        run_code("echo hi", "shell", confirmed_shell=True)


def test_python_guard_refuses_starting_programs(monkeypatch):
    monkeypatch.setattr(sandbox, "USE_NAMESPACES", False)
    r = run_code("import subprocess\nsubprocess.run(['echo', 'hi'])\n")
    assert r.isolation == sandbox.PYTHON_GUARD and r.exit_code == 1
    assert "cannot start other programs" in r.stderr and "hi" not in r.stdout


def test_cancel_kills_quickly():
    marker = f"sandbox-cancel-{uuid.uuid4().hex}"
    go: list[float] = []
    code = SPAWN_SLEEPERS.format(marker=marker) + "import time\ntime.sleep(60)\n"
    r = run_code(code, on_output=lambda s, t: go.append(time.monotonic()) if "started" in t else None,
                 cancelled=lambda: bool(go))
    assert go and time.monotonic() - go[0] < 5
    assert r.cancelled and not r.timed_out and r.summary().startswith("stopped: cancelled after")
    if r.isolation == sandbox.NETNS:
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
