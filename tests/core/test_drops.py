"""A file dropped onto the question box, a folder dropped onto the window: bad ones first."""

from __future__ import annotations

import os

import pytest

from app.core.drops import MAX_ATTACH_BYTES, DropError, attach_limit, attachment, project_folder
from app.core.errors import UserError
from tests.support.permissions import file_permissions_apply


def test_a_file_over_the_limit_is_refused_with_its_size_and_the_limit(tmp_path):
    big = tmp_path / "server.log"
    big.write_text("GET / 200\n" * 3000)  # 30 KB
    limit = attach_limit(4096)
    with pytest.raises(DropError) as e:
        attachment(big, limit, 4096)
    msg = str(e.value)
    assert isinstance(e.value, UserError) and isinstance(e.value, ValueError)
    assert "server.log is 30 KB, too big to attach" in msg and "8,192 bytes" in msg and "4,096-token" in msg
    assert "Paste the part that matters" in msg
    assert big.read_text() == "GET / 200\n" * 3000  # nothing touched


def test_binary_and_non_utf8_files_are_refused_saying_why(tmp_path):
    png = tmp_path / "logo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    with pytest.raises(DropError, match=r"logo.png is a binary file \(it contains NUL bytes\)"):
        attachment(png, 10_000)
    latin = tmp_path / "notes.txt"
    latin.write_bytes("café crème\n".encode("latin-1"))
    with pytest.raises(DropError, match=r"notes.txt is not UTF-8 text \(byte 3 cannot be decoded\).*Save it as UTF-8"):
        attachment(latin, 10_000)
    empty = tmp_path / "empty.py"
    empty.write_text("  \n")
    with pytest.raises(DropError, match="empty.py is empty"):
        attachment(empty, 10_000)


def test_unreadable_missing_and_special_files_are_refused(tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("x = 1\n")
    secret.chmod(0)
    with file_permissions_apply(), pytest.raises(DropError, match="secret.py could not be read: permission was denied"):
        attachment(secret, 10_000)
    with pytest.raises(DropError, match="gone.py was not found"):
        attachment(tmp_path / "gone.py", 10_000)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DropError, match="only regular files can be attached"):  # and no hang waiting for a writer
        attachment(fifo, 10_000)
    with pytest.raises(DropError, match="is a folder: drop it onto the window"):
        attachment(tmp_path, 10_000)


def test_a_text_file_becomes_a_fenced_block_under_its_name(tmp_path):
    f = tmp_path / "calc.py"
    f.write_text("def add(a, b):\n    return a + b")
    assert attachment(f, 10_000) == "`calc.py`:\n```python\ndef add(a, b):\n    return a + b\n```\n"
    doc = tmp_path / "README.md"
    doc.write_text("Run:\n```sh\nmake\n```\n")
    block = attachment(doc, 10_000)
    assert block.startswith("`README.md`:\n````markdown\n") and block.endswith("\n````\n")  # a longer fence
    plain = tmp_path / "todo.txt"
    plain.write_text("\ufeffbuy milk\n")
    assert attachment(plain, 10_000) == "`todo.txt`:\n```\nbuy milk\n```\n"  # BOM dropped, no "text" tag


def test_the_limit_is_half_the_context_at_most_100_kb():
    assert attach_limit(4096) == 8192
    assert attach_limit(32768) == 65536
    assert attach_limit(1 << 20) == MAX_ATTACH_BYTES


def test_a_folder_that_cannot_be_listed_is_refused_before_anything_opens(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.py").write_text("x = 1\n")
    locked.chmod(0)
    try:
        with file_permissions_apply(), pytest.raises(DropError) as e:
            project_folder(locked)
        assert f"{locked} cannot be opened as the project: permission to list its files was denied" in str(e.value)
    finally:
        locked.chmod(0o755)
    assert project_folder(locked) == locked
    with pytest.raises(DropError, match="is a file, not a folder"):
        project_folder(locked / "a.py")
    with pytest.raises(DropError, match="was not found"):
        project_folder(tmp_path / "nowhere")
