"""The small project the edit tests change (tests/fixtures/edit_project) and a two-file answer."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures"


FENCE = "```"


TWO_FILES = (
    "Here are the changes.\n\npkg/mathx.py\n" + FENCE + "python\n"
    "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n\n\ndef mul(a, b):\n    \"\"\"Product.\"\"\"\n    return a * b\n"
    + FENCE + "\n\npkg/net.py\n" + FENCE + "python\n"
    "import urllib.request\n\n\ndef fetch(url, timeout=10):\n    with urllib.request.urlopen(url, timeout=timeout) as response:\n"
    "        return response.read()\n" + FENCE + "\n")
