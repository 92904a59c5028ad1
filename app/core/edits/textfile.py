"""A project file as the edit code sees it: lines with their own endings, and how to write it back.

Edits must change only what the user accepted. So a file is kept as its original lines,
each with its own line ending (a CRLF file stays CRLF, a mixed file keeps its mix on the
lines nobody touched), plus the encoding (UTF-8, with or without BOM), whether it ended
with a newline, and its mode. Binary and non-UTF-8 files are refused: we never edit them.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import UserError

BINARY_SNIFF_BYTES = 8192
BOM = b"\xef\xbb\xbf"


class UneditableFileError(UserError, ValueError):
    """The file exists but is not something we edit (binary, not UTF-8, not a regular file)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_lines(text: str) -> list[str]:
    """Lines with their endings; only ``\\n`` ends a line (``\\r\\n`` is ``\\r`` + ``\\n``).

    ``str.splitlines`` is not used: it also splits on form feeds, U+2028 and friends, which
    would silently rewrite those characters.
    """
    if not text:
        return []
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def content(line: str) -> str:
    """A line without its ending."""
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith("\n"):
        return line[:-1]
    return line


def looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:BINARY_SNIFF_BYTES]


@dataclass(frozen=True)
class TextFile:
    """The original state of a file that exists on disk."""

    raw: bytes
    lines: tuple[str, ...]       # decoded, each with its original ending
    newline: str                 # the dominant ending, used for new lines
    bom: bool
    final_newline: bool
    mode: int

    @property
    def sha256(self) -> str:
        return sha256_bytes(self.raw)

    @property
    def contents(self) -> list[str]:
        return [content(line) for line in self.lines]

    @classmethod
    def parse(cls, raw: bytes, mode: int = 0o644, name: str = "file") -> "TextFile":
        if looks_binary(raw):
            raise UneditableFileError(f"{name} is a binary file; Offline Coder never edits binary files.")
        bom = raw.startswith(BOM)
        try:
            text = raw[len(BOM) if bom else 0:].decode("utf-8")
        except UnicodeDecodeError as e:
            raise UneditableFileError(
                f"{name} is not UTF-8 text (byte {e.start}); it was left as it is.") from None
        lines = split_lines(text)
        crlf = sum(1 for line in lines if line.endswith("\r\n"))
        lf = sum(1 for line in lines if line.endswith("\n")) - crlf
        return cls(raw=raw, lines=tuple(lines), newline="\r\n" if crlf > lf else "\n", bom=bom,
                   final_newline=text.endswith("\n") or not text, mode=mode)

    @classmethod
    def read(cls, path: Path, name: str | None = None) -> "TextFile":
        name = name or path.name
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise UneditableFileError(f"{name} is not a regular file; it was left as it is.")
        return cls.parse(path.read_bytes(), stat.S_IMODE(st.st_mode), name)

    def encode(self, lines: list[str]) -> bytes:
        """Bytes for ``lines`` (already carrying endings) in this file's encoding."""
        data = "".join(lines).encode("utf-8")
        return BOM + data if self.bom else data


def assemble(lines: list[tuple[str, bool]], newline: str, final_newline: bool) -> list[str]:
    """Join kept and new lines into a file's lines.

    ``lines`` holds (text, is_original): original lines keep their own ending; new lines get
    ``newline``. Every line but the last must end with a newline (an old last line that now
    has lines after it gains one). The last line's ending follows ``final_newline``, so a file
    without a trailing newline keeps that state.
    """
    out: list[str] = []
    for text, original in lines:
        out.append(text if original else text + newline)
    for i in range(len(out) - 1):
        if not out[i].endswith("\n"):
            out[i] += newline
    if out:
        last = out[-1]
        if final_newline and not last.endswith("\n"):
            out[-1] = last + newline
        elif not final_newline and last.endswith("\n"):
            out[-1] = content(last)
    return out
