"""A file change as HTML for the Changes pane: unified or side by side, highlighted.

Pure functions (no Qt), like ``render``; Qt's rich text understands tables and inline styles
only, so that is all this emits. Rejected hunks are shown greyed, so the view always
matches what Apply would write. Colours come from the window's theme (``render.current_theme``:
light or dark, every code colour readable on these backgrounds).
"""

from __future__ import annotations

import functools
import html

from pygments import highlight
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from app.core.chat.render import Theme, current_theme, formatter
from app.core.edits.plan import DELETED, NEW, FileChange, Hunk

CONTEXT = 3
STATUS_WORDS = {NEW: "new file", DELETED: "deleted file"}


@functools.lru_cache(maxsize=16)
def _highlighted(path: str, lines: tuple[str, ...], theme: Theme) -> list[str]:
    """Highlighted HTML per line; cached, since every tick of a hunk box re-renders the file."""
    if not lines:
        return []
    try:
        lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False, ensurenl=False)
    out = highlight("\n".join(lines) + "\n", lexer, formatter(theme)).split("\n")
    if len(out) < len(lines):  # never trust a lexer to keep line counts: fall back to plain
        return [html.escape(line) for line in lines]
    return out[: len(lines)]


def _code(cell: str) -> str:
    return f'<span style="white-space:pre; font-family:monospace">{cell or "&nbsp;"}</span>'


def _num(n: int | str) -> str:
    return f'<td width="34" align="right" style="color:{current_theme().muted}">{n}&nbsp;</td>'


def render_change(change: FileChange, accepted: set[int], side_by_side: bool = False) -> str:
    """HTML of every hunk of ``change`` with context; ``accepted`` holds the accepted hunk indexes."""
    old = change.original.contents if change.original else []
    new = change.new_lines or []
    t = current_theme()
    hold, hnew = _highlighted(change.path, tuple(old), t), _highlighted(change.path, tuple(new), t)
    head = f"<b>{html.escape(change.path)}</b>"
    if change.status in STATUS_WORDS:
        head += f" — <i>{STATUS_WORDS[change.status]}, needs your approval</i>"
    parts = [f"<p>{head}</p>"]
    for w in change.warnings:
        parts.append(f'<p style="color:{t.warn}">⚠ {html.escape(w)}</p>')
    if not change.hunks:
        parts.append("<p><i>Empty file.</i></p>")
    for h in change.hunks:
        on = h.index in accepted or change.status in STATUS_WORDS
        parts.append(_hunk_table(h, old, hold, hnew, on, side_by_side))
    return "\n".join(parts)


def _hunk_table(h: Hunk, old: list[str], hold: list[str], hnew: list[str], on: bool, side: bool) -> str:
    a, b = max(0, h.old_start - CONTEXT), min(len(old), h.old_end + CONTEXT)
    where = (f"adds {len(h.new)} line{'s' * (len(h.new) != 1)} after line {h.old_start}" if not h.old
             else f"lines {h.old_start + 1}–{h.old_end}")
    label = f"Hunk {h.index + 1}: {where} {'(accepted)' if on else '(rejected: stays as it is)'}"
    t = current_theme()
    rows = [f'<tr><td colspan="{4 if side else 3}" style="background:{t.hunk_bg}; color:{t.code_fg}">'
            f'{html.escape(label)}</td></tr>']
    add_bg, del_bg = (t.add_bg, t.del_bg) if on else (t.off_bg, t.off_bg)
    def ctx(i: int, shift: int) -> str:
        if side:
            return (f"<tr>{_num(i + 1)}<td width='50%'>{_code(hold[i])}</td>{_num(i + 1 + shift)}"
                    f"<td width='50%'>{_code(hold[i])}</td></tr>")
        return f"<tr>{_num(i + 1)}<td width='14'> </td><td>{_code(hold[i])}</td></tr>"

    rows += [ctx(i, h.new_start - h.old_start) for i in range(a, h.old_start)]
    removed = list(range(h.old_start, h.old_end))
    added = list(range(h.new_start, h.new_end))
    if side:
        for k in range(max(len(removed), len(added))):
            left = (f'{_num(removed[k] + 1)}<td style="background:{del_bg}">{_code(hold[removed[k]])}</td>'
                    if k < len(removed) else f"{_num('')}<td></td>")
            right = (f'{_num(added[k] + 1)}<td style="background:{add_bg}">{_code(hnew[added[k]])}</td>'
                     if k < len(added) else f"{_num('')}<td></td>")
            rows.append(f"<tr>{left}{right}</tr>")
    else:
        rows += [f'<tr>{_num(i + 1)}<td width="14" style="background:{del_bg}">−</td>'
                 f'<td style="background:{del_bg}">{_code(hold[i])}</td></tr>' for i in removed]
        rows += [f'<tr>{_num(j + 1)}<td width="14" style="background:{add_bg}">+</td>'
                 f'<td style="background:{add_bg}">{_code(hnew[j])}</td></tr>' for j in added]
    rows += [ctx(i, h.new_end - h.old_end) for i in range(h.old_end, b)]
    return (f'<table cellspacing="0" cellpadding="2" width="100%" bgcolor="{t.code_bg}" '
            f'style="margin-bottom:8px; color:{t.code_fg}">' + "".join(rows) + "</table>")
