"""Markdown answers to HTML for the chat view, with highlighted code blocks.

Kept out of the UI (it needs no Qt) so it is testable on its own. Qt's rich-text engine
understands only a subset of HTML/CSS, hence inline styles and a table per code block.
Each code block gets a ``copy:N`` link; the view maps it back to ``code_blocks[N]``.
Citations of project code (``path:start-end``, in inline code or plain text) become
``cite:`` links; the view shows those lines when one is clicked.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from app.core.run.sandbox import language_of

COPY_SCHEME = "copy"
RUN_SCHEME = "run"  # run:N runs code_blocks[N] in the sandbox (Python, or shell after a confirmation)
CITE_SCHEME = "cite"
# path:12 or path:12-30, where path has a folder or an extension (so "10:30" is no citation)
CITATION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.[A-Za-z0-9]+|(?:[\w.-]+/)+[\w.-]+):(\d+)(?:-(\d+))?(?![\w-])")
_FORMATTER = HtmlFormatter(noclasses=True, nowrap=True, style="default")
CODE_BG = "#f6f8fa"
CODE_HEADER_BG = "#e8ebef"


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
    body = highlight(code, lexer_for(lang), _FORMATTER)
    label = html.escape(lang or "code")
    run = f'&nbsp;&nbsp;<a href="{RUN_SCHEME}:{n}">Run</a>' if language_of(lang) else ""
    return (
        f'<table width="100%" cellspacing="0" cellpadding="6" style="margin: 6px 0;">'
        f'<tr><td style="background-color:{CODE_HEADER_BG};">'
        f'<span style="color:#555;">{label}</span>&nbsp;&nbsp;'
        f'<a href="{COPY_SCHEME}:{n}">Copy</a>{run}</td></tr>'
        f'<tr><td style="background-color:{CODE_BG};">'
        f'<pre style="margin:0; font-family: monospace;">{body}</pre></td></tr></table>\n'
    )


def render_snippet(text: str, first_line: int, language: str = "") -> str:
    """Cited lines as highlighted HTML, each with its line number (the Project panel's view)."""
    body = highlight(text, lexer_for(language), _FORMATTER).rstrip("\n").split("\n")
    width = len(str(first_line + len(body) - 1))
    rows = [f'<span style="color:#999;">{str(first_line + i).rjust(width)}</span>  {line}'
            for i, line in enumerate(body)]
    return '<pre style="font-family: monospace; margin:0;">' + "\n".join(rows) + "</pre>"


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
