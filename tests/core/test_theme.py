"""Code blocks and diffs readable on the light and the dark palette: WCAG contrast of every
colour the highlighter paints, on every background it is painted on, at least 4.5:1."""

from __future__ import annotations

import pytest
from pygments.styles import get_style_by_name

from app.core.chat.render import (DARK, LIGHT, MIN_CONTRAST, code_style, contrast, current_theme, render_markdown,
                                  render_snippet, set_theme, style_colours)
from app.core.edits.diff_render import render_change
from app.core.edits.plan import plan_changes


@pytest.fixture(autouse=True)
def _light_again():
    yield
    set_theme(False)


def test_the_contrast_formula_matches_wcag():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-failing grey
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=["light", "dark"])
def test_every_highlight_colour_reads_on_every_code_background(theme):
    colours = style_colours(code_style(theme))
    assert len(colours) > 20  # a real style, not an empty one
    low = [(str(token), fg, bg, round(contrast(fg, own or bg), 2))
           for token, fg, own in colours for bg in theme.code_backgrounds if contrast(fg, own or bg) < MIN_CONTRAST]
    assert low == []
    for fg, bg in [(theme.code_fg, theme.code_bg), (theme.header_fg, theme.header_bg), (theme.muted, theme.code_bg),
                   (theme.code_fg, theme.hunk_bg), (theme.warn, theme.code_bg)]:
        assert contrast(fg, bg) >= MIN_CONTRAST, (fg, bg)


def test_the_chosen_styles_keep_their_look():
    """The chosen styles are nearly readable as they are: the dark one untouched, the light one's
    colours at most a tenth darker (its purple decorators were 4.2:1 on a removed line's red)."""
    for theme in (LIGHT, DARK):
        base = {str(t): fg.lower() for t, fg, _ in style_colours(get_style_by_name(theme.style))}
        moved = {str(t): fg for t, fg, _ in style_colours(code_style(theme)) if base[str(t)] != fg.lower()}
        for token, fg in moved.items():
            old = base[token]
            assert max(abs(int(old[i:i + 2], 16) - int(fg[i:i + 2], 16)) for i in (1, 3, 5)) <= 26, (token, old, fg)
        assert theme is LIGHT or moved == {}
    decorator = "Token.Name.Decorator"
    before = {str(t): fg for t, fg, _ in style_colours(get_style_by_name("default"))}[decorator]
    after = {str(t): fg for t, fg, _ in style_colours(code_style(LIGHT))}[decorator]
    assert contrast(before, LIGHT.del_bg) < MIN_CONTRAST <= contrast(after, LIGHT.del_bg)


def test_rendering_follows_the_theme(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    return 1\n")
    answer = "```python\n# a.py\ndef f():\n    return 2\n```\n"
    for dark, theme in ((False, LIGHT), (True, DARK)):
        assert set_theme(dark) is theme and current_theme() is theme
        html = render_markdown("```python\n@cache\ndef f(): pass\n```").html
        assert f"background-color:{theme.code_bg}" in html and f"background-color:{theme.header_bg}" in html
        assert f"color:{theme.code_fg}" in html
        assert theme.code_bg in render_snippet("x = 1\n", 10, "python")
        cs = plan_changes(tmp_path, answer, "a.py", complete=True)
        diff = render_change(cs.changes[0], {0})
        assert theme.add_bg in diff and theme.del_bg in diff and theme.hunk_bg in diff
    assert LIGHT.code_bg not in render_markdown("```\nx\n```").html  # dark now: none of the light colours
