"""What a drag and drop onto the window brings: a folder to open as the project, or a file
whose text goes into the question.

Why limits on a file: the question goes whole to a small local model whose context holds a few
thousand tokens, so a file larger than about half of it would crowd out the answer; it is
refused with its size and the limit, never cut silently. A binary file (a NUL byte, or bytes
that are not UTF-8 text) means nothing to the model and is refused saying so. A folder the app
cannot list would open as an empty project, so it is refused before anything changes.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.core.edits.fences import fence_for
from app.core.errors import UserError
from app.core.index.walk import language_of, read_regular

MAX_ATTACH_BYTES = 100_000
BYTES_PER_TOKEN = 4   # about, for code and English: what the limit assumes
SNIFF_BYTES = 8192


class DropError(UserError, ValueError):
    """A dropped file or folder that cannot be used, saying why and what to do instead."""


def attach_limit(n_ctx: int) -> int:
    """Bytes of files one question may carry: about half the model's context, at most 100 KB."""
    return max(1024, min(MAX_ATTACH_BYTES, n_ctx * BYTES_PER_TOKEN // 2))


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 10_000 else f"{n / 1000:,.0f} KB"


def attachment(path: Path, limit: int, n_ctx: int = 0) -> str:
    """The text of the file at ``path`` as a fenced block under its name, for the question box;
    ``limit``: the bytes still allowed. Raises DropError saying why it cannot be attached."""
    path = Path(path)
    name = path.name
    if path.is_dir():
        raise DropError(f"{name} is a folder: drop it onto the window, outside the question box, "
                        "to open it as the project.")
    try:
        real = path.resolve(strict=True)
        size = real.stat().st_size
        if size > limit:
            budget = f" (about half of the model's {n_ctx:,}-token context)" if n_ctx else ""
            raise DropError(f"{name} is {_size(size)}, too big to attach: the question can take {_size(max(limit, 0))} "
                            f"more{budget}. Paste the part that matters, or open its folder as the "
                            "project so the relevant pieces are found.")
        data = read_regular(real, limit + 1)
    except FileNotFoundError:
        raise DropError(f"{name} was not found (it may have been moved or deleted).") from None
    except PermissionError:
        raise DropError(f"{name} could not be read: permission was denied. Check its permissions, "
                        "or paste its text.") from None
    except OSError as e:  # a FIFO, a device, a link that turned into one
        raise DropError(f"{name} could not be read as a file ({e.strerror or e}): only regular files "
                        "can be attached.") from None
    if len(data) > limit:  # it grew between the look and the read
        raise DropError(f"{name} is larger than the {_size(max(limit, 0))} the question can take.")
    if b"\0" in data[:SNIFF_BYTES]:
        raise DropError(f"{name} is a binary file (it contains NUL bytes), not text: the model reads text "
                        "only. Attach source code, logs or other text files.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DropError(f"{name} is not UTF-8 text (byte {e.start:,} cannot be decoded): the model reads "
                        "text only. Save it as UTF-8 and drop it again.") from None
    if not text.strip():
        raise DropError(f"{name} is empty: there is nothing to attach.")
    lang = language_of(name) or ""
    fence = fence_for(text)
    body = text if text.endswith("\n") else text + "\n"
    return f"`{name}`:\n{fence}{'' if lang == 'text' else lang}\n{body}{fence}\n"


def project_folder(path: Path) -> Path:
    """``path`` if it can be opened as the project (a folder the app may list), else DropError."""
    path = Path(path)
    if not path.exists():
        raise DropError(f"{path} was not found (it may have been moved or deleted).")
    if not path.is_dir():
        raise DropError(f"{path} is a file, not a folder: drop a folder to open it as the project.")
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except PermissionError:
        raise DropError(f"{path} cannot be opened as the project: permission to list its files was "
                        "denied. Give your user read access to it (or pick another folder).") from None
    except OSError as e:
        raise DropError(f"{path} cannot be opened as the project: {e.strerror or e}.") from None
    return path
