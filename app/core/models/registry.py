"""The models installed in the app's models folder, kept in ``models.json`` beside them.

A model is registered only once its file is complete and checked (a verified download or a
validated import); partial downloads live as ``*.part`` files and are never listed. Imports
can reference a file elsewhere instead of copying it ("link"); deleting such an entry never
deletes the user's file.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.core.atomic import atomic_write_text

INDEX = "models.json"


@dataclass
class InstalledModel:
    id: str
    name: str
    path: str
    size: int
    source: str                  # "download", "copy" or "link"
    sha256: str = ""
    catalog_id: str = ""
    architecture: str = ""
    quantization: str = ""
    parameters: int = 0
    added: float = field(default_factory=time.time)

    @property
    def file(self) -> Path:
        return Path(self.path)


class ModelRegistry:
    def __init__(self, models_dir: Path):
        self.dir = Path(models_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._index = self.dir / INDEX

    def list(self) -> list[InstalledModel]:
        try:
            raw = json.loads(self._index.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []  # unreadable index: the files are still there; re-import recovers them
        out = []
        for item in raw.get("models", []):
            try:
                out.append(InstalledModel(**item))
            except TypeError:
                continue
        return out

    def get(self, model_id: str) -> InstalledModel | None:
        return next((m for m in self.list() if m.id == model_id), None)

    def by_path(self, path: Path | str) -> InstalledModel | None:
        p = str(Path(path).resolve())
        return next((m for m in self.list() if str(Path(m.path).resolve()) == p), None)

    def add(self, model: InstalledModel) -> InstalledModel:
        models = [m for m in self.list() if m.id != model.id]
        models.append(model)
        self._write(models)
        return model

    def remove(self, model_id: str) -> None:
        """Forget the model and delete its file if the app owns it (not for linked files)."""
        models = self.list()
        target = next((m for m in models if m.id == model_id), None)
        if target is None:
            return
        self._write([m for m in models if m.id != model_id])
        if target.source != "link":
            target.file.unlink(missing_ok=True)

    def disk_usage(self) -> int:
        """Bytes the app's own model files take (linked files are the user's)."""
        return sum(m.file.stat().st_size for m in self.list()
                   if m.source != "link" and m.file.exists())

    def unique_id(self, base: str) -> str:
        ids = {m.id for m in self.list()}
        if base not in ids:
            return base
        n = 2
        while f"{base}-{n}" in ids:
            n += 1
        return f"{base}-{n}"

    def _write(self, models: list[InstalledModel]) -> None:
        atomic_write_text(self._index, json.dumps({"models": [asdict(m) for m in models]}, indent=2))
