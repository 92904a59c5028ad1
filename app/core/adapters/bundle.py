"""Open the training notebook's zip without trusting it.

The zip comes from a file dialog: it may be any file, a re-zipped folder, a zip bomb or a
zip-slip archive. Nothing is extracted by the names inside it: the three expected members
(and the optional validation split) are streamed into a scratch folder under fixed names,
counting bytes as they come (the sizes in the zip's directory can lie), and anything
unexpected stops the import with a message. The contract is documented in training/README.md.
"""

from __future__ import annotations

import lzma
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from app.core.adapters.errors import AdapterError
from app.core.adapters.validation import MAX_BYTES as MAX_VALIDATION_BYTES
from app.core.adapters.validation import VALIDATION, read_bundled
from app.core import safe_json

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
MANIFEST = "manifest.json"
EXPECTED = (WEIGHTS, CONFIG, MANIFEST)
OPTIONAL = (VALIDATION,)  # the notebook's validation split, for the adapter's verdict

# A 7B model's adapter with r=64 on all seven projections is ~650 MB in float32.
MAX_WEIGHTS_BYTES = 2 * 1024**3
MAX_JSON_BYTES = 1024**2
MAX_MEMBERS = 64
# Adapter weights compress ~1.1:1 (zeros better); deflate cannot beat ~1030:1. A member that
# expands more than this is a bomb, whatever its size.
MAX_RATIO = 200
_CHUNK = 1024 * 1024


@dataclass
class AdapterBundle:
    """The zip's parts: the two JSON documents parsed, the weights as a file, and the
    validation split (checked) when the zip has one."""

    source: Path
    manifest: dict
    config: dict
    weights: Path
    validation: Path | None = None


def open_bundle(zip_path: Path, scratch: Path, cancelled: Callable[[], bool] = lambda: False) -> AdapterBundle:
    """Check the zip and stream its members into ``scratch``.

    Raises AdapterError for: not a zip, unsafe or unexpected names, missing parts, encrypted
    or linked members, members over the size or compression-ratio caps, malformed JSON, a
    validation split that is not chat JSON Lines or holds more than 200 examples.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise AdapterError(f"{zip_path} does not exist or is not a file.")
    if not zipfile.is_zipfile(zip_path):
        raise AdapterError(f"{zip_path.name} is not a zip file. Choose the <name>-lora.zip the training notebook downloaded.")
    try:
        zf = zipfile.ZipFile(zip_path)
    # ValueError: a name flagged UTF-8 that is not (UnicodeDecodeError), and other damage
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise AdapterError(f"{zip_path.name} is a damaged zip file ({e}).") from None
    with zf:
        members = _members(zf, zip_path.name)
        scratch.mkdir(parents=True, exist_ok=True)
        out = {}
        for name in (*EXPECTED, *OPTIONAL):
            info = members.get(name)
            if info is None:
                continue
            cap = {WEIGHTS: MAX_WEIGHTS_BYTES, VALIDATION: MAX_VALIDATION_BYTES}.get(name, MAX_JSON_BYTES)
            out[name] = _extract(zf, info, scratch / name, cap, zip_path.name, cancelled)
    validation = out.get(VALIDATION)
    if validation is not None:
        read_bundled(validation)  # refuses a malformed one, naming the line
    return AdapterBundle(source=zip_path, manifest=_json(out[MANIFEST], MANIFEST),
                         config=_json(out[CONFIG], CONFIG), weights=out[WEIGHTS], validation=validation)


def _members(zf: zipfile.ZipFile, label: str) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise AdapterError(f"{label} holds {len(infos)} entries; an adapter zip holds exactly {', '.join(EXPECTED)}.")
    found: dict[str, zipfile.ZipInfo] = {}
    extra: list[str] = []
    for info in infos:
        name = info.filename
        _check_name(name, label)
        if info.is_dir():
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            raise AdapterError(f"{label} contains a symbolic link ({name}); adapter zips never do.")
        if info.flag_bits & 0x1:
            raise AdapterError(f"{label} is encrypted ({name}); export it again without a password.")
        if name in EXPECTED or name in OPTIONAL:
            if name in found:
                raise AdapterError(f"{label} contains {name} twice.")
            found[name] = info
        else:
            extra.append(name)
    missing = [n for n in EXPECTED if n not in found]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            shown = ", ".join(extra[:5]) + (" …" if len(extra) > 5 else "")
            parts.append("unexpected " + shown)
        raise AdapterError(f"{label} is not an adapter zip from the training notebook ({'; '.join(parts)}). "
                           f"It must hold exactly {', '.join(EXPECTED)} at its top level "
                           f"(and optionally {', '.join(OPTIONAL)}).")
    return found


def _check_name(name: str, label: str) -> None:
    """Refuse names that would land outside a folder if anyone extracted them by name."""
    p = PurePosixPath(name.replace("\\", "/"))
    if (name.startswith(("/", "\\")) or ".." in p.parts or (len(name) > 1 and name[1] == ":")
            or "\x00" in name):
        raise AdapterError(f"{label} contains an unsafe path ({name!r}); it was not imported.")


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, cap: int, label: str,
             cancelled: Callable[[], bool]) -> Path:
    if info.file_size > cap:
        if cap < 10**7:  # a small cap (the validation split): MB rounding would hide the difference
            raise AdapterError(f"{info.filename} in {label} is {info.file_size:,} bytes; the limit is {cap:,} bytes.")
        raise AdapterError(f"{info.filename} in {label} would be {info.file_size / 1e6:.0f} MB; "
                           f"the limit is {cap / 1e6:.0f} MB.")
    if info.compress_size and info.file_size > 1024**2 and info.file_size / info.compress_size > MAX_RATIO:
        raise AdapterError(f"{info.filename} in {label} expands {info.file_size // info.compress_size}:1; "
                           "that is a zip bomb, not an adapter.")
    written = 0
    try:
        with zf.open(info) as src, open(dest, "wb") as dst:
            while True:
                if cancelled():
                    raise AdapterError("Import cancelled.")
                block = src.read(_CHUNK)
                if not block:
                    break
                written += len(block)
                # The directory's sizes can lie; count what actually comes out.
                if written > min(cap, info.file_size) or (
                        written > 1024**2 and written > MAX_RATIO * max(info.compress_size, 1)):
                    raise AdapterError(f"{info.filename} in {label} expands beyond what its zip entry "
                                       "declares; that is a zip bomb, not an adapter.")
                dst.write(block)
    except AdapterError:
        dest.unlink(missing_ok=True)
        raise
    # zlib.error / LZMAError: damaged compressed data (bz2 says OSError); ValueError: other damage
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError, ValueError,
            zlib.error, lzma.LZMAError) as e:
        dest.unlink(missing_ok=True)
        if isinstance(e, OSError) and getattr(e, "errno", None) == 28:
            raise AdapterError("The disk is full: there is no room to unpack the adapter.") from None
        raise AdapterError(f"{info.filename} in {label} cannot be read ({e}).") from None
    return dest


def _json(path: Path, name: str) -> dict:
    try:
        value = safe_json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AdapterError(f"{name} in the adapter zip is not valid JSON ({e}).") from None
    if not isinstance(value, dict):
        raise AdapterError(f"{name} in the adapter zip must be a JSON object.")
    return value
