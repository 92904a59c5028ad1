"""The inference engine: the only module that imports llama_cpp.

Its API is deliberately narrow (load, chat, count tokens, close) so another backend could
sit behind the same class later. Everything here blocks: the UI runs it on a worker thread,
the CLI on the main thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from app.core.hardware import physical_cores
from app.core.models.gguf_info import GGUFError, GGUFInfo, read_gguf_info

# OpenMP wait policy (measured on 2 cores, docs/decisions.md): libgomp's default spins briefly
# and then sleeps; OMP_WAIT_POLICY=ACTIVE made the first answer take 49 s instead of 2 s while
# two other processes kept the cores busy, and PASSIVE cost a quarter of the speed on an idle
# machine. So the engine leaves the default alone; do not set ACTIVE.

Message = dict  # {"role": "system"|"user"|"assistant", "content": str}


class EngineError(RuntimeError):
    """Something the user can act on went wrong in the engine (load or generation)."""


class ModelLoadError(EngineError):
    """The model file cannot be loaded; the message names the file and the reason."""


@dataclass
class EngineConfig:
    n_ctx: int = 4096
    n_threads: int = 0  # 0: one per physical core
    n_batch: int = 512

    def threads(self) -> int:
        return self.n_threads if self.n_threads > 0 else physical_cores()


@dataclass
class GenerationParams:
    temperature: float = 0.3
    top_p: float = 0.95
    top_k: int = 50
    max_tokens: int = 2048
    repeat_penalty: float = 1.1
    seed: int | None = None

    @classmethod
    def greedy(cls, max_tokens: int = 2048) -> "GenerationParams":
        """Deterministic decoding: the same prompt gives the same text."""
        return cls(temperature=0.0, top_p=1.0, top_k=1, max_tokens=max_tokens, repeat_penalty=1.0)


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float | None
    total_s: float
    finish_reason: str  # "stop", "length" or "cancelled"
    chunks: int = 0

    @property
    def cancelled(self) -> bool:
        return self.finish_reason == "cancelled"

    @property
    def tokens_per_s(self) -> float:
        """Generation speed, from the first token on (prompt processing excluded)."""
        if self.time_to_first_token_s is None or self.completion_tokens <= 1:
            return 0.0
        gen_time = self.total_s - self.time_to_first_token_s
        return (self.completion_tokens - 1) / gen_time if gen_time > 0 else 0.0


@dataclass
class LoadedModel:
    path: Path
    info: GGUFInfo
    load_s: float
    n_ctx: int
    n_threads: int


class Engine:
    """One loaded model. Not thread-safe: one generation at a time (a lock enforces it)."""

    def __init__(self, model_path: Path | str, config: EngineConfig | None = None):
        self.config = config or EngineConfig()
        path = Path(model_path).expanduser()
        try:
            info = read_gguf_info(path)
        except GGUFError as e:
            raise ModelLoadError(str(e)) from None
        self._lock = threading.Lock()
        self._abort = threading.Event()
        t0 = time.perf_counter()
        import llama_cpp  # deferred: importing loads the native library (~0.1 s)

        n_threads = self.config.threads()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_batch=self.config.n_batch,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelLoadError(f"Cannot use model file {path}: llama.cpp could not load it ({e}).") from None
        self._install_abort_callback(llama_cpp)
        self._lora: dict[str, object] = {}  # adapter file -> llama.cpp handle
        self.adapters: list[tuple[Path, float]] = []
        self.model = LoadedModel(path=path, info=info, load_s=time.perf_counter() - t0,
                                 n_ctx=self._llm.n_ctx(), n_threads=n_threads)

    # ---- cancellation during prompt processing --------------------------------------------
    def _install_abort_callback(self, llama_cpp) -> None:
        """Let cancel interrupt a long prompt evaluation, not only between generated tokens.

        ggml calls this between graph nodes; returning True aborts the current decode. The
        ctypes callback object must stay referenced for as long as the context lives.
        """
        setter = getattr(llama_cpp, "llama_set_abort_callback", None)
        cb_type = getattr(llama_cpp, "ggml_abort_callback", None)
        ctx = getattr(getattr(self._llm, "_ctx", None), "ctx", None)
        if setter is None or cb_type is None or ctx is None:
            self._abort_cb = None
            return
        abort = self._abort
        self._abort_cb = cb_type(lambda _data: bool(abort.is_set()))
        setter(ctx, self._abort_cb, None)

    # ---- API ---------------------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self.model.n_ctx

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def count_message_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the chat template will produce for these messages (a close estimate)."""
        # Per-message overhead of ChatML-style templates (role markers, newlines) is ~5.
        return sum(self.count_tokens(m["content"]) + 5 for m in messages) + 3

    def chat(
        self,
        messages: Sequence[Message],
        params: GenerationParams | None = None,
        on_token: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """Generate the assistant's reply with the model's own chat template.

        ``on_token`` receives each piece of text as it is produced; ``cancelled`` is polled
        between tokens (and, through llama.cpp's abort callback, during prompt evaluation),
        so a cancel takes effect within one token's time.
        """
        params = params or GenerationParams()
        if not self._lock.acquire(blocking=False):
            raise EngineError("The model is already generating an answer; stop it first.")
        try:
            return self._chat(list(messages), params, on_token, cancelled or (lambda: False))
        finally:
            self._lock.release()

    def _chat(self, messages, params, on_token, cancelled) -> GenerationResult:
        self._abort.clear()
        stop_watch = _CancelWatch(cancelled, self._abort)
        t0 = time.perf_counter()
        ttft = None
        pieces: list[str] = []
        chunks = 0
        prompt_tokens = 0
        finish = "stop"
        kwargs = dict(
            messages=messages, stream=True,
            temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
            max_tokens=params.max_tokens, repeat_penalty=params.repeat_penalty,
        )
        if params.seed is not None:
            kwargs["seed"] = params.seed
        stream: Iterable = ()
        stop_watch.start()
        try:
            stream = self._llm.create_chat_completion(**kwargs)
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content")
                if text:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                        prompt_tokens = self._llm.n_tokens
                    chunks += 1
                    pieces.append(text)
                    if on_token is not None:
                        on_token(text)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if cancelled():
                    finish = "cancelled"
                    break
        except (RuntimeError, ValueError) as e:
            if self._abort.is_set() or cancelled():
                # llama_decode was aborted mid-batch: forget the cached prompt so the next
                # call evaluates it afresh instead of trusting a half-written KV cache.
                self._llm.reset()
                finish = "cancelled"
            elif "exceed context window" in str(e):
                raise EngineError(
                    f"The conversation is too long for the model's context ({self.n_ctx} tokens). "
                    "Start a new conversation or raise the context size in Settings.") from None
            else:
                raise EngineError(f"Generation failed: {e}") from None
        finally:
            stop_watch.stop()
            close = getattr(stream, "close", None)
            if close:
                close()
            self._abort.clear()
        total = time.perf_counter() - t0
        if ttft is None:
            prompt_tokens = self._llm.n_tokens
        completion = max(chunks, self._llm.n_tokens - prompt_tokens) if ttft is not None else 0
        return GenerationResult(text="".join(pieces), prompt_tokens=prompt_tokens,
                                completion_tokens=completion, time_to_first_token_s=ttft,
                                total_s=total, finish_reason=finish, chunks=chunks)

    def set_adapters(self, adapters: Sequence[tuple[Path | str, float]]) -> None:
        """Apply exactly these LoRA adapters (file, scale) to the live context.

        No reload of the base model: llama.cpp adds the adapters' products at run time, so
        switching or re-scaling takes milliseconds. Waits for a running answer to finish.
        The prompt cache is dropped because it was computed with the previous adapters.
        Only adapters the importer converted and probed belong here (a bad adapter file
        can crash llama.cpp; see app/core/adapters/probe.py).
        """
        import ctypes

        import llama_cpp

        wanted = [(str(Path(p).resolve()), float(s)) for p, s in adapters]
        with self._lock:
            for path, _ in wanted:
                if path not in self._lora:
                    handle = llama_cpp.llama_adapter_lora_init(self._llm._model.model, path.encode())
                    if not handle:
                        raise EngineError(f"llama.cpp could not load the adapter {path}.")
                    self._lora[path] = handle
            n = len(wanted)
            handles = (llama_cpp.llama_adapter_lora_p_ctypes * max(n, 1))(*[self._lora[p] for p, _ in wanted])
            scales = (ctypes.c_float * max(n, 1))(*[s for _, s in wanted])
            if llama_cpp.llama_set_adapters_lora(self._llm._ctx.ctx, handles if n else None, n,
                                                 scales if n else None) != 0:
                raise EngineError("llama.cpp could not apply the adapters.")
            self._llm.reset()
            for path in [p for p in self._lora if p not in dict(wanted)]:
                llama_cpp.llama_adapter_lora_free(self._lora.pop(path))
            self.adapters = [(Path(p), s) for p, s in wanted]

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None


class _CancelWatch:
    """Turns the caller's ``cancelled()`` into the abort flag llama.cpp polls.

    ``cancelled`` is only polled by us between tokens; during a long prompt evaluation no
    token arrives, so a small thread polls it and raises the abort flag.
    """

    def __init__(self, cancelled: Callable[[], bool], abort: threading.Event, period: float = 0.05):
        self._cancelled = cancelled
        self._abort = abort
        self._period = period
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "_CancelWatch":
        self._thread = threading.Thread(target=self._run, name="engine-cancel-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.wait(self._period):
            if self._cancelled():
                self._abort.set()
                return

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
