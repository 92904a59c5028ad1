"""Command line: ``python -m app`` opens the window; ``python -m app ask "..."`` answers in
the terminal with the same engine (for scripts, benchmarks and headless machines);
``index`` and ``search`` build and query a project's index as the Project panel does;
``adapters list|import ZIP`` manages LoRA adapters as the Adapters panel does;
``doctor [--json]`` is Help → System check (exit status 1 when something needed is broken);
``export-chats OUT.jsonl`` is File → Export training data; ``serve`` is Settings → Local API
without the window (an OpenAI-compatible API on 127.0.0.1 for the user's editor)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app import APP_NAME, __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app", description=f"{APP_NAME}: a local coding assistant.")
    p.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    p.add_argument("--home", help="keep settings, chats and models under this folder "
                                  "(default: the platform's user folders)")
    sub = p.add_subparsers(dest="command")
    ask = sub.add_parser("ask", help="answer one question on stdout")
    ask.add_argument("question", help="the question; '-' reads it from stdin")
    ask.add_argument("--model", help="path of a .gguf model (default: the active model)")
    ask.add_argument("--max-tokens", type=int, help="longest answer in tokens")
    ask.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    ask.add_argument("--ctx", type=int, help="context size in tokens")
    ask.add_argument("--greedy", action="store_true", help="deterministic decoding")
    ask.add_argument("--stats", action="store_true", help="print speed figures to stderr")
    ask.add_argument("--project", help="answer from this project folder's code (indexes it first)")
    ask.add_argument("--no-adapters", action="store_true", help="ignore the enabled LoRA adapters")
    index = sub.add_parser("index", help="index (or update the index of) a project folder")
    index.add_argument("folder")
    search = sub.add_parser("search", help="search a project folder's index")
    search.add_argument("folder")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=10, help="how many results")
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    adapters = sub.add_parser("adapters", help="list the LoRA adapters, or import one from a zip")
    adapters.add_argument("action", choices=["list", "import"])
    adapters.add_argument("zip", nargs="?", help="the <name>-lora.zip from training/colab_training.ipynb")
    doctor = sub.add_parser("doctor", help="check the installation; exit status 0 when everything needed works")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--full", action="store_true", help="re-read the whole model file for its checksum")
    chats = sub.add_parser("export-chats", help="write well-rated conversations as training data (JSONL), "
                                                "as File → Export training data does")
    chats.add_argument("out", help="the .jsonl file to write")
    chats.add_argument("--all", action="store_true", help="every answer not rated down, not only the rated ones")
    chats.add_argument("--min-chars", type=int, default=0, help="leave out answers shorter than this")
    chats.add_argument("--since", help="first day, YYYY-MM-DD")
    chats.add_argument("--until", help="last day, YYYY-MM-DD")
    chats.add_argument("--project", help="only conversations used with this project folder")
    serve = sub.add_parser("serve", help="serve the model to your editor: an OpenAI-compatible API on loopback")
    serve.add_argument("--port", type=int, help="port (default 8012, or a free one if it is taken; 0: any free one)")
    serve.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1"], help="loopback address")
    serve.add_argument("--model", help="path of a .gguf model (default: the active model)")
    serve.add_argument("--ctx", type=int, help="context size in tokens")
    serve.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    serve.add_argument("--no-adapters", action="store_true", help="ignore the enabled LoRA adapters")
    serve.add_argument("--show-key", action="store_true", help="print the API key (kept in the OS keyring)")
    serve.add_argument("--completion-model", metavar="ID|PATH",
                       help="a second model for completion only (a models-folder id or a .gguf path; default: the "
                            "one chosen in Settings → Local API; \"\" for none), loaded if it fits beside the first")
    return p


def _project_index(home, folder: str):
    """The folder's index, brought up to date with progress on stderr."""

    from app.core.index.embed import Embedder
    from app.core.index.indexer import ProjectIndex, index_dir_for
    from app.core.paths import app_paths

    root = Path(folder)
    if not root.is_dir():
        raise SystemExit(f"error: {folder} is not a folder")
    paths = app_paths(home).ensure()
    pi = ProjectIndex(root, index_dir_for(root, paths.cache_dir), Embedder())
    for n in pi.notices:
        print(n, file=sys.stderr)
    shown = [0.0]

    def progress(p) -> None:
        import time
        if time.monotonic() - shown[0] > 2:
            shown[0] = time.monotonic()
            print(p.text(), file=sys.stderr)

    stats = pi.update(progress=progress)
    return pi, stats


def cmd_index(args) -> int:
    pi, stats = _project_index(args.home, args.folder)
    print(f"{stats.summary()} in {stats.seconds:.1f} s; {stats.changed} files read, "
          f"{stats.embedded_now} chunks embedded, {stats.removed} removed")
    pi.close()
    return 0


def cmd_search(args) -> int:
    from app.core.index.rank import RankWeights
    from app.core.paths import app_paths
    from app.core.settings import Settings

    r = Settings.load(app_paths(args.home).settings_file).retrieval
    pi, _ = _project_index(args.home, args.folder)
    for i, h in enumerate(pi.search(args.query, args.k, RankWeights.from_settings(r), args.mode), 1):
        print(f"{i:2d}. {h.citation}  {h.chunk.symbol}  ({h.score:.4f})")
    pi.close()
    return 0


def cli_turn(paths, settings, engine, question: str, project: str | None = None, index=None, params=None):
    """(PendingAnswer, messages, params) for one question, built by ChatService exactly as the
    window builds a first question: the user's rules (the project's too), and with ``index``
    the project's best chunks."""
    import dataclasses

    from app.core.chat.service import ChatService
    from app.core.storage import Storage, StorageError

    # --project asks for grounding explicitly, whatever the window's toggle says.
    settings.retrieval = dataclasses.replace(settings.retrieval, use_project=index is not None)
    try:
        storage = Storage(paths.database)
    except StorageError as e:
        print(f"warning: {e} Answering without your rules.", file=sys.stderr)
        storage = None
    try:
        chat = ChatService(storage, settings)
        chat.project = Path(project).expanduser().resolve() if project else None
        if index is not None:
            from app.core.index.context import PROMPT_CHUNKS
            from app.core.index.rank import RankWeights
            weights = RankWeights.from_settings(settings.retrieval)
            chat.retriever = lambda q: index.search(q, PROMPT_CHUNKS, weights)
        pending = chat.single_turn(question)
        return pending, chat.prompt(engine, pending), params or chat.params()
    finally:
        if storage is not None:
            storage.close()


def cmd_ask(args) -> int:
    """One question through the same ChatService prompt and model loading as the window."""
    from app.core.adapters.store import AdapterStore
    from app.core.engine import EngineError, GenerationParams
    from app.core.errors import UserError
    from app.core.models.loading import load_engine
    from app.core.paths import app_paths
    from app.core.settings import Settings

    paths = app_paths(args.home)
    settings = Settings.load(paths.settings_file)
    question = sys.stdin.read() if args.question == "-" else args.question
    if not question.strip():
        print("error: the question is empty", file=sys.stderr)
        return 2
    store = None if args.no_adapters else AdapterStore(paths.data_dir / "adapters")
    try:
        loaded = load_engine(settings, store, args.model, n_ctx=args.ctx, n_threads=args.threads)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    model, engine = loaded.model, loaded.engine
    if loaded.note:
        print(f"warning: {loaded.note}", file=sys.stderr)
    if args.max_tokens:
        settings.generation.max_tokens = args.max_tokens  # the prompt keeps room for this answer
    params = GenerationParams.greedy(settings.generation.max_tokens) if args.greedy else None
    pi = _project_index(args.home, args.project)[0] if args.project else None
    try:
        pending, messages, params = cli_turn(paths, settings, engine, question, args.project, pi, params)
    finally:
        if pi is not None:
            pi.close()

    def out(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        result = engine.chat(messages, params, on_token=out)
    except EngineError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\n(interrupted)", file=sys.stderr)
        return 130
    finally:
        sys.stdout.write("\n")
    if pending.sources:
        print("Sources: " + ", ".join(h.citation for h in pending.sources))
    if args.stats:
        print(f"[{model.name}] {result.completion_tokens} tokens, {result.tokens_per_s:.1f} tok/s, "
              f"first token {result.time_to_first_token_s or 0:.2f} s, load {engine.model.load_s:.2f} s",
              file=sys.stderr)
    engine.close()
    return 0 if result.text.strip() else 1


def cmd_serve(args) -> int:
    """The local API without the window (app/core/api/cli.py)."""
    from app.core.api.cli import serve
    return serve(args)


def _display_problem() -> str | None:
    """Qt aborts with a misleading xcb-cursor message when there is no display at all."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("No display found (neither DISPLAY nor WAYLAND_DISPLAY is set). Start the app from a "
            "desktop session, use `python -m app ask \"...\"` in a terminal, or set "
            "QT_QPA_PLATFORM=offscreen for a headless run.")


def cmd_gui(args) -> int:
    problem = _display_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    from PySide6.QtWidgets import QApplication

    from app.core.paths import app_paths
    from app.core.storage import StorageError
    from app.ui.main_window import AppContext, MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("org.offlinecoder.OfflineCoder")  # the .desktop file (Wayland app id)
    from app.ui.app_icon import app_icon
    app.setWindowIcon(app_icon())
    try:
        ctx = AppContext.open(app_paths(args.home))
    except (StorageError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if sys.platform.startswith("linux"):
        from app.core.net.firewall.client import FirewallClient
        ctx.firewall = FirewallClient()
    from PySide6.QtCore import QObject, Signal

    from app.core.logs import install_crash_handler, log, setup_logging

    class Crashes(QObject):  # a crash on any thread reaches the window through a queued signal
        reported = Signal(str)

    setup_logging(ctx.paths.log_dir)
    log.info("started %s %s", APP_NAME, __version__)
    crashes = Crashes()
    install_crash_handler(ctx.paths.log_dir, lambda path, message: crashes.reported.emit(
        f"Something went wrong ({message}). A report without keys or file contents was saved to {path}."))
    from app import smoke  # OFFLINE_CODER_SMOKE=1: the packaging checks' mode (app/smoke.py)
    if smoke.enabled():
        smoke.keep_stdout()  # before the model starts loading
    window = MainWindow(ctx)
    crashes.reported.connect(window.features.chat.panel.show_error)
    window.show()
    if smoke.enabled():
        smoke.attach(app, window)
    rc = app.exec()
    ctx.storage.close()
    return rc


def _network_guard(home) -> None:
    """Before anything can open a socket: the audit hook, and offline mode as last chosen."""
    from app.core.net import guard, policy
    from app.core.paths import app_paths
    from app.core.settings import Settings

    guard.install()
    policy.set_offline(Settings.load(app_paths(home).settings_file).offline)


def cmd_adapters(args) -> int:
    from app.core.adapters.errors import AdapterError
    from app.core.adapters.importer import ModelChoice, candidate_models, import_adapter
    from app.core.adapters.store import AdapterStore
    from app.core.models.active import active_model
    from app.core.models.embedded import StarterModelMissing
    from app.core.paths import app_paths
    from app.core.settings import Settings

    paths = app_paths(args.home).ensure()
    store = AdapterStore(paths.data_dir / "adapters")
    if args.action == "list":
        for a in store.list():
            state = f"on ×{a.scale:.2f}" if a.enabled else "off"
            print(f"{a.id}\t{state}\t{a.model_label}\t{a.summary}")
        return 0
    if not args.zip:
        print("error: name the adapter zip to import", file=sys.stderr)
        return 2
    try:
        model = active_model(Settings.load(paths.settings_file))
        loaded = ModelChoice(model.name, model.path)
    except StarterModelMissing:
        loaded = None
    try:
        a = import_adapter(Path(args.zip), store, candidate_models(loaded, paths.models_dir),
                           progress=lambda p: print(f"{p.stage}…", file=sys.stderr) if not p.total else None)
    except AdapterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"imported {a.id} for {a.model_label}: {a.summary}")
    return 0


def cmd_doctor(args) -> int:
    from app.core import doctor
    from app.core.paths import app_paths
    from app.core.settings import Settings

    paths = app_paths(args.home).ensure()
    checks = doctor.run_checks(paths, Settings.load(paths.settings_file), full_hash=args.full)
    print(doctor.to_json(checks) if args.json else doctor.format_report(checks).rstrip("\n"))
    return doctor.exit_code(checks)


def cmd_export_chats(args) -> int:
    from datetime import date

    from app.core.paths import app_paths
    from app.core.settings import Settings
    from app.core.storage import Storage, StorageError
    from app.core.learn.training_export import ExportError, ExportFilter, export_training_data

    try:
        since, until = (date.fromisoformat(d) if d else None for d in (args.since, args.until))
    except ValueError as e:
        print(f"error: {e}; give dates as YYYY-MM-DD", file=sys.stderr)
        return 2
    paths = app_paths(args.home)
    project = str(Path(args.project).expanduser().resolve()) if args.project else None
    filt = ExportFilter(only_rated=not args.all, min_chars=args.min_chars, since=since, until=until, project=project)
    try:
        storage = Storage(paths.database)
    except StorageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        report = export_training_data(storage, Path(args.out), filt,
                                      system_prompt=Settings.load(paths.settings_file).system_prompt)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        storage.close()
    print(report.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["--firewall-helper"]:
        # The frozen app's privileged helper (app/core/net/firewall/client.py; root only).
        from app.core.net.firewall.helper import main as helper_main
        return helper_main(raw[1:])
    if raw[:1] == ["--net-probe"]:
        # Verify's child in a frozen app (app/core/net/verify.py): before the guard is installed.
        from app.core.net.verify import probe_main
        return probe_main(raw[1:])
    if raw[:1] == ["--probe-adapter"]:
        # The frozen app probes an adapter in a child of itself (app/core/adapters/probe.py).
        from app.core.adapters.probe import main as probe_main
        return probe_main(raw[1:])
    args = _parser().parse_args(argv)
    _network_guard(getattr(args, "home", None))
    commands = {"ask": cmd_ask, "index": cmd_index, "search": cmd_search, "adapters": cmd_adapters,
                "doctor": cmd_doctor, "export-chats": cmd_export_chats, "serve": cmd_serve}
    from app.core.errors import UserError
    try:
        return commands.get(args.command, cmd_gui)(args)
    except UserError as e:  # written for the user: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
