"""What the API serves with: the shared model(s), the gate, the key, and the record of requests.

The HTTP layer (``server.py``) stays thin: each generation runs here on a thread of its own,
behind the engine gate, and reports through ``emit`` ("ready" once the prompt is checked and
the model is ours, then "token"s, then "done" or "error"). The record of each request becomes
an audit-log line, so the Network panel and its CSV list API requests next to network attempts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from app.core.api.complete import complete
from app.core.api.fim import FIM_BUDGET, FimRequest
from app.core.api.gate import API, EngineGate, GateCancelled, GateFull
from app.core.api.requests import ApiRequestError, Sampling, clamp_max_tokens, with_rules
from app.core.engine import Engine, EngineError
from app.core.net.audit import ALLOWED, LOG, AuditLog, NetEvent
from app.core.settings import GenerationSettings


@dataclass
class ServedModel:
    name: str
    engine: Engine


@dataclass
class RequestRecord:
    time: float
    endpoint: str
    client: str = "unknown"
    client_pid: int = 0
    status: int = 200
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_s: float = 0.0
    note: str = ""

    def summary(self) -> str:
        return (f"{self.status}, {self.prompt_tokens}+{self.completion_tokens} tokens, {self.duration_s:.2f} s"
                + (f"; {self.note}" if self.note else ""))


class ApiBackend:
    def __init__(self, gate: EngineGate, model: Callable[[], ServedModel | None], key: str,
                 defaults: GenerationSettings | None = None, rules: Callable[[], list[str]] = lambda: [],
                 completion_model: Callable[[], ServedModel | None] = lambda: None, embedder=None,
                 log: AuditLog = LOG, fim_budget: int = FIM_BUDGET):
        self.gate, self.model, self.key = gate, model, key
        self.defaults = defaults or GenerationSettings()
        self.rules, self.completion_model = rules, completion_model
        self._embedder = embedder
        self.log = log
        self.fim_budget = fim_budget  # tokens of prefix + suffix a FIM request reads (0: all)
        self.port = 0
        self.requests = 0
        self.last_prompt = ""  # what the model last read for a raw or FIM request (tests, diagnostics)
        self.listeners: list[Callable[[RequestRecord], None]] = []
        self._lock = threading.Lock()

    # ---- models --------------------------------------------------------------------------------
    def models(self) -> list[ServedModel]:
        return [m for m in (self.model(), self.completion_model()) if m is not None]

    def pick(self, name: str | None, for_completion: bool) -> ServedModel:
        """The model a request names (None: the completion model for completions when one is
        loaded, else the active one); ApiRequestError 404/503 otherwise."""
        served = self.models()
        if not served:
            raise ApiRequestError("No model is loaded yet (it may be loading); try again in a moment.",
                                  status=503, kind="server_error", headers={"Retry-After": "5"})
        if name:
            for m in served:
                if name in (m.name, m.engine.model.path.name, m.engine.model.path.stem):
                    return m
            names = [m.name for m in served]
            raise ApiRequestError(f"No model named {name!r}; available: {', '.join(names)}.", status=404,
                                  kind="not_found_error", extra={"available": names})
        completion = self.completion_model()
        return completion if for_completion and completion is not None else served[0]

    def embedder(self):
        if self._embedder is None:
            from app.core.index.embed import Embedder
            self._embedder = Embedder()
        return self._embedder

    def rules_block(self, engine: Engine) -> str:
        from app.core.chat.rules import RULES_SHARE, fit_rules
        return fit_rules(self.rules(), int(engine.n_ctx * RULES_SHARE), engine.count_tokens)[0]

    # ---- one generation, on its own thread -----------------------------------------------------
    def generate(self, who: str, name: str | None, sampling: Sampling, emit: Callable[[tuple], None],
                 cancel: threading.Event, messages: list[dict] | None = None, prompt: str | FimRequest | None = None,
                 rules: bool = False) -> None:
        """Wait for the model, check the prompt against its context, generate; every outcome
        is emitted (never raised: this is a thread's body)."""
        try:
            ticket = self.gate.acquire(who, API, cancel.is_set)
        except GateFull as e:
            emit(("error", ApiRequestError(str(e), status=429, kind="rate_limit_error",
                                           headers={"Retry-After": str(e.retry_after_s)})))
            return
        except GateCancelled:
            emit(("cancelled", None))
            return
        try:
            served = self.pick(name, for_completion=messages is None)
            engine, cut = served.engine, None  # cut: what a FIM prompt left out
            if messages is not None:
                if rules:
                    messages = with_rules(messages, self.rules_block(engine))
                try:
                    n_prompt = len(engine.tokenize(engine.render_chat(messages)))
                except EngineError as e:
                    raise ApiRequestError(f"{e} Use /v1/completions with a raw prompt.") from None
            else:
                if isinstance(prompt, FimRequest):  # made here, where the model's tokenizer counts
                    prompt, cut = prompt.build(engine.count_tokens, self.fim_budget)
                self.last_prompt = prompt
                n_prompt = len(engine.tokenize(prompt)) + 1
            note = " ".join(n for n in (clamp_max_tokens(sampling, n_prompt, engine.n_ctx), cut) if n) or None
            emit(("ready", (served.name, note, n_prompt)))
            stops = _StopAt(sampling.stop, cancel) if messages is not None and sampling.stop else None
            on_token = (lambda t: emit(("token", t))) if stops is None else stops.wrap(emit)
            if messages is not None:
                result = engine.chat(messages, sampling.params, on_token=on_token, cancelled=cancel.is_set)
            else:
                result = complete(engine, prompt, sampling.params, on_token, cancel.is_set, sampling.stop)
            if stops is not None:
                stops.flush(emit)
                if stops.hit:
                    result.finish_reason = "stop"
            emit(("done", result))
        except ApiRequestError as e:
            emit(("error", e))
        except EngineError as e:
            emit(("error", ApiRequestError(str(e), status=500, kind="server_error")))
        except Exception as e:  # noqa: BLE001 - a thread's body: the client hears it, the server lives
            emit(("error", ApiRequestError(f"The model failed: {type(e).__name__}: {e}", status=500,
                                           kind="server_error")))
        finally:
            self.gate.release(ticket)

    # ---- the record ----------------------------------------------------------------------------
    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests += 1
        self.log.add(NetEvent(rec.time, rec.client_pid, f"API client: {rec.client}", "127.0.0.1", self.port,
                              "http", rec.endpoint, ALLOWED if rec.status < 400 else f"refused ({rec.status})",
                              "api", rec.summary()))
        for fn in list(self.listeners):
            try:
                fn(rec)
            except Exception:  # noqa: BLE001 - a broken view must not break the API
                pass


class _StopAt:
    """Stop sequences for chat (llama.cpp's chat call takes none): text up to the first stop
    string is passed on, then the generation is cancelled and reported as a normal stop."""

    def __init__(self, stops: list[str], cancel: threading.Event):
        self.stops, self.cancel, self.text, self.sent, self.hit = stops, cancel, "", 0, False
        self.hold = max(len(s) for s in stops) - 1

    def wrap(self, emit):
        def on_token(t: str) -> None:
            if self.hit:
                return
            self.text += t
            cut = min((i for i in (self.text.find(s) for s in self.stops) if i >= 0), default=-1)
            if cut >= 0:
                self.hit = True
                self.cancel.set()
                end = cut
            else:
                end = max(self.sent, len(self.text) - self.hold)
            if end > self.sent:
                emit(("token", self.text[self.sent:end]))
                self.sent = end
        return on_token

    def flush(self, emit) -> None:
        if not self.hit and len(self.text) > self.sent:
            emit(("token", self.text[self.sent:]))
            self.sent = len(self.text)


def client_process(client_port: int, server_port: int) -> tuple[int, str]:
    """(pid, name) of the local process on the other end of a loopback connection; (0, "unknown")
    when the OS does not say (another user's process, a closed connection)."""
    import psutil

    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.laddr and c.raddr and c.laddr.port == client_port and c.raddr.port == server_port and c.pid:
                return c.pid, psutil.Process(c.pid).name()
    except (psutil.Error, OSError):
        pass
    return 0, "unknown"


def now() -> float:
    return time.time()
