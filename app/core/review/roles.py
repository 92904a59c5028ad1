"""Review (consilium): the local model reads a question or a pending diff in several roles in
turn (developer, security, QA, architect, UX), then writes one recommendation from what they
said (the synthesis). An optional remote "director" (app/core/review/director.py) may write the
synthesis instead, only when the user enabled it and offline mode is off.

Each role is its own short prompt: the subject (cut to the context budget, the same cut for
every role) and then the role with its checklist, so the prompts share their start and
llama.cpp evaluates a long diff once, not six times (see ``subject_room``). The checklists
are markdown files: the defaults ship in ``app/resources/review/<role>.md``; the user's
copies in ``<data_dir>/review/<role>.md`` override them file by file.

Everything here blocks; the UI runs ``run_review`` on a worker and streams through the
callbacks (which run on that worker thread).
"""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from app.core.chat.service import answer_reserve
from app.core.engine import GenerationParams, Message
from app.core.net.policy import OfflineError
from app.core.errors import UserError

if TYPE_CHECKING:
    from app.core.review.director import Director
    from app.core.edits.plan import ChangeSet, FileChange
    from app.core.engine import Engine
    from app.core.paths import AppPaths


@dataclass(frozen=True)
class Role:
    key: str     # file name of its checklist, and how callbacks name it
    title: str   # what the UI shows
    focus: str   # what this reviewer looks at, in a few words


ROLES: tuple[Role, ...] = (
    Role("developer", "Developer", "correctness and code quality"),
    Role("security", "Security", "security and privacy"),
    Role("qa", "QA", "testing and what could break"),
    Role("architect", "Architect", "design and structure"),
    Role("ux", "UX", "what the user sees and does"),
)
SYNTHESIS = Role("synthesis", "Synthesis", "one recommendation from the reviewers' notes")
ALL_ROLES: tuple[Role, ...] = ROLES + (SYNTHESIS,)
STEPS = len(ALL_ROLES)  # progress counts the synthesis as the last step

# Each role's answer is short: six prompts in a row on a laptop CPU add up
# (a 7B model at ~8 tok/s writes 384 tokens in ~50 s).
REVIEW_MAX_TOKENS = 384
# A diff longer than this is cut before token counting (the context cuts it further anyway).
SUBJECT_MAX_CHARS = 60_000
LOCAL, DIRECTOR = "local", "director"


class ReviewError(UserError, ValueError):
    """Nothing to review, or a checklist cannot be read; the message says what to do."""


@dataclass(frozen=True)
class ReviewSubject:
    kind: str    # "question" or "diff"
    title: str   # one line for the panel
    text: str


@dataclass
class RoleOutput:
    role: str            # Role.key
    text: str
    cancelled: bool = False
    finish_reason: str = "stop"

    @property
    def title(self) -> str:
        return role_by_key(self.role).title


@dataclass
class ReviewResult:
    subject: ReviewSubject
    outputs: list[RoleOutput] = field(default_factory=list)
    synthesis: str = ""
    synthesis_by: str = ""   # LOCAL, DIRECTOR, or "" when cancelled before it was written
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False


def role_by_key(key: str) -> Role:
    for r in ALL_ROLES:
        if r.key == key:
            return r
    raise KeyError(key)


def review_params(params: GenerationParams, max_tokens: int = REVIEW_MAX_TOKENS) -> GenerationParams:
    """The user's sampling settings with each role's answer kept short."""
    return replace(params, max_tokens=max(1, min(params.max_tokens, max_tokens)))


# ---- checklists ----------------------------------------------------------------------------

def default_checklist_dir() -> Path:
    """The checklists shipped with the app: ``app/resources/review``."""
    return Path(__file__).resolve().parents[2] / "resources" / "review"


def user_checklist_dir(paths: AppPaths) -> Path:
    return paths.data_dir / "review"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReviewError(f"The review checklist {path} is not UTF-8 text; save it as UTF-8 or delete it "
                          "to use the default.") from None
    except OSError as e:
        raise ReviewError(f"Cannot read the review checklist {path} ({e.strerror or e}).") from None


def load_checklists(paths: AppPaths | None) -> dict[str, str]:
    """Role key -> checklist text, for every role and the synthesis.

    A user's file (``<data_dir>/review/<role>.md``) wins over the shipped default; an empty
    one counts as missing (a role with no checklist is an accident, not a wish)."""
    out: dict[str, str] = {}
    user_dir = user_checklist_dir(paths) if paths is not None else None
    for role in ALL_ROLES:
        text = ""
        if user_dir is not None and (user_dir / f"{role.key}.md").is_file():
            text = _read(user_dir / f"{role.key}.md").strip()
        if not text:
            default = default_checklist_dir() / f"{role.key}.md"
            text = _read(default).strip() if default.is_file() else ""
        out[role.key] = text
    return out


def install_user_checklists(paths: AppPaths) -> tuple[Path, list[str]]:
    """Copy the default checklists into the user's folder, never over a file already there.
    Returns the folder and the file names copied now."""
    folder = user_checklist_dir(paths)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        copied = []
        for role in ALL_ROLES:
            target = folder / f"{role.key}.md"
            src = default_checklist_dir() / f"{role.key}.md"
            if not target.exists() and src.is_file():
                shutil.copyfile(src, target)
                copied.append(target.name)
    except OSError as e:
        raise ReviewError(f"Cannot write the review checklists to {folder} ({e.strerror or e}).") from None
    return folder, copied


# ---- subjects ------------------------------------------------------------------------------

def _one_line(text: str, limit: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def review_subject_from_question(text: str) -> ReviewSubject:
    text = (text or "").strip()
    if not text:
        raise ReviewError("There is nothing to review: type a question or plan in the chat box (or ask one first), "
                          "then choose Review.")
    return ReviewSubject("question", f"Question: {_one_line(text)}", text)


def unified_diff(change: FileChange, context: int = 3) -> str:
    """One file's proposed change as unified diff text (what Apply would write with every hunk)."""
    from app.core.edits.plan import DELETED, NEW

    old = [line + "\n" for line in (change.original.contents if change.original else [])]
    new = [] if change.status == DELETED else [line + "\n" for line in (change.new_lines or [])]
    a = "/dev/null" if change.status == NEW else f"a/{change.path}"
    b = "/dev/null" if change.status == DELETED else f"b/{change.path}"
    text = "".join(difflib.unified_diff(old, new, a, b, n=context))
    return text if text.endswith("\n") or not text else text + "\n"


def review_subject_from_changes(changeset: ChangeSet | None, max_chars: int = SUBJECT_MAX_CHARS) -> ReviewSubject:
    """The pending diff (all files, all hunks) as unified diff text, cut at ``max_chars``."""
    changes = list(changeset.changes) if changeset is not None else []
    if not changes:
        raise ReviewError("There is no pending change to review: ask for one with /code in an open project first.")
    text = "".join(unified_diff(c) for c in changes)
    if len(text) > max_chars:
        cut = text.rfind("\n", 0, max_chars) + 1 or max_chars
        text = text[:cut] + f"[… diff cut here: {len(text) - cut} more characters not shown]\n"
    paths = ", ".join(c.path for c in changes)
    return ReviewSubject("diff", f"Changes: {_one_line(paths)}", text)


# ---- prompts within the context budget -----------------------------------------------------

def fit_text(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """``text`` if it fits ``max_tokens``, else its start (at a line end where possible) and a
    marker saying how much was left out."""
    if max_tokens <= 0:
        return ""
    if count(text) <= max_tokens:
        return text
    total = len(text)
    cut = int(total * max_tokens / max(count(text), 1))
    while cut > 0:
        nl = text.rfind("\n", 0, cut)
        end = nl + 1 if nl > cut // 2 else cut
        candidate = text[:end].rstrip() + f"\n[… cut here: {total - end} more characters did not fit]"
        if count(candidate) <= max_tokens:
            return candidate
        cut = int(cut * 0.85)
    return ""


PANEL_SYSTEM = ("You are on a code review panel: five reviewers (developer, security, QA, architect, UX) and a lead "
                "read the same subject, each answering from their own role only. Be concrete and brief.")


def _instructions(role: Role, checklist: str) -> str:
    """What one role is asked, after the subject (so every role's prompt starts the same)."""
    if role is SYNTHESIS:
        return ("You are the panel's lead. From the subject and the reviewers' notes above, write the panel's "
                f"final answer.\n\nChecklist:\n{checklist}").rstrip()
    return (f"You are the {role.title} reviewer; look only at {role.focus}.\n\nChecklist:\n{checklist}\n\n"
            "Answer in at most five short bullet points, most important first. "
            "If you find nothing, say so in one line.")


def _subject_header(subject: ReviewSubject) -> str:
    return "Review this change (unified diff):\n\n" if subject.kind == "diff" else "Review this question or plan:\n\n"


def _wrap_subject(subject: ReviewSubject, text: str) -> str:
    return f"```diff\n{text.rstrip()}\n```" if subject.kind == "diff" else text


SEPARATOR = "\n\n---\n\n"


def _messages(user: str) -> list[Message]:
    return [{"role": "system", "content": PANEL_SYSTEM}, {"role": "user", "content": user}]


def _role_user(subject: ReviewSubject, body: str, role: Role, checklist: str) -> str:
    return _subject_header(subject) + _wrap_subject(subject, body) + SEPARATOR + _instructions(role, checklist)


def _prompt_room(n_ctx: int, max_tokens: int, fixed: Sequence[Message], count_messages) -> int:
    budget = n_ctx - answer_reserve(n_ctx, max_tokens)
    return budget - count_messages(fixed) - 16  # the fence, the cut marker and the template's slack


def subject_room(checklists: dict[str, str], subject: ReviewSubject, n_ctx: int, max_tokens: int,
                 count_messages: Callable[[Sequence[Message]], int]) -> int:
    """Tokens the subject may take so that every role's prompt fits. Every role gets the same
    cut, and the subject comes before the role's instructions, so llama.cpp reuses the
    subject's evaluation (its prompt cache) from the second role on: a long diff is read once,
    not five times (measured on the starter model: 11.5 s for the first role, 0.2 s after)."""
    return min(_prompt_room(n_ctx, max_tokens, _messages(_role_user(subject, "", r, checklists.get(r.key, ""))),
                            count_messages) for r in ROLES)


def role_messages(role: Role, checklist: str, subject: ReviewSubject, n_ctx: int, max_tokens: int,
                  count: Callable[[str], int], count_messages: Callable[[Sequence[Message]], int],
                  room: int | None = None) -> list[Message]:
    """System = the panel; user = the subject (cut to ``room`` tokens, else to what this role's
    prompt leaves), then the role and its checklist."""
    if room is None:
        room = _prompt_room(n_ctx, max_tokens, _messages(_role_user(subject, "", role, checklist)), count_messages)
    body = fit_text(subject.text, room, count)
    if not body:
        raise ReviewError(f"The {role.title} checklist leaves no room for the subject in the model's context "
                          f"({n_ctx} tokens); shorten the checklist or raise the context size in Settings.")
    return _messages(_role_user(subject, body, role, checklist))


def synthesis_messages(checklist: str, subject: ReviewSubject, outputs: Sequence[RoleOutput], n_ctx: int,
                       max_tokens: int, count: Callable[[str], int],
                       count_messages: Callable[[Sequence[Message]], int]) -> list[Message]:
    """The subject (as much as fits), the reviewers' notes (each cut to a fair share), then
    the lead's instructions."""
    header = _subject_header(subject)
    notes_header = SEPARATOR + "The reviewers' notes:\n"
    tail = SEPARATOR + _instructions(SYNTHESIS, checklist)
    room = _prompt_room(n_ctx, max_tokens, _messages(header + notes_header + tail), count_messages)
    heads = {o.role: f"\n## {o.title}\n" for o in outputs}
    room -= sum(count(h) + 1 for h in heads.values())
    texts = {o.role: (o.text.strip() or "(no notes)") for o in outputs}
    # Notes first, up to two thirds of the room; a short note's unused share goes to the longer ones.
    notes_room = (room * 2) // 3
    need = {k: count(t) for k, t in texts.items()}
    fitted: dict[str, str] = {}
    left = notes_room
    for i, k in enumerate(sorted(need, key=need.get)):
        share = left // (len(need) - i)
        fitted[k] = texts[k] if need[k] <= share else fit_text(texts[k], share, count)
        left -= min(need[k], share)
    notes = "".join(heads[o.role] + fitted[o.role] + "\n" for o in outputs)
    subject_text = fit_text(subject.text, room - (notes_room - left), count)
    body = _wrap_subject(subject, subject_text) if subject_text else "(too long to repeat here)"
    return _messages(header + body + notes_header + notes.rstrip() + tail)


# ---- the run -------------------------------------------------------------------------------

def run_review(engine: Engine, subject: ReviewSubject, checklists: dict[str, str], params: GenerationParams, *,
               on_role_start: Callable[[int, Role], None] | None = None,
               on_token: Callable[[str, str], None] | None = None,
               cancelled: Callable[[], bool] | None = None,
               director: Director | None = None,
               on_note: Callable[[str], None] | None = None) -> ReviewResult:
    """Run every role in ``ROLES`` order, then the synthesis; blocks.

    ``on_role_start(index, role)`` (0-based, of ``STEPS``) and ``on_token(role_key, text)``
    stream progress; ``cancelled()`` stops the current generation and every later step. With
    a ``director`` the synthesis goes to it first; a refusal (offline) or a failure becomes a
    note and the local model writes the synthesis.
    """
    is_cancelled = cancelled or (lambda: False)
    result = ReviewResult(subject)

    def note(text: str) -> None:
        result.notes.append(text)
        if on_note is not None:
            on_note(text)

    def generate(index: int, role: Role, messages: list[Message], announce: bool = True) -> tuple[str, str]:
        if announce and on_role_start is not None:
            on_role_start(index, role)
        token = (lambda t: on_token(role.key, t)) if on_token is not None else None
        r = engine.chat(messages, params, on_token=token, cancelled=is_cancelled)
        return r.text.strip(), r.finish_reason

    room = subject_room(checklists, subject, engine.n_ctx, params.max_tokens, engine.count_message_tokens)
    for i, role in enumerate(ROLES):
        if is_cancelled():
            result.cancelled = True
            return result
        messages = role_messages(role, checklists.get(role.key, ""), subject, engine.n_ctx, params.max_tokens,
                                 engine.count_tokens, engine.count_message_tokens, room)
        text, finish = generate(i, role, messages)
        result.outputs.append(RoleOutput(role.key, text, finish == "cancelled", finish))
        if finish == "cancelled":
            result.cancelled = True
            return result

    if is_cancelled():
        result.cancelled = True
        return result
    messages = synthesis_messages(checklists.get(SYNTHESIS.key, ""), subject, result.outputs, engine.n_ctx,
                                  params.max_tokens, engine.count_tokens, engine.count_message_tokens)
    if director is not None:
        from app.core.review.director import DirectorCancelled, DirectorError

        if on_role_start is not None:
            on_role_start(len(ROLES), SYNTHESIS)
        try:
            text = director.complete(messages, cancelled=is_cancelled)
        except DirectorCancelled:
            result.cancelled = True
            return result
        except OfflineError as e:
            note(f"Director refused: {e} The local model wrote the synthesis.")
        except DirectorError as e:
            note(f"Director failed: {e} The local model wrote the synthesis.")
        else:
            if on_token is not None:
                on_token(SYNTHESIS.key, text)
            result.synthesis, result.synthesis_by = text, DIRECTOR
            return result
        if is_cancelled():
            result.cancelled = True
            return result
    text, finish = generate(len(ROLES), SYNTHESIS, messages, announce=director is None)
    result.synthesis, result.synthesis_by = text, LOCAL
    result.cancelled = finish == "cancelled"
    return result
