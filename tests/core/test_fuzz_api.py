"""Fuzzing the local API's requests (#18's "Bad input", #19's contract) on the real server, 127.0.0.1,
with the real starter model: any bytes or JSON, one field wrong, prompts beyond the context, odd
headers, lying Content-Lengths. Each answer is a 200 of the endpoint's shape or a JSON error naming
the field, never a 500, a hang or non-JSON; the model is free after each test. The end: what was found."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.api import server as api_server
from app.core.api.backend import ApiBackend, ServedModel
from app.core.api.gate import EngineGate
from app.core.api.requests import ApiRequestError as Refused
from app.core.api.service import ApiServer
from app.core.net.audit import AuditLog
from app.core.settings import GenerationSettings
from tests.support.fuzz import examples, holds, surface

KEY = "oc-fuzz-key-0123456789abcdef"
CHAT, COMPLETIONS, INFILL, EMBED = "/v1/chat/completions", "/v1/completions", "/infill", "/v1/embeddings"
ENDPOINTS, GEN = (CHAT, COMPLETIONS, INFILL, EMBED), (CHAT, COMPLETIONS, INFILL)
GOOD = {CHAT: {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}, EMBED: {"input": "def f(): pass"},
        COMPLETIONS: {"prompt": "def f(", "max_tokens": 2}, INFILL: {"input_prefix": "def f(", "n_predict": 2}}
FIELDS = ("messages", "prompt", "suffix", "input_prefix", "input_suffix", "input_extra", "input", "model",
          "max_tokens", "max_completion_tokens", "n_predict", "temperature", "top_p", "top_k", "repeat_penalty",
          "seed", "stop", "stream", "stream_options", "offline_coder")


@pytest.fixture(scope="module")
def api(engine):
    # the user's own answer length is 2 tokens here: a fuzzed body that asks for none stays cheap
    backend = ApiBackend(EngineGate(max_waiting=2), lambda: ServedModel("starter", engine), KEY,
                         defaults=GenerationSettings(max_tokens=2), log=AuditLog())
    server = ApiServer(backend, port=0)
    server.statuses = []  # each request's status as the audit log records it
    backend.listeners.append(lambda rec: server.statuses.append(rec.status))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def stays_healthy(api):  # after every test: the model free, no 500, a good request answered
    yield
    healthy(api)


def post(api, path: str, raw: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One request on a new connection, with the key unless ``headers`` are given; a hang fails."""
    c = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        c.request("POST", path, raw, headers or {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def exchange(api, path: str, body, raw: bytes | None = None):
    return answer(path, *post(api, path, raw if raw is not None else json.dumps(body, allow_nan=True).encode()))


def answer(path: str, status: int, headers: dict, data: bytes):
    """The 200's payload in the endpoint's shape, or the JSON error raised as Refused; else a failure."""
    assert status in (200, 400, 401, 404, 408, 413, 429), (status, data[:300])
    if status != 200:
        assert headers.get("content-type", "").startswith("application/json"), (status, data[:300])
        error = json.loads(data)["error"]
        assert error["code"] == status and isinstance(error["type"], str) and isinstance(error["message"], str)
        raise Refused(error["message"], status, error["type"], extra=error)
    if headers.get("content-type", "").startswith("text/event-stream"):
        chunks = [json.loads(x[5:]) for x in data.decode().splitlines() if x.startswith("data:") and "[DONE]" not in x]
        assert data.rstrip().endswith(b"data: [DONE]") and chunks and not any("error" in c for c in chunks), data[:300]
        return chunks
    out = json.loads(data)
    kind, text = {CHAT: ("chat.completion", lambda: out["choices"][0]["message"]["content"]),
                  COMPLETIONS: ("text_completion", lambda: out["choices"][0]["text"]),
                  INFILL: (None, lambda: out["content"]), EMBED: ("list", lambda: "")}[path]
    assert out.get("object") == kind and isinstance(text(), str) and (out.get("usage") or out.get("timings"))
    assert all(len(d["embedding"]) == 384 for d in out.get("data", []))
    return out


def names_a_field(message: str, body) -> bool:
    return any(f"'{k}" in message or f"{k}[" in message for k in {*FIELDS, *(body if isinstance(body, dict) else ())}
               ) or any(w in message for w in ("request body", "The prompt is", "model named"))


def wait_for(pred, what: str, limit: float = 30.0) -> None:
    end = time.monotonic() + limit
    while not pred() and time.monotonic() < end:
        time.sleep(0.01)
    assert pred(), what


def healthy(api) -> None:
    """No generation left holding the model, no 500 since the last look, a good request answered."""
    gate = api.backend.gate
    wait_for(lambda: gate.holder() is None and not gate.waiting(), "the model is still held")
    seen = list(api.statuses)
    del api.statuses[:len(seen)]  # (a streamed answer's status may come in while this runs)
    assert not [s for s in seen if s >= 500], seen
    assert exchange(api, COMPLETIONS, {"prompt": "x", "max_tokens": 1})["usage"]["completion_tokens"] == 1


# ---- 1. any bytes, any JSON ---------------------------------------------------------------------------
LONE = st.sampled_from(["\ud800", "a\udfff", "\udc00\ud800", "x\ud83d"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from([10**30, -1, 0, 2**63]),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))


def json_values(leaves):
    return st.recursive(leaves, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(("role", "content", "type", "text", "filename", "rules")) | st.text(max_size=6), kids,
        max_size=3), max_leaves=8)


values, clean_values = json_values(scalars | LONE), json_values(scalars)  # clean: no lone surrogates
roles = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant"]) | values,
                               "content": st.text(max_size=20) | values})
bodies = values | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6),
                                  values | st.lists(roles, max_size=2), max_size=5)
fragments = st.lists(st.sampled_from(['"', "\\", "[", "]", "{", "}", ":", ",", "1", "-", "e", "true", "\\ud800",
                                      "NaN", "1e999", '"messages"', '"prompt"', "\x00", "é"]) | st.text(max_size=4),
                     max_size=40).map("".join)


def tame(body):
    """Lengths above 4 lowered to 4: thousands of tokens take minutes on 2 cores (test_api.py has them)."""
    for k in ("max_tokens", "max_completion_tokens", "n_predict") if isinstance(body, dict) else ():
        if type(body.get(k)) in (int, float) and 4 < body[k] < float("inf"):
            body[k] = 4
    return body


@given(st.sampled_from(ENDPOINTS), st.tuples(st.binary(max_size=200) | fragments.map(str.encode), st.none())
       | st.tuples(st.none(), bodies.map(tame)))
@examples(ci=180)
def test_any_bytes_or_json_as_a_body_get_a_json_answer(api, path, sent):
    raw, body = sent
    with surface("local API: any bytes or JSON as a body"):
        out = holds(lambda: exchange(api, path, body, raw=raw), "local API: any bytes or JSON as a body")
    if isinstance(out, Refused):  # the message names a field, or says the body is not JSON / an object
        assert out.status in (400, 404) and names_a_field(str(out), body), str(out)
        assert out.status == 400 or out.extra["available"]


# ---- 2. structured bodies, one field wrong ------------------------------------------------------------
def outside(lo, hi, whole=False):
    """Numbers out of [lo, hi], non-integral ones for a whole-number field, NaN, infinities, wrong types."""
    out = st.floats(hi, 1e300, exclude_min=True) | st.floats(-1e300, lo, exclude_max=True) if not whole else (
        st.integers(hi + 1) | st.integers(max_value=lo - 1) | st.floats(lo, hi).filter(lambda x: x != int(x)))
    return out | st.sampled_from([float("nan"), float("inf"), -float("inf"), True, "1", [1], {"v": 1}])


not_text = st.integers() | st.booleans() | st.lists(st.integers(), min_size=1, max_size=3) | st.dictionaries(
    st.text(max_size=3), st.integers(), min_size=1, max_size=2)
bad_messages = st.one_of(
    st.text(max_size=10), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), values),
    st.lists(st.sampled_from([None, 1, "user", []]), min_size=1, max_size=2),
    st.sampled_from([None, 1, [], {}, "robot", "User", ["user"]]).map(lambda r: [{"role": r, "content": "Hi"}]),
    st.sampled_from([1, 2.5, True, {"text": "Hi"}, [1], [{"type": "image_url"}], [{"type": "text", "text": 1}],
                     ["Hi"]]).map(lambda c: [{"role": "user", "content": c}]))
bad_length = outside(1, 10**9, whole=True).filter(lambda v: v != -1)  # -1: "no limit", the user's own
WRONG = {  # field: (endpoints, wrong values); the answer is a 400 naming the field
    "messages": ((CHAT,), bad_messages), "max_tokens": ((CHAT, COMPLETIONS), bad_length),
    "max_completion_tokens": ((CHAT,), bad_length), "n_predict": ((INFILL,), bad_length),
    "temperature": (GEN, outside(0.0, 2.0)), "top_p": (GEN, outside(0.0, 1.0)),
    "top_k": (GEN, outside(0, 1000, whole=True)), "repeat_penalty": (GEN, outside(0.5, 2.0)),
    "seed": ((CHAT, COMPLETIONS), outside(-(2**31), 2**31 - 1, whole=True)),
    "stop": (GEN, st.integers() | st.dictionaries(st.text(max_size=2), st.text(), min_size=1)
             | st.lists(st.text(max_size=3), min_size=5, max_size=40)
             | st.lists(st.text() | not_text, min_size=1, max_size=3).filter(lambda s: not all(
                 isinstance(x, str) for x in s))),
    "stream": (GEN, st.none() | st.integers() | st.text(max_size=5) | st.lists(st.booleans())),
    "model": (ENDPOINTS, not_text), "suffix": ((COMPLETIONS,), not_text),
    "prompt": ((COMPLETIONS, INFILL), st.none() | not_text | st.lists(st.text(max_size=5), min_size=2, max_size=3)),
    "input_prefix": ((INFILL,), st.none() | not_text), "input_suffix": ((INFILL,), st.none() | not_text),
    "input_extra": ((INFILL,), st.integers(1) | st.text(min_size=1, max_size=5) | st.just({"text": "x"})
                    | st.lists(st.integers() | st.text(max_size=3) | st.fixed_dictionaries({"text": not_text})
                               | st.fixed_dictionaries({"filename": not_text}), min_size=1, max_size=3)
                    | st.just([{"filename": "a.py", "text": ""}] * 65)),
    "offline_coder": ((CHAT,), st.integers() | st.text(max_size=5) | st.lists(st.booleans(), min_size=1)
                      | st.fixed_dictionaries({"rules": st.none() | st.integers() | st.text(max_size=3)})),
    "input": ((EMBED,), st.none() | st.integers() | st.just([]) | st.lists(st.integers(), min_size=1, max_size=4)
              | st.lists(st.text(max_size=3) | not_text, min_size=1, max_size=3).filter(
                  lambda s: not all(isinstance(x, str) for x in s)) | st.just(["x"] * 513)),
}


@given(st.one_of(*(st.tuples(st.sampled_from(ends), st.just(f), bad) for f, (ends, bad) in WRONG.items())))
@examples(ci=200)
def test_a_field_of_the_wrong_type_or_range_is_a_400_naming_it(api, case):
    path, field, value = case
    body = {**{k: v for k, v in GOOD[path].items() if (field, k) != ("max_completion_tokens", "max_tokens")},
            field: value}
    with surface("local API: structured bodies, one field wrong"):
        out = holds(lambda: exchange(api, path, body), "local API: structured bodies, one field wrong",
                    mentions=(field,))
    assert isinstance(out, Refused) and out.status == 400, (body, out)


SITES = [(CHAT, ("messages", 0, "content")), *((COMPLETIONS, (f,)) for f in ("prompt", "suffix", "stop")),
         *((INFILL, s) for s in (("input_prefix",), ("prompt",), ("input_extra", 0, "text"),
                                 ("input_extra", 0, "filename"))), (EMBED, ("input",)), (EMBED, ("input", 1))]


@given(st.sampled_from(SITES), LONE, st.text(max_size=8))
@examples(ci=30)
def test_a_lone_surrogate_anywhere_is_a_400_naming_where(api, case, lone, around):
    path, site = case
    text = around[:3] + lone + around[3:]
    body = {**GOOD[path], site[0]: {"input_extra": [{"filename": "a.py", "text": "x", site[-1]: text}],
                                    "messages": [{"role": "user", "content": text}]}.get(
        site[0], ["fine", text] if site == ("input", 1) else text)}
    where = site[0] + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in site[1:])
    with surface("local API: lone surrogates"):
        out = holds(lambda: exchange(api, path, body), "local API: lone surrogates", mentions=(f"'{where}'", "\\ud"))
    assert isinstance(out, Refused) and out.status == 400


@given(st.sampled_from(ENDPOINTS), st.text(max_size=12).map(lambda t: "no-such-model-" + t))
@examples(ci=12)
def test_an_unknown_model_is_a_404_listing_the_available(api, path, name):
    with surface("local API: unknown model names"):
        out = holds(lambda: exchange(api, path, {**GOOD[path], "model": name}), "local API: unknown model names",
                    mentions=("model named",))
    assert out.status == 404 and out.extra["available"] == ([api.backend.embedder().model_id] if path == EMBED
                                                            else ["starter"])


@given(st.sampled_from(GEN), st.text(min_size=1, max_size=6), st.integers(5, 12))
@examples(ci=10)
def test_a_prompt_longer_than_the_context_is_a_400_with_the_numbers(api, engine, path, unit, scale):
    text = unit * (scale * 8192 // len(unit) + 1)  # 40,000 characters or more: beyond 2,048 tokens
    body = {CHAT: {"messages": [{"role": "user", "content": text}]}, COMPLETIONS: {"prompt": text},
            INFILL: {"input_prefix": text}}[path]
    with surface("local API: prompts longer than the context"):
        out = holds(lambda: exchange(api, path, {**GOOD[path], **body}), "local API: prompts longer than the context")
    if len(engine.tokenize(text)) + 1 < engine.n_ctx or path == INFILL:  # it fits after all (dense), or FIM
        return  # read only the code nearest the cursor (api/fim.py): answered (the contract held above)
    n, ctx = out.extra["prompt_tokens"], out.extra["n_ctx"]
    assert out.status == 400 and ctx == engine.n_ctx and n >= ctx and all(str(x) in str(out) for x in (n, ctx))
    assert str(n - ctx + 1) in str(out)  # how much to cut
    assert path != COMPLETIONS or n == len(engine.tokenize(text)) + 1  # what the model would read, BOS first


lengths = st.sampled_from([None, -1, 1, 2, 3.0, 4])
fine = {"max_tokens": lengths, "temperature": st.none() | st.floats(0, 2), "top_p": st.floats(0, 1),
        "top_k": st.integers(0, 1000) | st.just(5.0), "repeat_penalty": st.floats(0.5, 2),
        "seed": st.integers(-(2**31), 2**31 - 1), "stream": st.booleans(),
        "stop": st.none() | st.text(max_size=4) | st.lists(st.text(max_size=4), max_size=4),
        "model": st.sampled_from([None, "", "starter"]), "unknown_field": clean_values, "stream_options": clean_values}
text_parts = st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)}), max_size=2)
FINE = {
    CHAT: st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(
        ["user", "system", "assistant"]), "content": st.none() | st.text(max_size=20) | text_parts}), min_size=1,
        max_size=3)},
        optional={**fine, "offline_coder": st.none() | st.fixed_dictionaries({"rules": st.booleans()})}),
    COMPLETIONS: st.fixed_dictionaries({"prompt": st.text(min_size=1, max_size=30) | st.lists(
        st.text(min_size=1, max_size=30), min_size=1, max_size=1)}, optional={**fine, "suffix": st.text()}),
    INFILL: st.fixed_dictionaries({}, optional={
        **{k: v for k, v in fine.items() if k != "max_tokens"}, "n_predict": lengths,
        "input_prefix": st.text(max_size=20), "input_suffix": st.text(max_size=20), "prompt": st.text(max_size=9),
        "input_extra": st.sampled_from([None, 0, "", {}, False]) | st.lists(st.fixed_dictionaries({}, optional={
            "filename": st.text(max_size=8), "text": st.text(max_size=30)}), max_size=3)}),
    EMBED: st.fixed_dictionaries({"input": st.text(max_size=3000) | st.lists(st.text(max_size=50), min_size=1,
                                                                              max_size=4)},
                                 optional={"model": st.sampled_from([None, "all-MiniLM-L6-v2", "starter"])}),
}


@given(st.sampled_from(ENDPOINTS).flatmap(lambda p: st.tuples(st.just(p), FINE[p])))
@examples(ci=30)
def test_odd_but_valid_bodies_are_answered(api, case):
    path, body = case  # a valid request in an unusual form: answered, not refused
    with surface("local API: odd but valid bodies"):
        out = holds(lambda: exchange(api, path, body), "local API: odd but valid bodies")
    assert not isinstance(out, Refused), (body, str(out))
    assert path != EMBED or len(out["data"]) == (1 if isinstance(body["input"], str) else len(body["input"]))


# ---- 3. headers ---------------------------------------------------------------------------------------
junk = st.text(st.sampled_from([chr(c) for c in (*range(0x20, 0x7F), *range(0x80, 0x100))]), max_size=40)
good_auth = st.sampled_from([{"Authorization": f"Bearer {KEY}"}, {"Authorization": f"bearer {KEY}"},
                             {"Authorization": f"BEARER   {KEY}"}, {"X-Api-Key": KEY},
                             {"Authorization": "Basic eHg6eXk=", "X-Api-Key": KEY}])
bad_auth = st.one_of(st.just({}), *(junk.map(lambda j, h=h, pre=pre: {h: pre + j}) for h, pre in (
    ("Authorization", "Bearer "), ("Authorization", ""), ("X-Api-Key", ""))), st.sampled_from(
    [{"Authorization": f"Bearer {KEY[:-1]}"}, {"Authorization": f"Bearer {KEY}x"}, {"Authorization": f"Token {KEY}"},
     {"Authorization": f"Bearer {KEY.upper()}"}, {"X-Api-Key": f"Bearer {KEY}"}, {"Authorization": f"Bearer{KEY}"}]))
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", "",
                                 "multipart/form-data; boundary=x", "application/json; charset=latin-1"]) | junk


@given(st.sampled_from(ENDPOINTS), st.tuples(st.just(True), good_auth) | st.tuples(st.just(False), bad_auth),
       content_types)
@examples(ci=40)
def test_a_missing_or_wrong_key_is_a_401_and_any_content_type_is_read_as_json(api, path, auth, ctype):
    ok, headers = auth
    reply = post(api, path, json.dumps(GOOD[path]).encode(), {"Content-Type": ctype, **headers})
    with surface("local API: keys and content types"):
        out = holds(lambda: answer(path, *reply), "local API: keys and content types", mentions=("API key",))
    assert not isinstance(out, Refused) if ok else (  # the server's health: checked after the property
        out.status == 401 and reply[1]["www-authenticate"] == "Bearer"), (headers, str(out))


@pytest.fixture
def short_body_wait(monkeypatch):  # the server's 30 s for a body that stops arriving, shortened here
    monkeypatch.setattr(api_server, "BODY_IDLE_S", 0.2)


def raw_request(api, path: str, head: str, body: bytes):
    """A request written by hand on a raw socket (the length header may lie); the first answer."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode("latin-1") + body)
        r = http.client.HTTPResponse(s)
        r.begin()  # the status line and headers; then the body its Content-Length gives
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


@given(st.sampled_from(ENDPOINTS), st.integers(-40, 0) | st.integers(1, 300))
@examples(ci=25)
def test_a_content_length_that_lies_is_answered_and_the_server_stays_up(api, short_body_wait, path, delta):
    body = json.dumps({**GOOD[path], **({"max_tokens": 1} if path in (CHAT, COMPLETIONS) else {})},
                      separators=(",", ":")).encode()  # any shorter prefix of it is not JSON
    declared = max(0, len(body) + delta)
    head = f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n"
    with surface("local API: Content-Length that lies"):
        out = holds(lambda: answer(path, *raw_request(api, path, head, body)), "local API: Content-Length that lies")
    want = 200 if declared == len(body) else 400 if declared < len(body) else 408  # 408: the rest never came
    words = {200: "", 400: "not valid JSON", 408: f"{len(body)} bytes came of the {declared}"}[want]
    assert getattr(out, "status", 200) == want and words in str(out), str(out)
    healthy(api)


# ---- what the fuzzers found: each was a 500 (or named the wrong field) before ------------------------
HI = '"messages": [{"role": "user", "content": "Hi"}]'
FOUND = [  # (endpoint, body as sent, status, what the message must say)
    (CHAT, f'{{{HI}, "max_tokens": Infinity}}', 400, "'max_tokens'"),
    (CHAT, f'{{{HI}, "max_tokens": 1e400}}', 400, "'max_tokens'"),
    (COMPLETIONS, '{"prompt": "x", "top_k": NaN}', 400, "'top_k'"), (INFILL, '{"n_predict": NaN}', 400, "'n_predict'"),
    (COMPLETIONS, '{"prompt": "x", "seed": -Infinity}', 400, "'seed'"),
    (CHAT, '{"messages": [{"role": []}]}', 400, "'role'"), (CHAT, '{"messages": [{"role": {}}]}', 400, "'role'"),
    (CHAT, f'{{{HI}, "max_completion_tokens": 0}}', 400, "'max_completion_tokens'"),
    (CHAT, '{"messages": [{"role": "user", "content": "Hi\\ud800"}]}', 400, "'messages[0].content'"),
    (COMPLETIONS, '{"prompt": "Hi\\udfff"}', 400, "'prompt'"), (EMBED, '{"input": "hi\\ud800"}', 400, "'input'"),
    (COMPLETIONS, '{"prompt": "x", "suffix": "\\udc00"}', 400, "'suffix'"),
    (COMPLETIONS, '{"prompt": "x", "stop": ["\\ud800"]}', 400, "'stop[0]'"),
    (INFILL, '{"input_extra": [{"filename": "\\ud800", "text": "x"}]}', 400, "'input_extra[0].filename'"),
    (CHAT, f'{{{HI}, "\\ud800": "\\udc00"}}', 400, "'\\ud800'"),  # a key as the message names it
    (COMPLETIONS, '{"prompt": ""}', 400, "'prompt' is empty"),
    (COMPLETIONS, '{"prompt": "", "suffix": "", "max_tokens": 1}', 200, ""),  # FIM's tokens are a prompt
    (CHAT, '{"messages": [{"role": "user", "content": "\\ud83d\\ude00"}], "max_tokens": 1}', 200, ""),  # a whole pair
]


@pytest.mark.parametrize("path, raw, status, words", FOUND)
def test_what_the_fuzzers_found(api, path, raw, status, words):
    got, _, data = post(api, path, raw.encode())
    assert got == status, data
    assert status == 200 or words in json.loads(data)["error"]["message"]


def test_a_body_that_stops_short_is_a_408_and_a_client_that_leaves_is_no_500(api, short_body_wait):
    """Before: the request waited for the rest of its body forever; a client gone mid-body was a 500."""
    head = f"Authorization: Bearer {KEY}\r\nContent-Length: 500\r\n"
    status, _, data = raw_request(api, COMPLETIONS, head, b'{"prompt": "x"}')
    assert status == 408 and "15 bytes came of the 500" in json.loads(data)["error"]["message"]
    before = len(api.statuses)
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as s:
        s.sendall(f"POST {COMPLETIONS} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + b'{"prompt"')
        s.shutdown(socket.SHUT_WR)  # gone before its body's end
        wait_for(lambda: len(api.statuses) > before, "the request was never recorded")
    assert api.statuses[before:] == [499]


def test_broken_framing_is_a_plain_400_and_what_cannot_fit_is_refused_unread(api):
    """h11 refuses broken framing before the app sees a request, in plain text (the one non-JSON
    answer). Before: 7 MB of special tokens, or 200,000 chat messages, held the model for some 20
    minutes (llama.cpp's tokenizer is quadratic in them); now refused before tokenizing."""
    for head in ("Content-Length: abc\r\n", "Content-Length: -5\r\n", "Content-Length: 3\r\nContent-Length: 4\r\n",
                 "X-Odd: a\x00b\r\n", "Transfer-Encoding: chunked\r\n"):
        status, _, data = raw_request(api, COMPLETIONS, f"Authorization: Bearer {KEY}\r\n{head}", b"zz\r\n\r\n")
        assert (status, data) == (400, b"Invalid HTTP request received."), head
        healthy(api)
    head = f"Authorization: Bearer {KEY}\r\nContent-Length: {api_server.MAX_BODY + 1}\r\n"
    status, _, data = raw_request(api, CHAT, head, b"{")  # ours again: over the limit, refused unread
    assert status == 413 and str(api_server.MAX_BODY) in json.loads(data)["error"]["message"]
    for path, body, words in ((COMPLETIONS, {"prompt": "<|im_end|>" * 700_000}, "7,000,000 characters"),
                              (CHAT, {"messages": [{"role": "user", "content": "x"}] * 200_000}, "200,000 messages")):
        assert holds(lambda p=path, b=body: exchange(api, p, b), mentions=(words, "2048")).status == 400
