"""What an API request asks for, checked before the model is touched.

Every refusal is an ``ApiRequestError`` with the HTTP status and OpenAI's error shape, saying
what was wrong and what to send instead (a client author reads these in their logs). Prompts
for fill-in-the-middle are built here with Qwen2.5-Coder's FIM tokens, in the order the model
was trained on (repo-level files first, as llama.cpp's server lays out ``input_extra``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from app.core.errors import UserError
from app.core.learn.fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX
from app.core.settings import GenerationSettings

REPO_NAME, FILE_SEP = "<|repo_name|>", "<|file_sep|>"
ROLES = {"system", "user", "assistant"}
MAX_STOP = 4
MAX_EXTRA_FILES = 64
MAX_CHARS_PER_TOKEN = 128  # above any vocabulary's longest pieces (the starter reads 64 spaces as one token)
# A lone surrogate can only come from a \uD800-\uDFFF escape: bodies without one are not walked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


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


def shown(value, limit: int = 60) -> str:
    """A value as a message quotes it: its repr, cut short (a refused field may be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _number(body: dict, name: str, kind, lo, hi, default):
    value = body.get(name, default)
    if value is None:
        return default
    whole = " (a whole one)" if kind is int else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiRequestError(f"'{name}' must be a number{whole}, not {shown(value)}.")
    if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity, 1e400 (JSON allows them here)
        raise ApiRequestError(f"'{name}' must be a finite number between {lo} and {hi}, not {value}.")
    if kind is int and value != int(value):
        raise ApiRequestError(f"'{name}' must be a whole number, not {value!r}.")
    if not lo <= value <= hi:
        raise ApiRequestError(f"'{name}' must be between {lo} and {hi}; it was {value}.")
    return kind(value)


def sampling(body: dict, defaults: GenerationSettings, max_name: str = "max_tokens") -> Sampling:
    """The sampling settings a request asks for; what it leaves out is the user's own."""
    sent = max_name if body.get(max_name) is not None else "max_completion_tokens"
    asked = body.get(sent)
    if asked is not None and not (type(asked) in (int, float) and asked == -1):
        asked = _number({sent: asked}, sent, int, 1, 10**9, None)  # the message names the field sent
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
        raise ApiRequestError(f"'stop' must be a string or a list of at most {MAX_STOP} strings, not {shown(stop)}.")
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


def stream_flag(body: dict) -> bool:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiRequestError(f"'stream' must be true or false, not {shown(stream)}.")
    return stream


def model_name(body: dict) -> str | None:
    name = body.get("model")
    if name is not None and not isinstance(name, str):
        raise ApiRequestError(f"'model' must be a string (see GET /v1/models), not {shown(name)}.")
    return name or None


def refuse_unfittable(n_ctx: int, chars: int, messages: int = 0) -> None:
    """Refuse, before anything is tokenized, a prompt no context of ``n_ctx`` tokens can hold:
    more than MAX_CHARS_PER_TOKEN characters a token, or more chat messages than tokens. Why:
    llama.cpp's tokenizer is quadratic in a text's special tokens, and 7 MB of "<|im_end|>" held
    the model for some 20 minutes only to be refused. ``n_ctx`` 0: no model yet (the backend says so)."""
    if n_ctx and chars > n_ctx * MAX_CHARS_PER_TOKEN:
        raise ApiRequestError(f"The prompt is {chars:,} characters, far more than the model's context of {n_ctx} "
                              "tokens can hold (a token is a few characters); shorten it.",
                              extra={"prompt_chars": chars, "n_ctx": n_ctx})
    if n_ctx and messages > n_ctx:
        raise ApiRequestError(f"'messages' has {messages:,} messages; the model's context of {n_ctx} tokens cannot "
                              "hold them (each takes at least one token). Send fewer.", extra={"n_ctx": n_ctx})


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
        if not isinstance(m, dict):
            raise ApiRequestError(f"messages[{i}] must be an object such as {{'role': 'user', 'content': '...'}}, "
                                  f"not {shown(m)}.")
        if not isinstance(m.get("role"), str) or m["role"] not in ROLES:  # a list or dict is not hashable
            raise ApiRequestError(f"messages[{i}]: 'role' must be one of {sorted(ROLES)}, not {shown(m.get('role'))}.")
        out.append({"role": m["role"], "content": _text(m.get("content"), f"messages[{i}]")})
    return out


def refuse_lone_surrogates(body, raw: bytes) -> None:
    """Refuse text that is not Unicode: JSON may escape half of a UTF-16 pair (``"\\ud800"``),
    but no tokenizer can encode it, so it failed deep in the model as a server error. The
    message names the field and the place."""
    if not _SURROGATE_ESCAPE.search(raw):
        return
    todo = [("", body)]
    while todo:
        path, value = todo.pop()
        if isinstance(value, str):
            hit = _SURROGATE.search(value)
            if hit:
                raise ApiRequestError(
                    f"'{path}' is not valid Unicode text: it has a lone surrogate {hit.group()!a} at character "
                    f"{hit.start()} (half of a UTF-16 pair). Send whole characters, or remove it.")
        elif isinstance(value, list):
            todo.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            todo.extend((f"{path}.{_key(k)}" if path else _key(k), v) for k, v in reversed(list(value.items())))


def _key(name: str) -> str:
    return ascii(name)[1:-1] if _SURROGATE.search(name) else name


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
            raise ApiRequestError("'prompt' must be one string (token arrays and lists of several prompts are "
                                  f"not supported), not {shown(prompt)}.")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ApiRequestError(f"'prompt' must be a string, not {shown(prompt)}.")
    return prompt


def fim_prompt(prefix: str, suffix: str, extra: list[tuple[str, str]] | None = None) -> str:
    """Qwen2.5-Coder's FIM prompt; with ``extra`` (name, text) files, its repo-level form."""
    head = ""
    if extra:
        head = f"{REPO_NAME}project\n" + "".join(f"{FILE_SEP}{name}\n{text}" for name, text in extra) + FILE_SEP
    return f"{head}{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"


def fim_suffix(body: dict) -> str | None:
    """``/v1/completions``' ``suffix`` (present: fill-in-the-middle)."""
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise ApiRequestError(f"'suffix' must be a string, not {shown(suffix)}.")
    return suffix


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
