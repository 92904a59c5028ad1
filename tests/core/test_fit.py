"""The fit rule on parametrised machines."""

import pytest

from app.core.hardware import Hardware, probe
from app.core.models.catalog import QWEN_1_5B, QWEN_3B, QWEN_7B, STARTER
from app.core.models.fit import (SAFE_RAM_SHARE, assess, kv_cache_bytes, kv_cache_from_gguf,
                                 memory_needed, recommend)
from app.core.models.gguf_info import read_gguf_info

GiB = 1024 ** 3


def machine(ram_gib, disk_gib=100):
    return Hardware(total_ram=int(ram_gib * GiB), available_ram=int(ram_gib * GiB * 0.6),
                    physical_cores=2, free_disk=int(disk_gib * GiB))


@pytest.mark.parametrize("ram, expected", [
    (2, STARTER), (3, STARTER), (4, QWEN_1_5B), (8, QWEN_3B), (16, QWEN_7B), (32, QWEN_7B),
])
def test_recommendation_by_ram(ram, expected):
    rec = recommend(machine(ram))
    assert rec.entry == expected
    if expected is STARTER:
        assert rec.warning and "too big" in rec.warning and "weak" in rec.warning
    else:
        assert rec.warning is None and rec.reason.startswith("Recommended for this computer: fits: needs")


def test_small_disk_steps_down_unless_already_installed():
    small_disk = machine(16, disk_gib=3)
    assert recommend(small_disk).entry == QWEN_3B
    assert "no room" in assess(QWEN_7B, small_disk, 4096).reason
    assert recommend(small_disk, installed=frozenset({QWEN_7B.id})).entry == QWEN_7B
    assert recommend(machine(16, disk_gib=0.5)).entry == STARTER


def test_reason_texts():
    f = assess(QWEN_3B, machine(8), 4096)
    assert f.fits and f.reason == f"fits: needs {memory_needed(QWEN_3B, 4096) / 1e9:.1f} GB of your 8.6 GB"
    f = assess(QWEN_7B, machine(4), 4096)
    assert not f.fits and f.reason.startswith("too big: needs 5.6 GB, you have 4.3 GB")
    assert f"{int(SAFE_RAM_SHARE * 100)}%" in f.reason


def test_context_size_counts():
    assert memory_needed(QWEN_7B, 32768) - memory_needed(QWEN_7B, 4096) == \
        kv_cache_bytes(28, 4, 128, 32768 - 4096)
    # At a 64k context the 7B no longer fits 16 GiB.
    assert recommend(machine(16), n_ctx=65536).entry == QWEN_3B


def test_kv_cache_from_the_real_gguf_metadata(starter_path):
    info = read_gguf_info(starter_path)
    # SmolLM2-135M: 30 layers, 3 KV heads, head size 576/9 = 64.
    assert kv_cache_from_gguf(info, 4096) == kv_cache_bytes(30, 3, 64, 4096) == 94_371_840
    assert kv_cache_from_gguf(info, 4096) == kv_cache_bytes(STARTER.n_layers, STARTER.n_kv_heads,
                                                            STARTER.head_dim, 4096)


def test_probe_reads_this_machine(tmp_path):
    hw = probe(tmp_path / "not" / "yet" / "created")
    assert hw.total_ram > 0 and 0 < hw.available_ram <= hw.total_ram
    assert hw.physical_cores >= 1 and hw.free_disk > 0
