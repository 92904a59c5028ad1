"""``python -m app serve``: the local API without the window, with the same model loading,
gate and server as the window's Settings → Local API."""

from __future__ import annotations

import sys


def serve(args) -> int:
    """The local API without the window: the same model loading, gate and server as the window's."""
    from app.core.adapters.store import AdapterStore
    from app.core.api.backend import ApiBackend, ServedModel
    from app.core.api.gate import EngineGate
    from app.core.api.keys import api_key
    from app.core.api.service import ApiServer
    from app.core.models.loading import load_engine
    from app.core.paths import app_paths
    from app.core.settings import Settings

    paths = app_paths(args.home).ensure()
    settings = Settings.load(paths.settings_file)
    key = api_key()  # before the model loads: no keyring is a message, not a wait
    store = None if args.no_adapters else AdapterStore(paths.data_dir / "adapters")
    loaded = load_engine(settings, store, args.model, n_ctx=args.ctx, n_threads=args.threads)
    if loaded.note:
        print(f"warning: {loaded.note}", file=sys.stderr)
    served = ServedModel(loaded.model.name, loaded.engine)
    backend = ApiBackend(EngineGate(), lambda: served, key, settings.generation, rules=lambda: _rules(paths))
    server = ApiServer(backend, args.host, args.port)
    try:
        server.serve_forever(lambda: print(
            f"Local API on {server.url}/v1 serving {served.name} (Ctrl+C stops it). "
            + (f"Key: {key}" if args.show_key else "Key: in the OS keyring; --show-key prints it."), flush=True))
    except KeyboardInterrupt:
        pass
    finally:
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
