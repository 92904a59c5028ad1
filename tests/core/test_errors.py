"""One user-facing error base (app/core/errors.py) and one way to word errors (app/ui/errors.py).

Every exception class app/core defines is a UserError or is listed below as internal; the old
standard bases are kept (``except ValueError`` and friends still catch them); describe_error
shows a UserError's text as it is and anything else with its class name; real bad input
reaches the user as a UserError; a Job that fails with nobody listening is still logged.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil

import pytest

import app.core
from app.core.adapters.errors import AdapterError
from app.core.adapters.importer import ModelChoice, import_adapter
from app.core.adapters.store import AdapterStore
from app.core.chat.service import ChatService, EmptyQuestion
from app.core.errors import UserError
from app.core.logs import LOGGER
from app.core.models import embedded
from app.core.models.gguf_info import GGUFError, read_gguf_info
from app.core.net import policy
from app.core.net.guard import NetworkBlocked
from app.core.net.policy import OfflineError
from app.core.chat.rules import RuleError, clean_rule
from app.core.settings import Settings
from app.core.storage import RatingError, Storage
from app.ui.errors import describe_error
from app.ui.workers import Job

# Exception classes of app/core that are NOT shown to a user, each with the reason. Anything
# else app/core defines must be a UserError (its message written for the user).
INTERNAL = {
    # ddgs's request hook raises it to carry the HTTP status out of the library; search.py turns
    # it into a SearchError with words before anything can show it.
    "app.core.web.search._HttpStatus",
    # a ValueError that every caller's "... is not valid JSON (<reason>)" message wraps: its own
    # text is only the reason ("it nests 100,000 levels deep, ...")
    "app.core.safe_json.JSONLimitError",
}

# The standard base each class had before UserError; `except <base>` clauses rely on them.
OLD_BASES = {
    "app.core.secrets.KeyringUnavailable": RuntimeError,
    "app.core.net.verify.VerifyTargetError": ValueError,
    "app.core.net.guard.NetworkBlocked": PermissionError,
    "app.core.net.policy.OfflineError": PermissionError,
    "app.core.net.firewall.linux_nft.FirewallError": RuntimeError,
    "app.core.net.firewall.helper.Refused": ValueError,
    "app.core.storage.StorageError": RuntimeError,
    "app.core.review.roles.ReviewError": ValueError,
    "app.core.web.pages.PageError": RuntimeError,
    "app.core.web.search.SearchError": RuntimeError,
    "app.core.web.search.NoResults": RuntimeError,
    "app.core.learn.training_export.ExportError": ValueError,
    "app.core.edits.apply.ApplyError": RuntimeError,
    "app.core.edits.apply.StaleFileError": RuntimeError,
    "app.core.edits.apply.UndoConflict": RuntimeError,
    "app.core.edits.match.MatchError": ValueError,
    "app.core.edits.textfile.UneditableFileError": ValueError,
    "app.core.edits.project_path.UnsafePathError": ValueError,
    "app.core.review.director.DirectorError": RuntimeError,
    "app.core.review.director.DirectorCancelled": RuntimeError,
    "app.core.engine_parts.EngineError": RuntimeError,
    "app.core.engine.ModelLoadError": RuntimeError,
    "app.core.engine.EvaluationCancelled": RuntimeError,
    "app.core.models.importer.ModelImportError": ValueError,
    "app.core.models.embedded.StarterModelMissing": FileNotFoundError,
    "app.core.models.gguf_info.GGUFError": ValueError,
    "app.core.models.download.DownloadError": RuntimeError,
    "app.core.models.download.DownloadCancelled": RuntimeError,
    "app.core.models.download.DownloadInterrupted": RuntimeError,
    "app.core.models.download.DownloadOffline": RuntimeError,
    "app.core.models.download.VerificationError": RuntimeError,
    "app.core.learn.project_set.ProjectSetError": ValueError,
    "app.core.learn.project_set.ProjectSetCancelled": ValueError,
    "app.core.run.sandbox.SandboxError": RuntimeError,
    "app.core.adapters.errors.AdapterError": ValueError,
    # raise sites that were plain ValueErrors with user-written text
    "app.core.chat.rules.RuleError": ValueError,
    "app.core.storage.RatingError": ValueError,
    "app.core.chat.service.EmptyQuestion": ValueError,
    "app.core.secrets.InvalidKey": ValueError,
}


def core_exception_classes() -> dict[str, type]:
    """Every exception class defined in an app.core module (imported for real: a module that
    does not import fails the test rather than hiding its classes)."""
    found = {}
    for info in pkgutil.walk_packages(app.core.__path__, "app.core."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_core_exception_is_a_user_error_or_listed_as_internal():
    classes = core_exception_classes()
    assert len(classes) >= 40  # the walk really found the modules
    neither = sorted(name for name, cls in classes.items() if not issubclass(cls, UserError) and name not in INTERNAL)
    assert not neither, f"not a UserError and not listed in INTERNAL: {neither}"
    stale = sorted(name for name in INTERNAL if name not in classes)
    assert not stale, f"INTERNAL names classes that no longer exist: {stale}"
    shown_internal = sorted(name for name in INTERNAL if issubclass(classes[name], UserError))
    assert not shown_internal, f"listed as internal but a UserError: {shown_internal}"


def test_the_old_standard_bases_are_kept():
    classes = core_exception_classes()
    for name, base in OLD_BASES.items():
        assert name in classes, name
        assert issubclass(classes[name], UserError) and issubclass(classes[name], base), (name, base)


@pytest.mark.parametrize("cls, base", [(OfflineError, PermissionError), (NetworkBlocked, PermissionError),
                                       (embedded.StarterModelMissing, FileNotFoundError)])
def test_oserror_subclasses_keep_oserrors_constructor(cls, base):
    e = cls("Turn Offline off to allow it.")
    assert isinstance(e, base) and isinstance(e, OSError) and isinstance(e, UserError)
    assert str(e) == "Turn Offline off to allow it." and e.errno is None
    e = cls(2, "No such file", "x.gguf")  # the errno form still fills the OSError fields
    assert (e.errno, e.strerror, e.filename) == (2, "No such file", "x.gguf")


def test_describe_error_shows_a_user_error_verbatim_and_logs_a_warning(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    e = AdapterError("The zip holds no adapter_config.json: export it again from the notebook.")
    assert describe_error(e) == "The zip holds no adapter_config.json: export it again from the notebook."
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING and "adapter_config.json" in record.getMessage()


def test_describe_error_names_anything_else_and_logs_it_once_with_its_traceback(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    try:
        {}["model_path"]
    except KeyError as e:
        error = e
    assert describe_error(error) == "KeyError: 'model_path'"
    # No broad rule for standard errors: a plain ValueError is a bug, named as one.
    assert describe_error(ValueError("invalid literal for int()")) == "ValueError: invalid literal for int()"
    assert describe_error(error) == "KeyError: 'model_path'"  # worded again: not logged again
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelno for r in records] == [logging.ERROR, logging.ERROR]
    assert "KeyError" in records[0].getMessage() and "Traceback" in records[0].getMessage()
    assert "test_describe_error_names_anything_else" in records[0].getMessage()


def test_a_user_error_without_a_message_is_a_bug():
    assert describe_error(RuleError()) == "RuleError: "


# ---- real bad input, through the real code ---------------------------------------------------
def test_a_text_file_imported_as_an_adapter(tmp_path, starter_path):
    p = tmp_path / "my-adapter.zip"
    p.write_text("not a zip at all\n")
    store = AdapterStore(tmp_path / "adapters")
    with pytest.raises(UserError) as caught:
        import_adapter(p, store, [ModelChoice("SmolLM2 starter", starter_path)])
    assert isinstance(caught.value, AdapterError)
    assert "not a zip file" in str(caught.value)
    assert describe_error(caught.value) == str(caught.value)
    assert not any((tmp_path / "adapters").glob("*/info.json"))  # nothing was added


def test_a_text_file_opened_as_a_gguf_model(text_as_gguf):
    with pytest.raises(UserError) as caught:
        read_gguf_info(text_as_gguf)
    assert isinstance(caught.value, GGUFError)
    shown = describe_error(caught.value)
    assert shown == str(caught.value) and str(text_as_gguf) in shown and "not a GGUF model file" in shown
    assert text_as_gguf.read_text().startswith("These are my notes")  # the user's file is untouched


def test_the_network_while_offline():
    policy.set_offline(True)
    with pytest.raises(OfflineError) as caught:
        policy.require_online("Web search")
    assert describe_error(caught.value).startswith("Web search needs the network, and Offline mode is on.")


def test_a_missing_starter_model(tmp_path, monkeypatch):
    monkeypatch.setenv(embedded.ENV_OVERRIDE, str(tmp_path / "gone.gguf"))
    with pytest.raises(FileNotFoundError) as caught:  # what callers catch today
        embedded.starter_model()
    assert isinstance(caught.value, UserError)
    assert describe_error(caught.value) == str(caught.value) and "starter model" in str(caught.value)


def test_user_text_that_was_a_plain_value_error(tmp_path):
    """Rules, ratings and empty questions: user errors now, still ValueErrors for the window's
    ``except ValueError``; the database keeps what it had."""
    storage = Storage(tmp_path / "app.db")
    try:
        with pytest.raises(RuleError, match="A rule needs some text"):
            storage.add_rule("   ")
        with pytest.raises(ValueError, match="keep a rule under"):
            clean_rule("x" * 10_000)
        rule = storage.add_rule("Use pytest")
        storage.remove_rule(rule.id)
        with pytest.raises(RuleError, match="no longer exists"):
            storage.update_rule(rule.id, "Use unittest")
        assert storage.rules() == []
        conv = storage.create_conversation()
        question = storage.add_message(conv.id, "user", "hi")
        with pytest.raises(RatingError, match="Only answers can be rated"):
            storage.rate(question.id, 1)
        with pytest.raises(EmptyQuestion, match="Type a question first"):
            ChatService(storage, Settings()).ask(conv.id, "   ")
        assert [m.content for m in storage.messages(conv.id)] == ["hi"]
        with pytest.raises(ValueError) as bug:  # a caller's mistake stays a plain ValueError
            storage.rate(question.id, 5)
        assert not isinstance(bug.value, UserError)
    finally:
        storage.close()


# ---- Job: failures nobody listens to ---------------------------------------------------------
def _broken_job(ctx):
    raise KeyError("no such setting")


def test_a_job_failure_with_no_slot_is_logged_and_goes_to_the_default_hook(qtbot, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger=LOGGER)
    seen = []
    monkeypatch.setattr(Job, "default_failure", seen.append)
    job = Job(_broken_job, name="broken")
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start()
    qtbot.waitUntil(lambda: bool(seen), timeout=5_000)
    assert len(seen) == 1 and isinstance(seen[0], KeyError)
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.ERROR
    assert "KeyError: 'no such setting'" in record.getMessage() and "_broken_job" in record.getMessage()


def test_a_job_failure_with_a_slot_is_left_to_the_slot(qtbot, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger=LOGGER)
    hooked, shown = [], []
    monkeypatch.setattr(Job, "default_failure", hooked.append)
    job = Job(_broken_job, name="broken").on_failure(shown.append)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start()
    qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
    assert isinstance(shown[0], KeyError) and hooked == []
    assert [r for r in caplog.records if r.name == LOGGER] == []  # the slot decides how to word it


def test_a_job_failure_with_no_slot_and_no_hook_is_still_logged(qtbot, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert Job.default_failure is None
    job = Job(lambda ctx: clean_rule(""), name="rule")
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start()
    qtbot.waitUntil(lambda: any(r.name == LOGGER for r in caplog.records), timeout=5_000)
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING and "A rule needs some text" in record.getMessage()


def test_the_window_shows_a_failure_nobody_listened_for(qtbot, app_home):
    from app.core.storage import StorageError
    from tests.support.gui import close_window, open_window

    w = open_window(qtbot, app_home)
    job = Job(lambda _ctx: (_ for _ in ()).throw(StorageError("The chat database is read-only.")), name="t")
    with qtbot.waitSignal(job.finished, timeout=5000):
        job.start()
    assert w.statusBar().currentMessage() == "The chat database is read-only."
    close_window(w)
    assert Job.default_failure is None  # the closed window no longer shows anything
