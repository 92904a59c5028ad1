"""Run every check in order, each on its own: an exception inside one becomes that check's red
line (with the message), never the end of the report."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from app.core.doctor import embedder, index_health, models, network, storage, system
from app.core.doctor.check import FAIL, Check
from app.core.doctor.network import FirewallView
from app.core.paths import AppPaths
from app.core.settings import Settings

Progress = Callable[[int, int, str], None]  # (done, total, what runs now)


def run_checks(paths: AppPaths, settings: Settings, *, probe=None, project_index=None,
               index_error: str | None = None, indexing: bool = False, firewall: FirewallView | None = None,
               events=None, loaded_model: Path | None = None, embedder_dir: Path | None = None,
               full_hash: bool = False, progress: Progress = lambda done, total, note: None,
               cancelled: Callable[[], bool] = lambda: False) -> list[Check]:
    """The whole system check. Blocks for a few seconds (the embedder loads, a child process reads
    llama.cpp's build, a model seen for the first time is hashed); the UI runs it on a Job.

    ``probe(path) -> Hardware`` reads RAM and the free disk (default: ``hardware.probe``; tests
    inject a nearly full disk). ``firewall``: how the firewall looks from the caller (default: the
    terminal's view). ``events``: audit events for the last blocked attempts (default: this
    process's audit log). ``project_index``/``index_error``/``indexing``: the window's open
    project; without one the project in the settings is read from disk.
    """
    from app.core import hardware
    from app.core.net import audit

    probe = probe or hardware.probe
    view = firewall if firewall is not None else network.cli_firewall()
    step = [0, 0]  # (index, total) of the check that runs now, for notes from inside a check

    def note(text: str) -> None:
        progress(step[0], step[1], text)

    plan: list[tuple[str, str, Callable[[], Check]]] = [
        ("python", "Python and libraries", system.check_python),
        ("llama_build", "llama.cpp build", system.check_llama_build),
        ("active_model", "Active model", lambda: models.check_active_model(
            paths, settings, probe, loaded_model=loaded_model, full_hash=full_hash, progress=note,
            cancelled=cancelled)),
        ("starter_model", "Starter model", models.check_starter),
        ("embedder", "Code-search model", lambda: embedder.check_embedder(embedder_dir)),
        ("disk", "Free disk", lambda: storage.check_disk(paths, probe)),
        ("offline", "Offline mode", lambda: network.check_offline(
            settings.offline, events if events is not None else audit.LOG.events())),
        ("firewall", "OS firewall", lambda: network.check_firewall(settings.offline, view)),
        ("index", "Project index", lambda: index_health.check_index(
            paths, settings, project_index, last_error=index_error, indexing=indexing)),
        ("keyring", "Key store", storage.check_keyring),
        ("adapters", "LoRA adapters", lambda: models.check_adapters(paths, settings)),
        ("storage", "Where data is stored", lambda: storage.check_storage(paths)),
    ]
    out = []
    for i, (cid, title, fn) in enumerate(plan):
        if cancelled():
            break
        step[:] = [i, len(plan)]
        progress(i, len(plan), title)
        out.append(guarded(cid, title, fn))
    progress(len(out), len(plan), "")
    return out


def guarded(cid: str, title: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
        msg = str(e).strip().replace("\n", " ")[:300] or type(e).__name__
        return Check(cid, title, FAIL, f"The check could not run: {type(e).__name__}: {msg}",
                     "Copy the report and include it when you report this problem.")
