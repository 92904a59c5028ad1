"""Shared fixtures. Everything is real: the real starter model through llama.cpp, real
SQLite files under a temporary home, a real Qt window on the offscreen platform."""

from __future__ import annotations

import os

# Before anything imports Qt: no display is needed, and none is assumed.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess  # noqa: E402

import pytest  # noqa: E402

from app.core.engine import Engine, EngineConfig  # noqa: E402
from app.core.models.embedded import starter_model  # noqa: E402

# A prompt the 135M starter model answers reliably and briefly.
CAPITAL_PROMPT = [{"role": "user", "content": "What is the capital of France?"}]


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true",
                     help="run the property tests with many more examples (tests/support/fuzz.py)")


def pytest_configure(config):
    if config.getoption("--fuzz-long"):
        os.environ["OFFLINE_CODER_FUZZ_LONG"] = "1"  # read when tests/support/fuzz.py is imported


def pytest_terminal_summary(terminalreporter):
    """One line per fuzzed input surface: examples tried, and how many got a user message."""
    import sys

    fuzz = sys.modules.get("tests.support.fuzz")
    if fuzz is None or not fuzz.TALLY:
        return
    terminalreporter.section("fuzz: examples tried per input surface")
    for name, n in sorted(fuzz.TALLY.items()):
        terminalreporter.write_line(f"{name}: {n} examples, {fuzz.REFUSED.get(name, 0)} refused with a message")


@pytest.fixture(scope="session")
def starter_path():
    return starter_model().path


@pytest.fixture(scope="session")
def engine(starter_path):
    e = Engine(starter_path, EngineConfig(n_ctx=2048))
    yield e
    e.close()


@pytest.fixture
def app_home(tmp_path, monkeypatch):
    """A private OFFLINE_CODER_HOME so no test touches the real profile."""
    home = tmp_path / "home"
    monkeypatch.setenv("OFFLINE_CODER_HOME", str(home))
    return home


@pytest.fixture
def truncated_gguf(tmp_path, starter_path):
    """The real starter model cut off after 40% of its bytes, like a killed download."""
    p = tmp_path / "half-downloaded.gguf"
    with open(starter_path, "rb") as src, open(p, "wb") as dst:
        dst.write(src.read(int(starter_path.stat().st_size * 0.4)))
    return p


@pytest.fixture
def text_as_gguf(tmp_path):
    p = tmp_path / "notes.gguf"
    p.write_text("These are my notes, not a model.\n" * 20)
    return p


@pytest.fixture(autouse=True)
def _online_policy_by_default():
    """Offline mode is process-wide state; each test starts online unless it turns it on."""
    from app.core.net import policy
    policy.set_offline(False)
    yield
    policy.set_offline(False)


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs("64k")`` mounts a small RAM disk of that size (for full-disk tests; root only,
    which CI is) and unmounts it after the test."""
    mounted = []

    def mount(size: str):
        mnt = tmp_path / f"tmpfs{len(mounted)}"
        mnt.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"needs root to mount a small tmpfs (CI is root): {r.stderr.decode().strip()}")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def memory_keyring():
    """A real keyring backend in memory (headless Linux has none usable; tests never touch a real one)."""
    import keyring

    from tests.support.memory_keyring import MemoryKeyring
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring():
    """keyring's own "fail" backend: what a machine without a key store has."""
    import keyring
    from keyring.backends import fail
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)
