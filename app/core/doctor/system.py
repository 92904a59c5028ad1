"""Python, the installed libraries, and the llama.cpp build against this CPU.

llama.cpp compiled for instructions this CPU lacks (a ``-march=native`` wheel built on a newer
machine, or an AVX-512 build) dies with SIGILL, often already while initialising. So the build's
features are read in a child process (``llama_print_system_info``): a crash there becomes this
check's red line instead of ending the app. The features are compared with the CPU's own flags
(``/proc/cpuinfo`` on Linux). The build carries one CPU variant per instruction-set level and
loads the best this CPU runs (app/core/llama_backend.py); the check names it, and features the
CPU has that the variant leaves unused are only a note.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import re
import signal
import subprocess
import sys
from pathlib import Path

from app.core.doctor.check import FAIL, OK, WARN, Check

DIST = "offline-coder"
MIN_PYTHON = (3, 11)
# Shown by name in the detail: the libraries a bug report needs first.
KEY_LIBRARIES = ("llama-cpp-python", "PySide6-Essentials", "onnxruntime", "numpy", "hnswlib", "tokenizers",
                 "keyring")
REINSTALL = ("Run the setup again (bash scripts/bootstrap.sh), or `pip install -e .` in the app's "
             "virtual environment.")
# ggml feature name -> the /proc/cpuinfo flag that provides it (x86 "flags", ARM "Features").
CPU_FLAG = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX2": "avx2", "F16C": "f16c", "FMA": "fma",
    "BMI2": "bmi2", "AVX_VNNI": "avx_vnni", "AVX512": "avx512f", "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16", "AMX_INT8": "amx_int8",
    "NEON": "asimd", "ARM_FMA": "asimd", "FP16_VA": "asimdhp", "MATMUL_INT8": "i8mm", "SVE": "sve",
    "DOTPROD": "asimddp", "SME": "sme",
}
# Build switches in the same list that are not instruction sets.
NOT_INSTRUCTIONS = {"LLAMAFILE", "OPENMP", "REPACK", "KLEIDIAI", "ACCELERATE", "BLAS", "CPU"}
REBUILD = ("Rebuild llama.cpp: `pip cache remove llama_cpp_python`, then run bash scripts/bootstrap.sh (it "
           "builds every CPU variant and loads the best one for this computer). If a variant crashes on a "
           "machine that hides instructions (some virtual machines), set OFFLINE_CODER_CPU_VARIANT=haswell "
           "(or sandybridge, sse42, x64) to choose one.")
VARIANT_LINE = "CPU_VARIANT:"
_SYSINFO_CODE = "from app.core.doctor.system import system_info_here; import sys; sys.stdout.write(system_info_here())"


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def unmet_requirements(requirements: list[str] | None = None) -> list[str]:
    """Declared dependencies that are missing or outside their range, in words."""
    if requirements is None:
        try:
            requirements = md.requires(DIST) or []
        except md.PackageNotFoundError:
            return []  # a frozen bundle: its libraries are inside it, nothing to compare with
    try:
        from packaging.requirements import Requirement
    except ImportError:  # packaging comes with onnxruntime; without it only presence is checked
        Requirement = None
    bad = []
    for line in requirements:
        if Requirement is None:
            name, spec = re.split(r"[<>=!~;\[ ]", line, 1)[0], None
        else:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an optional extra (dev, train)
            name, spec = req.name, req.specifier
        have = _version(name)
        if have is None:
            bad.append(f"{name} is not installed")
        elif spec is not None and spec and not spec.contains(have, prereleases=True):
            bad.append(f"{name} {have} is installed, {name}{spec} is needed")
    return bad


def check_python() -> Check:
    py = platform.python_version()
    unknown = "bundled" if getattr(sys, "frozen", False) else "missing"  # a bundle may carry no metadata
    libs = "; ".join(f"{n} {_version(n) or unknown}" for n in KEY_LIBRARIES)
    detail = f"Python {py} ({sys.executable}); {libs}."
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", "Python and libraries", FAIL, f"Python {py} is too old. {detail}",
                     f"Install Python {'.'.join(map(str, MIN_PYTHON))} or newer, then run the setup again.")
    bad = unmet_requirements()
    if bad:
        return Check("python", "Python and libraries", FAIL, f"{'; '.join(bad)}. {detail}", REINSTALL)
    return Check("python", "Python and libraries", OK, detail)


def build_features(system_info: str) -> set[str]:
    """The instruction sets a llama.cpp build uses, from ``llama_print_system_info`` text."""
    return {name for name, on in re.findall(r"([A-Z][A-Z0-9_]*) = (\d)", system_info)
            if on == "1" and name not in NOT_INSTRUCTIONS}


def cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    """This CPU's flags (Linux ``/proc/cpuinfo``), or None where they cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", cpuinfo, re.M)
    return set(m.group(1).split()) if m else None


def compare_build(system_info: str, flags: set[str] | None) -> Check:
    """Red when the build needs an instruction this CPU lacks; a note for unused extras."""
    title = "llama.cpp build"
    used = build_features(system_info)
    shown = ", ".join(sorted(used)) or "none listed"
    if flags is None:
        return Check("llama_build", title, OK,
                     f"Built for: {shown}. This system does not expose CPU flags to compare with.")
    missing = sorted(f for f in used if f in CPU_FLAG and CPU_FLAG[f] not in flags)
    if missing:
        return Check("llama_build", title, FAIL,
                     f"llama.cpp was built for {', '.join(missing)}, which this CPU does not have; it will "
                     f"crash (SIGILL) when it runs. Built for: {shown}.", REBUILD)
    unknown = sorted(f for f in used if f not in CPU_FLAG)
    extra = sorted({f for f, flag in CPU_FLAG.items() if flag in flags and f not in used
                    and not (f == "ARM_FMA" and "NEON" in used)})
    detail = f"Built for: {shown}; this CPU has all of them."
    if extra:
        detail += f" The CPU also has {', '.join(extra)}, which this build does not use (fine)."
    if unknown:
        detail += f" Not compared: {', '.join(unknown)}."
    return Check("llama_build", title, OK, detail)


def system_info_here() -> str:
    """The CPU variant this process loads (a first line ``CPU_VARIANT: zen4 of x64,sse42,...``)
    and ``llama_print_system_info()``."""
    from app.core.llama_backend import built_variants, load_llama_cpp, loaded_variant

    llama_cpp = load_llama_cpp()
    info = llama_cpp.llama_print_system_info().decode()
    return f"{VARIANT_LINE} {loaded_variant() or 'built-in'} of {','.join(built_variants()) or '-'}\n{info}"


def build_variant(system_info: str) -> tuple[str, list[str]] | None:
    """(the loaded variant, those built) from ``system_info_here`` text; None if not said."""
    m = re.search(rf"^{VARIANT_LINE} (\S+) of (\S+)$", system_info, re.M)
    if not m:
        return None
    return m.group(1), [v for v in m.group(2).split(",") if v and v != "-"]


def read_system_info(timeout: float = 60.0) -> str:
    """``system_info_here()`` from a child process (in-process in a frozen bundle, which
    cannot run ``-c``); raises RuntimeError naming a crash."""
    if getattr(sys, "frozen", False):
        return system_info_here()
    r = subprocess.run([sys.executable, "-c", _SYSINFO_CODE], capture_output=True, text=True, timeout=timeout)
    if r.returncode < 0:
        try:
            sig = signal.Signals(-r.returncode).name
        except ValueError:
            sig = f"signal {-r.returncode}"
        raise RuntimeError(f"llama.cpp crashed ({sig}) while starting"
                           + (": it was built for instructions this CPU lacks." if sig == "SIGILL" else "."))
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"llama.cpp could not be loaded ({last[:300]}).")
    return r.stdout


def check_llama_build(system_info: str | None = None, cpuinfo: str | None = None) -> Check:
    version = _version("llama-cpp-python") or "unknown version"
    try:
        info = system_info if system_info is not None else read_system_info()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return Check("llama_build", "llama.cpp build", FAIL, f"llama-cpp-python {version}: {e}", REBUILD)
    c = compare_build(info, cpu_flags(cpuinfo))
    variant = build_variant(info)
    which = ""
    if variant and variant[1]:
        which = f" CPU variant in use: {variant[0]} (the best for this processor of the {len(variant[1])} built)."
    elif variant:
        which = " Its CPU code is built in (one variant)."
    detail = f"llama-cpp-python {version}.{which} {c.detail}"
    if c.status == OK and not build_features(info):
        return Check(c.id, c.title, WARN, detail + " The build lists no CPU features.", REBUILD)
    return Check(c.id, c.title, c.status, detail, c.remedy)
