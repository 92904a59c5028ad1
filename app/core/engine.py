"""The inference engine: the only module that imports llama_cpp.

Its API is deliberately narrow (load, chat, count tokens, close) so another backend could
sit behind the same class later. Everything here blocks: the UI runs it on a worker thread,
the CLI on the main thread.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from app.core.hardware import physical_cores
from app.core.models.gguf_info import GGUFError, GGUFInfo, read_gguf_info
from app.core.settings import GenerationSettings
from app.core.engine_parts import CancelWatch, EngineError, GenerationResult, stream_generation

# OpenMP wait policy (measured on 2 cores, docs/decisions.md): libgomp's default spins briefly
# and then sleeps; OMP_WAIT_POLICY=ACTIVE made the first answer take 49 s instead of 2 s while
# two other processes kept the cores busy, and PASSIVE cost a quarter of the speed on an idle
# machine. So the engine leaves the default alone; do not set ACTIVE.

Message = dict  # {"role": "system"|"user"|"assistant", "content": str}


class ModelLoadError(EngineError):
    """The model file cannot be loaded; the message names the file and the reason."""


@dataclass
class EngineConfig:
    n_ctx: int = 4096
    n_threads: int = 0  # 0: one per physical core
    n_batch: int = 512

    def threads(self) -> int:
        return self.n_threads if self.n_threads > 0 else physical_cores()


# What chat() is given: the one sampling type, the user's settings (``GenerationParams.greedy()``
# for the same text from the same prompt).
GenerationParams = GenerationSettings


@dataclass
class ReadingProgress:
    """How far the model has read a prompt: ``done`` of ``total`` new tokens, after ``reused``
    tokens it had kept from before, in ``seconds``."""

    done: int
    total: int
    reused: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 and self.done else 0.0

    def seconds_left(self) -> float | None:
        rate = self.tokens_per_s
        return (self.total - self.done) / rate if rate else None


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
        from app.core.llama_backend import BackendError, load_llama_cpp

        try:  # deferred: importing loads the native library (~0.1 s) and picks the CPU variant
            llama_cpp = load_llama_cpp()
        except BackendError as e:
            raise ModelLoadError(str(e)) from None
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
        # Which conversation the KV cache holds (the app's key; None: unknown). chat() clears it,
        # the caller sets it after; app/core/chat/kv_cache.py saves and restores by it.
        self.kv_owner: object | None = None
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
        ctx = getattr(self._llm, "ctx", None)
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
        on_reading: Callable[[ReadingProgress], None] | None = None,
    ) -> GenerationResult:
        """Generate the assistant's reply with the model's own chat template.

        ``on_token`` receives each piece of text as it is produced; ``cancelled`` is polled
        between tokens (and, through llama.cpp's abort callback, during prompt evaluation),
        so a cancel takes effect within one token's time. ``on_reading`` hears how far the
        prompt has been read, one batch at a time (what was already read earlier and kept is
        ``reused``, not read again).
        """
        params = params or GenerationParams()
        if not self._lock.acquire(blocking=False):
            raise EngineError("The model is already generating an answer; stop it first.")
        self.kv_owner = None  # whoever owns what the model reads now sets it after this call
        try:
            if on_reading is None:
                return self._chat(list(messages), params, on_token, cancelled or (lambda: False))
            self._llm.eval = self._reading_eval(on_reading)  # generate() calls self.eval
            try:
                return self._chat(list(messages), params, on_token, cancelled or (lambda: False))
            finally:
                del self._llm.eval
        finally:
            self._lock.release()

    def complete(self, prompt: str, params: GenerationParams | None = None,
                 on_token: Callable[[str], None] | None = None, cancelled: Callable[[], bool] | None = None,
                 stop: Sequence[str] = ()) -> GenerationResult:
        """Continue a raw ``prompt`` (no chat template; special tokens such as ``<|fim_prefix|>``
        read as such): the local API's ``/v1/completions`` and fill-in-the-middle. Same lock,
        cancel and errors as ``chat``; the loop is ``app.core.api.complete.run_completion``."""
        from app.core.engine_complete import run_completion
        if not self._lock.acquire(blocking=False):
            raise EngineError("The model is already generating an answer; stop it first.")
        self.kv_owner = None
        try:
            return run_completion(self._llm, self._abort, self.n_ctx, prompt, params or GenerationParams(),
                                  on_token, cancelled or (lambda: False), list(stop))
        finally:
            self._lock.release()

    def _reading_eval(self, on_reading: Callable[[ReadingProgress], None]):
        """Llama.eval that reads a long prompt one batch at a time and reports each batch."""
        llm, original = self._llm, type(self._llm).eval.__get__(self._llm)
        state = {"first": True}

        def eval_(tokens):
            tokens = list(tokens)
            if not state["first"] or len(tokens) <= 1:
                return original(tokens)
            state["first"] = False  # the prompt's remainder; later calls are generated tokens
            reused, total, t0 = llm.n_tokens, len(tokens), time.perf_counter()
            on_reading(ReadingProgress(0, total, reused, 0.0))
            step = max(1, self.config.n_batch)
            for i in range(0, total, step):
                original(tokens[i:i + step])
                on_reading(ReadingProgress(min(i + step, total), total, reused, time.perf_counter() - t0))

        return eval_

    def _chat(self, messages, params, on_token, cancelled) -> GenerationResult:
        kwargs = dict(
            messages=messages, stream=True,
            temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
            max_tokens=params.max_tokens, repeat_penalty=params.repeat_penalty,
        )
        if params.seed is not None:
            kwargs["seed"] = params.seed
        llm = self._llm
        s = stream_generation(
            llm, self._abort, lambda: llm.create_chat_completion(**kwargs),
            lambda choice: choice.get("delta", {}).get("content"), on_token, cancelled,
            f"The conversation is too long for the model's context ({self.n_ctx} tokens). "
            "Start a new conversation or raise the context size in Settings.")
        prompt_tokens = s.read_tokens if s.time_to_first_token_s is not None else llm.n_tokens
        completion = max(s.chunks, llm.n_tokens - prompt_tokens) if s.time_to_first_token_s is not None else 0
        return GenerationResult(text=s.text, prompt_tokens=prompt_tokens, completion_tokens=completion,
                                time_to_first_token_s=s.time_to_first_token_s, total_s=s.total_s,
                                finish_reason=s.finish_reason, chunks=s.chunks)

    def set_adapters(self, adapters: Sequence[tuple[Path | str, float]]) -> None:
        """Apply exactly these LoRA adapters (file, scale) to the live context.

        No reload of the base model: llama.cpp adds the adapters' products at run time, so
        switching or re-scaling takes milliseconds. Waits for a running answer to finish.
        The prompt cache is dropped because it was computed with the previous adapters.
        Only adapters the importer converted and probed belong here (a bad adapter file
        can crash llama.cpp; see app/core/adapters/probe.py).
        """
        with self._lock:
            self.adapters = self._apply_adapters(adapters)
            self.kv_owner = None

    def _apply_adapters(self, adapters: Sequence[tuple[Path | str, float]], free_unused: bool = True
                        ) -> list[tuple[Path, float]]:
        """set_adapters' work; the caller holds the lock. ``free_unused=False`` keeps the other
        loaded adapters' handles (an evaluation puts them back right after)."""
        import ctypes

        import llama_cpp

        wanted = [(str(Path(p).resolve()), float(s)) for p, s in adapters]
        for path, _ in wanted:
            if path not in self._lora:
                handle = llama_cpp.llama_adapter_lora_init(self._llm.model, path.encode())
                if not handle:
                    raise EngineError(f"llama.cpp could not load the adapter {path}.")
                self._lora[path] = handle
        n = len(wanted)
        handles = (llama_cpp.llama_adapter_lora_p_ctypes * max(n, 1))(*[self._lora[p] for p, _ in wanted])
        scales = (ctypes.c_float * max(n, 1))(*[s for _, s in wanted])
        if llama_cpp.llama_set_adapters_lora(self._llm.ctx, handles if n else None, n,
                                             scales if n else None) != 0:
            raise EngineError("llama.cpp could not apply the adapters.")
        self._llm.reset()
        if free_unused:
            for path in [p for p in self._lora if p not in dict(wanted)]:
                llama_cpp.llama_adapter_lora_free(self._lora.pop(path))
        return [(Path(p), s) for p, s in wanted]

    # ---- what the model has read, kept across conversations and restarts ----------------------
    def save_kv(self, path: Path | str) -> int:
        """Write what the model has read (its tokens and their KV cache) to ``path``; returns the
        bytes written, 0 when nothing was or the write failed (a full disk)."""
        import llama_cpp

        with self._lock:
            n = self._llm.n_tokens
            if n <= 1:
                return 0
            tokens = (llama_cpp.llama_token * n)(*[int(t) for t in self._llm.input_ids[:n]])
            return int(llama_cpp.llama_state_seq_save_file(self._llm.ctx, str(path).encode(), 0, tokens, n))

    def load_kv(self, path: Path | str) -> int:
        """Read back what ``save_kv`` wrote: the next prompt that starts the same way is not read
        again. Returns the tokens restored, 0 when llama.cpp refused the file (then nothing of it
        is kept). The last token is dropped so a repeated prompt is always evaluated afresh
        (its logits are not in the file)."""
        import ctypes

        import llama_cpp

        with self._lock:
            self._llm.reset()
            self._clear_kv()
            capacity = self.n_ctx
            tokens = (llama_cpp.llama_token * capacity)()
            count = ctypes.c_size_t(0)
            size = llama_cpp.llama_state_seq_load_file(self._llm.ctx, str(path).encode(), 0, tokens, capacity,
                                                       ctypes.byref(count))
            n = int(count.value)
            if not size or n <= 1 or n > capacity:
                self._clear_kv()
                return 0
            keep = n - 1
            memory = llama_cpp.llama_get_memory(self._llm.ctx)
            llama_cpp.llama_memory_seq_rm(memory, 0, keep, -1)
            self._llm.input_ids[:keep] = tokens[:keep]
            self._llm.n_tokens = keep
            return keep

    def _token_text(self, token: int) -> str:
        """A token's text, special tokens spelled out (through llama.cpp's public C API)."""
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        return llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8")

    def _clear_kv(self) -> None:
        import llama_cpp

        memory = llama_cpp.llama_get_memory(self._llm.ctx)
        if memory:
            llama_cpp.llama_memory_clear(memory, True)

    @property
    def closed(self) -> bool:
        return getattr(self, "_llm", None) is None

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None

    # ---- likelihood of text (adapter verdicts) ----------------------------------------------
    # How well the model predicts a text: the negative log-likelihood of its tokens, computed
    # on the live context (so applied adapters count), window by window and batch by batch,
    # with logits fetched only for the positions whose next token is scored, and no more of
    # them per decode than fit SCORE_LOGITS_BYTES (a 152k vocabulary costs 0.6 MB a row).

    def encode_text(self, text: str) -> "ScoredTokens":
        """A plain text as the model reads it (BOS first if the model wants one); every token
        after the first is scored."""
        tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        return ScoredTokens(tokens, [False] + [True] * (len(tokens) - 1))

    def render_chat(self, messages: Sequence[Message], generation_prompt: bool = True) -> str:
        """The conversation as text through the model's own chat template (what the model reads
        before tokenization; the prompt-reuse tests compare these)."""
        import llama_cpp

        template = self.model.info.chat_template
        if not template:
            raise EngineError("This model has no chat template.")
        eos = self._token_text(self._llm.token_eos()) if self._llm.token_eos() != -1 else ""
        bos = self._token_text(self._llm.token_bos()) if self._llm.token_bos() != -1 else ""
        fmt = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=eos, bos_token=bos, add_generation_prompt=generation_prompt)
        return fmt(messages=[{"role": m["role"], "content": m["content"]} for m in messages]).prompt

    def tokenize(self, text: str) -> list[int]:
        """``text`` (a rendered prompt, special tokens spelled out) as the model's tokens."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def encode_chat(self, messages: Sequence[Message]) -> "ScoredTokens":
        """A conversation through the model's chat template, as the app prompts it; the scored
        tokens are those of the assistant turns (their content and end-of-turn marker), the
        tokens the notebook's training loss and validation loss cover (training/train.py
        ``encode``: the same spans, found the same way)."""
        if not self.model.info.chat_template:
            raise EngineError("This model has no chat template, so chat examples cannot be scored with it.")
        render = self.render_chat
        msgs = list(messages)
        full = render(msgs, False)
        spans: list[tuple[int, int]] = []  # byte ranges of the assistant turns
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            start = render(msgs[:i], True) if i else ""
            end = render(msgs[:i + 1], False)
            if not (full.startswith(start) and full.startswith(end)):
                raise EngineError("This model's chat template renders a conversation differently from its "
                                  "beginning, so its assistant turns cannot be scored.")
            spans.append((len(start.encode("utf-8")), len(end.encode("utf-8"))))
        data = full.encode("utf-8")
        tokens = self._llm.tokenize(data, add_bos=False, special=True)
        pieces = [self._piece(t) for t in tokens]
        if b"".join(pieces) == data:
            scored, pos = [], 0
            for piece in pieces:
                a, b = pos, pos + len(piece)
                scored.append(b > a and any(a < se and b > ss for ss, se in spans))
                pos = b
            return ScoredTokens(tokens, scored)
        # A tokenizer whose pieces do not spell the text back (a space prefix): tokenize the
        # spans apart; the boundaries may tokenize a little differently from the whole text.
        cuts = sorted({0, len(data), *[x for span in spans for x in span]})
        tokens, scored = [], []
        for a, b in zip(cuts, cuts[1:]):
            part = self._llm.tokenize(data[a:b], add_bos=False, special=True)
            inside = any(ss <= a and b <= se for ss, se in spans)
            tokens += part
            scored += [inside] * len(part)
        return ScoredTokens(tokens, scored)

    def _piece(self, token: int) -> bytes:
        """The token's bytes, special tokens as their text."""
        import ctypes

        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        buf = (ctypes.c_char * 64)()
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, 64, 0, True)
        if n < 0:  # longer than the buffer: ask again with the size it needs
            buf = (ctypes.c_char * -n)()
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, -n, 0, True)
        return bytes(buf[:n])

    def score(self, items: Sequence["ScoredTokens"], *, adapters: Sequence[tuple[Path | str, float]] | None = None,
              cancelled: Callable[[], bool] | None = None,
              progress: Callable[[int, int], None] | None = None) -> "NllResult":
        """The summed negative log-likelihood (nats) of the scored tokens of ``items``.

        ``adapters``: evaluate with exactly these (file, scale) instead of the engine's own,
        which are put back afterwards; None: with the engine's adapters as they are. The
        engine's lock is held throughout, so no answer runs with the borrowed adapters.
        Texts longer than the context are read in windows of n_ctx tokens that overlap by
        half (each token is scored once, with at least n_ctx/2 tokens before it once past
        the first window). ``progress(done, total)`` counts scored tokens; ``cancelled`` is
        polled between batches and, through llama.cpp's abort callback, inside one. The
        prompt cache is reset afterwards (the next answer evaluates its prompt afresh).
        """
        import llama_cpp

        cancelled = cancelled or (lambda: False)
        progress = progress or (lambda done, total: None)
        total = sum(it.n_scored for it in items)
        while not self._lock.acquire(timeout=0.1):  # an answer is running: wait, but stay cancellable
            if cancelled():
                raise EvaluationCancelled("Evaluation cancelled.")
        try:
            self._abort.clear()
            watch = CancelWatch(cancelled, self._abort).start()
            own = list(self.adapters)
            n_batch = max(1, min(self.config.n_batch, self._llm.n_batch))
            batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
            per_token: list[float] = []
            try:
                if adapters is not None:
                    self._apply_adapters(adapters, free_unused=False)
                for item in items:
                    self._score_item(item, batch, n_batch, per_token, cancelled,
                                     lambda: progress(len(per_token), total))
            finally:
                watch.stop()
                llama_cpp.llama_batch_free(batch)
                self._clear_kv()
                if adapters is not None:
                    self._apply_adapters(own)
                self._llm.reset()
                self._abort.clear()
        finally:
            self._lock.release()
        progress(len(per_token), total)
        return NllResult(nll=float(sum(per_token)), tokens=len(per_token), per_token=per_token)

    def _score_item(self, item: "ScoredTokens", batch, n_batch: int, out: list[float],
                    cancelled: Callable[[], bool], tick: Callable[[], None]) -> None:
        n, window = len(item.tokens), self.n_ctx
        end = min(window, n)
        self._score_window(item, 0, end, 1, batch, n_batch, out, cancelled, tick)
        while end < n:
            start = end - window // 2
            new_end = min(start + window, n)
            self._score_window(item, start, new_end, end, batch, n_batch, out, cancelled, tick)
            end = new_end

    def _score_window(self, item: "ScoredTokens", start: int, end: int, first: int, batch, n_batch: int,
                      out: list[float], cancelled: Callable[[], bool], tick: Callable[[], None]) -> None:
        """Evaluate tokens[start:end] from an empty cache; score tokens first..end-1."""
        import llama_cpp
        import numpy as np

        ctx = self._llm.ctx
        n_vocab = self._llm.n_vocab()
        max_rows = max(16, SCORE_LOGITS_BYTES // (4 * n_vocab))
        tokens, scored = item.tokens, item.scored
        self._clear_kv()
        p = start
        while p < end:
            if cancelled() or self._abort.is_set():
                raise EvaluationCancelled("Evaluation cancelled.")
            rows: list[tuple[int, int]] = []  # (index in batch, token it predicts)
            k = 0
            while p < end and k < n_batch and len(rows) < max_rows:
                wanted = p + 1 < end and p + 1 >= first and scored[p + 1]
                batch.token[k] = tokens[p]
                batch.pos[k] = p - start
                batch.n_seq_id[k] = 1
                batch.seq_id[k][0] = 0
                batch.logits[k] = bool(wanted)
                if wanted:
                    rows.append((k, tokens[p + 1]))
                k += 1
                p += 1
            batch.n_tokens = k
            rc = llama_cpp.llama_decode(ctx, batch)
            if rc != 0:
                if rc == 2 or self._abort.is_set() or cancelled():
                    raise EvaluationCancelled("Evaluation cancelled.")
                raise EngineError(f"llama.cpp could not evaluate the text (llama_decode returned {rc}).")
            for idx, target in rows:
                ptr = llama_cpp.llama_get_logits_ith(ctx, idx)
                logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float64)
                top = logits.max()
                out.append(float(top + np.log(np.exp(logits - top).sum()) - logits[target]))
            if rows:
                tick()


# Logits fetched per decode, at most: llama.cpp keeps an output buffer that big for the rest of
# the context's life. 64 MiB is 341 rows of the starter's 49k vocabulary, 110 of Qwen's 152k
# (logits for a whole 2048-token window of Qwen would be 1.2 GB). Fewer rows per decode means
# smaller batches when every token is scored; on the starter model 64 vs 341 rows made no
# difference beyond the noise of a shared 2-core machine, and scoring 300 tokens took about as
# long as llama-cpp-python's own eval of them (1.4-1.5 s vs 1.9 s, idle machine).
SCORE_LOGITS_BYTES = 64 * 1024**2


class EvaluationCancelled(EngineError):
    """The user stopped a likelihood evaluation. A UserError like its base: its message is what
    the UI shows when a cancel is not handled on its own."""


@dataclass
class ScoredTokens:
    """The tokens of one text; ``scored[i]`` says whether token i counts (predicted from the
    tokens before it)."""

    tokens: list[int]
    scored: list[bool]

    @property
    def n_scored(self) -> int:
        return sum(1 for i, s in enumerate(self.scored) if s and i > 0)

    def truncated(self, n: int) -> "ScoredTokens":
        return ScoredTokens(self.tokens[:n], self.scored[:n])


@dataclass
class NllResult:
    nll: float                      # summed negative log-likelihood, nats
    tokens: int                     # scored tokens
    per_token: list[float]

    @property
    def loss(self) -> float:
        """Mean NLL per scored token (the training loss's unit)."""
        return self.nll / self.tokens if self.tokens else float("nan")

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.tokens else float("nan")
