"""Export training data: the answers the user rated well (and the ones whose changes were
applied) as JSON Lines in chat ``messages`` form, for ``training/colab_training.ipynb``.

An example is one good answer with the conversation up to it: the question it answered and
the earlier turns as context. Only the branch on show counts (``Storage.messages``): of an
answer's versions, the one the user chose, which is also the one later turns built on. What does not belong in a prompt is left out: sandbox output
and ``/remember`` notes (system messages), ``/search`` result lists (no model wrote them), tool
commands, and earlier answers the user rated down (with their questions), since training
learns from every assistant turn in an example. ``/code`` requests lose the command word.

Scrubbing, de-duplication, the split and the file write are ``app.core.learn.dataset``'s: the split
is by conversation, so every example of a conversation lands on the same side in every export.
This module reads the database through ``Storage``; it runs on a worker thread with its own
``Storage`` connection (SQLite connections belong to the thread that made them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from app.core.learn.dataset import Example, Scrubber, assign_splits, unique, write_jsonl
from app.core.chat.intent import route
from app.core.storage import Conversation, Rating, Storage
from app.core.errors import UserError

# Why an answer was not written, in the order they are checked (each answer gets the first).
OTHER_PROJECT = "other project"
OUTSIDE_DATES = "outside the dates"
RATED_DOWN = "rated down"
NOT_RATED = "not rated"
WEB_ANSWER = "web answer (the pages it read are not kept)"
NO_QUESTION = "no question before it"
STOPPED = "stopped before the end"
TOO_SHORT = "too short"
EMPTY = "empty after removing secrets"
DUPLICATE = "duplicate"
REASONS = (OTHER_PROJECT, OUTSIDE_DATES, RATED_DOWN, NOT_RATED, WEB_ANSWER, NO_QUESTION, STOPPED, TOO_SHORT, EMPTY,
           DUPLICATE)


def describe_skipped(skipped: dict[str, int]) -> str:
    """"5 not rated, 2 too short, …": the most frequent first, then in the order checked."""
    order = sorted(skipped.items(), key=lambda kv: (-kv[1], REASONS.index(kv[0]) if kv[0] in REASONS else 99))
    return ", ".join(f"{n} {reason}" for reason, n in order if n)


class ExportError(UserError, ValueError):
    """The export cannot be written; the message says why and what to do."""


@dataclass
class ExportFilter:
    """Which answers become examples.

    ``only_rated``: only answers rated up or whose changes were applied (otherwise every
    answer not rated down). ``min_chars``: the answer's length at least. ``since``/``until``:
    the answer's day (local time), both ends included. ``project``: conversations used with
    this project folder only (None: all)."""

    only_rated: bool = True
    min_chars: int = 0
    since: date | None = None
    until: date | None = None
    project: str | None = None
    valid_fraction: float = 0.1


@dataclass
class ExportReport:
    path: Path
    written: int
    train: int
    valid: int
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    sources: dict[str, int] = field(default_factory=dict)  # "rated" / "applied" / "unrated" -> count

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def skipped_text(self) -> str:
        return describe_skipped(self.skipped)

    def summary(self) -> str:
        s = (f"Wrote {self.written} example{'s' * (self.written != 1)} ({self.train} train / "
             f"{self.valid} validation) to {self.path}")
        if self.skipped_total:
            s += f"; skipped {self.skipped_total}: {self.skipped_text()}"
        return s + "."


def collect_examples(storage: Storage, filt: ExportFilter, scrub: Callable[[str], str],
                     system_prompt: str = "") -> tuple[list[Example], Counter]:
    """The examples the filter lets through (scrubbed, de-duplicated, not yet split) and the
    skip counts by reason."""
    skipped: Counter = Counter()
    examples: list[Example] = []
    for conv in sorted(storage.conversations(), key=lambda c: (c.created, c.id)):
        examples.extend(_conversation_examples(storage, conv, filt, scrub, system_prompt, skipped))
    kept, dropped = unique(examples)
    if dropped:
        skipped[DUPLICATE] += dropped
    return kept, skipped


def accepted_edits(storage: Storage, project: str, scrub: Callable[[str], str]) -> list[Example]:
    """The user's accepted edits in one project (answers whose changes were applied), as examples
    for the project training set (issue #11); scrubbed, de-duplicated, grouped by conversation."""
    examples, _ = collect_examples(storage, ExportFilter(only_rated=True, project=project), scrub)
    return [e for e in examples if e.source == "applied"]


def export_training_data(storage: Storage, path: Path | str, filt: ExportFilter | None = None, *,
                         system_prompt: str = "", scrubber: Scrubber | None = None) -> ExportReport:
    """Write the examples to ``path`` (atomically: a failure leaves an existing file as it was)."""
    filt = filt or ExportFilter()
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path} is a folder; choose a file name for the export (e.g. chats.jsonl).")
    scrub = scrubber or Scrubber()
    examples, skipped = collect_examples(storage, filt, scrub, scrub(system_prompt) if system_prompt else "")
    if not examples:
        why = describe_skipped(skipped) or "there are no answers yet"
        hint = ""
        if filt.only_rated and skipped[NOT_RATED]:
            hint = " Rate good answers 👍 Good, or export every answer (untick “Only rated answers”, or --all)."
        raise ExportError(f"Nothing to export ({why}).{hint} No file was written.")
    assign_splits(examples, filt.valid_fraction)
    existed = path.exists()
    try:
        write_jsonl(path, examples)
    except OSError as e:
        kept = "The previous file is unchanged." if existed else "Nothing was written."
        raise ExportError(f"Could not write {path}: {e.strerror or e}. {kept}") from None
    n_valid = sum(e.split == "valid" for e in examples)
    return ExportReport(path, len(examples), len(examples) - n_valid, n_valid, dict(skipped),
                        dict(Counter(e.source for e in examples)))


def _conversation_examples(storage: Storage, conv: Conversation, filt: ExportFilter, scrub,
                           system_prompt: str, skipped: Counter) -> list[Example]:
    ratings = storage.ratings(conv.id)
    group = f"{conv.id}:{conv.created!r}"
    context: list[dict] = []  # earlier turns that later examples carry
    question: str | None = None
    out: list[Example] = []
    for m in storage.messages(conv.id):
        if m.role == "system":
            continue  # sandbox output, /remember notes: never part of a prompt
        if m.role == "user":
            question = _question(m.content, m.meta)
            continue
        tool = m.meta.get("tool")
        if tool == "search":  # a list of search results: no model wrote it
            question = None
            continue
        rating = ratings.get(m.id, Rating())
        pair = [{"role": "user", "content": question}, {"role": "assistant", "content": m.content}] if question else []
        reason = _reason(conv, m, rating, tool, bool(pair), filt)
        if reason:
            skipped[reason] += 1
        else:
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + context + pair
            scrubbed = [{"role": x["role"], "content": scrub(x["content"])} for x in messages]
            if not scrubbed[-1]["content"].strip() or not scrubbed[-2]["content"].strip():
                skipped[EMPTY] += 1
            else:
                source = {"user": "rated", "applied": "applied"}.get(rating.source, "unrated")
                out.append(Example(scrubbed, group, source))
        if pair and reason not in (RATED_DOWN, WEB_ANSWER, STOPPED) and not _cut_short(m, rating):
            context.extend(pair)  # a later example carries this turn (and trains on it)
        question = None
    return out


def _question(content: str, meta: dict) -> str | None:
    """The user turn as the model saw it, or None for a tool command (the model never saw it)."""
    if meta.get("tool") == "fix":
        return content  # a /fix round: the real error, as sent to the model
    intent = route(content)
    if intent.kind == "code":
        return intent.text or None
    if intent.kind in ("search", "web", "fix", "run", "remember"):
        return None
    return content


def _cut_short(m, rating: Rating) -> bool:
    """A stopped answer, or one a crash interrupted (kept as far as it was written), is half
    an answer, unless the user said it is good as it is."""
    return (m.meta.get("finish_reason") == "cancelled" or bool(m.meta.get("unfinished"))) and rating.user <= 0


def _reason(conv: Conversation, m, rating: Rating, tool, has_question: bool, filt: ExportFilter) -> str | None:
    if filt.project is not None and conv.project != filt.project:
        return OTHER_PROJECT
    day = date.fromtimestamp(m.created)
    if (filt.since and day < filt.since) or (filt.until and day > filt.until):
        return OUTSIDE_DATES
    if rating.value < 0:
        return RATED_DOWN
    if filt.only_rated and rating.value == 0:
        return NOT_RATED
    if tool == "web":
        return WEB_ANSWER
    if not has_question:
        return NO_QUESTION
    if _cut_short(m, rating):
        return STOPPED
    if len(m.content.strip()) < filt.min_chars:
        return TOO_SHORT
    return None
