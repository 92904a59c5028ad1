"""Importing GGUF files and installing catalog models into the registry."""

from __future__ import annotations

import dataclasses
import os

import pytest
from PySide6.QtGui import QColor, QImage

from app.core.engine import Engine, EngineConfig, GenerationParams
from app.core.models.catalog import QWEN_1_5B, STARTER
from app.core.models.download import VerificationError
from app.core.models.importer import (ModelImportError, import_gguf, inspect_gguf,
                                      install_from_catalog)
from app.core.models.registry import ModelRegistry
from app.core.settings import Settings
from tests.support.fake_hub import FakeHub


@pytest.fixture
def registry(tmp_path):
    return ModelRegistry(tmp_path / "models")


def test_inspect_shows_the_real_starter_models_metadata(starter_path):
    s = inspect_gguf(starter_path)
    assert s.architecture == "llama" and s.quantization == "Q4_1"
    assert 130e6 < s.parameters < 140e6  # SmolLM2-135M
    assert s.context_length == 8192 and s.has_chat_template
    assert "Parameters: 135M" in s.lines()


def test_import_copies_validates_and_registers(starter_path, registry):
    m = import_gguf(starter_path, registry, mode="copy")
    assert m.source == "copy" and m.file.parent == registry.dir and m.file.exists()
    assert m.file.stat().st_size == starter_path.stat().st_size
    assert not list(registry.dir.glob("*.part"))
    assert registry.list() == [m]
    assert registry.disk_usage() == m.size
    # Importing the same copy again does not duplicate it.
    assert import_gguf(m.file, registry) == m
    registry.remove(m.id)
    assert registry.list() == [] and not m.file.exists()


def test_import_by_reference_never_deletes_the_users_file(starter_path, registry, tmp_path):
    mine = tmp_path / "mine.gguf"
    os.link(starter_path, mine) if starter_path.stat().st_dev == tmp_path.stat().st_dev else \
        mine.write_bytes(starter_path.read_bytes())
    m = import_gguf(mine, registry, mode="link")
    assert m.source == "link" and m.file == mine.resolve()
    assert registry.disk_usage() == 0
    registry.remove(m.id)
    assert mine.exists()


def test_truncated_and_png_files_are_refused_with_the_reason(truncated_gguf, registry, tmp_path):
    with pytest.raises(ModelImportError, match="truncated"):
        import_gguf(truncated_gguf, registry)
    png = tmp_path / "picture.gguf"
    img = QImage(8, 8, QImage.Format_RGB32)
    img.fill(QColor("red"))
    assert img.save(str(png), "PNG")
    with pytest.raises(ModelImportError, match="not a GGUF model file.*PNG"):
        import_gguf(png, registry)
    assert registry.list() == [] and list(registry.dir.iterdir()) == []


def test_non_chat_architectures_are_refused(tmp_path, registry):
    from tests.support.gguf_writer import write_gguf
    p = write_gguf(tmp_path / "embed.gguf", {"general.architecture": "bert"})
    with pytest.raises(ModelImportError, match="embedding model"):
        import_gguf(p, registry)
    p = write_gguf(tmp_path / "lora.gguf", {"general.architecture": "llama", "general.type": "adapter"})
    with pytest.raises(ModelImportError, match="LoRA adapter"):
        import_gguf(p, registry)
    p = write_gguf(tmp_path / "odd.gguf", {"general.architecture": "madeup"})
    with pytest.raises(ModelImportError, match="architecture 'madeup'"):
        import_gguf(p, registry)


@pytest.mark.slow
def test_install_from_catalog_downloads_verifies_registers_and_loads(starter_path, registry, monkeypatch):
    """A catalog entry served by a loopback hub (the real starter GGUF as its bytes)."""
    entry = dataclasses.replace(QWEN_1_5B, repo_id="Qwen/Fake-GGUF", filename="fake-q4.gguf", sha256="")
    with FakeHub() as hub:
        hub.files["fake-q4.gguf"] = starter_path.read_bytes()
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        m = install_from_catalog(entry, registry)
        assert m.catalog_id == entry.id and m.source == "download" and m.file.exists()
        assert registry.get(entry.id) == m
        e = Engine(m.file, EngineConfig(n_ctx=512))
        try:
            assert "Paris" in e.chat([{"role": "system", "content": Settings().system_prompt},
                                      {"role": "user", "content": "What is the capital of France?"}],
                                     GenerationParams.greedy(30)).text
        finally:
            e.close()

        hub.corrupt = True
        registry.remove(m.id)
        with pytest.raises(VerificationError):
            install_from_catalog(entry, registry)
        assert registry.list() == [] and not (registry.dir / "fake-q4.gguf").exists()


def test_the_starter_is_not_downloadable(registry):
    with pytest.raises(ValueError):
        install_from_catalog(STARTER, registry)
