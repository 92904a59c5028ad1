"""``python -m app`` from a terminal, as a real subprocess."""

import subprocess
import sys

from app import __version__


def run(*args, home, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "app", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout, **kw)


def test_ask_prints_an_answer(tmp_path):
    r = run("ask", "--greedy", "--max-tokens", "60", "--stats", "What is the capital of France?",
            home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Paris" in r.stdout
    assert "tok/s" in r.stderr


def test_ask_reads_stdin(tmp_path):
    r = run("ask", "--greedy", "--max-tokens", "80", "-", home=tmp_path,
            input="Write a Python function that adds two numbers.")
    assert r.returncode == 0, r.stderr
    assert "def " in r.stdout


def test_bad_model_path_exits_nonzero_with_the_reason(tmp_path, text_as_gguf):
    r = run("ask", "--model", str(text_as_gguf), "hello", home=tmp_path)
    assert r.returncode == 1
    assert str(text_as_gguf) in r.stderr and "not a GGUF model file" in r.stderr
    missing = tmp_path / "missing.gguf"
    r = run("ask", "--model", str(missing), "hello", home=tmp_path)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_version(tmp_path):
    r = run("--version", home=tmp_path)
    assert r.returncode == 0 and __version__ in r.stdout


def test_gui_without_a_display_says_so(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = run(home=tmp_path, env=env)
    assert r.returncode == 1
    assert "No display found" in r.stderr


def test_window_process_starts_and_keeps_running(tmp_path):
    """`python -m app` as a user starts it: it must come up and stay up (offscreen here)."""
    import os
    import time
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    p = subprocess.Popen([sys.executable, "-m", "app", "--home", str(tmp_path)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        db = tmp_path / "data" / "app.db"
        while not db.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.1)
        time.sleep(2)  # long enough to load the model and paint
        assert p.poll() is None, p.communicate()[1]
        assert db.exists()
    finally:
        p.terminate()
        p.wait(10)
