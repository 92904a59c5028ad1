"""A web page with an article and noise around it, for page-text extraction."""

ARTICLE = """<!doctype html><html><head><meta charset="utf-8">
<title>Sorting lists in Python | Example Docs</title>
<style>.nav { color: red } /* STYLE_NOISE */</style>
<script>var tracker = "SCRIPT_NOISE";</script></head>
<body><nav class="nav"><a href="/">Home</a> <a href="/about">NAV_NOISE About us</a> <a href="/blog">Blog</a></nav>
<header><div class="menu">MENU_NOISE Products · Pricing · Sign in</div></header>
<div class="content"><main><article><h1>Sorting lists in Python</h1>
<p>Python lists have a built-in <code>list.sort()</code> method that modifies the list in place. There is also a
<code>sorted()</code> built-in function that builds a new sorted list from an iterable.</p>
<p>Both accept a <em>key</em> parameter to specify a function to be called on each list element prior to making
comparisons. The value of the key parameter should be a function that takes a single argument.</p>
<pre><code>sorted(words, key=str.lower)
</code></pre>
<p>Sorts are guaranteed to be stable. That means that when multiple records have the same key, their original
order is preserved, which is useful for sorting in several passes.</p>
</article></main>
<aside class="sidebar"><h3>Related</h3><ul><li><a href="/x">SIDEBAR_NOISE Ten tricks</a></li></ul></aside></div>
<footer>FOOTER_NOISE Copyright 2024 Example Inc. All rights reserved. <a href="/privacy">Privacy</a></footer>
<script>trackEverything("SCRIPT_NOISE");</script></body></html>"""
