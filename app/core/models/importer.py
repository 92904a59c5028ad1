"""Bring a model into the app: inspect a .gguf the user picked, import it (copy or link),
or download a catalog entry, and register it only when it is complete and valid."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.core.models import download as dl
from app.core.models.catalog import CatalogEntry
from app.core.models.gguf_info import (GGUFError, GGUFInfo, human_params, parameter_count,
                                       quantization, read_gguf_info)
from app.core.models.registry import InstalledModel, ModelRegistry
from app.core.atomic import describe_os_error
from app.core.errors import UserError

# Text-generation architectures of the llama.cpp built here that we offer to load. Files of
# other kinds (embedding models, vision projectors, LoRA adapters) are refused with the reason.
CHAT_ARCHITECTURES = frozenset({
    "llama", "llama4", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "mistral3", "phi2", "phi3",
    "phimoe", "gemma", "gemma2", "gemma3", "starcoder", "starcoder2", "deepseek", "deepseek2",
    "granite", "granitemoe", "olmo", "olmo2", "olmoe", "command-r", "cohere2", "falcon",
    "stablelm", "gpt2", "gptneox", "mpt", "baichuan", "internlm2", "minicpm", "minicpm3",
    "codeshell", "orion", "exaone", "chatglm", "glm4", "bloom", "refact", "smollm3",
})
NOT_CHAT = {
    "bert": "an embedding model", "nomic-bert": "an embedding model", "jina-bert-v2": "an embedding model",
    "clip": "a vision projector", "t5encoder": "a text encoder",
}

Progress = Callable[[int, int, str], None]


class ModelImportError(UserError, ValueError):
    """The file cannot be imported; the message names it and says why."""


@dataclass(frozen=True)
class ModelSummary:
    """What the user sees before confirming an import."""

    path: Path
    name: str
    architecture: str
    parameters: int
    quantization: str
    context_length: int | None
    has_chat_template: bool
    size: int

    def lines(self) -> list[str]:
        return [
            f"Name: {self.name}",
            f"Architecture: {self.architecture}",
            f"Parameters: {human_params(self.parameters)}",
            f"Quantization: {self.quantization}",
            f"Context length: {self.context_length or 'unknown'}",
            f"Chat template: {'yes' if self.has_chat_template else 'no (a generic one will be used)'}",
            f"File size: {self.size / 1e9:.2f} GB",
        ]


def inspect_gguf(path: Path | str) -> ModelSummary:
    """Validate a model file and read what matters; raises ModelImportError with the reason."""
    p = Path(path)
    try:
        info = read_gguf_info(p)
    except GGUFError as e:
        raise ModelImportError(str(e)) from None
    _check_architecture(info)
    return ModelSummary(path=p, name=info.name, architecture=info.architecture,
                        parameters=parameter_count(info), quantization=quantization(info),
                        context_length=info.context_length, has_chat_template=bool(info.chat_template),
                        size=info.file_size)


def _check_architecture(info: GGUFInfo) -> None:
    kind = info.metadata.get("general.type")
    if kind == "adapter":
        raise ModelImportError(f"Cannot import {info.path}: it is a LoRA adapter, not a model. "
                           "Import it under Adapters.")
    arch = info.architecture
    if arch in NOT_CHAT:
        raise ModelImportError(f"Cannot import {info.path}: it is {NOT_CHAT[arch]} ({arch}), not a chat model.")
    if arch not in CHAT_ARCHITECTURES:
        raise ModelImportError(f"Cannot import {info.path}: its architecture '{arch}' is not one this app "
                           "can run. Choose a GGUF of a chat model such as Qwen2.5-Coder.")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "model"


def import_gguf(src: Path | str, registry: ModelRegistry, mode: str = "copy",
                progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> InstalledModel:
    """Copy (or link) a validated .gguf into the models folder and register it.

    The copy goes to a ``.part`` file first and is checked again before it is renamed, so a
    cancelled or failed copy never leaves a half file that looks like a model.
    """
    if mode not in ("copy", "link"):
        raise ValueError(f"unknown import mode {mode!r}")
    progress = progress or (lambda *_: None)
    cancelled = cancelled or (lambda: False)
    summary = inspect_gguf(src)
    src = Path(src).resolve()
    existing = registry.by_path(src)
    if existing is not None:
        return existing
    target = src
    if mode == "copy":
        target = registry.dir / src.name
        if target.exists():
            target = registry.dir / f"{src.stem}-{registry.unique_id('copy')}{src.suffix}"
        free = shutil.disk_usage(registry.dir).free
        if summary.size + dl.DISK_MARGIN > free:
            raise ModelImportError(f"Not enough disk space to copy {src.name}: it needs "
                               f"{summary.size / 1e9:.1f} GB and {free / 1e9:.1f} GB is free in {registry.dir}. "
                               "Import it as a reference instead, or free some space.")
        part = target.with_name(target.name + ".part")
        try:
            with open(src, "rb") as fin, open(part, "wb") as fout:
                done = 0
                while block := fin.read(1 << 20):
                    if cancelled():
                        raise dl.DownloadCancelled(f"Import of {src.name} stopped; nothing was added.")
                    fout.write(block)
                    done += len(block)
                    progress(done, summary.size, f"Copying {done / 1e6:,.0f} of {summary.size / 1e6:,.0f} MB")
                fout.flush()
                os.fsync(fout.fileno())
            inspect_gguf(part)  # the copy is whole
            os.replace(part, target)
        except BaseException as e:
            _unlink_quietly(part)
            if isinstance(e, OSError):
                raise ModelImportError(f"Could not copy {src.name} into {registry.dir}: {describe_os_error(e)}. "
                                       "Nothing was added; import it again once the disk has room "
                                       "or is writable.") from e
            raise
    model = InstalledModel(
        id=registry.unique_id(_slug(summary.name)), name=summary.name, path=str(target),
        size=summary.size, source=mode, architecture=summary.architecture,
        quantization=summary.quantization, parameters=summary.parameters)
    try:
        return registry.add(model)
    except OSError as e:
        if mode == "copy":  # an unlisted copy would only take space, and the next import would copy again
            _unlink_quietly(target)
        raise ModelImportError(f"Could not add {src.name} to the list of models ({registry.dir}): "
                               f"{describe_os_error(e)}. Nothing was added; import it again once the disk "
                               "has room or is writable.") from e


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def install_from_catalog(entry: CatalogEntry, registry: ModelRegistry, progress: Progress | None = None,
                         cancelled: Callable[[], bool] | None = None) -> InstalledModel:
    """Download a catalog model (resuming a partial one), verify it and register it."""
    if entry.embedded:
        raise ModelImportError("The starter model is already part of the app.")
    dest = registry.dir / entry.filename
    dl.download(dl.hub_url(entry.repo_id, entry.filename, entry.revision), dest,
                expected_sha256=entry.sha256 or None, progress=progress, cancelled=cancelled)
    try:
        summary = inspect_gguf(dest)
    except ModelImportError:
        dest.unlink(missing_ok=True)
        raise
    model = InstalledModel(
        id=entry.id, name=entry.name, path=str(dest), size=summary.size, source="download",
        catalog_id=entry.id, architecture=summary.architecture, quantization=summary.quantization,
        parameters=summary.parameters)
    return registry.add(model)
