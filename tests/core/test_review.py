"""Review (consilium) on the real starter model: roles in order, cancel, the remote director
against a loopback OpenAI-compatible server, offline refusal, user checklists, diff subjects."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from app.core import secrets
from app.core.review.director import Director, DirectorCancelled, DirectorError, director_from_settings
from app.core.edits import plan_changes
from app.core.engine import GenerationParams
from app.core.net import policy
from app.core.paths import app_paths
from app.core.review.roles import (DIRECTOR, LOCAL, ROLES, STEPS, SYNTHESIS, ReviewError, default_checklist_dir,
                             install_user_checklists, load_checklists, review_params, review_subject_from_changes,
                             review_subject_from_question, role_messages, run_review, synthesis_messages,
                             RoleOutput)
from app.core.settings import DirectorSettings, Settings
from tests.support.fake_openai import FakeOpenAI

FIXTURES = Path(__file__).parents[1] / "fixtures"
FENCE = "```"
QUESTION = ("Plan: store the user's password in a plain text file next to the app and read it at startup "
            "to log in automatically.")
KEY = "sk-DIRECTOR-SECRET-1234"


def fast(max_tokens: int = 40) -> GenerationParams:
    return GenerationParams.greedy(max_tokens=max_tokens)


@pytest.fixture
def fake():
    f = FakeOpenAI()
    yield f
    f.stop()


def run(engine, subject=None, director=None, params=None, **kw):
    starts, tokens, notes = [], {}, []
    result = run_review(engine, subject or review_subject_from_question(QUESTION), load_checklists(None),
                        params or fast(),
                        on_role_start=lambda i, role: starts.append((i, role.key)),
                        on_token=lambda key, t: tokens.setdefault(key, []).append(t),
                        on_note=notes.append, director=director, **kw)
    return result, starts, tokens, notes


def test_all_roles_run_in_order_with_the_embedded_model(engine):
    result, starts, tokens, notes = run(engine)
    assert [k for _, k in starts] == [r.key for r in ROLES] + ["synthesis"]
    assert [i for i, _ in starts] == list(range(STEPS))
    assert [o.role for o in result.outputs] == ["developer", "security", "qa", "architect", "ux"]
    for o in result.outputs:
        assert o.text and not o.cancelled, o
        assert "".join(tokens[o.role]).strip() == o.text  # what streamed is what was kept
    assert result.synthesis and result.synthesis_by == LOCAL
    assert "".join(tokens["synthesis"]).strip() == result.synthesis
    assert not result.cancelled and result.notes == [] and notes == []


def test_cancel_after_the_second_role_starts_stops_further_roles(engine):
    stop = threading.Event()
    seen = []
    stopped_at = []

    def on_token(key, t):
        seen.append(key)
        if key == "security" and seen.count("security") >= 3 and not stop.is_set():
            stopped_at.append(time.perf_counter())
            stop.set()

    starts = []
    result = run_review(engine, review_subject_from_question(QUESTION), load_checklists(None), fast(60),
                        on_role_start=lambda i, role: starts.append(role.key), on_token=on_token,
                        cancelled=stop.is_set)
    assert time.perf_counter() - stopped_at[0] < 3  # within a token or two, not at the role's end
    assert starts == ["developer", "security"]  # nothing after the cancelled role started
    assert [o.role for o in result.outputs] == ["developer", "security"]
    assert not result.outputs[0].cancelled and result.outputs[0].text
    assert result.outputs[1].cancelled and result.outputs[1].finish_reason == "cancelled"
    assert result.outputs[1].text  # the partial text is kept
    assert result.cancelled and result.synthesis == "" and result.synthesis_by == ""
    assert set(seen) == {"developer", "security"}


def test_director_writes_the_synthesis_when_online_and_enabled(engine, fake, memory_keyring):
    secrets.set_key("director", KEY)
    fake.key = KEY
    director = director_from_settings(DirectorSettings(enabled=True, base_url=fake.base_url, model="gpt-test"),
                                      secrets.get_key)
    assert KEY not in repr(director)
    result, starts, tokens, notes = run(engine, director=director, params=fast(24))
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    assert sent.path == "/v1/chat/completions" and sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "gpt-test" and sent.body["stream"] is False
    user = sent.body["messages"][-1]["content"]
    for o in result.outputs:  # the director reads every role's notes (written locally)
        assert f"## {o.title}" in user and o.text[:20] in user
    assert result.synthesis == fake.reply and result.synthesis_by == DIRECTOR
    assert "".join(tokens["synthesis"]) == fake.reply
    assert [k for _, k in starts] == [r.key for r in ROLES] + ["synthesis"]
    assert result.notes == [] and notes == []


def test_offline_refuses_the_director_before_any_request_and_the_local_model_synthesizes(engine, fake):
    policy.set_offline(True)
    director = Director(fake.base_url, "gpt-test", KEY)
    result, starts, tokens, notes = run(engine, director=director, params=fast(24))
    assert fake.requests == []  # nothing was sent
    assert len(result.notes) == 1 and notes == result.notes
    note = result.notes[0]
    assert note.startswith("Director refused:") and "Offline mode is on" in note
    assert "local model wrote the synthesis" in note
    assert result.synthesis_by == LOCAL and result.synthesis
    assert [k for _, k in starts].count("synthesis") == 1  # announced once, written locally
    assert KEY not in note


def test_a_failing_director_leaves_the_synthesis_to_the_local_model(engine, fake):
    fake.status = 401
    result, *_ = run(engine, director=Director(fake.base_url, "gpt-test", KEY), params=fast(16))
    assert len(fake.requests) == 1
    assert result.synthesis_by == LOCAL and result.synthesis
    assert result.notes[0].startswith("Director failed:") and "refused the key" in result.notes[0]


def test_director_messages_for_401_429_404_bad_json_and_timeout(fake):
    msgs = [{"role": "user", "content": "hi"}]
    d = Director(fake.base_url, "gpt-test", KEY, timeout=5)

    fake.status = 401
    with pytest.raises(DirectorError) as e:
        d.complete(msgs)
    assert "refused the key" in str(e.value) and "Settings → Keys" in str(e.value)
    assert KEY not in str(e.value) and "***" in str(e.value)  # the server echoed the key: scrubbed

    fake.status = 429
    with pytest.raises(DirectorError, match="rate-limiting"):
        d.complete(msgs)

    fake.status = 200
    with pytest.raises(DirectorError, match="base URL"):
        Director(fake.base_url.removesuffix("/v1") + "/nope", "m").complete(msgs)

    fake.raw = b"<html>not json</html>"
    with pytest.raises(DirectorError, match="not OpenAI-compatible"):
        d.complete(msgs)
    fake.raw = None

    fake.delay = 3
    t0 = time.perf_counter()
    with pytest.raises(DirectorError, match="did not answer within 0.5 s"):
        Director(fake.base_url, "m", timeout=0.5).complete(msgs)
    assert time.perf_counter() - t0 < 2

    flag = threading.Event()
    threading.Timer(0.3, flag.set).start()
    t0 = time.perf_counter()
    with pytest.raises(DirectorCancelled):
        Director(fake.base_url, "m", timeout=30).complete(msgs, cancelled=flag.is_set)
    assert time.perf_counter() - t0 < 1.5
    fake.delay = 0

    with pytest.raises(DirectorError, match="base URL starting with http"):
        Director("api.openai.com/v1", "m").complete(msgs)
    with pytest.raises(DirectorError, match="model name"):
        Director(fake.base_url, " ").complete(msgs)
    assert Director(fake.base_url, "m").complete(msgs) == fake.reply  # no key: no Authorization header
    assert "Authorization" not in fake.requests[-1].headers


def test_director_is_off_unless_enabled_and_settings_load_tolerantly(tmp_path):
    assert director_from_settings(DirectorSettings(enabled=False, base_url="http://127.0.0.1:1/v1", model="m"),
                                  lambda _: KEY) is None
    p = tmp_path / "settings.toml"
    p.write_text('[director]\nenabled = "yes"\nbase_url = "https://api.example.com/v1"\ntimeout_s = 30\n')
    s = Settings.load(p)
    assert s.director.enabled is False  # a string is not a bool: the default stays
    assert s.director.base_url == "https://api.example.com/v1" and s.director.timeout_s == 30.0
    s.director.enabled, s.director.model = True, "gpt-4o-mini"
    s.save(p)
    assert Settings.load(p).director == DirectorSettings(True, "https://api.example.com/v1", "gpt-4o-mini", 30.0)
    assert "director" in secrets.KNOWN_KEYS


def test_user_checklist_overrides_the_default_and_install_never_overwrites(tmp_path):
    paths = app_paths(tmp_path / "home")
    defaults = load_checklists(None)
    assert set(defaults) == {r.key for r in ROLES} | {"synthesis"} and all(defaults.values())
    folder = paths.data_dir / "review"
    folder.mkdir(parents=True)
    (folder / "security.md").write_text("- Does it log the session token?\n", encoding="utf-8")
    (folder / "qa.md").write_text("  \n", encoding="utf-8")  # empty: the default applies
    mine = load_checklists(paths)
    assert mine["security"] == "- Does it log the session token?"
    assert mine["qa"] == defaults["qa"] and mine["developer"] == defaults["developer"]
    subject = review_subject_from_question(QUESTION)
    asked = role_messages(ROLES[1], mine["security"], subject, 2048, 40, len, lambda ms: sum(len(m["content"]) for m in ms))
    assert "session token" in asked[1]["content"] and "Security reviewer" in asked[1]["content"]
    assert asked[1]["content"].index(QUESTION) < asked[1]["content"].index("session token")  # subject first

    got, copied = install_user_checklists(paths)
    assert got == folder
    assert "security.md" not in copied and "qa.md" not in copied and "developer.md" in copied
    assert (folder / "security.md").read_text() == "- Does it log the session token?\n"  # kept
    assert (folder / "developer.md").read_bytes() == (default_checklist_dir() / "developer.md").read_bytes()
    assert install_user_checklists(paths)[1] == []  # a second time copies nothing

    (folder / "ux.md").write_bytes(b"\xff\xfe bad")
    with pytest.raises(ReviewError, match="not UTF-8"):
        load_checklists(paths)


def test_diff_subject_is_the_unified_diff_and_is_cut_to_the_budget(tmp_path, engine):
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "edit_project", root)
    answer = ("pkg/mathx.py\n" + FENCE + "python\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n\n\n"
              "def mul(a, b):\n    return a * b\n" + FENCE + "\n\ntools/new.py\n" + FENCE + "python\nX = 1\n" + FENCE + "\n")
    cs = plan_changes(root, answer)
    subject = review_subject_from_changes(cs)
    assert subject.kind == "diff" and subject.title == "Changes: pkg/mathx.py, tools/new.py"
    assert "--- a/pkg/mathx.py\n+++ b/pkg/mathx.py\n" in subject.text
    assert '+    """Sum."""\n' in subject.text and " def add(a, b):\n" in subject.text
    assert "--- /dev/null\n+++ b/tools/new.py\n" in subject.text and "+X = 1\n" in subject.text
    cut = review_subject_from_changes(cs, max_chars=60)
    assert len(cut.text) < 140 and "diff cut here" in cut.text

    with pytest.raises(ReviewError, match="no pending change"):
        review_subject_from_changes(None)
    with pytest.raises(ReviewError, match="nothing to review"):
        review_subject_from_question("   \n")

    # A subject far larger than the context is cut so that prompt + answer fit; llama.cpp takes it.
    huge = review_subject_from_changes(plan_changes(root, "pkg/mathx.py\n" + FENCE + "python\n"
                                                    + "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(900))
                                                    + FENCE + "\n"))
    assert engine.count_tokens(huge.text) > 4 * engine.n_ctx
    params = fast(1024)  # half the context for the answer: a ~1,000-token prompt keeps the test quick
    messages = role_messages(ROLES[0], load_checklists(None)["developer"], huge, engine.n_ctx, params.max_tokens,
                             engine.count_tokens, engine.count_message_tokens)
    assert engine.count_message_tokens(messages) + params.max_tokens <= engine.n_ctx
    assert "did not fit" in messages[1]["content"]
    outputs = [RoleOutput(r.key, "word " * 3000) for r in ROLES]  # five very long notes
    syn = synthesis_messages(load_checklists(None)["synthesis"], huge, outputs, engine.n_ctx, params.max_tokens,
                             engine.count_tokens, engine.count_message_tokens)
    assert engine.count_message_tokens(syn) + params.max_tokens <= engine.n_ctx
    assert all(f"## {r.title}\nword" in syn[1]["content"] for r in ROLES)  # every role keeps a share
    assert engine.chat(messages, fast(4)).finish_reason in ("stop", "length")  # llama.cpp takes it


def test_review_params_keep_sampling_but_cap_the_length():
    p = review_params(GenerationParams(temperature=0.7, max_tokens=2048))
    assert p.temperature == 0.7 and p.max_tokens == 384
    assert review_params(GenerationParams(max_tokens=100)).max_tokens == 100
    assert SYNTHESIS.key == "synthesis" and STEPS == 6
