"""Settings → Local API in the real window: the dialog turns the API on and off, the editor's
request (plain HTTP on 127.0.0.1 with the key) is answered by the window's starter model, and
a window answer asked while an API request holds the model waits for it, then completes."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from PySide6.QtCore import QTimer, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit

from app.core.api.gate import WINDOW
from app.core.api.keys import ENV_KEY, KEY_NAME
from app.core.secrets import SERVICE
from app.core.settings import Settings
from app.ui.features.api.feature import ApiFeature
from tests.support.gui import LONG_PROMPT, close_window, open_window, wait_loaded

pytestmark = pytest.mark.gui


def api_feature(w) -> ApiFeature:
    """The window's API room (Settings → Local API…)."""
    return w.features.api


def settled(qtbot, feature: ApiFeature) -> None:
    """The start or stop the click began (on a worker) has ended."""
    qtbot.waitUntil(lambda: not feature.busy, timeout=60_000)


def ask(port: int, key: str, content: str, max_tokens: int) -> tuple[int, dict]:
    body = json.dumps({"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
                       "temperature": 0}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", body,
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, json.loads(r.read())


def test_api_from_the_dialog_serves_the_window_model_and_shares_it_fairly(qtbot, app_home, memory_keyring,
                                                                          monkeypatch):
    monkeypatch.delenv(ENV_KEY, raising=False)
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=40)
    feature = api_feature(w)
    wait_loaded(qtbot, w)
    assert not feature.running and not feature.label.isVisible()  # off by default
    dialog = feature.show()
    assert not dialog.enabled.isChecked()

    # A port in use: the message in the dialog, nothing listens, nothing is kept on.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    dialog.port.selectAll()
    qtbot.keyClicks(dialog.port, str(busy))
    assert dialog.port.value() == busy
    qtbot.mouseClick(dialog.enabled, Qt.LeftButton)
    settled(qtbot, feature)
    assert not feature.running and not dialog.enabled.isChecked()
    assert dialog.error.isVisible() and f"Port {busy}" in dialog.error.text() and "in use" in dialog.error.text()
    assert Settings.load(w.ctx.paths.settings_file).api_enabled is False
    taken.close()

    # A free port (0: the default one or any free one): on, kept in settings, the addresses shown.
    dialog.port.selectAll()
    qtbot.keyClick(dialog.port, Qt.Key_0)
    qtbot.mouseClick(dialog.enabled, Qt.LeftButton)
    settled(qtbot, feature)
    assert feature.running and dialog.enabled.isChecked() and not dialog.error.isVisible()
    port = feature.server.port
    assert f"http://127.0.0.1:{port}/v1" in dialog.addresses.text()
    saved = Settings.load(w.ctx.paths.settings_file)
    assert saved.api_enabled is True and saved.api_port == 0
    qtbot.mouseClick(dialog.show_key, Qt.LeftButton)
    assert dialog.key.echoMode() == QLineEdit.Normal
    key = dialog.key.text()
    assert key.startswith("oc-") and memory_keyring.get_password(SERVICE, KEY_NAME) == key  # kept there only
    qtbot.mouseClick(dialog.copy_key, Qt.LeftButton)
    assert QGuiApplication.clipboard().text() == key

    # The editor's request: answered by the window's starter model, counted in the status bar,
    # listed in the Network panel.
    status, body = ask(port, key, "What is the capital of France?", 16)
    assert status == 200 and body["choices"][0]["message"]["content"].strip()
    assert body["model"] == w.engine_service.model.name
    qtbot.waitUntil(lambda: feature.label.text() == f"API on 127.0.0.1:{port} · 1 request", timeout=5_000)
    assert feature.label.isVisible()
    qtbot.waitUntil(lambda: any("API client" in " ".join(r) for r in w.features.network.panel.rows()),
                    timeout=5_000)
    with pytest.raises(urllib.error.HTTPError) as refused:  # a wrong key is refused
        ask(port, "oc-wrong-key-0123456789", "hi", 4)
    assert refused.value.code == 401

    # A window answer while an API generation holds the model: it waits, then completes.
    gate = w.engine_service.gate
    api_result: dict = {}
    t = threading.Thread(target=lambda: api_result.update(r=ask(port, key, LONG_PROMPT, 200)), daemon=True)
    t.start()
    qtbot.waitUntil(lambda: (gate.holder() or "").startswith("API"), timeout=30_000)
    panel = w.features.chat.panel
    qtbot.keyClicks(panel.input, "What is the capital of France?")
    with qtbot.waitSignal(w.features.chat.answer_finished, timeout=90_000) as finished:
        qtbot.keyClick(panel.input, Qt.Key_Return, Qt.ControlModifier)
        assert not panel.error.isVisible()  # not refused ("already generating")
        qtbot.waitUntil(lambda: gate.waiting(WINDOW) == 1 or not t.is_alive(), timeout=10_000)
        assert t.is_alive(), "the API request ended before the window answer could be seen waiting"
    t.join(60)
    assert api_result["r"][0] == 200 and api_result["r"][1]["usage"]["completion_tokens"] > 0
    result = finished.args[0]
    assert not result.cancelled and result.text.strip() and not panel.error.isVisible()
    # (the refused one counts too: every request is on the record)
    qtbot.waitUntil(lambda: feature.label.text().endswith("· 3 requests"), timeout=5_000)

    # 100 requests at once: the queue limit holds (the rest are told to come back), every one is
    # answered, and the window's event loop keeps running meanwhile (typing reaches the input).
    codes: list[int] = []

    def one() -> None:
        try:
            codes.append(ask(port, key, "Say hi", 8)[0])
        except urllib.error.HTTPError as e:
            codes.append(e.code)

    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    burst = [threading.Thread(target=one, daemon=True) for _ in range(100)]
    for t in burst:
        t.start()
    panel.input.clear()
    qtbot.keyClicks(panel.input, "still typing")
    qtbot.waitUntil(lambda: len(codes) == 100, timeout=120_000)
    timer.stop()
    assert panel.input.toPlainText() == "still typing"
    assert set(codes) <= {200, 429} and codes.count(200) >= 5 and codes.count(429) >= 1  # 1 answering + 4 waiting
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    # a liveness bound, not a speed figure: a blocked GUI thread would show a gap of seconds
    assert len(ticks) > 10 and max(gaps) < 2.0, max(gaps)
    qtbot.waitUntil(lambda: feature.label.text().endswith("· 103 requests"), timeout=10_000)
    panel.input.clear()

    # Off from the dialog: the port is closed, the label gone, the choice kept.
    qtbot.mouseClick(dialog.enabled, Qt.LeftButton)
    settled(qtbot, feature)
    assert not feature.running and not feature.label.isVisible()
    with pytest.raises(urllib.error.URLError) as off:
        ask(port, key, "hi", 4)
    assert isinstance(off.value.reason, ConnectionRefusedError)
    assert Settings.load(w.ctx.paths.settings_file).api_enabled is False
    close_window(w)


def test_the_completion_model_chosen_in_the_dialog_loads_beside_the_chat_model(qtbot, app_home, memory_keyring,
                                                                               starter_path):
    """The Models folder holds the completion model (a link to the starter file under the base
    model's file name stands in for the 1.5 GB download); chosen in the dialog while the API is
    on, the API starts again on a worker with it: /v1/models lists both, completions go to it,
    chat to the window's model; choosing none closes it."""
    from app.core.models.catalog import QWEN_1_5B_BASE
    from app.core.models.registry import InstalledModel, ModelRegistry
    from app.core.paths import app_paths

    link = app_home / "elsewhere" / QWEN_1_5B_BASE.filename
    link.parent.mkdir(parents=True)
    link.symlink_to(starter_path)
    ModelRegistry(app_paths(app_home).models_dir).add(InstalledModel(
        QWEN_1_5B_BASE.id, QWEN_1_5B_BASE.name, str(link), starter_path.stat().st_size, "link",
        catalog_id=QWEN_1_5B_BASE.id))
    w = open_window(qtbot, app_home, temperature=0.0, max_tokens=40)
    feature = api_feature(w)
    wait_loaded(qtbot, w)
    dialog = feature.show()
    assert [dialog.completion.itemText(i) for i in range(dialog.completion.count())] == [
        "None: the chat model completes code", QWEN_1_5B_BASE.name]
    qtbot.mouseClick(dialog.enabled, Qt.LeftButton)
    settled(qtbot, feature)
    assert feature.running and feature.run.completion is None
    port = feature.server.port

    # Chosen: the API starts again with it, the window stays live while the model loads.
    dialog.completion.setFocus()
    qtbot.keyClick(dialog.completion, Qt.Key_Down)  # QComboBox: the arrow key picks the next item
    assert feature.busy and not dialog.enabled.isEnabled() and "Starting" in dialog.addresses.text()
    settled(qtbot, feature)
    assert Settings.load(w.ctx.paths.settings_file).api_completion_model == QWEN_1_5B_BASE.id
    assert feature.running and feature.run.completion is not None
    assert "Completion by" in dialog.completion_note.text() and "fits beside" in dialog.completion_note.text()
    port = feature.server.port
    key = dialog.key.text()

    def get(path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode() if body else None,
                                     {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    chat_name = w.engine_service.model.name
    assert [m["id"] for m in get("/v1/models")["data"]] == [chat_name, link.stem]
    done = get("/v1/completions", {"prompt": "def add(a, b):", "suffix": "\n", "max_tokens": 4})
    assert done["model"] == link.stem
    assert ask(port, key, "Hi", 4)[1]["model"] == chat_name

    # None again: the API starts without it, and the second model is closed.
    engine = feature.run.completion.engine
    qtbot.keyClick(dialog.completion, Qt.Key_Up)
    settled(qtbot, feature)
    assert feature.running and feature.run.completion is None and engine.closed
    assert [m["id"] for m in get("/v1/models")["data"]] == [chat_name]
    close_window(w)
