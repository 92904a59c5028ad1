"""API keys live only in the OS keyring: a key round-trips through a real keyring backend
(in memory: headless Linux has none), never reaches a file the app writes, and with keyring's
"fail" backend the Keys dialog says so and stores nothing."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.core import secrets

SECRET = "tvly-THIS-IS-A-SECRET-9f8e7d"


def test_key_round_trips_through_the_keyring(memory_keyring):
    secrets.set_key("tavily", f"  {SECRET}\n")
    assert secrets.get_key("tavily") == SECRET
    assert memory_keyring.store == {(secrets.SERVICE, "tavily"): SECRET}
    assert secrets.redact(f"request failed with key {SECRET}!") == "request failed with key <tavily key removed>!"
    secrets.delete_key("tavily")
    assert secrets.get_key("tavily") is None


def test_no_keyring_refuses_and_writes_nothing(no_keyring, tmp_path):
    st = secrets.status()
    assert not st.usable and "No secure key store" in st.message
    with pytest.raises(secrets.KeyringUnavailable, match="never written in plain text"):
        secrets.set_key("tavily", SECRET)
    assert secrets.get_key("tavily") is None


@pytest.mark.gui
def test_keys_dialog_stores_in_the_keyring_and_nowhere_else(qtbot, app_home, memory_keyring, tmp_path):
    from app.core.net.audit import LOG
    from app.core.paths import app_paths
    from app.ui.main_window import AppContext, MainWindow

    ctx = AppContext.open(app_paths(app_home))
    w = MainWindow(ctx)
    qtbot.addWidget(w)
    try:
        d = w.features.keys.show()
        assert "test memory keyring" in d.status.text()
        d.fields["tavily"].setText(SECRET)
        with qtbot.waitSignal(d.key_saved):
            qtbot.mouseClick(d.save_buttons["tavily"], Qt.LeftButton)
        assert d.fields["tavily"].text() == ""
        assert "stored" in d.fields["tavily"].placeholderText()
        assert secrets.get_key("tavily") == SECRET
        d.provider.setCurrentIndex(1)
        assert ctx.settings.search_provider == "tavily"
        w.features.network.export_log(str(tmp_path / "network.csv"))
        qtbot.waitUntil(lambda: w.engine is not None, timeout=30_000)
        with qtbot.waitSignal(w.features.chat.answer_finished, timeout=60_000):
            w.features.chat.send("hello")
    finally:
        w.close()
        ctx.storage.close()
    written = [p for p in list(app_home.rglob("*")) + [tmp_path / "network.csv"] if p.is_file()]
    assert any(p.name == "settings.toml" for p in written)
    leaks = [str(p) for p in written if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    assert all(SECRET not in str(e) for e in LOG.events())


@pytest.mark.gui
def test_keys_dialog_without_a_keyring_says_so(qtbot, no_keyring):
    from app.ui.features.keys.keys_dialog import KeysDialog

    d = KeysDialog("duckduckgo")
    qtbot.addWidget(d)
    assert "No secure key store" in d.status.text()
    assert not d.fields["tavily"].isEnabled() and not d.save_buttons["tavily"].isEnabled()
    d.fields["tavily"].setText(SECRET)
    d.save("tavily")  # even if reached, nothing is stored and the reason shows
    assert not d.error.isHidden() and "plain text" in d.error.text()


CRASHING_CHILD = r'''
import sys, threading
import keyring
from tests.support.memory_keyring import MemoryKeyring
from app.core import secrets
from app.core.logs import install_crash_handler, log, setup_logging

keyring.set_keyring(MemoryKeyring())
secrets.set_key("tavily", SECRET)
logs = sys.argv[1]
setup_logging(__import__("pathlib").Path(logs))
log.warning("provider said: bad key %s", SECRET)
install_crash_handler(__import__("pathlib").Path(logs))
t = threading.Thread(target=lambda: (_ for _ in ()).throw(RuntimeError("thread failed with " + SECRET)))
t.start(); t.join()
raise ValueError("request to https://api.example/?key=" + SECRET + " failed")
'''


def test_keys_never_reach_the_log_or_crash_reports(tmp_path):
    """A real crash (main thread and a worker thread) in a child process that holds a key."""
    import subprocess
    import sys
    from pathlib import Path

    logs = tmp_path / "logs"
    code = f"SECRET = {SECRET!r}\n" + CRASHING_CHILD
    proc = subprocess.run([sys.executable, "-c", code, str(logs)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], timeout=60)
    assert proc.returncode == 1 and "ValueError" in proc.stderr  # the previous hook still prints
    reports = sorted(logs.glob("crash-*.txt"))
    assert len(reports) == 2
    texts = [p.read_text() for p in reports] + [(logs / "offline-coder.log").read_text()]
    assert all(SECRET not in t for t in texts)
    joined = "\n".join(texts)
    assert "thread failed with <tavily key removed>" in joined
    assert "key=<tavily key removed> failed" in joined and "bad key <tavily key removed>" in joined
    assert "unhandled ValueError in the main thread" in joined
