"""Sources the training-set tests write into a project, and how to read a pair's source."""

from __future__ import annotations

from pathlib import Path

OPENAI_KEY = "sk-live-abcdefghijklmnopqrstuvwxyz123456"
GITHUB_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"

MATHX = [
    '"""Math helpers."""',                                           # 1
    "import os",                                                      # 2
    "from typing import Iterable",                                    # 3
    "",                                                               # 4
    f'API_KEY = "{OPENAI_KEY}"',                                      # 5
    "",                                                               # 6
    "",                                                               # 7
    "def add(a: int, b: int) -> int:",                                # 8
    '    """Add two integers and return their sum."""',              # 9
    "    return a + b",                                               # 10
    "",                                                               # 11
    "",                                                               # 12
    "def _undocumented(x):",                                          # 13
    "    return x * 2 + 1 - 3 + len(os.sep) * 0",                     # 14
    "",                                                               # 15
    "",                                                               # 16
    "class Accumulator:",                                             # 17
    '    """Keep a running total of numbers."""',                    # 18
    "",                                                               # 19
    "    def __init__(self):",                                        # 20
    "        self.total = 0",                                         # 21
    "",                                                               # 22
    "    def push(self, value: float) -> float:",                     # 23
    '        """Add value to the total and return the new total."""',  # 24
    "        self.total += value",                                    # 25
    "        return self.total",                                      # 26
    "",                                                               # 27
    "",                                                               # 28
    "# Where the user's settings file lives.",                        # 29
    "def settings_path():",                                           # 30
    f'    token = "{GITHUB_TOKEN}"',                                   # 31
    '    return "/home/alice/.config/mathx/settings.toml"',           # 32
]


UTIL_JS = [
    'import { fmt } from "./fmt.js";',                    # 1
    "",                                                   # 2
    "/**",                                                # 3
    " * Format a price in euros.",                        # 4
    " */",                                                # 5
    "export function price(cents) {",                     # 6
    '  return fmt(cents / 100) + " EUR";',                # 7
    "}",                                                  # 8
    "",                                                   # 9
    "function helper(n) {",                               # 10
    "  return n + 1;",                                    # 11
    "}",                                                  # 12
    "",                                                   # 13
    "// Double every number in the list.",                # 14
    "const doubleAll = (xs) => xs.map((x) => x * 2);",   # 15
]


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")


def parse_source(source: str) -> tuple[str, str, int, int]:
    _project, kind, rest = source.split(":", 2)
    path, lines = rest.rsplit("#L", 1)
    start, end = lines.split("-L")
    return kind, path, int(start), int(end)
