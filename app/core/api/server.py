"""The local API's HTTP side: Starlette routes in OpenAI's and llama.cpp server's formats.

Why Starlette + uvicorn + sse-starlette: the stack llama-cpp-python's own server uses; HTTP
parsing, flow control (a slow reader pauses our writes instead of growing a buffer) and
disconnect detection are theirs, not ours. Each route checks the key, reads a bounded JSON
body, and hands generation to ``ApiBackend.generate`` on a thread; what it emits is relayed
as one JSON answer or as server-sent events. A client that goes away sets the cancel flag the
engine polls between tokens (and during prompt reading), so the model is free at once.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
import uuid

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.core import safe_json
from app.core.api import requests as rq
from app.core.api.backend import ApiBackend, RequestRecord, client_process
from app.core.api.fim import FimRequest
from app.core.api.requests import ApiRequestError

MAX_BODY = 8 * 1024 * 1024  # a prompt bigger than any context, with room for input_extra files
MAX_EMBED_INPUTS = 512
COALESCE_S = 0.03  # streamed tokens after the first are handed over in batches this far apart
SEND_TIMEOUT_S = 30  # a client that reads nothing for this long is dropped (its generation cancelled)
BODY_IDLE_S = 30.0  # a body that stops arriving (a Content-Length that lies) is answered 408 after this


def build_app(backend: ApiBackend) -> Starlette:
    def route(path, fn, methods=("POST",)):
        async def endpoint(request: Request):
            return await _handle(request, backend, fn)
        return Route(path, endpoint, methods=list(methods))

    async def not_found(request: Request, exc: HTTPException):
        call = _Call(request, backend)  # on the record too: every request is
        call.rec.note = "no such endpoint"
        call.finish(exc.status_code)
        return JSONResponse({"error": {"message": f"{request.method} {request.url.path}: {exc.detail}. Endpoints: "
                                       "/v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings, /infill.",
                                       "type": "invalid_request_error", "code": exc.status_code}},
                            status_code=exc.status_code)

    return Starlette(routes=[
        route("/v1/models", _models, ("GET",)), route("/models", _models, ("GET",)),
        route("/v1/chat/completions", _chat), route("/chat/completions", _chat),
        route("/v1/completions", _completions), route("/completions", _completions),
        route("/infill", _infill), route("/v1/embeddings", _embeddings), route("/embeddings", _embeddings),
    ], exception_handlers={404: not_found, 405: not_found})


class _Call:
    """One request as the record sees it; the client's process is looked up beside the work."""

    def __init__(self, request: Request, backend: ApiBackend):
        self.request, self.backend = request, backend
        self.t0 = time.perf_counter()
        self.rec = RequestRecord(time.time(), f"{request.method} {request.url.path}")
        self._client: tuple[int, str] | None = None
        port = request.client.port if request.client else 0
        self._lookup = threading.Thread(target=self._find_client, args=(port,), daemon=True)
        self._lookup.start()
        self.done = False

    def _find_client(self, port: int) -> None:
        self._client = client_process(port, self.backend.port)

    def finish(self, status: int | None = None) -> None:
        if self.done:
            return
        self.done = True
        if status is not None:
            self.rec.status = status
        self.rec.duration_s = time.perf_counter() - self.t0
        self._lookup.join(1.0)
        if self._client:
            self.rec.client_pid, self.rec.client = self._client
        self.backend.record(self.rec)


async def _handle(request: Request, backend: ApiBackend, fn):
    call = _Call(request, backend)
    try:
        if not _authorized(request, backend.key):
            raise ApiRequestError("Missing or wrong API key: send 'Authorization: Bearer <key>' with the key shown "
                                  "in Settings → Local API (or by `python -m app serve`).", status=401,
                                  kind="authentication_error", headers={"WWW-Authenticate": "Bearer"})
        response = await fn(request, backend, call)
    except ApiRequestError as e:
        call.rec.note = str(e)[:200]
        call.finish(e.status)
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)
    except Exception as e:  # noqa: BLE001 - one request's failure is its client's 500, not the server's end
        call.finish(500)
        return JSONResponse({"error": {"message": f"Internal error: {type(e).__name__}: {e}",
                                       "type": "server_error", "code": 500}}, status_code=500)
    if not isinstance(response, EventSourceResponse):
        call.finish(response.status_code)
    return response


def _authorized(request: Request, key: str) -> bool:
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
    return bool(key) and hmac.compare_digest(given.encode(), key.encode())


async def _json(request: Request) -> dict:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise ApiRequestError(f"The request body is {int(length)} bytes; the limit is {MAX_BODY}.", status=413)
    data, parts = bytearray(), request.stream()
    while True:
        try:  # a client whose body stops short is answered, not waited for forever
            part = await asyncio.wait_for(parts.__anext__(), BODY_IDLE_S)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise ApiRequestError(
                f"The request body stopped arriving: {len(data)} bytes came"
                + (f" of the {length} its Content-Length announced" if length else "")
                + f", then nothing for {BODY_IDLE_S:g} s. Send the whole body.", status=408) from None
        except ClientDisconnect:  # recorded as the client's leaving, not as a server error
            raise ApiRequestError("The client went away before its request body arrived.", status=499) from None
        data += part
        if len(data) > MAX_BODY:
            raise ApiRequestError(f"The request body is over the limit of {MAX_BODY} bytes.", status=413)
    try:
        body = rq.need_object(safe_json.loads(bytes(data), max_bytes=MAX_BODY))
    except ValueError as e:
        if isinstance(e, ApiRequestError):
            raise
        raise ApiRequestError(f"The request body is not valid JSON ({e}).") from None
    rq.refuse_lone_surrogates(body, bytes(data))
    return body


async def _models(request, backend: ApiBackend, call):
    now = int(time.time())
    return JSONResponse({"object": "list", "data": [
        {"id": m.name, "object": "model", "created": now, "owned_by": "offline-coder",
         "meta": {"n_ctx": m.engine.n_ctx, "file": m.engine.model.path.name}} for m in backend.models()]})


# ---- generation ---------------------------------------------------------------------------------
class _Run:
    """A generation on its thread, its events relayed into this request's event loop."""

    def __init__(self, request: Request, backend: ApiBackend, call: _Call, **kwargs):
        loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancel = threading.Event()
        self.call = call

        # Tokens after the first are handed to the loop in batches, at most one wake-up per
        # COALESCE_S: a wake-up, a write and a client read per token cost the model 7 % on 2 cores.
        lock, batch, state = threading.Lock(), [], {"pending": False, "first": True}

        def flush():
            with lock:
                items, batch[:] = list(batch), []
                state["pending"] = False
            for it in items:
                self.queue.put_nowait(it)

        def emit(item):
            with lock:
                batch.append(item)
                if state["pending"]:
                    return
                state["pending"] = True
                delay = COALESCE_S if item[0] == "token" and not state["first"] else 0.0
                if item[0] == "token":
                    state["first"] = False
            try:
                if delay:
                    loop.call_soon_threadsafe(loop.call_later, delay, flush)
                else:
                    loop.call_soon_threadsafe(flush)
            except RuntimeError:  # the server's loop is gone (stopped mid-answer)
                self.cancel.set()

        who = f"API {call.rec.endpoint}"
        threading.Thread(target=backend.generate, name="api-generate", daemon=True,
                         kwargs=dict(who=who, emit=emit, cancel=self.cancel, **kwargs)).start()
        self.watch = asyncio.ensure_future(self._watch(request))

    async def _watch(self, request: Request) -> None:
        while not self.cancel.is_set():
            if await request.is_disconnected():
                self.cancel.set()
                return
            await asyncio.sleep(0.05)

    async def ready(self) -> tuple[str, str | None, int]:
        """Wait for the model (the queue) and the prompt's check; raises the refusal."""
        kind, value = await self.queue.get()
        if kind == "error":
            self.watch.cancel()
            raise value
        if kind == "cancelled":
            self.watch.cancel()
            raise ApiRequestError("The client went away while the request waited.", status=499)
        self.model, self.note, self.prompt_tokens = value
        self.call.rec.prompt_tokens = self.prompt_tokens
        if self.note:
            self.call.rec.note = self.note
        return value

    async def collect(self):
        """The whole answer (text, result); the watch goes on until it is done."""
        pieces = []
        try:
            while True:
                kind, value = await self.queue.get()
                if kind == "token":
                    pieces.append(value)
                elif kind == "done":
                    self.call.rec.completion_tokens = value.completion_tokens
                    return "".join(pieces), value
                elif kind == "error":
                    raise value
        finally:
            self.watch.cancel()

    def headers(self) -> dict:
        return {"X-Offline-Coder-Note": self.note.encode("ascii", "replace").decode()} if self.note else {}


def _usage(run: _Run, result) -> dict:
    return {"prompt_tokens": run.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": run.prompt_tokens + result.completion_tokens}


def _finish(result) -> str:
    return "length" if result.finish_reason == "length" else "stop"


def _stream(run: _Run, first: dict | None, chunk, final, usage_wanted: bool) -> EventSourceResponse:
    """Server-sent events: ``chunk(text)`` per piece, ``final(result)`` last, then [DONE]."""
    run.watch.cancel()  # sse-starlette watches for the disconnect from here on

    async def events():
        status = 200
        try:
            if first is not None:
                yield safe_dumps(first)
            held = None
            while True:
                kind, value = held if held is not None else await run.queue.get()
                held = None
                if kind == "token":  # the pieces handed over together go out as one chunk
                    while held is None and not run.queue.empty():
                        item = run.queue.get_nowait()
                        if item[0] == "token":
                            value += item[1]
                        else:
                            held = item  # the end or an error: handled after this chunk
                    yield safe_dumps(chunk(value))
                elif kind == "done":
                    run.call.rec.completion_tokens = value.completion_tokens
                    yield safe_dumps(final(value))
                    if usage_wanted:
                        yield safe_dumps({**final(value), "choices": [], "usage": _usage(run, value)})
                    break
                elif kind == "error":
                    status = value.status
                    yield safe_dumps(value.body())
                    break
            yield "[DONE]"
        finally:
            run.cancel.set()  # a client that left mid-answer frees the model now
            run.call.finish(status if status != 200 or run.call.rec.completion_tokens else 200)

    return EventSourceResponse(events(), headers={"Cache-Control": "no-cache", **run.headers()}, sep="\n",
                               send_timeout=SEND_TIMEOUT_S, ping=15)


def safe_dumps(obj) -> str:
    import json
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _fits(backend: ApiBackend, chars: int, messages: int = 0) -> None:
    """Refuse what no served model's context can hold before it is tokenized (see requests.py)."""
    rq.refuse_unfittable(max((m.engine.n_ctx for m in backend.models()), default=0), chars, messages)


async def _chat(request, backend: ApiBackend, call):
    body = await _json(request)
    messages, stream = rq.chat_messages(body), rq.stream_flag(body)
    sampling, rules = rq.sampling(body, backend.defaults), rq.wants_rules(body)
    _fits(backend, sum(len(m["content"]) for m in messages), len(messages))
    usage_wanted = bool((body.get("stream_options") or {}).get("include_usage")) if isinstance(
        body.get("stream_options"), dict) else False
    run = _Run(request, backend, call, name=rq.model_name(body), sampling=sampling, messages=messages, rules=rules)
    model, note, _ = await run.ready()
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(delta, finish=None):
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    if stream:
        return _stream(run, chunk({"role": "assistant", "content": ""}), lambda t: chunk({"content": t}),
                       lambda r: chunk({}, _finish(r)), usage_wanted)
    text, result = await run.collect()
    out = {"id": cid, "object": "chat.completion", "created": created, "model": model,
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                        "finish_reason": _finish(result)}], "usage": _usage(run, result)}
    if note:
        out["offline_coder"] = {"note": note}
    return JSONResponse(out, headers=run.headers())


async def _completions(request, backend: ApiBackend, call):
    body = await _json(request)
    prompt, stream = rq.prompt_text(body), rq.stream_flag(body)
    suffix = rq.fim_suffix(body)
    if suffix is not None:
        prompt = FimRequest(prompt, suffix)
    if not prompt:  # llama.cpp has nothing to continue (an AssertionError deep inside)
        raise ApiRequestError("'prompt' is empty: send the text to continue (or a 'suffix' for fill-in-the-middle).")
    _fits(backend, len(prompt.text() if isinstance(prompt, FimRequest) else prompt))
    run = _Run(request, backend, call, name=rq.model_name(body), sampling=rq.sampling(body, backend.defaults),
               prompt=prompt)
    model, note, _ = await run.ready()
    cid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(text, finish=None):
        return {"id": cid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}

    if stream:
        return _stream(run, None, chunk, lambda r: chunk("", _finish(r)), False)
    text, result = await run.collect()
    out = {**chunk(text, _finish(result)), "usage": _usage(run, result)}
    if note:
        out["offline_coder"] = {"note": note}
    return JSONResponse(out, headers=run.headers())


async def _infill(request, backend: ApiBackend, call):
    """llama.cpp server's /infill, as llama.vscode sends it (non-streaming and streaming)."""
    body = await _json(request)
    prompt, stream = FimRequest(*rq.infill_request(body)), rq.stream_flag(body)
    _fits(backend, len(prompt.text()))
    sampling = rq.sampling(body, backend.defaults, max_name="n_predict")
    run = _Run(request, backend, call, name=rq.model_name(body), sampling=sampling, prompt=prompt)
    model, _note, _ = await run.ready()
    if stream:
        return _stream(run, None, lambda t: {"content": t, "stop": False},
                       lambda r: {"content": "", "stop": True, "model": model,
                                  "tokens_predicted": r.completion_tokens}, False)
    text, result = await run.collect()
    gen_s = max(1e-9, result.total_s - (result.time_to_first_token_s or 0))
    return JSONResponse({
        "content": text, "model": model, "stop": True, "tokens_predicted": result.completion_tokens,
        "tokens_evaluated": run.prompt_tokens, "truncated": False,
        "timings": {"prompt_n": run.prompt_tokens, "prompt_ms": (result.time_to_first_token_s or 0) * 1000,
                    "predicted_n": result.completion_tokens, "predicted_ms": gen_s * 1000,
                    "predicted_per_second": result.tokens_per_s}}, headers=run.headers())


async def _embeddings(request, backend: ApiBackend, call):
    import anyio

    body = await _json(request)
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts) \
            or len(texts) > MAX_EMBED_INPUTS:
        raise ApiRequestError(f"'input' must be a string or a list of 1 to {MAX_EMBED_INPUTS} strings.")
    embedder = backend.embedder()
    name = rq.model_name(body)
    own = embedder.model_id
    allowed = [own, "all-MiniLM-L6-v2"] + [m.name for m in backend.models()]
    if name and name not in allowed:
        raise ApiRequestError(f"No embedding model named {name!r}; available: {own}.", status=404,
                              kind="not_found_error", extra={"available": [own]})
    vectors = await anyio.to_thread.run_sync(embedder.embed, texts)
    tokens = sum(embedder.count_tokens(t) for t in texts)
    call.rec.prompt_tokens = tokens
    return JSONResponse({"object": "list", "model": own,
                         "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                                  for i, v in enumerate(vectors)],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
