"""The saved state per conversation: what llama.cpp read, kept on disk (real starter model, real
files, a real converted adapter, a real small tmpfs for the full disk)."""

from __future__ import annotations

import shutil

import pytest

from app.core.adapters.importer import ModelChoice, import_adapter
from app.core.adapters.store import AdapterStore
from app.core.chat.kv_cache import KvCache
from app.core.engine import Engine, EngineConfig, GenerationParams
from tests.support.adapter_zip import make_adapter_zip

SYSTEM = "You are a careful coding assistant. Answer briefly. " * 30
FIRST = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Name a sorting algorithm."}]


@pytest.fixture(scope="module")
def model(starter_path):
    return Engine(starter_path, EngineConfig(n_ctx=2048))


def read_conversation(engine: Engine) -> list[dict]:
    """The first turn answered, so the engine holds it: the messages of a follow-up."""
    r = engine.chat(FIRST, GenerationParams.greedy(8))
    return FIRST + [{"role": "assistant", "content": r.text}, {"role": "user", "content": "Why that one?"}]


def follow_up(engine: Engine, messages: list[dict]):
    seen = []
    engine.chat(messages, GenerationParams.greedy(4), on_reading=seen.append)
    return seen[-1]


def test_a_saved_conversation_comes_back_after_another_and_after_a_restart(model, starter_path, tmp_path):
    cache = KvCache(tmp_path / "kv")
    messages = read_conversation(model)
    read_before = model.render_chat(FIRST)
    assert cache.store(1, model, SYSTEM)
    model.chat([{"role": "user", "content": "Something else entirely."}], GenerationParams.greedy(4))  # another one
    assert cache.restore(1, model, SYSTEM) > len(model.tokenize(read_before)) - 2 and model.kv_owner == 1
    p = follow_up(model, messages)
    assert p.reused >= len(model.tokenize(read_before)) - 2 and p.total < 40  # only the new question is read

    restarted = Engine(starter_path, EngineConfig(n_ctx=2048))
    try:
        assert cache.restore(1, restarted, SYSTEM) > 0
        p = follow_up(restarted, messages)
        assert p.reused > 300 and p.total < 40
        cold = Engine(starter_path, EngineConfig(n_ctx=2048))
        try:
            assert follow_up(cold, messages).reused == 0  # without the cache it reads everything
        finally:
            cold.close()
    finally:
        restarted.close()


def test_each_change_it_depends_on_makes_it_a_miss_and_deletes_it(model, starter_path, tmp_path):
    cache = KvCache(tmp_path / "kv")

    def saved() -> None:
        read_conversation(model)
        assert cache.store(7, model, SYSTEM) and (tmp_path / "kv" / "conv-7.kv").exists()

    def gone() -> bool:
        return not any((tmp_path / "kv").glob("conv-7.*"))

    saved()
    assert cache.restore(7, model, SYSTEM + " Also be polite.") == 0 and gone()   # the system prompt

    saved()
    other_ctx = Engine(starter_path, EngineConfig(n_ctx=1024))                  # the context size
    try:
        assert cache.restore(7, other_ctx, SYSTEM) == 0 and gone()
    finally:
        other_ctx.close()

    saved()
    copy = tmp_path / "other-model.gguf"                                         # the model file
    shutil.copy(starter_path, copy)
    other_model = Engine(copy, EngineConfig(n_ctx=2048))
    try:
        assert cache.restore(7, other_model, SYSTEM) == 0 and gone()
    finally:
        other_model.close()

    saved()                                                                      # the adapters
    store = AdapterStore(tmp_path / "adapters")
    a = import_adapter(make_adapter_zip(tmp_path / "zero-lora.zip"), store, [ModelChoice("starter", starter_path)])
    model.set_adapters([(a.file, 1.0)])
    try:
        assert model.kv_owner is None
        assert cache.restore(7, model, SYSTEM) == 0 and gone()
    finally:
        model.set_adapters([])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "bad json"])
def test_a_damaged_file_is_ignored_and_deleted(model, tmp_path, damage):
    cache = KvCache(tmp_path / "kv")
    messages = read_conversation(model)
    assert cache.store(3, model, SYSTEM)
    kv, meta = tmp_path / "kv" / "conv-3.kv", tmp_path / "kv" / "conv-3.json"
    data = kv.read_bytes()
    if damage == "garbage":
        kv.write_bytes(b"\x00GGSQ" + b"x" * 5000)
    elif damage == "truncated":
        kv.write_bytes(data[: len(data) // 3])
    elif damage == "empty":
        kv.write_bytes(b"")
    else:
        meta.write_text("{ not json")
    assert cache.restore(3, model, SYSTEM) == 0
    assert not kv.exists() and not meta.exists()
    if damage != "bad json":  # llama.cpp was handed the file: nothing of it is trusted, all is read again
        assert follow_up(model, messages).total > 300


def test_a_full_disk_leaves_no_partial_file_and_the_old_state_gone(model, tmpfs):
    disk = tmpfs("1m")  # the state of this conversation is about 10 MB
    cache = KvCache(disk / "kv")
    read_conversation(model)
    assert cache.store(5, model, SYSTEM) is False
    assert [p.name for p in (disk / "kv").iterdir()] == []
    assert cache.restore(5, model, SYSTEM) == 0


def test_the_folder_stays_within_its_bound_least_recently_used_first(model, tmp_path):
    read_conversation(model)
    one = KvCache(tmp_path / "probe")
    assert one.store(1, model, SYSTEM)
    size = (tmp_path / "probe" / "conv-1.kv").stat().st_size
    cache = KvCache(tmp_path / "kv", max_bytes=int(size * 2.5))
    for key in (1, 2, 3):
        assert cache.store(key, model, SYSTEM)
        if key == 2:
            assert cache.restore(1, model, SYSTEM)  # 1 is used again: 2 is now the oldest
    assert sorted(p.name for p in (tmp_path / "kv").glob("*.kv")) == ["conv-1.kv", "conv-3.kv"]
