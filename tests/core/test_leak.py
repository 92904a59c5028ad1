"""Nothing leaves the machine: the real CLI in a network namespace whose only way out ends in a
sink namespace, with every packet counted; and a negative control that the same harness catches
onnxruntime's real telemetry.

Topology (tests/netns.py ``SinkNamespaces``): the code runs in a namespace whose only route is a
default route over a veth; the other end is in a second namespace the test made (the sink), which
has no route further and does not forward. The resolver named in that namespace's resolv.conf is
the sink's address, so a DNS lookup from any thread, native ones included, is a counted packet
that stops in the sink. Counted: the veth's tx_packets and an nftables counter on every non-lo
output. The CLI runs with offline mode off (its guard would otherwise refuse a Python-level
phone-home before any packet); ``serve`` runs with it on, issue #18's case: the local API answers
a client of every endpoint on loopback and what the guard cannot see, native code, is counted.
Both counts must stay at zero, no name may be looked up, and nothing may appear under the test's
HOME except the app's own folder (onnxruntime queues its events and a device id under
~/.cache/Microsoft before it sends anything).

Measured on the 2-core dev machine with onnxruntime 1.32.0 and no switch set: ``import
onnxruntime`` writes the device id and the queue within 0.5 s, the first lookup of
mobile.events.data.microsoft.com goes out ~9 s after the start, idle or busy (time-based, not
counted in inferences), and again every ~7-20 s. A process that exits before then only leaves
the files (sent by the next long-enough run). ``CI=true`` alone (and the CI services' own
markers) makes onnxruntime skip telemetry entirely, so the children here run without them: CI
sets CI=true, and the harness would otherwise be blind there.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.no_telemetry import NO_TELEMETRY
from tests.support.netns import SinkNamespaces, can_make_namespaces

ROOT = Path(__file__).resolve().parents[2]
NO_NS = can_make_namespaces()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(NO_NS is not None, reason=f"network namespace tests: {NO_NS}")]

TELEMETRY_HOST = "mobile.events.data.microsoft.com"
# onnxruntime 1.32 reads these as "running in CI" and then sends nothing (CI=true measured).
CI_MARKERS = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
              "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER",
              "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI")
SWITCHES = {*NO_TELEMETRY, "ORT_DISABLE_TELEMETRY"}
MIN_INDEX_S = 90.0       # the index run must embed at least this long in one process
TARGET_INDEX_S = 115.0   # what the project is sized for, from a first, small run
CALIBRATION_FILES = 60
FUNCTIONS_PER_FILE = 8


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without the CI markers, the switches and XDG folders (so that every
    file a child writes for the user lands under ``home``)."""
    env = {k: v for k, v in os.environ.items()
           if k not in CI_MARKERS and k not in SWITCHES and not k.startswith("XDG_")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), **extra)
    return env


def app_env(tmp_path: Path, offline: bool, **extra: str) -> tuple[Path, Path, dict[str, str]]:
    """(HOME, the app's folder in it, the children's environment) for a user who turned every
    switch off (the app must force them back on by itself), with offline mode as given."""
    from app.core.paths import app_paths
    from app.core.settings import Settings

    home = tmp_path / "home"
    home.mkdir()
    app_home = home / "offline-coder"
    env = child_env(home, OFFLINE_CODER_HOME=str(app_home), **{k: "0" for k in SWITCHES}, **extra)
    settings = Settings()
    settings.offline = offline
    settings.save(app_paths(app_home).ensure().settings_file)
    return home, app_home, env


def files_under(folder: Path, but: Path | None = None) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and (but is None or but not in p.parents))


# ---- a generated project: Python functions of ~170 tokens, one chunk each ---------------------
WORDS = ("invoice ledger refund parcel courier voucher tariff basket coupon shipment warehouse pallet "
         "customer account balance receipt order stock supplier discount currency rate tax report audit "
         "batch queue retry cache session profile address region zone").split()


def _function(rng: random.Random, i: int, j: int) -> str:
    a, b, c, d = rng.sample(WORDS, 4)
    return "\n".join([
        f"def {a}_{b}_{c}_{i}_{j}({a}, {b}, limit={rng.randint(2, 99)}):",
        f'    """Compute the {c} of a {a} against its {b}, stopping at limit {d} entries.',
        "",
        f"    The {a} is checked for an empty {c} first; every {b} found on the way is",
        f"    added to the running {d} total and reported back to the caller.",
        '    """',
        f"    {d}_total = 0",
        f"    seen_{c} = []",
        f"    for step, item in enumerate({a}):",
        "        if step >= limit:",
        "            break",
        f"        if item is None or item == {b}:",
        "            continue",
        f"        seen_{c}.append(item)",
        f"        {d}_total += len(str(item)) * {rng.randint(2, 9)} % {rng.randint(11, 97)}",
        f"    return {{'{c}': seen_{c}, '{d}': {d}_total, 'size': len(seen_{c})}}",
        ""])


def add_modules(project: Path, first: int, count: int) -> None:
    rng = random.Random(first)
    for i in range(first, first + count):
        p = project / "gen" / f"pkg{i // 50}" / f"module_{i}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f'"""Generated module {i}."""\n\n\n'
                     + "\n\n".join(_function(rng, i, j) for j in range(FUNCTIONS_PER_FILE)), encoding="utf-8")


INDEX_LINE = re.compile(r"in ([\d.]+) s; (\d+) files read, (\d+) chunks embedded")


@pytest.mark.timeout(1200)  # ~2.5 min; the index runs slow down with the machine's load
def test_the_cli_sends_nothing_and_writes_nothing_outside_its_folder(tmp_path, capsys):
    from tests.support.adapter_zip import make_adapter_zip
    from tests.support.index_project import make_project

    # Offline mode off: the in-process guard would refuse a Python-level phone-home before it
    # made a packet; online, anything a library sends on its own leaves and is counted.
    home, app_home, env = app_env(tmp_path, offline=False)
    project = make_project(tmp_path / "shop")
    add_modules(project, 0, CALIBRATION_FILES)
    adapter = make_adapter_zip(tmp_path / "noisy-lora.zip", b_scale=0.5, seed=1)
    took: dict[str, float] = {}

    with SinkNamespaces(5, dns_log=True) as ns:
        def cli(step: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
            t0 = time.monotonic()
            r = subprocess.run(ns.command(sys.executable, "-m", "app", *args), env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=timeout)
            took[step] = time.monotonic() - t0
            assert ns.egress() == (0, 0), f"{step}: packets left the namespace {ns.egress()}, " \
                                          f"names asked for: {ns.dns_queries()}\n{r.stderr[-2000:]}"
            return r

        def indexed(r: subprocess.CompletedProcess) -> tuple[float, int, int]:
            assert r.returncode == 0, r.stderr
            m = INDEX_LINE.search(r.stdout)
            assert m, r.stdout
            return float(m[1]), int(m[2]), int(m[3])

        assert ns.egress() == (0, 0)
        # A first, small index run sizes the big one for this machine; the big one must embed for
        # MIN_INDEX_S in one process (onnxruntime would have sent by ~9 s). The speed here changes
        # with the load, so a run that came out short is followed by a bigger one (incremental:
        # only the new files are embedded), sized from the speed just seen.
        seconds, _, chunks = indexed(cli("index (calibration)", "index", str(project)))
        per_file, added = seconds / CALIBRATION_FILES, CALIBRATION_FILES
        for attempt in range(3):
            more = math.ceil(TARGET_INDEX_S / per_file)
            add_modules(project, added, more)
            added += more
            seconds, files, chunks = indexed(cli(f"index {attempt + 1}", "index", str(project), timeout=600))
            with capsys.disabled():
                print(f"\n[leak] embedding in one `index` process: {chunks} chunks of {files} files in "
                      f"{seconds:.1f} s ({chunks / seconds:.0f} chunks/s)")
            if seconds >= MIN_INDEX_S:
                break
            per_file = seconds / more
        assert seconds >= MIN_INDEX_S, f"no index run reached {MIN_INDEX_S} s (last {seconds:.1f} s)"

        r = cli("ask --project", "ask", "--greedy", "--max-tokens", "16", "--project", str(project),
                "How does charge_card sign the payment request?")
        assert r.returncode == 0 and "\nSources: " in r.stdout, r.stdout + r.stderr
        cited = [c.strip().rsplit(":", 1)[0] for c in r.stdout.rsplit("Sources: ", 1)[1].split(",")]
        assert cited and all((project / c).is_file() for c in cited), cited  # grounded in the project
        r = cli("ask", "ask", "--greedy", "--max-tokens", "16", "What is the capital of France?")
        assert r.returncode == 0 and r.stdout.strip(), r.stderr
        r = cli("adapters import", "adapters", "import", str(adapter))
        assert r.returncode == 0 and "imported noisy" in r.stdout, r.stderr
        r = cli("doctor", "doctor")
        assert r.returncode in (0, 1) and "Code-search model" in r.stdout, r.stdout + r.stderr  # 1: no keyring
        assert "Offline mode is off" in r.stdout, r.stdout
        assert ns.dns_queries() == []

    stray = files_under(home, but=app_home)
    assert not stray, f"files written outside the app's folder: {stray}"
    assert files_under(app_home)  # (the app did write its own)
    with capsys.disabled():
        print("[leak] " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()))


# ---- the local API: `serve` and a client in the same namespace, offline mode on (issue #18) ----
API_KEY = "oc-leak-test-key-0123456789"
API_RUN_S = 50.0  # embeddings this long after onnxruntime's start: it would have sent by ~9 s
# A client of every endpoint, stdlib only: in turn each kind of request, an embedding after
# every generation, the refusals; it stops API_RUN_S after its first embedding (having made
# every request at least once) and prints what it sent (the server counts every one, an unknown path too).
API_CLIENT = r"""
import http.client, json, sys, time
port, key, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
counts, sent = {}, 0

def need(ok, what):
    if not ok:
        sys.exit(f"request {sent}: {what}")

def call(method, path, body=None, want=200, stream=False, auth=key):
    global sent
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request(method, path, None if body is None else json.dumps(body),
              {"Content-Type": "application/json", **({"Authorization": f"Bearer {auth}"} if auth else {})})
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    sent += 1
    name = f"{method} {path}{' (stream)' if stream else ''} -> {r.status}"
    counts[name] = counts.get(name, 0) + 1
    need(r.status == want, f"{name}, wanted {want}: {text[:400]}")
    if not stream:
        return json.loads(text)
    events = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    need(len(events) >= 2 and events[-1] == "[DONE]", f"{name}: not a finished stream: {text[:400]}")
    return [json.loads(e) for e in events[:-1]]

def embed():
    global last
    out = call("POST", "/v1/embeddings", {"model": "all-MiniLM-L6-v2",
                                          "input": [f"def scale_{sent}(x):\n    return x * {sent}", "class Stack: ..."]})
    need(len(out["data"]) == 2 and all(len(d["embedding"]) == 384 for d in out["data"]), "embeddings")
    last = time.monotonic()

ASK = [{"role": "user", "content": "What is the capital of France?"}]
FIM = {"input_prefix": "import os\n", "prompt": "def f(", "input_suffix": "\n    return x\n", "temperature": 0,
       "input_extra": [{"filename": "util.py", "text": "def g():\n    pass\n"}], "n_predict": 6}
FIX = {"max_tokens": 8, "temperature": 0}
ROUND = [
    lambda: need(call("POST", "/v1/chat/completions", {"messages": ASK, **FIX})
                 ["choices"][0]["message"]["role"] == "assistant", "chat"),
    lambda: need("usage" in call("POST", "/v1/chat/completions", {"messages": ASK, **FIX, "stream": True,
                 "stream_options": {"include_usage": True}}, stream=True)[-1], "chat stream"),
    lambda: need("text" in call("POST", "/v1/completions", {"prompt": "def add(a, b):", **FIX})["choices"][0],
                 "completion"),
    lambda: need(call("POST", "/v1/completions", {"prompt": "def add(a, b):\n", "suffix": "\nprint(add(1, 2))\n",
                 **FIX, "stream": True}, stream=True)[-1]["choices"][0]["finish_reason"], "FIM stream"),
    lambda: need("prompt_tokens" in call("POST", "/v1/completions", {"prompt": "def add(a, b):\n",
                 "suffix": "\nprint(add(1, 2))\n", **FIX})["usage"], "FIM"),
    lambda: need("content" in call("POST", "/infill", FIM), "infill"),
    lambda: need(call("POST", "/infill", {**FIM, "stream": True}, stream=True)[-1]["stop"] is True, "infill stream"),
]
REFUSED = [
    lambda: call("GET", "/v1/models", want=401, auth=None),
    lambda: call("GET", "/v1/models", want=401, auth="wrong-key-0123456789"),
    lambda: call("POST", "/v1/chat/completions", {"model": "gpt-4o", "messages": ASK}, want=404),
    lambda: call("POST", "/v1/embeddings", {"model": "text-embedding-3-large", "input": "x"}, want=404),
    lambda: call("GET", "/v1/nothing-here", want=404),
]
STEPS = [lambda: need(call("GET", "/v1/models")["data"][0]["id"], "models")] \
    + [step for request in ROUND for step in (request, embed)] + REFUSED
embed()
first, n = last, 0
while n < len(STEPS) or last - first < seconds:  # every step once, then on until the time is up
    STEPS[n % len(STEPS)]()
    n += 1
print(json.dumps({"sent": sent, "embedding_s": last - first, "counts": counts}))
"""
API_ASKED = {f"{r} -> 200" for r in ("GET /v1/models", "POST /v1/chat/completions", "POST /v1/completions",
                                     "POST /infill", "POST /v1/embeddings")} | {
    f"{r} (stream) -> 200" for r in ("POST /v1/chat/completions", "POST /v1/completions", "POST /infill")} | {
    "GET /v1/models -> 401", "POST /v1/chat/completions -> 404", "POST /v1/embeddings -> 404",
    "GET /v1/nothing-here -> 404"}
LISTENING = re.compile(r"Local API on http://127\.0\.0\.1:(\d+)/v1 serving ")


@pytest.mark.timeout(300)  # ~55-70 s: the model's load, API_RUN_S of requests, the stop
def test_the_local_api_sends_nothing_beyond_loopback(tmp_path, capsys):
    """Issue #18's case: offline mode on, the API works, nothing else leaves. The guard refuses a
    Python-level try before it makes a packet; what this counts is what the guard cannot see:
    native code (llama.cpp, onnxruntime's telemetry thread, which embeddings start)."""
    home, app_home, env = app_env(tmp_path, offline=True, OFFLINE_CODER_API_KEY=API_KEY)
    errors = tmp_path / "serve.stderr"  # outside HOME
    with SinkNamespaces(7, dns_log=True) as ns, open(errors, "w") as err:
        # One thread: with llama.cpp's default (every core) a 2-core machine busy with anything
        # else took 5-30 s per 8-token answer instead of 0.2 s, and the run made a handful of requests.
        server = subprocess.Popen(ns.command(sys.executable, "-m", "app", "serve", "--port", "0", "--threads", "1"),
                                  env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            line = server.stdout.readline()
            m = LISTENING.search(line)
            assert m, line + errors.read_text()
            assert "Offline mode is on (only loopback)." in line and "Key: from OFFLINE_CODER_API_KEY." in line, line
            client = subprocess.run(ns.command(sys.executable, "-I", "-c", API_CLIENT, m[1], API_KEY, str(API_RUN_S)),
                                    check=False, env=env, capture_output=True, text=True, timeout=API_RUN_S + 120)
            assert client.returncode == 0, client.stdout + client.stderr + errors.read_text()[-2000:]
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=30) == 0, errors.read_text()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            server.stdout.close()
        egress, names = ns.egress(), ns.dns_queries()
    done = json.loads(client.stdout)
    with capsys.disabled():
        print(f"\n[leak] local API, offline mode on: {done['sent']} requests, embeddings for "
              f"{done['embedding_s']:.1f} s; {json.dumps(done['counts'])}")
    assert egress == (0, 0), f"packets left the namespace {egress}, names asked for: {names}"
    assert names == []
    assert set(done["counts"]) == API_ASKED and done["embedding_s"] >= API_RUN_S, done  # all of it, all along
    assert f"Stopped after {done['sent']} requests." in errors.read_text(), errors.read_text()
    stray = files_under(home, but=app_home)
    assert not stray, f"files written outside the app's folder: {stray}"


CONTROL = """
import sys, time
import numpy as np
import onnxruntime as ort
assert "app" not in sys.modules
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
ids = np.array([[101, 2129, 2003, 1037, 4003, 5338, 102]], dtype=np.int64)
feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
if "token_type_ids" in [i.name for i in s.get_inputs()]:
    feed["token_type_ids"] = np.zeros_like(ids)
print("running", flush=True)
while True:
    s.run(None, feed)
    time.sleep(0.02)
"""


def test_the_harness_catches_onnxruntime_telemetry(tmp_path, capsys):
    """Negative control: onnxruntime alone, without the app and its switch, in the same harness."""
    home = tmp_path / "home"
    home.mkdir()
    model = ROOT / "app" / "resources" / "embedder" / "model.onnx"
    with SinkNamespaces(6, dns_log=True) as ns:
        p = subprocess.Popen(ns.command(sys.executable, "-I", "-c", CONTROL, str(model)), env=child_env(home),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "running", p.stderr.read() if p.poll() is not None else ""
            t0 = time.monotonic()
            while time.monotonic() - t0 < 90 and (ns.egress()[1] == 0 or TELEMETRY_HOST not in ns.dns_queries()):
                assert p.poll() is None, p.stderr.read()
                time.sleep(0.25)
            fired = time.monotonic() - t0
        finally:
            p.kill()
            p.wait()
        tx, counted = ns.egress()
        names = ns.dns_queries()
    with capsys.disabled():
        print(f"\n[leak] control: onnxruntime's telemetry went out {fired:.1f} s after the session started "
              f"({tx} tx packets, {counted} counted by nft, lookups {sorted(set(names))})")
    assert tx > 0 and counted > 0
    assert TELEMETRY_HOST in names
    assert any(f.startswith(".cache/Microsoft/") for f in files_under(home)), files_under(home)
