"""Which model file the app uses: the one chosen in settings, else the embedded starter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.models import embedded
from app.core.settings import Settings


@dataclass(frozen=True)
class ActiveModel:
    path: Path
    name: str
    is_starter: bool

    @property
    def banner(self) -> str | None:
        """What the window says about the model in use, if anything needs saying."""
        return embedded.BANNER if self.is_starter else None


def active_model(settings: Settings, override: str | Path | None = None) -> ActiveModel:
    """The model to load. ``override`` (a CLI ``--model``) beats settings; both beat the starter.

    A path that is set but wrong is *not* silently replaced by the starter model: loading it
    fails with a message naming it, so the user learns the setting is broken.
    """
    chosen = override or settings.model_path
    if chosen:
        p = Path(chosen).expanduser()
        return ActiveModel(path=p, name=p.stem, is_starter=False)
    starter = embedded.starter_model()
    return ActiveModel(path=starter.path, name=starter.name, is_starter=True)
