"""The local API end to end: the real starter model behind the real server on 127.0.0.1, asked
with the real openai package and with plain HTTP (http.client, raw sockets)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading
import time

import numpy as np
import openai
import pytest

from app.core.api.backend import ApiBackend, ServedModel
from app.core.api.gate import API, WINDOW, EngineGate
from app.core.api.requests import FILE_SEP, REPO_NAME, fim_prompt
from app.core.api.service import ApiServer
from app.core.engine import GenerationParams
from app.core.learn.fim import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX
from app.core.net.audit import AuditLog

KEY = "oc-test-key-0123456789abcdef"
ASK = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def api(engine):
    log = AuditLog()
    backend = ApiBackend(EngineGate(max_waiting=2), lambda: ServedModel("starter", engine), KEY,
                         rules=lambda: ["Always answer in French."], log=log)
    server = ApiServer(backend, port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(api):
    return openai.OpenAI(base_url=f"{api.url}/v1", api_key=KEY, max_retries=0, timeout=300)


def call(api, method, path, body=None, key=KEY, raw: bytes | None = None):
    c = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    c.request(method, path, raw if raw is not None else (json.dumps(body) if body is not None else None), headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def wait_for(pred, limit=20.0):
    end = time.monotonic() + limit
    while not pred():
        assert time.monotonic() < end, "the state never came"
        time.sleep(0.01)


# ---- what clients see ----------------------------------------------------------------------------
def test_models_lists_the_active_model(client):
    assert [m.id for m in client.models.list().data] == ["starter"]


def test_chat_non_streaming_with_the_openai_client(client, engine):
    r = client.chat.completions.create(model="starter", messages=ASK, max_tokens=24, temperature=0,
                                       extra_body={"repeat_penalty": 1.0})
    own = engine.chat(ASK, GenerationParams.greedy(24))
    # the model's own chat template, greedy: the same start (the shared engine's cache state may
    # differ between the two calls, and with it the last digits of the logits further on)
    assert r.choices[0].message.content[:12] == own.text[:12]
    assert r.usage.completion_tokens == own.completion_tokens and r.usage.prompt_tokens > 10


def test_chat_streaming_in_openais_chunk_format(client):
    stream = client.chat.completions.create(model="starter", messages=ASK, max_tokens=24, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert chunks[-1].usage.completion_tokens >= 3 and text.strip()
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_standing_rules_only_when_the_request_asks(api, client):
    asked = [{"role": "system", "content": "Be brief."}] + ASK
    plain = client.chat.completions.create(model="starter", messages=asked, max_tokens=4, temperature=0)
    ruled = client.chat.completions.create(model="starter", messages=asked, max_tokens=4, temperature=0,
                                           extra_body={"offline_coder": {"rules": True}})
    assert ruled.usage.prompt_tokens > plain.usage.prompt_tokens  # the rule is in the system message


def test_raw_completion(client):
    r = client.completions.create(model="starter", prompt="def add(a, b):\n    return", max_tokens=8, temperature=0)
    assert r.choices[0].text and r.usage.completion_tokens >= 1


def test_fim_through_completions_suffix_puts_the_tokens_in_order(api, client, engine):
    r = client.completions.create(model="starter", prompt="def add(a, b):\n", suffix="\nprint(add(1, 2))\n",
                                  max_tokens=4, temperature=0)
    prompt = api.backend.last_prompt
    assert prompt == f"{FIM_PREFIX}def add(a, b):\n{FIM_SUFFIX}\nprint(add(1, 2))\n{FIM_MIDDLE}"
    assert r.usage.prompt_tokens == len(engine.tokenize(prompt)) + 1  # what the model read (BOS first)


def test_infill_in_llama_cpp_servers_format(api):
    body = {"input_prefix": "import os\n", "prompt": "def f(", "input_suffix": "\n    return x\n",
            "input_extra": [{"filename": "util.py", "text": "def g():\n    pass\n"}], "n_predict": 4}
    status, _, data = call(api, "POST", "/infill", body)
    out = json.loads(data)
    assert status == 200 and "content" in out and out["tokens_predicted"] >= 1
    p = api.backend.last_prompt
    order = [p.index(t) for t in (REPO_NAME, "util.py", FILE_SEP + FIM_PREFIX, "import os\ndef f(", FIM_SUFFIX,
                                  "    return x", FIM_MIDDLE)]
    assert order == sorted(order) and p == fim_prompt("import os\ndef f(", "\n    return x\n",
                                                      [("util.py", "def g():\n    pass\n")])


def test_embeddings_equal_the_index_embedder(client):
    from app.core.index.embed import Embedder
    texts = ["def add(a, b):\n    return a + b", "class Stack:\n    pass"]
    r = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert np.allclose(got, Embedder().embed(texts), atol=1e-6)


# ---- refusals ----------------------------------------------------------------------------------------
def test_missing_or_wrong_key_is_401(api, client):
    for key in (None, "wrong-key"):
        status, headers, data = call(api, "GET", "/v1/models", key=key)
        assert status == 401 and "Bearer" in json.loads(data)["error"]["message"]
    bad = openai.OpenAI(base_url=f"{api.url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_unknown_model_is_404_with_the_available_ones(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=2)
    assert "starter" in str(e.value)


def test_malformed_json_and_bad_fields_are_400(api):
    for raw in (b"{not json", b"[1, 2]", json.dumps({"messages": []}).encode(),
                json.dumps({"messages": ASK, "temperature": "hot"}).encode()):
        status, _, data = call(api, "POST", "/v1/chat/completions", raw=raw)
        assert status == 400 and json.loads(data)["error"]["message"]


def test_prompt_longer_than_the_context_is_400_with_the_numbers(api, engine):
    status, _, data = call(api, "POST", "/v1/completions", {"prompt": "word " * 3000, "max_tokens": 4})
    msg = json.loads(data)["error"]["message"]
    assert status == 400 and str(engine.n_ctx) in msg and "tokens" in msg


def test_max_tokens_beyond_the_context_is_clamped_and_said(api, client, engine):
    raw = client.chat.completions.with_raw_response.create(model="starter", messages=ASK, max_tokens=100000,
                                                           temperature=0, stop=["."])
    note = raw.headers.get("x-offline-coder-note", "")
    assert "lowered" in note and str(engine.n_ctx) in note
    assert raw.parse().choices[0].finish_reason == "stop"


# ---- one engine, shared ---------------------------------------------------------------------------------
def test_queue_limit_holds_under_100_requests_and_the_server_lives(api):
    gate = api.backend.gate
    ticket = gate.acquire("test", WINDOW)  # the model is busy: requests queue, then overflow
    results = []

    def one():
        results.append(call(api, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 1}))

    threads = [threading.Thread(target=one) for _ in range(100)]
    for t in threads:
        t.start()
    wait_for(lambda: len(results) >= 100 - gate.max_waiting)  # the overflow is refused at once
    assert gate.waiting(API) == gate.max_waiting
    gate.release(ticket)
    for t in threads:
        t.join(60)
    codes = sorted(s for s, _, _ in results)
    assert codes.count(200) == gate.max_waiting and codes.count(429) == 100 - gate.max_waiting
    assert all(int(h["retry-after"]) >= 1 for s, h, _ in results if s == 429)
    assert call(api, "GET", "/v1/models")[0] == 200


def test_the_window_goes_before_a_waiting_api_request(api, engine):
    gate = api.backend.gate
    first = gate.acquire("an earlier API request", API)
    api_result = []
    t = threading.Thread(target=lambda: api_result.append(
        call(api, "POST", "/v1/chat/completions", {"messages": ASK, "max_tokens": 2})))
    t.start()
    wait_for(lambda: gate.waiting(API) == 1)
    window = []
    w = threading.Thread(target=lambda: window.append(gate.acquire("window answer", WINDOW)))
    w.start()
    wait_for(lambda: gate.waiting(WINDOW) == 1)
    gate.release(first)
    w.join(10)
    assert gate.holder() == "window answer" and gate.waiting(API) == 1 and not api_result
    answer = engine.chat(ASK, GenerationParams.greedy(8))  # the window answers while the API waits
    assert answer.text
    gate.release(window[0])
    t.join(60)
    assert api_result[0][0] == 200


def _streaming_socket(api, body: dict, rcvbuf: int | None = None) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", api.port))
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    data = json.dumps(body).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    return s


def test_a_client_that_disconnects_mid_stream_frees_the_engine(api):
    gate, log = api.backend.gate, api.backend.log
    s = _streaming_socket(api, {"messages": [{"role": "user", "content": "Count from 1 to 500."}],
                                "max_tokens": 1500, "temperature": 0, "stream": True})
    got = b""
    while got.count(b"data:") < 4:
        got += s.recv(4096)
    assert gate.holder() is not None
    s.close()
    wait_for(lambda: gate.holder() is None, limit=30)
    wait_for(lambda: any(e.state == "POST /v1/chat/completions" and "1500" not in e.note
                         for e in log.events()[-1:]), limit=30)
    tokens = int(log.events()[-1].note.split("+")[1].split(" ")[0])
    assert tokens < 1500  # cancelled, not run to the end


def test_a_client_that_reads_slowly_does_not_hold_the_model(api):
    s = _streaming_socket(api, {"messages": ASK, "max_tokens": 60, "stream": True}, rcvbuf=4096)
    wait_for(lambda: api.backend.gate.holder() is not None, limit=30)
    wait_for(lambda: api.backend.gate.holder() is None, limit=60)  # done generating; the client read nothing
    assert call(api, "GET", "/v1/models")[0] == 200
    s.settimeout(10)
    assert b"data:" in s.recv(65536)
    s.close()


def test_requests_are_logged_with_the_client_process(api):
    call(api, "GET", "/v1/models")
    e = api.backend.log.events()[-1]
    assert (e.source, e.state, e.pid, e.destination) == ("api", "GET /v1/models", os.getpid(), "127.0.0.1")
    assert api.backend.requests >= 10
    # a path that is no endpoint is on the record too (refused, with the client's process)
    before = api.backend.requests
    status, _, body = call(api, "GET", "/v1/nothing-here")
    assert status == 404 and b"Endpoints:" in body and api.backend.requests == before + 1
    e = api.backend.log.events()[-1]
    assert (e.state, e.verdict, e.pid) == ("GET /v1/nothing-here", "refused (404)", os.getpid())


def test_offline_mode_on_the_api_works_and_nothing_else_leaves(api, client):
    from app.core.net import guard, policy
    guard.install()
    policy.set_offline(True)
    r = client.chat.completions.create(model="starter", messages=ASK, max_tokens=2)
    assert r.choices[0].message.content is not None
    # The guard's own check, raised as Python raises it before a connect, with no connect at all:
    # tests never connect outside loopback, not even to prove a block.
    with socket.socket() as s, pytest.raises(guard.NetworkBlocked):
        sys.audit("socket.connect", s, ("192.0.2.1", 80))
