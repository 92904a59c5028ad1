"""What an API request asks for, checked before the model is touched.

Every refusal is an ``ApiRequestError`` with the HTTP status and OpenAI's error shape, saying
what was wrong and what to send instead (a client author reads these in their logs). Prompts
for fill-in-the-middle are built here with Qwen2.5-Coder's FIM tokens, in the order the model
was trained on (repo-level files first, as llama.cpp's server lays out ``input_extra``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.errors import UserError
from app.core.learn.fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX
from app.core.settings import GenerationSettings

REPO_NAME, FILE_SEP = "<|repo_name|>", "<|file_sep|>"
ROLES = {"system", "user", "assistant"}
MAX_STOP = 4
MAX_EXTRA_FILES = 64


class ApiRequestError(UserError, ValueError):
    """A request the API refuses; ``status`` is the HTTP status, ``kind`` OpenAI's error type."""

    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error",
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.kind = status, kind
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "code": self.status, **self.extra}}


@dataclass
class Sampling:
    params: GenerationSettings
    stop: list[str] = field(default_factory=list)
    max_tokens_asked: int | None = None


def need_object(body) -> dict:
    if not isinstance(body, dict):
        raise ApiRequestError("The request body must be a JSON object.")
    return body


def _number(body: dict, name: str, kind, lo, hi, default):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise ApiRequestError(f"'{name}' must be a number{' (a whole one)' if kind is int else ''}, not {value!r}.")
    if not lo <= value <= hi:
        raise ApiRequestError(f"'{name}' must be between {lo} and {hi}; it was {value}.")
    return kind(value)


def sampling(body: dict, defaults: GenerationSettings, max_name: str = "max_tokens") -> Sampling:
    """The sampling settings a request asks for; what it leaves out is the user's own."""
    asked = body.get(max_name, body.get("max_completion_tokens"))
    if asked is not None and asked != -1:
        asked = _number({max_name: asked}, max_name, int, 1, 10**9, None)
    else:
        asked = None
    p = GenerationSettings(
        temperature=_number(body, "temperature", float, 0.0, 2.0, defaults.temperature),
        top_p=_number(body, "top_p", float, 0.0, 1.0, defaults.top_p),
        top_k=_number(body, "top_k", int, 0, 1000, defaults.top_k),
        max_tokens=asked or defaults.max_tokens,
        repeat_penalty=_number(body, "repeat_penalty", float, 0.5, 2.0, defaults.repeat_penalty),
        seed=_number(body, "seed", int, -(2**31), 2**31 - 1, None))
    stop = body.get("stop")
    if stop is None:
        stops = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= MAX_STOP:
        stops = list(stop)
    else:
        raise ApiRequestError(f"'stop' must be a string or a list of at most {MAX_STOP} strings.")
    return Sampling(p, [s for s in stops if s], asked)


def clamp_max_tokens(s: Sampling, prompt_tokens: int, n_ctx: int) -> str | None:
    """Refuse a prompt the context cannot hold; shorten an answer that would not fit. The note
    says what was changed (None: nothing)."""
    room = n_ctx - prompt_tokens
    if room < 1:
        raise ApiRequestError(
            f"The prompt is {prompt_tokens} tokens and the model's context holds {n_ctx}; shorten it "
            f"by at least {prompt_tokens - n_ctx + 1} tokens.", extra={"prompt_tokens": prompt_tokens, "n_ctx": n_ctx})
    if s.params.max_tokens > room:
        asked = s.params.max_tokens
        s.params.max_tokens = room
        if s.max_tokens_asked is not None:
            return (f"max_tokens {asked} was lowered to {room}: the prompt's {prompt_tokens} tokens and the "
                    f"answer must fit the context of {n_ctx} tokens.")
    return None


def _text(content, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI's content parts: only text is understood here
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiRequestError(f"{where}: only text content parts are supported "
                                      "({'type': 'text', 'text': ...}).")
            parts.append(part["text"])
        return "".join(parts)
    if content is None:
        return ""
    raise ApiRequestError(f"{where}: 'content' must be a string or a list of text parts.")


def chat_messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiRequestError("'messages' must be a non-empty list of {'role', 'content'} objects.")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ApiRequestError(f"messages[{i}]: 'role' must be one of {sorted(ROLES)}.")
        out.append({"role": m["role"], "content": _text(m.get("content"), f"messages[{i}]")})
    return out


def with_rules(messages: list[dict], rules_block: str) -> list[dict]:
    """The user's standing rules in the system message (one is added if the client sent none)."""
    if not rules_block:
        return messages
    if messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{rules_block}".strip()}] + messages[1:]
    return [{"role": "system", "content": rules_block}] + messages


def wants_rules(body: dict) -> bool:
    """The extension field ``{"offline_coder": {"rules": true}}``; off unless asked."""
    ext = body.get("offline_coder")
    if ext is None:
        return False
    if not isinstance(ext, dict) or not isinstance(ext.get("rules", False), bool):
        raise ApiRequestError("'offline_coder' must be an object such as {\"rules\": true}.")
    return ext.get("rules", False)


def prompt_text(body: dict) -> str:
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise ApiRequestError("'prompt' must be one string (a list of several prompts is not supported).")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiRequestError("'prompt' must be a string.")
    return prompt


def fim_prompt(prefix: str, suffix: str, extra: list[tuple[str, str]] | None = None) -> str:
    """Qwen2.5-Coder's FIM prompt; with ``extra`` (name, text) files, its repo-level form."""
    head = ""
    if extra:
        head = f"{REPO_NAME}project\n" + "".join(f"{FILE_SEP}{name}\n{text}" for name, text in extra) + FILE_SEP
    return f"{head}{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"


def infill_request(body: dict) -> tuple[str, str, list[tuple[str, str]]]:
    """(prefix, suffix, extra files) of a llama.cpp ``/infill`` request (llama.vscode's format:
    ``prompt`` is the cursor line's start, appended to ``input_prefix``)."""
    def string(name):
        v = body.get(name, "")
        if not isinstance(v, str):
            raise ApiRequestError(f"'{name}' must be a string.")
        return v

    extra_in = body.get("input_extra") or []
    if not isinstance(extra_in, list) or len(extra_in) > MAX_EXTRA_FILES:
        raise ApiRequestError(f"'input_extra' must be a list of at most {MAX_EXTRA_FILES} "
                              "{'filename', 'text'} objects.")
    extra = []
    for i, item in enumerate(extra_in):
        if not isinstance(item, dict) or not isinstance(item.get("text", ""), str) \
                or not isinstance(item.get("filename", ""), str):
            raise ApiRequestError(f"input_extra[{i}] must be {{'filename': str, 'text': str}}.")
        extra.append((item.get("filename", ""), item.get("text", "")))
    return string("input_prefix") + string("prompt"), string("input_suffix"), extra
