"""Time to first token in a grounded conversation: does a follow-up pay only for its new tokens?

A real project is indexed (the app's own `app/core`, or --project), and a five-turn
conversation about it goes through the app's ChatService and Engine exactly as the window
sends it (the prompt laid out for reuse: app/core/chat/service.py). For each turn: prompt
tokens, tokens read this turn, tokens kept from before, time to first token. Figures:

- `followup_vs_first_ttft_ratio`: median TTFT of turns 2-5 / TTFT of turn 1 (target <= 0.25);
- `return_after_another_vs_cold_ratio`: a follow-up after the model read another conversation,
  with the saved state restored / without it (target <= 0.1);
- `return_after_restart_vs_cold_ratio`: the same in a new engine (an app restart);
- `first_turn_ttft_s` with the default "first answer within" (20 s).

    .venv/bin/python bench/ttft.py [--model PATH] [--threads 2] [--ctx 4096] [--project DIR]

--model defaults to the starter; the speed twins (scripts/build_twins.py) give the real sizes'
figures. One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.chat.kv_cache import KvCache  # noqa: E402
from app.core.chat.service import ChatService  # noqa: E402
from app.core.engine import Engine, EngineConfig, GenerationParams  # noqa: E402
from app.core.index.context import PROMPT_CHUNKS  # noqa: E402
from app.core.index.embed import Embedder  # noqa: E402
from app.core.index.indexer import ProjectIndex  # noqa: E402
from app.core.models.embedded import starter_model  # noqa: E402
from app.core.models.speed import SpeedBook  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.core.storage import Storage  # noqa: E402

QUESTIONS = [  # one topic, as a user follows it up
    "How does the project index decide which files to index?",
    "Does it skip files listed in .gitignore?",
    "What happens to a file larger than the limit?",
    "And to binary files?",
    "Which function would I change to index .txt files too?",
]


ANSWERS = [  # plausible short answers, for --fixed-answers
    "The walker in app/core/index/walk.py decides it: .gitignore rules, junk folders and size.",
    "Yes: it reads .gitignore with pathspec and skips every match.",
    "It is skipped and counted under the size limit in the index stats.",
    "Binary files are skipped too, detected by a NUL byte in their first block.",
    "The language table in app/core/index/grammars.py: add the extension there.",
]


def emit(name: str, value, **extra) -> None:
    print(json.dumps({"bench": "ttft", "figure": name, "value": value, **extra}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--project", default=str(ROOT / "app" / "core"))
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--fixed-answers", action="store_true",
                    help="store a fixed short answer per turn (for the random-weight speed twins)")
    args = ap.parse_args()
    model = Path(args.model) if args.model else starter_model().path
    work = Path(tempfile.mkdtemp(prefix="ttft-"))
    pi = ProjectIndex(Path(args.project), work / "index", Embedder())
    pi.update()
    engine = Engine(model, EngineConfig(n_ctx=args.ctx, n_threads=args.threads))
    storage = Storage(work / "app.db")
    settings = Settings()
    settings.generation.max_tokens = args.max_tokens
    chat = ChatService(storage, settings)
    chat.project = Path(args.project)
    chat.retriever = lambda q: pi.search(q, PROMPT_CHUNKS)
    speeds = SpeedBook(work / "speeds.json")
    conv = storage.create_conversation().id
    ttfts = []
    load = os.getloadavg()[0]
    for i, q in enumerate(QUESTIONS, 1):
        chat.speed = speeds.speed(model)
        pending = chat.ask(conv, q)
        messages = chat.prompt(engine, pending)
        seen = []
        result = engine.chat(messages, GenerationParams.greedy(1 if args.fixed_answers else args.max_tokens),
                             on_reading=seen.append)
        if args.fixed_answers:  # a random-weight twin writes noise that does not survive re-tokenizing
            result.text = ANSWERS[i - 1]
        chat.finish(pending, result, model.name)
        last = seen[-1] if seen else None
        if last is not None:
            speeds.record(model, last.done, last.seconds, result.tokens_per_s)
        ttfts.append(result.time_to_first_token_s or 0.0)
        emit("turn", round(ttfts[-1], 3), turn=i, prompt_tokens=result.prompt_tokens,
             read=last.total if last else 0, reused=last.reused if last else 0,
             code_pieces_new=len(pending.shown_now), turns_left_out=pending.turns_left_out)
    first, follow = ttfts[0], statistics.median(ttfts[1:])
    emit("first_turn_ttft_s", round(first, 3), model=model.name, threads=args.threads, load_avg=load)
    emit("followup_median_ttft_s", round(follow, 3))
    emit("followup_vs_first_ttft_ratio", round(follow / first, 3) if first else None, target="<= 0.25")
    sp = speeds.speed(model)
    emit("measured_prompt_tps", round(sp.prompt_tps, 1), gen_tps=round(sp.gen_tps, 1))

    # Returning to the conversation: after another one, and after a restart (saved state).
    kv = KvCache(work / "kv")
    system = pending.messages[0]["content"]
    kv.store(conv, engine, system)
    other = storage.create_conversation().id

    def other_question() -> None:  # the model reads another conversation meanwhile
        p_other = chat.ask(other, "Where are settings saved?")
        engine.chat(chat.prompt(engine, p_other), GenerationParams.greedy(1 if args.fixed_answers else 8))

    back = chat.ask(conv, "Thanks. One more: where is the index folder kept?")
    messages = chat.prompt(engine, back)

    def ttft(e) -> float:
        return e.chat(messages, GenerationParams.greedy(1 if args.fixed_answers else 8)).time_to_first_token_s or 0.0

    other_question()
    kv.restore(conv, engine, system)
    warm = ttft(engine)
    other_question()
    cold = ttft(engine)
    emit("return_after_another_vs_cold_ratio", round(warm / cold, 3) if cold else None, warm_s=round(warm, 3),
         cold_s=round(cold, 3), prompt_tokens=len(engine.tokenize(engine.render_chat(messages))), target="<= 0.1")
    restarted = Engine(model, EngineConfig(n_ctx=args.ctx, n_threads=args.threads))
    kv.restore(conv, restarted, system)
    warm = ttft(restarted)
    restarted.close()
    fresh = Engine(model, EngineConfig(n_ctx=args.ctx, n_threads=args.threads))
    cold = ttft(fresh)
    fresh.close()
    emit("return_after_restart_vs_cold_ratio", round(warm / cold, 3) if cold else None, warm_s=round(warm, 3),
         cold_s=round(cold, 3), target="<= 0.1")
    engine.close()
    pi.close()
    storage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
