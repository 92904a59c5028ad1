"""``python -m app serve``: the local API without the window, with the same model loading,
gate and server as the window's Settings → Local API."""

from __future__ import annotations

import os
import sys


def serve(args) -> int:
    """The local API without the window: the same model loading, gate and server as the window's."""
    from app.core.adapters.store import AdapterStore
    from app.core.api import run
    from app.core.api.backend import ServedModel
    from app.core.api.gate import EngineGate
    from app.core.api.keys import ENV_KEY, api_key
    from app.core.models.loading import load_engine
    from app.core.paths import app_paths
    from app.core.settings import Settings

    paths = app_paths(args.home).ensure()
    settings = Settings.load(paths.settings_file)
    api_key()  # before the model loads: no keyring is a message, not a wait
    store = None if args.no_adapters else AdapterStore(paths.data_dir / "adapters")
    loaded = load_engine(settings, store, args.model, n_ctx=args.ctx, n_threads=args.threads)
    if loaded.note:
        print(f"warning: {loaded.note}", file=sys.stderr)
    served = ServedModel(loaded.model.name, loaded.engine)
    wanted = settings.api_completion_model if args.completion_model is None else args.completion_model
    api = run.prepare(EngineGate(), lambda: served, settings.generation, lambda: _rules(paths), paths.models_dir,
                      wanted, loaded.model.path, loaded.engine.n_ctx, loaded.engine.model.n_threads, args.host,
                      args.port)
    if api.note:
        print(api.note, file=sys.stderr, flush=True)
    server, backend = api.server, api.server.backend
    try:
        server.serve_forever(lambda: print(
            f"Local API on {server.url}/v1 serving {served.name}"
            + (f" (completion: {api.completion.name})" if api.completion else "") + " (Ctrl+C stops it). "
            + ("Offline mode is on (only loopback). " if settings.offline else "Offline mode is off. ")
            + (f"Key: {backend.key}" if args.show_key else
               f"Key: from {ENV_KEY}." if os.environ.get(ENV_KEY, "").strip() else
               "Key: in the OS keyring; --show-key prints it."), flush=True))
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
        loaded.engine.close()
    print(f"Stopped after {backend.requests} requests.", file=sys.stderr)
    return 0


def _rules(paths) -> list[str]:
    """The user's standing rules (global ones), read per request that asks for them."""
    from app.core.storage import Storage, StorageError
    try:
        storage = Storage(paths.database)
    except StorageError:
        return []
    try:
        return [r.text for r in storage.active_rules(None)]
    finally:
        storage.close()
