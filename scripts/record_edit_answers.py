"""Record the embedded model's answers to fixed change requests, as parser fixtures.

Run once (``.venv/bin/python scripts/record_edit_answers.py``) and commit the files in
``tests/fixtures/edit_answers/``: the tests then check the parser against what a real small
model writes, without running the model. Greedy decoding, so a re-run gives the same text
on the same llama.cpp build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.edits.prompt import EditRequest, build_edit_prompt  # noqa: E402
from app.core.engine import Engine, EngineConfig, GenerationParams  # noqa: E402
from app.core.models.embedded import starter_model  # noqa: E402
from app.core.settings import Settings  # noqa: E402

PROJECT = ROOT / "tests" / "fixtures" / "edit_project"
OUT = ROOT / "tests" / "fixtures" / "edit_answers"
REQUESTS = {
    "docstring": (["pkg/mathx.py"], "Add a docstring to the add function in pkg/mathx.py."),
    "retry": (["pkg/net.py"], "Add retry with backoff to fetch() in pkg/net.py."),
    "new_file": ([], "Create a file pkg/hello.py with a function hello() that returns 'hi'."),
    "rename": (["pkg/mathx.py"], "Rename mul to multiply in pkg/mathx.py."),
}


def main() -> None:
    engine = Engine(starter_model().path, EngineConfig(n_ctx=4096))
    system = Settings().system_prompt
    for name, (files, request) in REQUESTS.items():
        extra, user, shown = build_edit_prompt(EditRequest(PROJECT, request, files), 2500, 1500, engine.count_tokens)
        messages = [{"role": "system", "content": f"{system}\n\n{extra}"}, {"role": "user", "content": user}]
        result = engine.chat(messages, GenerationParams.greedy(max_tokens=400))
        (OUT / f"{name}.md").write_text(result.text, encoding="utf-8")
        (OUT / f"{name}.json").write_text(json.dumps(
            {"request": request, "files": shown, "finish_reason": result.finish_reason,
             "model": "SmolLM2-135M-Instruct (embedded starter)"}, indent=1) + "\n", encoding="utf-8")
        print(f"--- {name} ({result.finish_reason})\n{result.text}\n")
    engine.close()


if __name__ == "__main__":
    main()
