"""The conversation as rich text: finished messages cached as HTML, the streaming one
re-rendered at most every RENDER_INTERVAL_MS so a fast model cannot flood the GUI thread.

Every stored answer has 👍/👎 links (``rate:<message id>:<value>``) and shows its rating; a
click emits ``rated``, the window stores it and calls ``set_rating`` with what was stored.
Under an answer, "↻ Regenerate" (``regen:<id>``); under a question, "✎ Edit" (``edit:<id>``);
under either with other versions, "◀ 2/3 ▶" (``version:<id>:<-1|1>``). Each link only emits a
signal: the chat feature decides."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QTextBrowser

from app.core.chat.render import CITE_SCHEME, COPY_SCHEME, RUN_SCHEME, current_theme, render_markdown
from app.core.storage import Rating

RENDER_INTERVAL_MS = 50
ROLE_LABEL = {"user": "You", "assistant": "Assistant", "system": "System", "output": "Output"}
ROLE_COLOR = {"user": "#1f5fbf", "assistant": "#2b7a3d", "system": "#777", "output": "#8a5a00"}
ROLE_COLOR_DARK = {"user": "#79b8ff", "assistant": "#7ee787", "system": "#9da7b3", "output": "#e3b341"}


def role_color(role: str) -> str:
    """The role's colour on the palette in use (readable on a dark window too)."""
    return (ROLE_COLOR_DARK if current_theme().name == "dark" else ROLE_COLOR).get(role, current_theme().muted)
RATE_SCHEME = "rate"
REGEN_SCHEME, EDIT_SCHEME, VERSION_SCHEME = "regen", "edit", "version"
FONT_RANGE = (7.0, 32.0)
RATING_WORDS = {"user": {1: "rated up", -1: "rated down"}, "applied": {1: "changes applied"},
                "rejected": {-1: "changes discarded"}}


@dataclass
class _Entry:
    role: str
    text: str
    note: str = ""
    sources: list[str] = field(default_factory=list)  # citations of the project code shown to the model
    message_id: int | None = None  # a stored answer that can be rated (None: no thumbs)
    rating: Rating | None = None
    ref: int | None = None  # the stored message (for Edit, Regenerate and versions)
    versions: tuple[int, int] | None = None  # (n, of m) when it has other versions
    can_edit: bool = False
    can_regenerate: bool = False
    editing: bool = False  # the question being edited in the input box
    html: str = ""
    blocks: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)


Entry = _Entry  # what set_messages takes besides the short tuples


class ChatView(QTextBrowser):
    copied = Signal(str)  # the code that went to the clipboard
    citation_clicked = Signal(str)  # "path:start-end" of a clicked citation
    run_requested = Signal(str, str)  # code, fence language of a clicked Run link
    rated = Signal(int, int)  # message id, +1 / -1 / 0 (a click on the lit thumb clears it)
    reading_shown = Signal(str)  # the "Reading your question…" line shown while the prompt is read
    regenerate_requested = Signal(int)  # answer id
    edit_requested = Signal(int)  # question id
    version_requested = Signal(int, int)  # message id, -1 (earlier) / +1 (later)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._on_anchor)
        self._entries: list[_Entry] = []
        self._stream: _Entry | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RENDER_INTERVAL_MS)
        self._timer.timeout.connect(self._refresh)

    # ---- content ---------------------------------------------------------------------------
    def set_messages(self, messages: list) -> None:
        """Replace everything with ``Entry``s or (role, text, note[, sources[, message_id[, rating]]])
        tuples."""
        self._stream = None
        self._entries = [m if isinstance(m, _Entry) else _Entry(*m) for m in messages]
        self._refresh()

    def add_message(self, role: str, text: str, note: str = "", ref: int | None = None,
                    can_edit: bool = False) -> None:
        self._entries.append(_Entry(role, text, note, ref=ref, can_edit=can_edit))
        self._refresh()

    def set_editing(self, ref: int | None) -> None:
        """Mark the question being edited (None: none)."""
        for e in self._entries:
            if e.editing != (e.ref == ref and ref is not None):
                e.editing, e.html = not e.editing, ""
        self._refresh()

    def set_font_size(self, points: float) -> float:
        """The chat's text size, within FONT_RANGE; returns the size set."""
        points = min(max(points, FONT_RANGE[0]), FONT_RANGE[1])
        font = self.font()
        font.setPointSizeF(points)
        self.setFont(font)
        self.document().setDefaultFont(font)
        self._refresh()
        return points

    def font_size(self) -> float:
        return self.font().pointSizeF()

    def entries(self) -> list[_Entry]:
        """What is shown, in order (the streaming answer included)."""
        return list(self._entries)

    def begin_stream(self, role: str = "assistant") -> None:
        self._stream = _Entry(role, "")
        self._entries.append(self._stream)
        self._refresh()

    def show_reading(self, text: str) -> None:
        """While the model reads the prompt: the line where the answer will appear."""
        if self._stream is None or self._stream.text:
            return
        self._stream.note, self._stream.html = text, ""
        self.reading_shown.emit(text)
        if not self._timer.isActive():
            self._timer.start()

    @property
    def reading_text(self) -> str:
        return self._stream.note if self._stream is not None and not self._stream.text else ""

    def append_stream(self, piece: str) -> None:
        if self._stream is None:
            return
        if not self._stream.text:
            self._stream.note = ""  # reading is over: the answer itself takes the place
        self._stream.text += piece
        self._stream.html = ""
        if not self._timer.isActive():
            self._timer.start()

    def end_stream(self, note: str = "", sources: list[str] | None = None, message_id: int | None = None,
                   versions: tuple[int, int] | None = None, can_regenerate: bool = False) -> None:
        """Finish the streaming message; ``message_id`` (the stored answer) adds the thumbs,
        ``can_regenerate`` the Regenerate link, ``versions`` the "◀ n/m ▶" switch."""
        if self._stream is None:
            return
        self._stream.note = note
        self._stream.sources = list(sources or [])
        self._stream.message_id = message_id
        self._stream.ref = message_id
        self._stream.versions = versions
        self._stream.can_regenerate = can_regenerate and message_id is not None
        self._stream.html = ""
        if not self._stream.text:
            self._entries.remove(self._stream)
        self._stream = None
        self._timer.stop()
        self._refresh()

    def set_rating(self, message_id: int, rating: Rating) -> None:
        for e in self._entries:
            if e.message_id == message_id:
                e.rating, e.html = rating, ""
                self._refresh()
                return

    def rating_of(self, message_id: int) -> Rating | None:
        """The rating shown on an answer (None: no such answer in view)."""
        return next(((e.rating or Rating()) for e in self._entries if e.message_id == message_id), None)

    @property
    def streaming_text(self) -> str:
        return self._stream.text if self._stream else ""

    def code_blocks(self) -> list[str]:
        return [b for e in self._entries for b in e.blocks]

    def code_languages(self) -> list[str]:
        return [lang for e in self._entries for lang in (e.languages or [""] * len(e.blocks))]

    # ---- rendering -------------------------------------------------------------------------
    def _render_entry(self, e: _Entry, first_block: int) -> None:
        label = ROLE_LABEL.get(e.role, e.role)
        color = role_color(e.role)
        if e.role == "assistant":
            r = render_markdown(e.text or "…", first_block)
            body, e.blocks, e.languages = r.html, r.code_blocks, r.languages
        elif e.role == "output":  # what sandboxed code printed: verbatim, monospace
            body = f'<pre style="margin:0; font-family: monospace;">{html.escape(e.text or "…")}</pre>'
            e.blocks, e.languages = [], []
        else:
            body = "<p>" + html.escape(e.text).replace("\n", "<br>") + "</p>"
            e.blocks = []
        note = f' <span style="color:{current_theme().muted}; font-weight:normal;">{html.escape(e.note)}</span>' if e.note else ""
        if e.editing:
            note += ' <span style="color:#b35c00;">editing: Ctrl+Enter sends the new version, Esc cancels</span>'
        if e.sources:
            links = " · ".join(_source_link(c) for c in e.sources)
            body += f'<p style="color:{current_theme().muted};">Sources: {links}</p>'
        if e.role == "assistant" and e.message_id is not None:
            body += _rating_html(e.message_id, e.rating or Rating(), _branch_links(e))
        elif e.role in ("user", "assistant") and (links := _branch_links(e)):
            body += f'<p style="color:{current_theme().muted}; margin-top:2px;">{links}</p>'
        e.html = f'<p style="margin-top:12px;"><b style="color:{color};">{label}</b>{note}</p>{body}'

    def _refresh(self) -> None:
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        n = 0
        parts = []
        for e in self._entries:
            if not e.html:
                self._render_entry(e, n)
            n += len(e.blocks)
            parts.append(e.html)
        self.setHtml("".join(parts))
        if at_bottom:
            bar.setValue(bar.maximum())

    def _on_anchor(self, url: QUrl) -> None:
        scheme, path = url.scheme(), url.path()
        try:
            if scheme == RATE_SCHEME:
                mid, value = path.split(":")
                return self.rated.emit(int(mid), int(value))
            if scheme == VERSION_SCHEME:
                mid, step = path.split(":")
                return self.version_requested.emit(int(mid), int(step))
            if scheme == REGEN_SCHEME:
                return self.regenerate_requested.emit(int(path))
            if scheme == EDIT_SCHEME:
                return self.edit_requested.emit(int(path))
        except ValueError:
            return
        if url.scheme() == CITE_SCHEME:
            self.citation_clicked.emit(url.toString()[len(CITE_SCHEME) + 1:])
            return
        if url.scheme() in ("http", "https"):
            QDesktopServices.openUrl(url)  # a link the user clicked: their browser, not the app
            return
        if url.scheme() == RUN_SCHEME:
            try:
                n = int(url.path())
                self.run_requested.emit(self.code_blocks()[n], self.code_languages()[n])
            except (ValueError, IndexError):
                pass
            return
        if url.scheme() == COPY_SCHEME:
            try:
                code = self.code_blocks()[int(url.path())]
            except (ValueError, IndexError):
                return
            QGuiApplication.clipboard().setText(code)
            self.copied.emit(code)


def _branch_links(e: _Entry) -> str:
    """"✎ Edit" or "↻ Regenerate", and "◀ 2/3 ▶" when the message has other versions."""
    parts = []
    if e.ref is not None and e.versions and e.versions[1] > 1:
        n, m = e.versions
        back = f'<a href="{VERSION_SCHEME}:{e.ref}:-1" style="text-decoration:none;">◀</a>' if n > 1 else "◀"
        on = f'<a href="{VERSION_SCHEME}:{e.ref}:1" style="text-decoration:none;">▶</a>' if n < m else "▶"
        parts.append(f"{back} {n}/{m} {on}")
    if e.ref is not None and e.can_edit:
        parts.append(f'<a href="{EDIT_SCHEME}:{e.ref}" style="text-decoration:none;">✎ Edit</a>')
    if e.ref is not None and e.can_regenerate:
        parts.append(f'<a href="{REGEN_SCHEME}:{e.ref}" style="text-decoration:none;">↻ Regenerate</a>')
    return " &nbsp;".join(parts)


def _rating_html(message_id: int, r: Rating, extra: str = "") -> str:
    """👍 👎 under an answer: the user's choice highlighted (a click on it clears it), and the
    rating in words (the user's, else the implicit one from applied or discarded changes)."""
    def thumb(value: int, label: str) -> str:
        on = r.user == value  # (a word beside the emoji: not every desktop has an emoji font)
        style = "text-decoration:none; font-weight:bold; background:#cfe8d4;" if on else "text-decoration:none;"
        return f'<a href="{RATE_SCHEME}:{message_id}:{0 if on else value}" style="{style}">{label}</a>'
    words = RATING_WORDS.get(r.source, {}).get(r.value, "")
    said = f' · <span style="color:#555;">{words}</span>' if words else ""
    extra = f" &nbsp;· {extra}" if extra else ""
    return f'<p style="color:{current_theme().muted}; margin-top:2px;">{thumb(1, "👍 Good")} &nbsp;{thumb(-1, "👎 Bad")}{said}{extra}</p>'


def _source_link(source: str) -> str:
    """A project citation opens the lines in the Project panel; a web source opens the browser."""
    if source.startswith(("http://", "https://")):
        host = source.split("/")[2]
        return f'<a href="{html.escape(source)}">{html.escape(host)}</a>'
    return f'<a href="{CITE_SCHEME}:{html.escape(source)}">{html.escape(source)}</a>'
