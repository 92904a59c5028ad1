"""The local API's optional completion model: the two-model fit rule, the choice (and why not),
and `serve` loading it beside the chat model so that completions and fill-in-the-middle go to
it while chat stays with the chat model (the real starter file plays both parts)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from app.core.api import completion_model
from app.core.api.keys import ENV_KEY
from app.core.hardware import Hardware
from app.core.models.catalog import QWEN_1_5B, QWEN_1_5B_BASE, QWEN_3B, QWEN_7B
from app.core.models.fit import APP_OVERHEAD, assess_pair, file_memory_needed, memory_needed, recommend
from app.core.models.registry import InstalledModel, ModelRegistry
from app.core.paths import app_paths

GB = 1_000_000_000
KEY = "oc-completion-test-key-0123"


def machine(ram_gb: float) -> Hardware:
    return Hardware(int(ram_gb * GB), int(ram_gb * GB), 2, 100 * GB)


def test_two_models_share_the_one_models_share_of_memory():
    chat, base = memory_needed(QWEN_1_5B, 4096), memory_needed(QWEN_1_5B_BASE, 4096)
    pair = assess_pair("1.5B", chat, "base", base, machine(9))
    assert pair.needed == chat + base - APP_OVERHEAD  # the app once
    assert pair.fits and "base fits beside 1.5B" in pair.reason and "of your 9.0 GB" in pair.reason
    # the 1.5B base beside the 3B does not fit in 8 GB (half of it is for everything else) ...
    no = assess_pair("3B", memory_needed(QWEN_3B, 4096), "base", base, machine(8))
    assert not no.fits and "does not fit beside 3B" in no.reason and "50%" in no.reason
    assert no.needed > 4 * GB
    # ... and beside the 7B it wants 16 GB
    assert assess_pair("7B", memory_needed(QWEN_7B, 4096), "base", base, machine(16)).fits


def test_the_completion_model_is_never_recommended_for_chat():
    # 5 GB: the base (2.4 GB) fits alone, the 3B (2.9 GB) does not: the 1.5B Instruct is recommended
    assert memory_needed(QWEN_1_5B_BASE, 4096) <= 2.5 * GB < memory_needed(QWEN_3B, 4096)
    assert recommend(machine(5)).entry == QWEN_1_5B


def _installed(home: Path, starter_path: Path, name: str = "qwen2.5-coder-1.5b-q8_0.gguf") -> tuple[ModelRegistry, Path]:
    """A models folder where the completion model is installed: a link to the starter file under
    the base model's file name (stands in for the 1.5 GB download, which cannot be made here)."""
    registry = ModelRegistry(app_paths(home).models_dir)
    link = home / "elsewhere" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(starter_path)
    registry.add(InstalledModel(QWEN_1_5B_BASE.id, QWEN_1_5B_BASE.name, str(link), starter_path.stat().st_size,
                                "link", catalog_id=QWEN_1_5B_BASE.id))
    return registry, link


def test_the_choice_and_why_not(tmp_path, starter_path):
    registry = ModelRegistry(tmp_path / "empty")
    assert completion_model.choose("", registry, machine(16), starter_path, 2048).path is None
    missing = completion_model.choose(QWEN_1_5B_BASE.id, registry, machine(16), starter_path, 2048)
    assert missing.path is None and "not installed" in missing.reason and "Models…" in missing.reason
    assert "the chat model completes code" in missing.reason

    registry, link = _installed(tmp_path, starter_path)
    assert [m.id for m in completion_model.completion_models(registry)] == [QWEN_1_5B_BASE.id]
    ok = completion_model.choose(QWEN_1_5B_BASE.id, registry, machine(16), starter_path, 2048)
    assert ok.path == link and ok.name == "qwen2.5-coder-1.5b-q8_0"
    assert ok.reason.startswith(f"Completion by {QWEN_1_5B_BASE.name}") and "fits beside" in ok.reason
    # a computer too small for both: the chat model completes, and the numbers say why
    two = 2 * file_memory_needed(starter_path, 2048) - APP_OVERHEAD
    small = machine(2 * two / GB * 0.9)
    tight = completion_model.choose(QWEN_1_5B_BASE.id, registry, small, starter_path, 2048)
    assert tight.path is None and "does not fit beside" in tight.reason and "completes code" in tight.reason
    # a path works too; a file that is no model is said, not raised
    assert completion_model.choose(str(link), registry, machine(16), starter_path, 2048).path == link
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    bad = completion_model.choose(str(junk), registry, machine(16), starter_path, 2048)
    assert bad.path is None and "cannot be used" in bad.reason and "junk.gguf" in bad.reason


def _get(url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode() if body is not None else None,
                                 {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_serve_loads_the_completion_model_beside_the_chat_model(tmp_path, starter_path):
    home = tmp_path / "home"
    _installed(home, starter_path)
    env = {**os.environ, ENV_KEY: KEY, "OFFLINE_CODER_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "app", "--home", str(home), "serve", "--port", "0", "--ctx", "1024",
                             "--completion-model", QWEN_1_5B_BASE.id, "--show-key"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        m = re.search(r"Local API on (http://127\.0\.0\.1:\d+)/v1 serving (.+?) \(completion: (\S+)\) \(Ctrl", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        url, chat_name, completion_name = m.groups()
        assert completion_name == "qwen2.5-coder-1.5b-q8_0" and chat_name != completion_name
        listed = [x["id"] for x in _get(f"{url}/v1/models")["data"]]
        assert listed == [chat_name, completion_name]
        # completions and FIM go to the completion model, chat to the chat model
        raw = _get(f"{url}/v1/completions", {"prompt": "def add(a, b):", "max_tokens": 4, "temperature": 0})
        assert raw["model"] == completion_name
        fim = _get(f"{url}/v1/completions", {"prompt": "def add(a, b):\n    return ", "suffix": "\n",
                                             "max_tokens": 4, "temperature": 0})
        assert fim["model"] == completion_name
        chat = _get(f"{url}/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                    "max_tokens": 4, "temperature": 0})
        assert chat["model"] == chat_name
        # a client may still name the chat model for a completion
        assert _get(f"{url}/v1/completions", {"model": chat_name, "prompt": "x =", "max_tokens": 2})["model"] == chat_name
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Completion by" in err and "Stopped after 5 requests" in err


def test_serve_says_why_the_completion_model_is_not_loaded(tmp_path):
    """Not installed: serve still starts (the chat model completes) after saying so; here it
    stops at once on a port in use, which is said too, so the test needs no model load."""
    from app.core.api.service import loopback_socket

    taken = loopback_socket("127.0.0.1", 0)
    try:
        r = subprocess.run([sys.executable, "-m", "app", "--home", str(tmp_path), "serve", "--port",
                            str(taken.getsockname()[1]), "--completion-model", QWEN_1_5B_BASE.id],
                           capture_output=True, text=True, timeout=120, env={**os.environ, ENV_KEY: KEY})
    finally:
        taken.close()
    assert "not installed" in r.stderr and "the chat model completes code" in r.stderr
    assert r.returncode == 1 and "in use" in r.stderr
