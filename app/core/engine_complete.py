"""Raw text completion's loop (``Engine.complete``: the local API's ``/v1/completions`` and
fill-in-the-middle): llama.cpp's plain ``create_completion`` on a prompt whose special tokens are
read as such, with the chat loop's cancel watch and error words. Called with the engine's lock
held; the engine hands over its llama.cpp object and abort flag.
"""

from __future__ import annotations

import threading

from app.core.engine_parts import GenerationResult, stream_generation
from app.core.settings import GenerationSettings


def run_completion(llm, abort: threading.Event, n_ctx: int, prompt: str, params: GenerationSettings,
                   on_token, cancelled, stop) -> GenerationResult:
    """The completion loop, called by ``Engine.complete`` with its lock held."""
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    kwargs = dict(prompt=tokens, stream=True, temperature=params.temperature, top_p=params.top_p,
                  top_k=params.top_k, max_tokens=params.max_tokens, repeat_penalty=params.repeat_penalty,
                  stop=stop or None)
    if params.seed is not None:
        kwargs["seed"] = params.seed
    s = stream_generation(llm, abort, lambda: llm.create_completion(**kwargs), lambda choice: choice.get("text"),
                          on_token, cancelled, f"The prompt is too long for the model's context ({n_ctx} tokens).")
    started = s.time_to_first_token_s is not None
    completion = max(s.chunks, llm.n_tokens - s.read_tokens) if started else 0
    return GenerationResult(text=s.text, prompt_tokens=len(tokens), completion_tokens=completion,
                            time_to_first_token_s=s.time_to_first_token_s, total_s=s.total_s,
                            finish_reason=s.finish_reason, chunks=s.chunks)
