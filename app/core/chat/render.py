"""Markdown answers to HTML for the chat view, with highlighted code blocks.

Kept out of the UI (it needs no Qt) so it is testable on its own. Qt's rich-text engine
understands only a subset of HTML/CSS, hence inline styles and a table per code block.
Each code block gets a ``copy:N`` link; the view maps it back to ``code_blocks[N]``.
Citations of project code (``path:start-end``, in inline code or plain text) become
``cite:`` links; the view shows those lines when one is clicked.

Colours follow the window's palette (``set_theme``): a light and a dark ``Theme``, each with a
pygments style whose every colour is made readable (WCAG contrast of at least 4.5:1) on the
backgrounds it is drawn on, code blocks and diff lines alike, because a style picked by eye
had purple decorators at 4.2:1 on the red of a removed line.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.style import Style
from pygments.styles import get_style_by_name
from pygments.token import Whitespace
from pygments.util import ClassNotFound

from app.core.run.sandbox import language_of

COPY_SCHEME = "copy"
RUN_SCHEME = "run"  # run:N runs code_blocks[N] in the sandbox (Python, or shell after a confirmation)
CITE_SCHEME = "cite"
# path:12 or path:12-30, where path has a folder or an extension (so "10:30" is no citation)
CITATION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.[A-Za-z0-9]+|(?:[\w.-]+/)+[\w.-]+):(\d+)(?:-(\d+))?(?![\w-])")
MIN_CONTRAST = 4.5  # WCAG AA for normal text


@dataclass(frozen=True)
class Theme:
    """The colours of code and diffs on one palette (every text colour on every background
    here at least MIN_CONTRAST: tests/core/test_theme.py)."""

    name: str
    style: str       # the pygments style, made readable by ``code_style``
    code_bg: str
    code_fg: str     # code text the style leaves uncoloured
    header_bg: str   # the bar above a code block (language, Copy, Run)
    header_fg: str
    muted: str       # line numbers
    add_bg: str      # diff lines: added, removed, the hunk's title, a rejected hunk's lines
    del_bg: str
    hunk_bg: str
    off_bg: str
    warn: str

    @property
    def dark(self) -> bool:
        return self.name == "dark"

    @property
    def code_backgrounds(self) -> tuple[str, ...]:
        """Every background highlighted code is drawn on."""
        return self.code_bg, self.add_bg, self.del_bg, self.off_bg


LIGHT = Theme("light", "default", code_bg="#f6f8fa", code_fg="#1f2328", header_bg="#e8ebef", header_fg="#4a4f55",
              muted="#57606a", add_bg="#e6ffec", del_bg="#ffebe9", hunk_bg="#ddf4ff", off_bg="#f3f3f3",
              warn="#8a5a00")
DARK = Theme("dark", "github-dark", code_bg="#161b22", code_fg="#e6edf3", header_bg="#21262d", header_fg="#9da7b3",
             muted="#8b949e", add_bg="#12261e", del_bg="#301b1e", hunk_bg="#132334", off_bg="#1c2128",
             warn="#d29922")
_theme = LIGHT


def set_theme(dark: bool) -> Theme:
    """Which palette the window shows (its palette's lightness decides); the next render uses it."""
    global _theme
    _theme = DARK if dark else LIGHT
    return _theme


def current_theme() -> Theme:
    return _theme


def luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    c = colour.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    channels = [int(c[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _mix(colour: str, other: str, t: float) -> str:
    a, b = colour.lstrip("#"), other.lstrip("#")
    return "#" + "".join(f"{round(int(a[i:i + 2], 16) * (1 - t) + int(b[i:i + 2], 16) * t):02x}" for i in (0, 2, 4))


def readable(colour: str, backgrounds: tuple[str, ...], dark: bool) -> str:
    """``colour``, moved toward white (dark theme) or black just enough to reach MIN_CONTRAST
    on every one of ``backgrounds``."""
    c = colour
    for step in range(1, 22):
        if all(contrast(c, bg) >= MIN_CONTRAST for bg in backgrounds):
            return c
        c = _mix(colour, "#ffffff" if dark else "#000000", step / 20)
    return c


def style_colours(style: type[Style]):
    """(token, colour, its own background or None) for every coloured token of ``style``
    (whitespace has no glyph to read)."""
    return [(token, "#" + st["color"], "#" + st["bgcolor"] if st["bgcolor"] else None)
            for token, st in style if st["color"] and token not in Whitespace]


@functools.lru_cache(maxsize=4)
def code_style(theme: Theme) -> type[Style]:
    """The theme's pygments style with each colour that is too faint on one of the theme's
    code backgrounds darkened (or lightened) until it reads."""
    base = get_style_by_name(theme.style)
    fixed = {}
    for token, colour, own_bg in style_colours(base):
        better = readable(colour, (own_bg,) if own_bg else theme.code_backgrounds, theme.dark)
        if better != colour:
            st = base.style_for_token(token)
            words = [w for w in ("bold", "italic", "underline") if st[w]]
            fixed[token] = " ".join(["noinherit", *words, better] + ([f"bg:#{st['bgcolor']}"] if st["bgcolor"] else []))
    return type(f"Readable{base.__name__}", (base,), {"styles": {**base.styles, **fixed},
                                                       "background_color": theme.code_bg})


@functools.lru_cache(maxsize=4)
def formatter(theme: Theme | None = None) -> HtmlFormatter:
    """Inline-styled HTML spans in the theme's readable style (the current theme by default)."""
    return HtmlFormatter(noclasses=True, nowrap=True, style=code_style(theme or _theme))


@dataclass
class Rendered:
    html: str
    code_blocks: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # each block's fence language ("" if none)


def lexer_for(lang: str):
    try:
        return get_lexer_by_name(lang) if lang else TextLexer()
    except ClassNotFound:
        return TextLexer()


def _fence(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    lang = token.info.strip().split()[0] if token.info.strip() else ""
    code = token.content
    blocks: list[str] = env["code_blocks"]
    n = env["first_block"] + len(blocks)
    blocks.append(code)
    env.setdefault("languages", []).append(lang)
    t = current_theme()
    body = highlight(code, lexer_for(lang), formatter(t))
    label = html.escape(lang or "code")
    run = f'&nbsp;&nbsp;<a href="{RUN_SCHEME}:{n}">Run</a>' if language_of(lang) else ""
    return (
        f'<table width="100%" cellspacing="0" cellpadding="6" style="margin: 6px 0;">'
        f'<tr><td style="background-color:{t.header_bg};">'
        f'<span style="color:{t.header_fg};">{label}</span>&nbsp;&nbsp;'
        f'<a href="{COPY_SCHEME}:{n}">Copy</a>{run}</td></tr>'
        f'<tr><td style="background-color:{t.code_bg};">'
        f'<pre style="margin:0; font-family: monospace; color:{t.code_fg};">{body}</pre></td></tr></table>\n'
    )


def render_snippet(text: str, first_line: int, language: str = "") -> str:
    """Cited lines as highlighted HTML, each with its line number (the Project panel's view)."""
    t = current_theme()
    body = highlight(text, lexer_for(language), formatter(t)).rstrip("\n").split("\n")
    width = len(str(first_line + len(body) - 1))
    rows = [f'<span style="color:{t.muted};">{str(first_line + i).rjust(width)}</span>  {line}'
            for i, line in enumerate(body)]
    return (f'<pre style="font-family: monospace; margin:0; color:{t.code_fg}; background-color:{t.code_bg};">'
            + "\n".join(rows) + "</pre>")


def parse_citation(href: str) -> tuple[str, int, int] | None:
    """``cite:path:12-30`` (or the bare citation) -> (path, 12, 30)."""
    if href.startswith(CITE_SCHEME + ":"):
        href = href[len(CITE_SCHEME) + 1:]
    m = CITATION.fullmatch(href)
    if not m:
        return None
    start = int(m.group(2))
    return m.group(1), start, int(m.group(3) or start)


def _linked(text: str) -> str:
    """Escaped ``text`` with each citation made a cite: link."""
    out, pos = [], 0
    for m in CITATION.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        out.append(f'<a href="{CITE_SCHEME}:{html.escape(m.group(0))}">{html.escape(m.group(0))}</a>')
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _text(self, tokens, idx, options, env) -> str:
    return _linked(tokens[idx].content)


def _code_inline(self, tokens, idx, options, env) -> str:
    return f"<code>{_linked(tokens[idx].content)}</code>"


def _make_md() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    md.add_render_rule("text", _text)
    md.add_render_rule("code_inline", _code_inline)
    return md


_MD = _make_md()


def render_markdown(text: str, first_block: int = 0) -> Rendered:
    """Markdown to HTML. Raw HTML in the text is shown as text, never interpreted.

    Copy links are numbered from ``first_block`` so several messages can share one view.
    """
    env: dict = {"code_blocks": [], "first_block": first_block}
    out = _MD.render(text, env)
    return Rendered(out, env["code_blocks"], env.get("languages", []))
