"""Every write the app makes, made to fail. Each write-side call of an operation (open for
writing, write, fsync, rename, mkdir: tests/support/faults.py) fails in turn with ENOSPC, EIO,
EACCES or EROFS; SQLite, which writes on its own, meets a real full tmpfs. After each fault: a
message written for the user (a UserError, or the operation's documented False), the previous
state intact, and the same operation works once the fault is gone."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from app.core.errors import UserError
from tests.support.faults import ERRORS, faults, plan


def snapshot(folder: Path) -> dict[str, object]:
    """Every file (bytes and mode) and folder under ``folder``: the state a failed write must keep."""
    out: dict[str, object] = {}
    for p in sorted(Path(folder).rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = "dir" if p.is_dir() else (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


def fill(disk: Path, leave: int = 0) -> Path:
    """Take a tmpfs's free space but ``leave`` bytes, with a real file (unbuffered: nothing is
    held back to fail again on close)."""
    ballast = disk / "ballast"
    with open(ballast, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    if leave:
        os.truncate(ballast, max(0, ballast.stat().st_size - leave))
    return ballast


# ---- settings ------------------------------------------------------------------------------

def test_settings_save_keeps_the_previous_file_at_every_fault(tmp_path):
    from app.core.settings import Settings, SettingsError
    path = tmp_path / "config" / "settings.toml"
    Settings(n_ctx=1111).save(path)
    before = path.read_bytes()
    new = Settings(n_ctx=2222)
    with faults(tmp_path) as seen:
        new.save(path)
    assert [seen.count(op) for op in ("open", "fsync", "replace")] == [1, 1, 1] and seen.count("write") >= 1
    for n, err in plan(seen, every_error=True):
        path.write_bytes(before)
        with faults(tmp_path, n, err) as f, pytest.raises(SettingsError, match="could not be saved.*previous settings"):
            new.save(path)
        assert f.fired, (n, err)
        assert path.read_bytes() == before and Settings.load(path).n_ctx == 1111
        assert os.listdir(path.parent) == ["settings.toml"]  # no temporary left
        new.save(path)  # retried once the fault is gone
        assert Settings.load(path).n_ctx == 2222


def test_settings_save_from_the_app_into_a_missing_folder(tmp_path):
    """The window saves through AppContext.save_settings; its config folder may not exist yet."""
    from app.core.context import AppContext
    from app.core.paths import app_paths
    from app.core.settings import Settings, SettingsError
    from app.core.storage import Storage
    paths = app_paths(tmp_path / "home")
    ctx = AppContext(paths, Settings(n_ctx=3333), Storage(tmp_path / "app.db"))
    try:
        with faults(tmp_path / "home") as seen:
            ctx.save_settings()
        assert seen.calls[0].op == "mkdir"
        for n, err in plan(seen):
            shutil.rmtree(paths.config_dir)
            with faults(tmp_path / "home", n, err) as f, pytest.raises(SettingsError, match=str(paths.settings_file)):
                ctx.save_settings()
            assert f.fired and not paths.settings_file.exists()
            ctx.save_settings()
            assert Settings.load(paths.settings_file).n_ctx == 3333
    finally:
        ctx.storage.close()


# ---- chats (SQLite) -------------------------------------------------------------------------

def _chats(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return c.execute("SELECT m.conversation_id, m.role, m.content FROM messages m ORDER BY m.id").fetchall()


@pytest.mark.parametrize("leave", [0, 8 << 10, 64 << 10, 256 << 10])
def test_chats_on_a_full_disk_fail_with_a_message_and_keep_earlier_chats(tmpfs, leave):
    """Regression: a full disk raised sqlite3.OperationalError (not a message for the user), and
    the ROLLBACK after it failed too ("no transaction is active": SQLite had ended it itself).
    ``leave`` moves the point where the disk fills: inside the message, the WAL, its index."""
    from app.core.storage import Storage, StorageError
    disk = tmpfs("2m")
    db = disk / "app.db"
    s = Storage(db)
    old = s.create_conversation("old chat")
    s.add_message(old.id, "user", "a question kept")
    s.add_message(old.id, "assistant", "an answer kept")
    before = _chats(db)
    ballast = fill(disk, leave)
    big = "x" * (300 << 10)
    with pytest.raises(StorageError, match="The message was not saved: the disk is full.*Earlier chats are kept"):
        for _ in range(20):  # the disk may take a message or two before it is full
            s.add_message(old.id, "user", big)
    got = _chats(db)
    assert got[:len(before)] == before and all(c == big for *_, c in got[len(before):])
    assert [m.content for m in s.messages(old.id)][:2] == ["a question kept", "an answer kept"]
    reopened = Storage(db)  # the history opens while the disk is still full
    assert reopened.messages(old.id)[0].content == "a question kept"
    reopened.close()
    ballast.unlink()
    m = s.add_message(old.id, "assistant", "after the disk was freed")  # retried
    new = s.create_conversation("new chat")
    s.close()
    again = Storage(db)
    assert again.messages(old.id)[-1].id == m.id and again.conversation(new.id).title == "new chat"
    again.close()


def test_a_new_chat_database_on_a_full_disk_says_the_disk_is_full(tmpfs):
    """Regression: it said the database "cannot be opened ... Move it aside", advice for a damaged
    file, when only the disk was full."""
    from app.core.storage import Storage, StorageError
    disk = tmpfs("256k")
    ballast = fill(disk)
    with pytest.raises(StorageError, match="cannot be opened: the disk is full") as e:
        Storage(disk / "app.db")
    assert "Move it aside" not in str(e.value)
    ballast.unlink()
    s = Storage(disk / "app.db")  # retried
    s.add_message(s.create_conversation().id, "user", "hello")
    s.close()


def test_chat_folder_that_cannot_be_made_is_a_message(tmp_path):
    from app.core.storage import Storage, StorageError
    db = tmp_path / "data" / "app.db"
    with faults(tmp_path) as seen:
        Storage(db).close()
    assert [c.op for c in seen.calls] == ["mkdir"]
    shutil.rmtree(db.parent)
    for err in ERRORS:
        with faults(tmp_path, 1, err), pytest.raises(StorageError, match="cannot be created"):
            Storage(db)
    Storage(db).close()


# ---- model import ---------------------------------------------------------------------------

def test_model_import_adds_nothing_at_every_fault(tmp_path):
    """Regression: a failed copy raised a bare OSError, and a failed registry write left the
    copied file in the models folder, unlisted (and copied again on the next try)."""
    from app.core.models.importer import ModelImportError, import_gguf
    from app.core.models.registry import ModelRegistry
    from tests.support.gguf_writer import write_gguf
    (tmp_path / "src").mkdir()
    prev_src = write_gguf(tmp_path / "src" / "prev.gguf", {"general.architecture": "llama", "general.name": "Prev"})
    src = write_gguf(tmp_path / "src" / "tiny.gguf", {"general.architecture": "llama", "general.name": "Tiny"})
    models = tmp_path / "models"
    registry = ModelRegistry(models)
    prev = import_gguf(prev_src, registry)
    state = snapshot(models)
    with faults(models) as seen:
        m = import_gguf(src, registry)
    registry.remove(m.id)
    assert snapshot(models) == state
    assert {c.op for c in seen.calls} == {"open", "write", "fsync", "replace"}
    for n, err in plan(seen, every_error=True):
        with faults(models, n, err) as f, pytest.raises(ModelImportError, match="Nothing was added"):
            import_gguf(src, registry)
        assert f.fired, (n, err)
        assert snapshot(models) == state  # no .part, no unlisted copy, models.json as it was
        m = import_gguf(src, registry)
        assert [x.id for x in registry.list()] == [prev.id, m.id] and m.file.read_bytes() == src.read_bytes()
        registry.remove(m.id)


# ---- adapter import -------------------------------------------------------------------------

def test_adapter_import_changes_nothing_at_every_fault(tmp_path, starter_path):
    """Regression: the staging folder was made outside the import's error handling, so a
    failed mkdir was a bare OSError."""
    from app.core.adapters.errors import AdapterError
    from app.core.adapters.importer import ModelChoice, import_adapter
    from app.core.adapters.store import AdapterStore
    from tests.support.adapter_zip import make_adapter_zip
    store = AdapterStore(tmp_path / "adapters")
    models = [ModelChoice("the starter model", starter_path)]
    first = import_adapter(make_adapter_zip(tmp_path / "first-lora.zip"), store, models, probe=False)
    second = make_adapter_zip(tmp_path / "second-lora.zip", seed=1)
    state = snapshot(store.dir)
    with faults(store.dir) as seen:
        a = import_adapter(second, store, models, probe=False)
    whole = {k: v for k, v in snapshot(Path(a.folder)).items() if k != "info.json"}
    shutil.rmtree(a.folder)
    assert snapshot(store.dir) == state
    assert {c.op for c in seen.calls} >= {"mkdir", "open", "write", "fsync", "replace"}
    assert len(seen.calls) < 60, len(seen.calls)  # every call is injected: keep the import small
    for i, (n, err) in enumerate(plan(seen)):
        with faults(store.dir, n, err) as f:
            try:
                a = import_adapter(second, store, models, probe=False)
            except AdapterError as e:  # its message names the step
                assert str(e)
                a = None
        assert f.fired, (n, err)
        if a is None:
            assert snapshot(store.dir) == state, f.fired  # no staging folder, the first adapter untouched
        else:  # a fault the copy rode over (shutil.copyfile falls back from sendfile to read/write)
            assert f.fired.op == "write" and err != errno.ENOSPC, f.fired
            assert {k: v for k, v in snapshot(Path(a.folder)).items() if k != "info.json"} == whole
            shutil.rmtree(a.folder)
        if i % 3 == 0:
            a = import_adapter(second, store, models, probe=False)  # retried
            assert [x.id for x in store.list()] == [first.id, a.id]
            shutil.rmtree(a.folder)


# ---- downloads ------------------------------------------------------------------------------

def test_download_keeps_the_good_file_and_resumes_after_every_fault(tmp_path, monkeypatch):
    """Regression: the partial's note, a failed mkdir and the final rename raised bare OSErrors."""
    from app.core.models.download import DownloadError, download, hub_url, partial_size
    from tests.support.fake_hub import FakeHub
    name = "tiny.gguf"
    payload = os.urandom(300_000)
    models = tmp_path / "models"
    dest = models / name
    old = b"the previous, good version of the file"
    with FakeHub() as hub:
        hub.files[name] = payload
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        url = hub_url("Test/Tiny-GGUF", name)
        for err in ERRORS:  # the models folder cannot be made
            with faults(tmp_path, 1, err, ops=("mkdir",)), pytest.raises(DownloadError, match="Cannot create"):
                download(url, dest)
            assert not models.exists()
        models.mkdir()
        dest.write_bytes(old)
        with faults(tmp_path) as seen:
            download(url, dest)
        assert {c.op for c in seen.calls} == {"open", "write", "fsync", "replace"}
        for n, err in plan(seen, every_error=True):
            dest.write_bytes(old)
            with faults(tmp_path, n, err) as f, pytest.raises(DownloadError):
                download(url, dest)
            assert f.fired, (n, err)
            assert dest.read_bytes() == old  # never half a file in place of the good one
            part = dest.with_name(name + ".part")
            kept = partial_size(dest)
            assert payload.startswith(part.read_bytes() if part.exists() else b"")
            hub.ranges.clear()
            assert download(url, dest) == dest  # retried
            assert dest.read_bytes() == payload and sorted(os.listdir(models)) == [name]
            if kept:
                assert hub.ranges in ([f"bytes={kept}-"], [])  # resumed (or only verified), never from 0


# ---- the project index ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedder():
    from app.core.index.embed import Embedder
    return Embedder()


def test_index_update_keeps_the_index_at_every_fault(tmp_path, embedder):
    """Regression: only a full disk had a message; a read-only or failing one (EIO, EROFS,
    EACCES) escaped as a bare OSError."""
    from app.core.index.indexer import IndexDiskFull, IndexWriteError, ProjectIndex
    from tests.support.index_project import make_project
    root = make_project(tmp_path / "shop")
    base = tmp_path / "base"
    pi = ProjectIndex(root, base, embedder)
    pi.update()
    pi.close()
    (root / "fresh.py").write_text('def frobnicate_widgets(count):\n    """Frobnicate the widgets."""\n'
                                   "    return count * 2\n")
    idx = tmp_path / "idx"
    shutil.copytree(base, idx)
    with faults(idx) as seen:
        pi = ProjectIndex(root, idx, embedder)
        pi.update()
        pi.close()
    assert seen.count("replace") >= 1
    for n, err in plan(seen, every_error=True):
        shutil.rmtree(idx)
        shutil.copytree(base, idx)
        expected = IndexDiskFull if err == errno.ENOSPC else IndexWriteError
        with faults(idx, n, err) as f, pytest.raises(expected, match="(?i)what was indexed so far is kept"):
            pi = ProjectIndex(root, idx, embedder)
            try:
                pi.update()
            finally:
                pi.close()
        assert f.fired
        pi = ProjectIndex(root, idx, embedder)  # the index opens, with what it had
        try:
            assert not list(idx.glob("*.damaged")) and not any("damaged" in x for x in pi.notices)
            assert pi.search("apply a discount to the cart total", 5, mode="bm25")
            pi.update()  # retried
            assert pi.search("frobnicate widgets", 3)[0].chunk.path == "fresh.py"
        finally:
            pi.close()


def test_a_new_index_in_a_folder_that_cannot_be_made_is_a_message(tmp_path, embedder):
    from app.core.index.indexer import ProjectIndex
    from tests.support.index_project import make_project
    root = make_project(tmp_path / "shop")
    for err in ERRORS:
        with faults(tmp_path / "cache", 1, err, ops=("mkdir",)), \
                pytest.raises(UserError, match="could not be written|is full"):
            ProjectIndex(root, tmp_path / "cache" / "idx", embedder)


def test_an_index_on_a_full_disk_is_never_set_aside_as_damaged(tmp_path, tmpfs, embedder):
    """Regression: opening an index on a full disk failed in SQLite, which was taken for damage:
    the good index was renamed *.damaged and rebuilt from nothing."""
    from app.core.index.indexer import ProjectIndex
    from tests.support.index_project import make_project
    disk = tmpfs("16m")
    root = make_project(tmp_path / "shop")
    pi = ProjectIndex(root, disk / "idx", embedder)
    stats = pi.update()
    pi.close()
    ballast = fill(disk)
    try:
        pi = ProjectIndex(root, disk / "idx", embedder)
        pi.close()
    except UserError as e:
        assert "is full" in str(e)
    assert not list((disk / "idx").glob("*.damaged"))
    ballast.unlink()
    pi = ProjectIndex(root, disk / "idx", embedder)
    try:
        assert not pi.notices and pi.store.chunk_count() == stats.chunks
        assert pi.update().changed == 0
    finally:
        pi.close()


# ---- edits and their undo records -----------------------------------------------------------

FENCE = "```"
ANSWER = (f"a.py\n{FENCE}python\nA = 2\n{FENCE}\n\nsrc/deep/new.py\n{FENCE}python\nNEW = 1\n{FENCE}\n\n"
          f"b.txt\n{FENCE}\nb changed\n{FENCE}\n\nDELETE README.md\n")


@pytest.fixture
def edit_project(tmp_path):
    from app.core.edits import plan_changes
    root = tmp_path / "proj"
    root.mkdir()
    (root / "a.py").write_text("A = 1\n")
    (root / "b.txt").write_text("b\n")
    (root / "b.txt").chmod(0o640)
    (root / "README.md").write_text("# Demo\n")
    return root, plan_changes(root, ANSWER)


def counted_apply(tmp_path, root, cs):
    """(store, picks, snapshot before, the calls) of one apply and its undo, counted so each
    call can fail in turn (the undo folder made first: every later run makes the same calls)."""
    from app.core.edits import UndoStore, apply_changes, undo
    store = UndoStore(tmp_path / "undo")
    store.folder.mkdir()
    picks = [(c, None) for c in cs.changes]
    original = snapshot(root)
    with faults(tmp_path) as seen:
        record = apply_changes(root, picks, store)
    undo(store, record)
    return store, picks, original, seen


def test_apply_writes_nothing_at_every_fault_and_can_be_applied_again(tmp_path, edit_project):
    """Regression: a failure saving the record as applied left the files changed and no way to
    undo them (the record said "applying"), with a bare OSError; a failed rename left the
    folders made for a new file behind."""
    from app.core.edits import ApplyError, apply_changes, undo
    root, cs = edit_project
    assert len(cs.changes) == 4
    store, picks, original, seen = counted_apply(tmp_path, root, cs)
    assert snapshot(root) == original
    assert {c.op for c in seen.calls} == {"mkdir", "open", "write", "fsync", "replace"}
    for n, err in plan(seen, every_error=True):
        undo_before = snapshot(store.folder)
        with faults(tmp_path, n, err) as f, pytest.raises(ApplyError, match="Nothing was applied"):
            apply_changes(root, picks, store)
        assert f.fired, (n, err)
        assert snapshot(root) == original, f.fired  # bytes, modes, no temporary, no new folder
        assert snapshot(store.folder) == undo_before and store.last_undoable(root) is None
        undo(store, apply_changes(root, picks, store))  # retried, and undone for the next round
        assert snapshot(root) == original


def test_apply_on_a_disk_that_stays_read_only_can_still_be_undone(tmp_path, edit_project):
    """When putting the files back fails too, the record is kept so Undo finishes the job."""
    from app.core.edits import ApplyError, apply_changes, undo
    root, cs = edit_project
    store, picks, original, seen = counted_apply(tmp_path, root, cs)
    replaces = [i + 1 for i, c in enumerate(seen.calls) if c.op == "replace"]
    assert len(replaces) == 5  # the record's first save, each file's rename, the record again
    for n in replaces:
        with faults(tmp_path, n, errno.EROFS, persist=True), pytest.raises(ApplyError) as e:
            apply_changes(root, picks, store)
        record = store.last_undoable(root)  # as after a restart: read from disk
        if n in (replaces[0], replaces[1]):
            assert "Nothing was applied" in str(e.value) and record is None
        else:
            assert "Use Undo once the disk is writable" in str(e.value) and record is not None
            undo(store, record)
        assert snapshot(root) == original


def test_undo_at_every_fault_keeps_its_record_and_finishes_when_retried(tmp_path, edit_project):
    """Regression: a failure saving the record as undone was a bare OSError, and the record in
    memory already said "undone", so undoing again was refused."""
    from app.core.edits import UndoConflict, UndoStore, apply_changes, undo
    root, cs = edit_project
    store = UndoStore(tmp_path / "undo")
    store.folder.mkdir()  # as after the first apply: each run then makes the same calls
    picks = [(c, None) for c in cs.changes]
    original = snapshot(root)
    record = apply_changes(root, picks, store)
    applied = snapshot(root)
    with faults(tmp_path) as seen:
        undo(store, record)
    for n, err in plan(seen, every_error=True):
        record = apply_changes(root, picks, store)
        with faults(tmp_path, n, err) as f, pytest.raises(UndoConflict, match="try again|undo again"):
            undo(store, record)
        assert f.fired, (n, err)
        now = snapshot(root)
        for path in set(original) | set(applied):  # each file whole: as before or as applied
            assert now.get(path) in (original.get(path), applied.get(path)), path
        assert not [p for p in now if p.rsplit("/", 1)[-1].startswith(".")]  # no temporary left
        assert store.last_undoable(root).id == record.id
        undo(store, record)  # retried
        assert snapshot(root) == original and store.last_undoable(root) is None


# ---- exports --------------------------------------------------------------------------------

@pytest.fixture
def rated_chats(tmp_path, memory_keyring):
    from app.core.paths import app_paths
    from app.core.storage import Storage
    home = tmp_path / "home"
    s = Storage(app_paths(home).database)
    for i in range(3):
        c = s.create_conversation()
        s.add_message(c.id, "user", f"How do I reverse list number {i} in Python?")
        m = s.add_message(c.id, "assistant", f"Use xs[::-1] or list(reversed(xs)) for list {i}.",
                          {"finish_reason": "stop"})
        s.rate(m.id, 1)
    yield s, home
    s.close()


def test_chat_export_keeps_the_previous_file_at_every_fault(tmp_path, rated_chats, capsys):
    from app.__main__ import _parser, cmd_export_chats
    from app.core.learn.training_export import ExportError, export_training_data
    s, home = rated_chats
    out = tmp_path / "out" / "chats.jsonl"
    out.parent.mkdir()
    with faults(out.parent) as seen:
        export_training_data(s, out)
    for n, err in plan(seen, every_error=True):
        out.write_text("the previous export\n")
        with faults(out.parent, n, err) as f, \
                pytest.raises(ExportError, match="Could not write.*previous file is unchanged"):
            export_training_data(s, out)
        assert f.fired and out.read_text() == "the previous export\n" and os.listdir(out.parent) == ["chats.jsonl"]
        assert export_training_data(s, out).written == 3  # retried
    args = _parser().parse_args(["--home", str(home), "export-chats", str(out)])  # the command line's export
    out.write_text("the previous export\n")
    with faults(out.parent, 1, errno.EIO):
        assert cmd_export_chats(args) == 1
    assert "error: Could not write" in capsys.readouterr().err and out.read_text() == "the previous export\n"
    assert cmd_export_chats(args) == 0


def test_training_set_export_keeps_the_previous_file_at_every_fault(tmp_path):
    from app.core.learn.project_set import ProjectSetError, export_project_set
    root = tmp_path / "shop"
    root.mkdir()
    for i in range(3):
        (root / f"m{i}.py").write_text(
            f'def total_{i}(prices, tax=0.2):\n    """The total of the prices with tax, for shop {i}."""\n'
            "    subtotal = sum(p for p in prices if p > 0)\n    return round(subtotal * (1 + tax), 2)\n\n\n"
            f'def count_{i}(items):\n    """How many items are in stock, for shop {i}."""\n'
            "    return sum(1 for item in items if item.in_stock)\n")
    out = tmp_path / "out" / "shop.jsonl"
    for err in ERRORS:  # its folder cannot be made
        with faults(tmp_path, 1, err, ops=("mkdir",)), pytest.raises(ProjectSetError, match="Cannot write"):
            export_project_set(root, out)
        assert not out.parent.exists()
    out.parent.mkdir()
    with faults(tmp_path / "out") as seen:
        export_project_set(root, out)
    good = out.read_text()
    for n, err in plan(seen, every_error=True):
        out.write_text("the previous set\n")
        with faults(tmp_path / "out", n, err) as f, pytest.raises(ProjectSetError, match="Cannot write"):
            export_project_set(root, out)
        assert f.fired, (n, err)
        assert os.listdir(out.parent) == ["shop.jsonl"] and out.read_text() == "the previous set\n"
        export_project_set(root, out)  # retried
        assert out.read_text() == good


# ---- the saved model state ------------------------------------------------------------------

def test_saved_model_state_is_whole_or_absent_at_every_fault(tmp_path, engine):
    from app.core.chat.kv_cache import KvCache
    from app.core.engine import GenerationParams
    system = "You are a careful coding assistant."
    engine.chat([{"role": "system", "content": system}, {"role": "user", "content": "Name a sorting algorithm."}],
                GenerationParams.greedy(4))
    kv = tmp_path / "kv"
    cache = KvCache(kv)
    for err in ERRORS:  # the cache folder cannot be made
        with faults(tmp_path, 1, err, ops=("mkdir",)):
            assert cache.store(1, engine, system) is False  # documented: False, no exception
        assert not kv.exists()
    assert cache.store(1, engine, system)  # another conversation's state, to be kept
    with faults(kv) as seen:
        assert cache.store(2, engine, system)
    assert seen.count("replace") == 2
    for n, err in plan(seen, every_error=True):
        cache.forget(2)
        with faults(kv, n, err) as f:
            assert cache.store(2, engine, system) is False, (n, err)
        assert f.fired
        assert sorted(os.listdir(kv)) == ["conv-1.json", "conv-1.kv"]  # nothing partial, the other kept
        assert cache.store(2, engine, system)  # retried
        assert cache.restore(2, engine, system) > 0 and cache.restore(1, engine, system) > 0


# ---- plain regression tests: one per failure these faults found ------------------------------

def test_regression_a_model_whose_registry_write_fails_leaves_no_unlisted_copy(tmp_path):
    from app.core.models.importer import ModelImportError, import_gguf
    from app.core.models.registry import ModelRegistry
    from tests.support.gguf_writer import write_gguf
    src = write_gguf(tmp_path / "tiny.gguf", {"general.architecture": "llama", "general.name": "Tiny"})
    registry = ModelRegistry(tmp_path / "models")
    with faults(registry.dir, 2, errno.EIO, ops=("replace",)), \
            pytest.raises(ModelImportError, match="Nothing was added"):
        import_gguf(src, registry)  # the copy is renamed in place (1st), models.json is not (2nd)
    assert os.listdir(registry.dir) == [] and registry.list() == []
    assert import_gguf(src, registry).file.name == "tiny.gguf"  # not "tiny-copy.gguf" beside an orphan


def test_regression_an_adapter_staging_folder_that_cannot_be_made_is_a_message(tmp_path, starter_path):
    from app.core.adapters.errors import AdapterError
    from app.core.adapters.importer import ModelChoice, import_adapter
    from app.core.adapters.store import AdapterStore
    from tests.support.adapter_zip import make_adapter_zip
    store = AdapterStore(tmp_path / "adapters")
    zipped = make_adapter_zip(tmp_path / "a-lora.zip")
    with faults(store.dir, 1, errno.EROFS, ops=("mkdir",)), pytest.raises(AdapterError, match="read-only"):
        import_adapter(zipped, store, [ModelChoice("the starter model", starter_path)], probe=False)
    assert os.listdir(store.dir) == []


def test_regression_a_verified_download_that_cannot_be_renamed_finishes_without_downloading_again(
        tmp_path, monkeypatch):
    from app.core.models.download import DownloadError, download, hub_url
    from tests.support.fake_hub import FakeHub
    payload = os.urandom(200_000)
    dest = tmp_path / "tiny.gguf"
    with FakeHub() as hub:
        hub.files[dest.name] = payload
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        url = hub_url("Test/Tiny-GGUF", dest.name)
        with faults(tmp_path, 1, errno.EIO, ops=("replace",)), \
                pytest.raises(DownloadError, match="downloaded and verified but could not be put in place"):
            download(url, dest)
        with faults(tmp_path, 1, errno.EACCES, ops=("open",)), pytest.raises(DownloadError, match="Cannot write"):
            download(url, dest)  # the partial's note
        assert not dest.exists()
        hub.ranges.clear()
        download(url, dest)
    assert dest.read_bytes() == payload and hub.ranges == [f"bytes={len(payload)}-"]  # nothing fetched twice


def test_regression_an_index_write_on_a_failing_disk_is_a_message(tmp_path, embedder):
    from app.core.index.indexer import IndexWriteError, ProjectIndex
    from tests.support.index_project import make_project
    root = make_project(tmp_path / "shop")
    pi = ProjectIndex(root, tmp_path / "idx", embedder)
    try:
        with faults(tmp_path / "idx", 1, errno.EIO, ops=("replace",)), \
                pytest.raises(IndexWriteError, match="input/output error.*What was indexed so far is kept"):
            pi.update()
        assert pi.update().files == pi.store.file_count() > 0
    finally:
        pi.close()


def test_regression_a_failed_rename_while_applying_leaves_no_temporary_and_no_new_folder(tmp_path, edit_project):
    from app.core.edits import ApplyError, UndoStore, apply_changes
    root, cs = edit_project
    original = snapshot(root)
    with faults(root, 1, errno.EIO, ops=("replace",)), pytest.raises(ApplyError, match="Nothing was applied"):
        apply_changes(root, [(c, None) for c in cs.changes], UndoStore(tmp_path / "undo"))
    assert snapshot(root) == original


def test_regression_an_apply_whose_record_cannot_be_marked_applied_is_taken_back(tmp_path, edit_project):
    """Before: the files stayed changed, the record said "applying" (so no Undo), a bare OSError."""
    from app.core.edits import ApplyError, UndoStore, apply_changes, undo
    root, cs = edit_project
    store = UndoStore(tmp_path / "undo")
    store.folder.mkdir()
    original = snapshot(root)
    with faults(store.folder) as seen:
        record = apply_changes(root, [(c, None) for c in cs.changes], store)
    undo(store, record)
    last = len(seen.calls)  # the record's last save
    with faults(store.folder, last, errno.ENOSPC), pytest.raises(ApplyError, match="undo record could not be saved"):
        apply_changes(root, [(c, None) for c in cs.changes], store)
    assert snapshot(root) == original and store.last_undoable(root) is None


def test_regression_an_undo_whose_record_cannot_be_marked_undone_can_be_retried(tmp_path, edit_project):
    """Before: a bare OSError, and the record in memory already said "undone", so the retry was refused."""
    from app.core.edits import UndoConflict, UndoStore, apply_changes, undo
    root, cs = edit_project
    store = UndoStore(tmp_path / "undo")
    original = snapshot(root)
    record = apply_changes(root, [(c, None) for c in cs.changes], store)
    with faults(store.folder, 1, errno.EROFS, ops=("replace",)), pytest.raises(UndoConflict, match="undo again"):
        undo(store, record)
    assert snapshot(root) == original  # the files are back already
    undo(store, record)
    assert store.last_undoable(root) is None


def test_regression_a_failed_rename_while_undoing_leaves_no_temporary(tmp_path, edit_project):
    from app.core.edits import UndoConflict, UndoStore, apply_changes, undo
    root, cs = edit_project
    store = UndoStore(tmp_path / "undo")
    record = apply_changes(root, [(c, None) for c in cs.changes], store)
    with faults(root, 1, errno.EIO, ops=("replace",)), pytest.raises(UndoConflict, match="try again"):
        undo(store, record)
    assert not [p for p in os.listdir(root) if p.startswith(".")]
