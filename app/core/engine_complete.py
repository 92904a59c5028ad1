"""Raw text completion's loop (``Engine.complete``: the local API's ``/v1/completions`` and
fill-in-the-middle): llama.cpp's plain ``create_completion`` on a prompt whose special tokens are
read as such, with the chat loop's cancel watch and error words. Called with the engine's lock
held; the engine hands over its llama.cpp object and abort flag.
"""

from __future__ import annotations

import threading
import time

from app.core.engine_parts import CancelWatch, EngineError, GenerationResult
from app.core.settings import GenerationSettings


def run_completion(llm, abort: threading.Event, n_ctx: int, prompt: str, params: GenerationSettings,
                   on_token, cancelled, stop) -> GenerationResult:
    """The completion loop, called by ``Engine.complete`` with its lock held."""
    abort.clear()
    watch = CancelWatch(cancelled, abort)
    t0 = time.perf_counter()
    ttft, pieces, chunks, prompt_tokens, finish = None, [], 0, 0, "stop"
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    kwargs = dict(prompt=tokens, stream=True, temperature=params.temperature, top_p=params.top_p,
                  top_k=params.top_k, max_tokens=params.max_tokens, repeat_penalty=params.repeat_penalty,
                  stop=stop or None)
    if params.seed is not None:
        kwargs["seed"] = params.seed
    stream = ()
    watch.start()
    try:
        stream = llm.create_completion(**kwargs)
        for chunk in stream:
            choice = chunk["choices"][0]
            text = choice.get("text")
            if text:
                if ttft is None:
                    ttft = time.perf_counter() - t0
                    prompt_tokens = llm.n_tokens
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
        if abort.is_set() or cancelled():
            llm.reset()  # an aborted decode leaves a half-written KV cache
            finish = "cancelled"
        elif "exceed context window" in str(e):
            raise EngineError(f"The prompt is too long for the model's context ({n_ctx} tokens).") from None
        else:
            raise EngineError(f"Generation failed: {e}") from None
    finally:
        watch.stop()
        close = getattr(stream, "close", None)
        if close:
            close()
        abort.clear()
    total = time.perf_counter() - t0
    if ttft is None:
        prompt_tokens = len(tokens)
    completion = max(chunks, llm.n_tokens - prompt_tokens) if ttft is not None else 0
    return GenerationResult(text="".join(pieces), prompt_tokens=len(tokens), completion_tokens=completion,
                            time_to_first_token_s=ttft, total_s=total, finish_reason=finish, chunks=chunks)
