"""llama.cpp with the CPU code that suits this processor: import llama_cpp through here.

Why: the build carries every x86 CPU variant (``-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON``,
as llama.cpp's own releases): ``libggml-cpu-<variant>.so`` from plain x86-64 up to AVX-512, so
one wheel or bundle runs on an old laptop and uses AVX-512 where it exists (1.8× faster prompt
reading on the 1.5B here; docs/decisions.md "CPU variants"). llama-cpp-python 0.3.36 never
loads them: ggml looks beside the executable (python's bin/) and in the current folder, finds
nothing, and ``Llama()`` fails with "no backends are loaded". So before the first model is
loaded, ggml scores every variant in ``llama_cpp/lib`` (cpuid; one the CPU cannot run scores 0)
and loads the best. In a build with the CPU code built in (the old portable build, other
platforms) the registry is already filled and nothing happens.

The call goes through libllama's own handle: a wheel cannot hold symlinks, so ``libggml.so``
and ``libggml.so.0`` are two copies, and the one ``llama_cpp._ggml`` opens has a registry of its
own that libllama never sees.

``OFFLINE_CODER_CPU_VARIANT=<name>`` (e.g. ``haswell``) loads that one variant instead: ggml's
scoring reads what the CPU has, not what the operating system enabled (a hypervisor may hide
AVX-512), so this is the way out of a crash there.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from pathlib import Path

from app.core.errors import UserError

ENV_VARIANT = "OFFLINE_CODER_CPU_VARIANT"
# The variants with AVX-512 (llama.cpp's ggml-cpu list): they read prompts about twice as fast.
AVX512_VARIANTS = frozenset({"skylakex", "cannonlake", "cascadelake", "icelake", "cooperlake", "zen4",
                             "sapphirerapids"})


def avx512(variant: str | None) -> bool:
    """Whether ``variant`` (None: unknown or built in) runs AVX-512 code."""
    return variant in AVX512_VARIANTS
_lock = threading.Lock()


class BackendError(UserError, RuntimeError):
    """llama.cpp has no CPU code that this computer can run."""


def variant_folder() -> Path:
    import llama_cpp

    return Path(llama_cpp.__file__).resolve().parent / "lib"


def built_variants(folder: Path | None = None) -> list[str]:
    """The CPU variants this build carries ([] for a build with its CPU code built in)."""
    folder = folder or variant_folder()
    names = []
    for p in folder.glob("*ggml-cpu-*"):
        if p.suffix in (".so", ".dll", ".dylib"):
            names.append(p.name.split("ggml-cpu-", 1)[1].rsplit(".", 1)[0])
    return sorted(set(names))


def load_llama_cpp():
    """``llama_cpp``, with a CPU backend registered (once per process; cheap after that)."""
    import llama_cpp

    with _lock:
        lib = _libllama(variant_folder())
        lib.ggml_backend_reg_count.restype = ctypes.c_size_t
        if lib.ggml_backend_reg_count() > 0:
            return llama_cpp
        folder = variant_folder()
        wanted = os.environ.get(ENV_VARIANT, "").strip()
        # ggml says "load_backend: loaded CPU backend from ..." through llama-cpp-python's log
        # callback, which prints all until a Llama() sets its level (and maps ggml's INFO to
        # WARNING: its level table predates ggml's). A failure is found by the count below.
        log = logging.getLogger("llama-cpp-python")
        level = log.level
        if level == logging.NOTSET:
            log.setLevel(logging.ERROR)
        try:
            _load(lib, folder, wanted)
        finally:
            log.setLevel(level)
        if lib.ggml_backend_reg_count() == 0:
            what = f"the {wanted} variant does not run on this processor" if wanted else \
                f"none of the CPU variants in {folder} runs on this processor"
            raise BackendError(f"llama.cpp has no CPU code for this computer: {what}. Run the setup again "
                               "(bash scripts/bootstrap.sh) or unset " + ENV_VARIANT + ".")
    return llama_cpp


def _libllama(folder: Path) -> ctypes.CDLL:
    """The libllama that ``import llama_cpp`` loaded (the same file gives the same handle), whose
    symbol lookup (dlsym) reaches the libggml copy libllama itself uses. Windows looks up a
    DLL's own exports only, and has no second copy: there it is ggml.dll (untested)."""
    for name in ("libllama.so", "libllama.dylib", "ggml.dll"):
        if (folder / name).is_file():
            return ctypes.CDLL(str(folder / name))
    raise BackendError(f"llama.cpp's library is missing from {folder}: run the setup again (bash scripts/bootstrap.sh).")


def _load(lib, folder: Path, wanted: str) -> None:
    if wanted:
        files = sorted(folder.glob(f"*ggml-cpu-{wanted}.*"))
        if not files:
            raise BackendError(f"{ENV_VARIANT}={wanted}: there is no such CPU variant in {folder} "
                               f"(there are: {', '.join(built_variants(folder)) or 'none'}).")
        lib.ggml_backend_load.argtypes = [ctypes.c_char_p]
        lib.ggml_backend_load.restype = ctypes.c_void_p
        lib.ggml_backend_load(str(files[0]).encode())
    else:
        lib.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
        lib.ggml_backend_load_all_from_path.restype = None
        lib.ggml_backend_load_all_from_path(str(folder).encode())


_loaded: str | None = None  # a loaded variant stays for the life of the process


def loaded_variant() -> str | None:
    """The CPU variant this process runs ("zen4", "haswell"…); None when the CPU code is built
    in or nothing is loaded yet. Read from the process's mappings once found (every question's
    speed estimate asks, on the GUI thread)."""
    global _loaded
    if _loaded is None:
        _loaded = _mapped_variant()
    return _loaded


def _mapped_variant() -> str | None:
    if sys.platform.startswith("linux"):
        try:
            maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        paths = [line.split(None, 5)[5] for line in maps.splitlines() if len(line.split(None, 5)) == 6]
    else:
        try:
            import psutil
            paths = [m.path for m in psutil.Process().memory_maps()]
        except Exception:  # noqa: BLE001 - only a report; an unknown variant is said as such
            return None
    for p in paths:
        name = Path(p.strip()).name
        if "ggml-cpu-" in name:
            return name.split("ggml-cpu-", 1)[1].split(".", 1)[0]
    return None
