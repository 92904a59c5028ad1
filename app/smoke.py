"""Smoke mode (``OFFLINE_CODER_SMOKE=1``): the packaging checks and the startup benchmark start
the real app and watch stdout.

With the variable set, ``python -m app`` (or the bundle) opens its window as always and then
prints, each as one line as it happens:

    smoke: window shown                       (its first paint)
    smoke: model ready <model name>           (or: smoke: model failed <why>)
    smoke: firewall <what the firewall job reported>   (Linux, where the app manages it)
    smoke: closing

then closes the window the way the window manager's close button does (``QWidget.close`` ->
``closeEvent``: jobs cancelled, engine closed, index released) and the app exits through its
ordinary path. The exit status is 0 only if the model loaded (3 if not). Nothing else changes.

``OFFLINE_CODER_SMOKE=full`` also runs ``check_bundle()`` before closing (a bundle that misses
a module fails there, not when a user first searches the web):

    smoke: checked <n> app modules, <k> grammars, web extraction, search engine, keyring
    smoke: problem <what>                     (one line each; exit status 4)
"""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QEvent, QObject, QTimer

ENV = "OFFLINE_CODER_SMOKE"
TIMEOUT_S = 300  # a model that has not loaded by then counts as failed


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


PAGE = (b"<html><head><title>Smoke page</title></head><body><nav>Home | About</nav><article>"
        b"<h1>Reading files</h1><p>Open the file with a context manager so it is closed even when "
        b"an exception is raised; the with statement does that for any object with __enter__.</p>"
        b"<pre><code>with open(path) as f:\n    data = f.read()</code></pre></article>"
        b"<footer>Copyright</footer></body></html>")


def check_bundle() -> tuple[str, list[str]]:
    """Import every module of the app and use each library it imports only on first use (the
    grammar wheels, trafilatura with its data files, ddgs/primp, keyring's backends)."""
    import importlib
    import pkgutil

    import app

    problems: list[str] = []
    modules = 0
    for m in pkgutil.walk_packages(app.__path__, "app."):
        if m.name in ("app.__main__", __name__):
            continue
        try:
            importlib.import_module(m.name)
            modules += 1
        except Exception as e:  # noqa: BLE001 (each failure is reported)
            problems.append(f"import {m.name}: {e!r}")
    from app.core.index import grammars
    missing = [lang for lang in grammars.GRAMMARS if grammars.parser_for(lang) is None]
    problems += [f"no tree-sitter grammar for {lang}" for lang in missing]
    try:
        from app.core.web.pages import extract_text
        text, title = extract_text(PAGE, "utf-8", "text/html", "https://example.org/smoke")
        if "context manager" not in text or "Copyright" in text or not title:
            problems.append(f"trafilatura extracted {text!r} titled {title!r}")
    except Exception as e:  # noqa: BLE001
        problems.append(f"web page extraction: {e!r}")
    try:
        from app.core.web.search import engine_class
        engine_class()("http://127.0.0.1:9/", 5.0)  # builds primp's client; sends nothing
    except Exception as e:  # noqa: BLE001
        problems.append(f"search engine: {e!r}")
    try:
        import keyring
        keyring.get_keyring()
    except Exception as e:  # noqa: BLE001
        problems.append(f"keyring: {e!r}")
    n_grammars = len(grammars.GRAMMARS) - len(missing)
    return f"{modules} app modules, {n_grammars} grammars, web extraction, search engine, keyring", problems


_OUT: list = []  # our own copy of stdout (keep_stdout)


def keep_stdout() -> None:
    """Take a private duplicate of stdout before any model loads: llama-cpp-python points file
    descriptors 1 and 2 at /dev/null while a model loads (process-wide, from the loading thread),
    and a line the GUI thread printed meanwhile was lost (the .deb smoke test missed its
    "firewall" line about one run in four)."""
    if not _OUT:
        try:
            _OUT.append(os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8"))
        except OSError:  # no stdout to copy: the ordinary one, then
            pass


def say(text: str) -> None:
    print(f"smoke: {text}", file=_OUT[0] if _OUT else None, flush=True)


def attach(app, window) -> None:
    """Watch ``window`` (already shown) and close it once the model and the firewall job are done."""
    state = {"model": None, "firewall": window.ctx.firewall is None, "closing": False, "shown": False}
    started = time.monotonic()

    def maybe_close() -> None:
        if state["closing"] or state["model"] is None or not state["firewall"] or not state["shown"]:
            return
        state["closing"] = True
        code = 0 if state["model"] == "ready" else 3
        if os.environ.get(ENV) == "full":
            summary, problems = check_bundle()
            say(f"checked {summary}")
            for p in problems:
                say(f"problem {p}")
            code = code or (4 if problems else 0)
        say("closing")
        if code:
            app.setQuitOnLastWindowClosed(False)
            window.close()
            app.exit(code)
        else:
            window.close()

    def model_ready(*_loaded) -> None:
        if state["model"] is None:
            state["model"] = "ready"
            say(f"model ready {window.engine_service.model.name if window.engine_service.model else '?'}")
            maybe_close()

    def firewall(status) -> None:
        if not state["firewall"]:
            state["firewall"] = True
            say(f"firewall {getattr(status, 'detail', None) or f'error: {status}'}")
            maybe_close()

    def load_failed(message: str) -> None:
        # The window's signal, not the job's: a job that fails at once may have emitted before
        # this module connected to it, while the window's own slot always runs (it was connected
        # before the job started) and emits model_failed only when no fallback load follows.
        if state["model"] is None:
            state["model"] = "failed"
            say(f"model failed {message}")
            maybe_close()

    def poll() -> None:
        if time.monotonic() - started > TIMEOUT_S:
            state["model"] = state["model"] or "failed"
            state["firewall"] = state["shown"] = True
            say("timed out")
            maybe_close()

    window.engine_service.loaded.connect(model_ready)
    window.engine_service.failed.connect(load_failed)
    window.features.network.firewall_changed.connect(firewall)
    if window.engine is not None:
        model_ready()
    timer = QTimer(window)
    timer.setInterval(1000)
    timer.timeout.connect(poll)
    timer.start()
    def shown() -> None:  # a model that fails at once must not close the window before it is drawn
        state["shown"] = True
        maybe_close()

    _ALIVE.append(_FirstPaint(window, shown))  # the Python side must live as long as the filter


_ALIVE: list = []


class _FirstPaint(QObject):
    """Says "window shown" at the window's first paint: it is on screen, laid out and drawn."""

    def __init__(self, window, on_shown):
        super().__init__(window)
        self.window, self.on_shown = window, on_shown
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if obj is self.window and event.type() == QEvent.Paint:
            self.window.removeEventFilter(self)
            say("window shown")
            QTimer.singleShot(0, self.on_shown)  # after this paint has finished
        return False
