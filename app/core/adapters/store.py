"""The imported adapters, one folder each, plus which are on and how strongly.

``<data>/adapters/<id>/`` holds ``adapter.gguf`` (converted), ``manifest.json`` (as it came
in the zip), ``info.json`` (what the app shows), the zip's ``validation.jsonl`` when it had
one, and ``verdict.json`` once the adapter has been evaluated (``verdict.py``). A folder
appears by one rename of a complete staging folder, so a crash mid-import leaves either
nothing or a whole adapter.
``state.json`` keeps each adapter's enabled flag and scale; it is separate from the
folders so that toggling never rewrites an adapter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.core.atomic import atomic_write_text

STATE = "state.json"
VERDICT = "verdict.json"
VALIDATION = "validation.jsonl"
MAX_SCALE = 2.0


@dataclass
class StoredAdapter:
    id: str
    name: str
    base_model: str
    model_key: str          # ModelShape.key of the models it fits
    model_label: str        # e.g. "llama, 30 layers and hidden size 576"
    rank: int
    alpha: float
    target_modules: list[str]
    created: str
    summary: str
    eval_loss_before: float | None = None
    eval_loss_after: float | None = None
    size: int = 0
    imported: float = field(default_factory=time.time)
    enabled: bool = False
    scale: float = 1.0
    folder: str = ""
    verdict: dict | None = None   # verdict.json (verdict.Verdict.to_dict), None until evaluated

    @property
    def file(self) -> Path:
        return Path(self.folder) / "adapter.gguf"

    @property
    def validation_file(self) -> Path | None:
        """The validation split that came in the zip, if it had one."""
        p = Path(self.folder) / VALIDATION
        return p if self.folder and p.is_file() else None


class AdapterStore:
    def __init__(self, root: Path):
        self.dir = Path(root)
        self.dir.mkdir(parents=True, exist_ok=True)

    # ---- reading ---------------------------------------------------------------------------
    def list(self, model_key: str | None = None) -> list[StoredAdapter]:
        state = self._state()
        out = []
        for info in sorted(self.dir.glob("*/info.json")):
            folder = info.parent
            if folder.name.startswith("."):
                continue
            try:
                raw = json.loads(info.read_text(encoding="utf-8"))
                a = StoredAdapter(**{k: v for k, v in raw.items() if k in StoredAdapter.__dataclass_fields__})
            except (OSError, ValueError, TypeError):
                continue  # a damaged folder is skipped, never fatal
            if not (folder / "adapter.gguf").is_file():
                continue
            s = state.get(a.id, {})
            a.enabled = bool(s.get("enabled", False))
            a.scale = _clamp(s.get("scale", 1.0))
            a.folder = str(folder)
            a.verdict = _read_json(folder / VERDICT)
            if model_key is None or a.model_key == model_key:
                out.append(a)
        return sorted(out, key=lambda a: a.imported)

    def get(self, adapter_id: str) -> StoredAdapter | None:
        return next((a for a in self.list() if a.id == adapter_id), None)

    def active(self, model_key: str) -> list[tuple[Path, float]]:
        """(file, scale) of the enabled adapters that fit models with this key."""
        return [(a.file, a.scale) for a in self.list(model_key) if a.enabled]

    # ---- writing ---------------------------------------------------------------------------
    def staging(self) -> Path:
        """A scratch folder on the same disk, so that ``add`` is one rename."""
        d = self.dir / f".staging-{os.getpid()}-{time.monotonic_ns()}"
        d.mkdir(parents=True)
        return d

    def add(self, staged: Path, adapter: StoredAdapter) -> StoredAdapter:
        adapter.id = self._unique(adapter.id)
        adapter.folder = ""
        atomic_write_text(staged / "info.json", json.dumps(
            {k: v for k, v in asdict(adapter).items() if k not in ("enabled", "scale", "folder", "verdict")},
            indent=2))
        final = self.dir / adapter.id
        os.replace(staged, final)
        adapter.folder = str(final)
        return adapter

    def remove(self, adapter_id: str) -> None:
        folder = self.dir / adapter_id
        if folder.parent != self.dir or not (folder / "info.json").exists():
            return
        trash = self.dir / f".trash-{adapter_id}-{time.monotonic_ns()}"
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        state = self._state()
        state.pop(adapter_id, None)
        self._write_state(state)

    def set_enabled(self, adapter_id: str, enabled: bool) -> None:
        self._update(adapter_id, enabled=bool(enabled))

    def set_scale(self, adapter_id: str, scale: float) -> None:
        self._update(adapter_id, scale=_clamp(scale))

    def set_verdict(self, adapter_id: str, verdict: dict) -> None:
        """Store an evaluation with the adapter (replacing an earlier one)."""
        folder = self.dir / adapter_id
        if folder.parent != self.dir or not (folder / "info.json").is_file():
            raise FileNotFoundError(f"No adapter {adapter_id!r} (it may have been deleted meanwhile).")
        atomic_write_text(folder / VERDICT, json.dumps(verdict, indent=2))

    def clean(self) -> None:
        """Remove staging/trash folders left by a crash."""
        for d in self.dir.glob(".*-*"):
            if d.is_dir() and d.name.startswith((".staging-", ".trash-")):
                shutil.rmtree(d, ignore_errors=True)

    # ---- internals -------------------------------------------------------------------------
    def _unique(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "adapter"
        name, n = base, 2
        while (self.dir / name).exists():
            name, n = f"{base}-{n}", n + 1
        return name

    def _state(self) -> dict:
        try:
            raw = json.loads((self.dir / STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def _write_state(self, state: dict) -> None:
        atomic_write_text(self.dir / STATE, json.dumps(state, indent=2))

    def _update(self, adapter_id: str, **changes) -> None:
        state = self._state()
        entry = state.get(adapter_id) if isinstance(state.get(adapter_id), dict) else {}
        entry.update(changes)
        state[adapter_id] = entry
        self._write_state(state)


def _read_json(path: Path) -> dict | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _clamp(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 1.0
    return min(max(f, 0.0), MAX_SCALE) if f == f else 1.0
