"""Markdown answers become HTML with highlighted, copyable code blocks."""

from app.core.chat.render import render_markdown


def test_code_blocks_are_highlighted_and_collected():
    r = render_markdown("Here:\n\n```python\ndef f(x):\n    return x < 2\n```\n\nand `inline`.\n\n```\nplain\n```")
    assert r.code_blocks == ["def f(x):\n    return x < 2\n", "plain\n"]
    assert 'href="copy:0"' in r.html and 'href="copy:1"' in r.html
    assert "<span style=" in r.html  # pygments colours
    assert "&lt;" in r.html and "x < 2" not in r.html  # code is escaped
    assert "<code>inline</code>" in r.html


def test_numbering_continues_across_messages_and_unclosed_fence_streams():
    r = render_markdown("```js\nlet a = 1", first_block=3)
    assert r.code_blocks == ["let a = 1"]
    assert 'href="copy:3"' in r.html


def test_raw_html_is_shown_not_run():
    r = render_markdown("<script>alert(1)</script> **bold**")
    assert "<script>" not in r.html
    assert "&lt;script&gt;" in r.html
    assert "<strong>bold</strong>" in r.html


def test_citations_become_links_and_times_do_not():
    from app.core.chat.render import parse_citation
    html = render_markdown("See `app/x.py:10-24` and util.py:3; at 10:30 see http://host.org:80 <b>").html
    assert '<a href="cite:app/x.py:10-24">app/x.py:10-24</a>' in html
    assert '<a href="cite:util.py:3">util.py:3</a>' in html
    assert "cite:10:30" not in html and "cite:host.org" not in html and "&lt;b&gt;" in html
    assert parse_citation("cite:app/x.py:10-24") == ("app/x.py", 10, 24)
    assert parse_citation("util.py:3") == ("util.py", 3, 3)
    assert parse_citation("cite:not a citation") is None
