"""llama.cpp's CPU variants: the build carries them, the best one for this CPU is loaded, a
chosen one can be forced, a wrong choice is said in words, and the doctor names the variant."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.doctor.system import build_variant, check_llama_build, cpu_flags, read_system_info
from app.core.llama_backend import ENV_VARIANT, built_variants, load_llama_cpp, loaded_variant

ROOT = Path(__file__).resolve().parents[2]
X86 = platform.machine().lower() in ("x86_64", "amd64")
# A variant and a /proc/cpuinfo flag it needs (llama.cpp's ggml-cpu CMake variant list).
NEEDS = {"sapphirerapids": "amx_int8", "zen4": "avx512_bf16", "icelake": "avx512_vnni", "skylakex": "avx512f",
         "alderlake": "avx_vnni", "haswell": "avx2"}


def run_child(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, **env})


def test_the_build_carries_every_cpu_variant_and_this_process_runs_the_best():
    load_llama_cpp()
    built = built_variants()
    if X86:  # scripts/bootstrap.sh builds them and refuses a build without them
        assert {"x64", "sse42", "sandybridge", "haswell", "skylakex", "zen4"} <= set(built), built
        assert loaded_variant() in built
    else:
        assert built == [] or loaded_variant() in built


def test_the_engine_answers_with_the_variant_loaded(starter_path):
    from app.core.engine import Engine, EngineConfig, GenerationParams

    e = Engine(starter_path, EngineConfig(n_ctx=512, n_threads=2))
    try:
        assert e.chat([{"role": "user", "content": "Say hi."}], GenerationParams.greedy(4)).completion_tokens > 0
    finally:
        e.close()
    if X86:
        flags = cpu_flags() or set()
        best = loaded_variant()
        # the loaded variant is one this CPU can run, and no variant it could run ranks above it
        # among those with a known requirement
        assert best is not None and (best not in NEEDS or NEEDS[best] in flags)


@pytest.mark.skipif(not X86, reason="the CPU variants are built on x86-64 only")
def test_a_chosen_variant_is_loaded_instead(starter_path):
    code = ("from app.core.engine import Engine, EngineConfig, GenerationParams\n"
            "from app.core.llama_backend import loaded_variant\n"
            f"e = Engine({str(starter_path)!r}, EngineConfig(n_ctx=256, n_threads=1))\n"
            "r = e.chat([{'role': 'user', 'content': 'Hi'}], GenerationParams.greedy(2))\n"
            "print(loaded_variant(), r.completion_tokens)\n")
    r = run_child(code, **{ENV_VARIANT: "sse42"})
    assert r.returncode == 0, r.stderr[-2000:]
    variant, tokens = r.stdout.split()
    assert variant == "sse42" and int(tokens) > 0


def load_refused(starter_path, variant: str) -> str:
    """What loading the starter says, in a child with ``variant`` forced (it must refuse)."""
    code = ("from app.core.engine import Engine, ModelLoadError\n"
            "try:\n"
            f"    Engine({str(starter_path)!r})\n"
            "except ModelLoadError as e:\n"
            "    print(e)\n")
    r = run_child(code, **{ENV_VARIANT: variant})
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.skipif(not X86, reason="the CPU variants are built on x86-64 only")
def test_an_unknown_variant_is_refused_in_words(starter_path):
    said = load_refused(starter_path, "pentium2")
    assert f"{ENV_VARIANT}=pentium2" in said and "haswell" in said  # names those there are


@pytest.mark.skipif(not X86, reason="the CPU variants are built on x86-64 only")
def test_a_variant_this_cpu_cannot_run_is_refused_not_crashed(starter_path):
    flags = cpu_flags() or set()
    missing = [v for v, flag in NEEDS.items() if flag not in flags and v in built_variants()]
    if not missing:
        pytest.skip("this CPU runs every variant whose needs the test knows")
    assert f"the {missing[0]} variant does not run on this processor" in load_refused(starter_path, missing[0])


def test_the_doctor_names_the_variant_in_use():
    info = read_system_info()
    variant = build_variant(info)
    assert variant is not None
    check = check_llama_build(info)
    if variant[1]:
        assert f"CPU variant in use: {variant[0]}" in check.detail and variant[0] in variant[1]
        assert f"of the {len(variant[1])} built" in check.detail
    else:
        assert "built in" in check.detail


def test_every_direct_use_of_llama_cpp_loads_the_backend_first():
    """A Llama() or llama_backend_init() without the loader fails with "no backends are loaded"."""
    offenders = []
    for folder in ("app", "bench", "scripts", "tests", "training"):
        for p in (ROOT / folder).rglob("*.py"):
            text = p.read_text(encoding="utf-8", errors="replace")
            if re.search(r"\bLlama\(model_path|llama_backend_init\(\)", text) and "load_llama_cpp" not in text:
                offenders.append(str(p.relative_to(ROOT)))
    assert offenders == []
