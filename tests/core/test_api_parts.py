"""The local API's parts without a model: the gate's order and limits, request checks, the
loopback-only socket, the key in the keyring, and `serve` refusing a port in use."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from app.core.api.gate import API, WINDOW, EngineGate, GateCancelled, GateFull
from app.core.api.keys import ENV_KEY, ApiKeyError, api_key
from app.core.api.requests import ApiRequestError, Sampling, clamp_max_tokens, sampling
from app.core.api.service import ApiServerError, loopback_socket
from app.core.settings import GenerationSettings


def test_gate_serves_the_window_first_then_api_in_arrival_order():
    gate = EngineGate(max_waiting=3)
    first = gate.acquire("holder", API)
    order, threads = [], []
    for who, prio in (("api-1", API), ("api-2", API), ("window", WINDOW)):
        def take(who=who, prio=prio):
            t = gate.acquire(who, prio)
            order.append(who)
            gate.release(t)
        threads.append(threading.Thread(target=take))
        threads[-1].start()
        while gate.waiting() < len(threads):
            threading.Event().wait(0.01)
    gate.release(first)
    for t in threads:
        t.join(5)
    assert order == ["window", "api-1", "api-2"]


def test_gate_refuses_beyond_the_queue_and_a_cancelled_waiter_leaves():
    gate = EngineGate(max_waiting=1)
    held = gate.acquire("holder", WINDOW)
    stop = threading.Event()
    errors = []
    t = threading.Thread(target=lambda: errors.append(pytest.raises(GateCancelled, gate.acquire, "w", API, stop.is_set)))
    t.start()
    while gate.waiting(API) < 1:
        threading.Event().wait(0.01)
    with pytest.raises(GateFull) as e:
        gate.acquire("overflow", API)
    assert e.value.retry_after_s >= 1 and "waiting" in str(e.value)
    stop.set()
    t.join(5)
    assert errors and gate.waiting() == 0 and gate.holder() == "holder"
    gate.release(held)
    assert gate.holder() is None


def test_sampling_checks_say_what_to_send():
    d = GenerationSettings()
    with pytest.raises(ApiRequestError, match="temperature"):
        sampling({"temperature": "hot"}, d)
    with pytest.raises(ApiRequestError, match="max_tokens"):
        sampling({"max_tokens": 0}, d)
    with pytest.raises(ApiRequestError, match="stop"):
        sampling({"stop": [1]}, d)
    s = sampling({"max_tokens": 50, "stop": "\n"}, d)
    assert s.params.max_tokens == 50 and s.stop == ["\n"] and s.params.temperature == d.temperature


def test_clamp_lowers_and_refuses_with_numbers():
    s = Sampling(GenerationSettings(max_tokens=5000), max_tokens_asked=5000)
    note = clamp_max_tokens(s, 100, 2048)
    assert s.params.max_tokens == 1948 and "1948" in note and "2048" in note
    with pytest.raises(ApiRequestError) as e:
        clamp_max_tokens(Sampling(GenerationSettings()), 3000, 2048)
    assert e.value.status == 400 and "3000" in str(e.value) and "2048" in str(e.value)


def test_only_loopback_and_a_port_in_use_is_a_clear_message():
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.com"):
        with pytest.raises(ApiServerError, match="127.0.0.1 or ::1"):
            loopback_socket(host, 0)
    taken = loopback_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ApiServerError, match=f"Port {port} .* in use"):
            loopback_socket("127.0.0.1", port)
    finally:
        taken.close()
    s = loopback_socket("127.0.0.1", None)  # default: 8012, or any free port when it is taken
    assert s.getsockname()[0] == "127.0.0.1" and s.family == socket.AF_INET
    s.close()


def test_key_is_made_once_and_kept_in_the_keyring(memory_keyring, monkeypatch):
    monkeypatch.delenv(ENV_KEY, raising=False)
    key = api_key()
    assert key.startswith("oc-") and len(key) > 30 and api_key() == key
    assert ("OfflineCoder", "local-api") in memory_keyring.store


def test_the_api_key_never_reaches_the_log(memory_keyring):
    from app.core import secrets
    from app.core.api.keys import api_key
    key = api_key()
    assert secrets.redact(f"Authorization: Bearer {key}") == "Authorization: Bearer <local-api key removed>"


def test_no_keyring_and_no_env_key_is_a_message(monkeypatch):
    import keyring
    from keyring.backends import fail
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        monkeypatch.delenv(ENV_KEY, raising=False)
        with pytest.raises(ApiKeyError, match=ENV_KEY):
            api_key()
        monkeypatch.setenv(ENV_KEY, "short")
        with pytest.raises(ApiKeyError, match="shorter"):
            api_key()
        monkeypatch.setenv(ENV_KEY, "x" * 20)
        assert api_key() == "x" * 20
    finally:
        keyring.set_keyring(before)


def test_serve_on_a_port_in_use_says_so(tmp_path):
    taken = loopback_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        r = subprocess.run([sys.executable, "-m", "app", "--home", str(tmp_path), "serve", "--port", str(port)],
                           capture_output=True, text=True, timeout=120,
                           env={**__import__("os").environ, ENV_KEY: "k" * 24})
    finally:
        taken.close()
    assert r.returncode == 1 and f"Port {port}" in r.stderr and "in use" in r.stderr
