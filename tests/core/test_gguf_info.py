"""The GGUF header reader: real starter model, and the broken files users actually have."""

import struct

import pytest

from app.core.models.gguf_info import GGUFError, read_gguf_info


def test_reads_the_starter_models_header(starter_path):
    info = read_gguf_info(starter_path)
    assert info.architecture == "llama"
    assert info.version == 3
    assert info.context_length == 8192
    assert info.arch_value("block_count") == 30
    assert "<|im_start|>" in (info.chat_template or "")
    # The last tensor ends exactly at the end of the file: sizes and offsets were read right.
    end = max(info.data_offset + t.offset + t.n_bytes for t in info.tensors)
    assert end == info.file_size == starter_path.stat().st_size
    assert len(info.metadata["tokenizer.ggml.tokens"]) == 49152  # skipped, but counted


def test_truncated_download_is_named_as_such(truncated_gguf):
    with pytest.raises(GGUFError) as e:
        read_gguf_info(truncated_gguf)
    msg = str(e.value)
    assert str(truncated_gguf) in msg
    assert "truncated" in msg and "Download" in msg


def test_text_file_renamed_gguf(text_as_gguf):
    with pytest.raises(GGUFError) as e:
        read_gguf_info(text_as_gguf)
    assert str(text_as_gguf) in str(e.value)
    assert "not a GGUF model file" in str(e.value)
    assert "These a" in str(e.value)  # shows what the file starts with


@pytest.mark.parametrize("content, reason", [
    (b"", "only 0 bytes"),
    (b"GGUF" + struct.pack("<I", 99) + b"\0" * 40, "version 99"),
    (b"GGUF" + struct.pack("<IQQ", 3, 2**60, 1) + b"\0" * 40, "corrupt"),
    # a header that promises one metadata entry and then ends
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 500) + b"abc" + b"\0" * 10, "cut short"),
])
def test_broken_headers(tmp_path, content, reason):
    p = tmp_path / "broken.gguf"
    p.write_bytes(content)
    with pytest.raises(GGUFError) as e:
        read_gguf_info(p)
    assert reason in str(e.value)
    assert str(p) in str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(GGUFError, match="does not exist"):
        read_gguf_info(tmp_path / "nope.gguf")
    with pytest.raises(GGUFError, match="not a file"):
        read_gguf_info(tmp_path)
