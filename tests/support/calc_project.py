"""A one-module project with a test, buggy or fixed, for /fix on the project's tests."""

from __future__ import annotations

from pathlib import Path

BUGGY = "def add(a, b):\n    return a - b\n"


FIXED = "def add(a, b):\n    return a + b\n"


PYTEST_TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


UNITTEST_TEST = ("import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n"
                 "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n")


def make_project(root: Path, test: str = PYTEST_TEST, code: str = BUGGY) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text(code)
    (root / "tests" / "test_calc.py").write_text(test)
    return root
