"""Loading a model for answering: the active model, its engine, and the adapters that are on.

One function for the window and the command line, so `app ask` answers with exactly what the
window would (the same model choice, the same adapters), and a failure to apply adapters
never stops the model: it answers without them and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.engine import Engine, EngineConfig, EngineError
from app.core.models.active import ActiveModel, active_model

if TYPE_CHECKING:
    from app.core.adapters.store import AdapterStore
    from app.core.settings import Settings


@dataclass
class LoadedModel:
    model: ActiveModel
    engine: Engine
    note: str | None = None  # what the user should know (adapters left off, and why)


def load_engine(settings: "Settings", adapters: "AdapterStore | None", model_path: str | None = None,
                n_ctx: int | None = None, n_threads: int | None = None) -> LoadedModel:
    """Resolve the active model (``model_path`` overrides the setting), load it, and put the
    enabled adapters for its shape on it. Blocking (seconds): call it on a worker."""
    model = active_model(settings, model_path)
    engine = Engine(model.path, EngineConfig(n_ctx=n_ctx or settings.n_ctx, n_threads=n_threads or settings.n_threads))
    note = None
    if adapters is not None:
        from app.core.adapters.manifest import ModelShape
        try:
            engine.set_adapters(adapters.active(ModelShape.from_gguf(engine.model.info).key))
        except EngineError as e:
            note = f"{e} The model runs without adapters."
    return LoadedModel(model, engine, note)
