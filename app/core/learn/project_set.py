"""A training set from the user's own project: instruction/response pairs that teach its patterns.

Two kinds of pair come out of each source file the indexer's walk keeps:

* **write**: for every *documented* definition (see ``definitions.py`` for what that means per
  language), "In <path>, write the function `name` ..." with its documentation, its signature
  and a little module context (the file's imports, the class it belongs to) → the definition's
  code, exactly its lines (dedented), in a fenced block;
* **fim** (fill in the middle, ``fim_per_file`` a file): the file with one definition taken out
  → that definition, in Qwen's FIM tokens for Qwen models, else as a plain instruction
  (``fim.py``). The gap is a whole definition, so prefix and suffix end at definition
  boundaries; both are cut at line boundaries to fit ``max_chars``.

Left out, and counted with the reason: files in languages without a tree-sitter grammar, in
languages or folders the user did not choose, vendored, generated or minified files
(``generated.py``), files without definitions, pairs whose code is under ``min_chars`` or whose
text is over ``max_chars``, exact duplicates and near-duplicates (``near_dup.py``, per kind).
Everything is scrubbed (keys, credentials, home paths: ``dataset.Scrubber``) before the
duplicate checks, and split 90/10 by file (``dataset.assign_splits`` with the file as group), so
no file has pairs on both sides. ``extra`` examples (accepted edits, from the ratings export)
are scrubbed, de-duplicated and split by their own group with the rest.

The output is ``dataset.write_jsonl``'s: the chat ``messages`` rows the notebook reads.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Iterable

from app.core.learn.dataset import Example, Scrubber, assign_splits, unique, write_jsonl
from app.core.index.grammars import GRAMMARS
from app.core.index.walk import walk_project
from app.core.learn.definitions import Definition, FileDefinitions, read_definitions
from app.core.learn.fim import PLAIN, fim_messages, fit_context, overhead
from app.core.learn.generated import skip_reason, vendored
from app.core.learn.near_dup import near_duplicates
from app.core.errors import UserError

WRITE, FIM = "write", "fim"
MAX_LISTED = 20  # paths kept per skip reason, for the dialog
_WALK_WORDS = {"skipped folder": "folders of dependencies, build output or virtualenvs",
               "ignored": "ignored by .gitignore", "unsupported type": "files of unknown type",
               "over 1 MB": "files over 1 MB", "binary": "binary files", "link or special": "links",
               "unreadable": "unreadable files"}


class ProjectSetError(UserError, ValueError):
    """Nothing usable came out, or the user stopped it. The message says why."""


class ProjectSetCancelled(ProjectSetError):
    """The user stopped it; nothing was written. A UserError like its base: the dialog shows
    its message."""


@dataclass
class ProjectSetOptions:
    languages: frozenset[str] | None = None   # None: every language with a grammar
    include: tuple[str, ...] = ()             # folders (or globs); empty: the whole project
    exclude: tuple[str, ...] = ()
    min_chars: int = 40                       # the taught code must be at least this long
    max_chars: int = 4000                     # a pair's whole text at most (~1k tokens of code)
    fim_per_file: int = 1
    fim_style: str = PLAIN                    # fim.QWEN for Qwen models (fim.fim_style_for)
    valid_fraction: float = 0.1
    near_dup_threshold: float = 0.9


@dataclass
class CodeExample(Example):
    """A training example with where it came from in the project (for the report and tests)."""

    kind: str = ""          # WRITE or FIM
    path: str = ""
    language: str = ""
    name: str = ""
    start_line: int = 0     # the taught code's lines, 1-based, inclusive
    end_line: int = 0


@dataclass
class ProjectSetReport:
    files_seen: int = 0
    files_used: int = 0
    per_language: dict[str, Counter] = field(default_factory=dict)  # language -> write/fim/train/valid
    skipped_files: Counter = field(default_factory=Counter)         # reason -> files
    skipped_pairs: Counter = field(default_factory=Counter)         # reason -> pairs
    walk_skipped: Counter = field(default_factory=Counter)          # the indexer walk's own reasons
    skipped_paths: dict[str, list[str]] = field(default_factory=dict)  # reason -> first paths
    train: int = 0
    valid: int = 0
    extra: int = 0
    fim_style: str = PLAIN
    output: str = ""

    def skip_file(self, reason: str, path: str) -> None:
        self.skipped_files[reason] += 1
        listed = self.skipped_paths.setdefault(reason, [])
        if len(listed) < MAX_LISTED:
            listed.append(path)

    def lines(self) -> list[str]:
        """The report in words, for the dialog."""
        out = [f"{self.train + self.valid} pairs from {self.files_used} of {self.files_seen} files: "
               f"{self.train} for training, {self.valid} for validation"
               + (f" (including {self.extra} accepted edits)" if self.extra else "") + "."]
        for lang, c in sorted(self.per_language.items()):
            out.append(f"{lang}: {c[WRITE]} write, {c[FIM]} fill-in-the-middle "
                       f"({c['train']} train, {c['valid']} validation)")
        for reason, n in self.skipped_files.most_common():
            shown = ", ".join(self.skipped_paths.get(reason, [])[:3])
            out.append(f"Skipped {n} file{'s' if n != 1 else ''}: {reason}" + (f" (e.g. {shown})" if shown else ""))
        for reason, n in self.skipped_pairs.most_common():
            out.append(f"Dropped {n} pair{'s' if n != 1 else ''}: {reason}")
        if self.walk_skipped:
            out.append("Not read (as for the project index): " + ", ".join(
                f"{n} {_WALK_WORDS.get(reason, reason)}" for reason, n in self.walk_skipped.most_common()))
        return out


@dataclass
class ProjectSet:
    examples: list[Example]
    report: ProjectSetReport


def parse_folders(text: str) -> tuple[str, ...]:
    """Folder filters as typed: separated by commas or new lines, blanks ignored."""
    return tuple(p.strip().strip("/") for p in re.split(r"[,\n]", text or "") if p.strip().strip("/"))


def _under(path: str, folder: str) -> bool:
    return (path == folder or path.startswith(folder + "/") or fnmatch.fnmatch(path, folder)
            or fnmatch.fnmatch(path, folder + "/*"))


def scan_languages(root: Path, cancelled: Callable[[], bool] = lambda: False) -> Counter:
    """Files per language the training set can use (languages with a grammar), for the filters."""
    files = walk_project(Path(root), cancelled=cancelled).files
    return Counter(f.language for f in files if f.language in GRAMMARS and not vendored(f.path))


def default_output(data_dir: Path, project: Path, today: date | None = None) -> Path:
    """``<data_dir>/exports/<project>-code-YYYYMMDD.jsonl``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(project).name).strip("-.") or "project"
    return Path(data_dir) / "exports" / f"{slug}-code-{(today or date.today()):%Y%m%d}.jsonl"


def _fence(language: str, code: str) -> str:
    return f"```{language}\n{code.rstrip()}\n```"


def write_messages(path: str, language: str, d: Definition, imports: str) -> list[dict]:
    """The "write this definition" pair for a documented definition."""
    short = d.name.rsplit(".", 1)[-1] if d.enclosing else d.name
    owner = f" of `{d.enclosing}`" if d.enclosing else ""
    parts = [f"In `{path}` ({language}), write the {d.kind_word} `{short}`{owner}.",
             f"What it does:\n{d.doc}"]
    if d.signature:
        parts.append(f"Signature: `{d.signature}`" if "\n" not in d.signature
                     else f"Signature:\n{_fence(language, d.signature)}")
    if imports:
        parts.append(f"The file's imports:\n{_fence(language, imports)}")
    return [{"role": "user", "content": "\n\n".join(parts)},
            {"role": "assistant", "content": _fence(language, d.code)}]


def _source(kind: str, path: str, start: int, end: int) -> str:
    return f"project:{kind}:{path}#L{start}-L{end}"


def _fim_picks(path: str, fd: FileDefinitions, options: ProjectSetOptions) -> list[Definition]:
    """Which definitions become the gap of a fill-in-the-middle pair: ones of a useful length
    with code around them, in a stable pseudo-random order, never two that overlap."""
    n = len(fd.lines)
    room = options.max_chars - overhead(options.fim_style) - 200  # leave some context
    cands = [d for d in fd.definitions
             if len(d.code) >= options.min_chars and len(d.code) <= room
             and (d.start_line > 1 or d.end_line < n)]
    cands.sort(key=lambda d: hashlib.sha1(f"{path}\0{d.name}\0{d.start_line}".encode()).hexdigest())
    picks: list[Definition] = []
    for d in cands:
        if len(picks) >= options.fim_per_file:
            break
        if all(d.end_line < p.start_line or d.start_line > p.end_line for p in picks):
            picks.append(d)
    return picks


def _fim_example(path: str, language: str, fd: FileDefinitions, d: Definition,
                 options: ProjectSetOptions) -> CodeExample | None:
    lines = fd.lines
    prefix = "".join(ln + "\n" for ln in lines[:d.start_line - 1])
    middle = "".join(ln + "\n" for ln in lines[d.start_line - 1:d.end_line])
    suffix = "".join(ln + "\n" for ln in lines[d.end_line:])
    budget = options.max_chars - len(middle) - overhead(options.fim_style)
    prefix, suffix = fit_context(prefix, suffix, budget)
    if not (prefix.strip() or suffix.strip()):
        return None
    return CodeExample(messages=fim_messages(path, language, prefix, middle, suffix, options.fim_style),
                       group=path, source=_source(FIM, path, d.start_line, d.end_line), kind=FIM, path=path,
                       language=language, name=d.name, start_line=d.start_line, end_line=d.end_line)


def _file_examples(path: str, language: str, fd: FileDefinitions, options: ProjectSetOptions,
                   report: ProjectSetReport) -> list[CodeExample]:
    out: list[CodeExample] = []
    for d in fd.definitions:
        if not d.documented:
            continue
        if len(d.code) < options.min_chars:
            report.skipped_pairs[f"code under {options.min_chars} characters"] += 1
            continue
        messages = write_messages(path, language, d, fd.imports)
        if sum(len(m["content"]) for m in messages) > options.max_chars:
            report.skipped_pairs[f"over {options.max_chars} characters"] += 1
            continue
        out.append(CodeExample(messages=messages, group=path, source=_source(WRITE, path, d.start_line, d.end_line),
                               kind=WRITE, path=path, language=language, name=d.name,
                               start_line=d.start_line, end_line=d.end_line))
    for d in _fim_picks(path, fd, options):
        ex = _fim_example(path, language, fd, d, options)
        if ex is not None:
            out.append(ex)
    return out


def _drop_near_duplicates(examples: list[CodeExample], threshold: float, report: ProjectSetReport) -> list[CodeExample]:
    """Near-duplicate code of the same kind (a write pair and a FIM pair of one function teach
    different things, so they never count as each other's duplicates)."""
    drop: set[int] = set()
    for kind in (WRITE, FIM):
        idx = [i for i, e in enumerate(examples) if e.kind == kind]
        found = near_duplicates([examples[i].messages[-1]["content"] for i in idx], threshold)
        drop |= {idx[i] for i in found}
    if drop:
        report.skipped_pairs[f"near-duplicate code (≥{threshold:.0%} similar)"] += len(drop)
    return [e for i, e in enumerate(examples) if i not in drop]


def build_project_set(root: Path, options: ProjectSetOptions | None = None, *,
                      extra: Iterable[Example] = (), scrubber: Scrubber | None = None,
                      cancelled: Callable[[], bool] = lambda: False,
                      progress: Callable[[int, int, str], None] = lambda done, total, note: None) -> ProjectSet:
    """Scan ``root`` and build the scrubbed, de-duplicated, split examples with a report."""
    options = options or ProjectSetOptions()
    root = Path(root)
    if not root.is_dir():
        raise ProjectSetError(f"{root} is not a folder (it may have been moved or deleted).")
    scrub = scrubber or Scrubber()
    report = ProjectSetReport(fim_style=options.fim_style)
    walked = walk_project(root, cancelled=cancelled)
    if cancelled():  # the walk stops early when cancelled: its list is not the project
        raise ProjectSetCancelled("Building the training set was cancelled; nothing was written.")
    report.walk_skipped.update(walked.skipped)
    files = walked.files
    report.files_seen = len(files)
    examples: list[CodeExample] = []
    for i, f in enumerate(files):
        if cancelled():
            raise ProjectSetCancelled("Building the training set was cancelled; nothing was written.")
        if i % max(1, len(files) // 200) == 0:  # about 200 updates, not one a file
            progress(i, len(files), f.path)
        if f.language not in GRAMMARS:
            report.skip_file(f"not code we can parse ({f.language})", f.path)
            continue
        if options.languages is not None and f.language not in options.languages:
            report.skip_file(f"language not chosen ({f.language})", f.path)
            continue
        if options.include and not any(_under(f.path, d) for d in options.include):
            report.skip_file("outside the chosen folders", f.path)
            continue
        if any(_under(f.path, d) for d in options.exclude):
            report.skip_file("in an excluded folder", f.path)
            continue
        if vendored(f.path):
            report.skip_file("vendored (third-party folder)", f.path)
            continue
        try:
            text = (root / f.path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            report.skip_file("not UTF-8 text", f.path)
            continue
        except OSError:
            report.skip_file("unreadable", f.path)
            continue
        reason = skip_reason(f.path, text)
        if reason:
            report.skip_file(reason, f.path)
            continue
        fd = read_definitions(text, f.language)
        if fd is None:
            report.skip_file(f"no grammar installed for {f.language}", f.path)
            continue
        if not fd.definitions:
            report.skip_file("no definitions", f.path)
            continue
        found = _file_examples(f.path, f.language, fd, options, report)
        if not found:
            report.skip_file("no documented definitions or usable gaps", f.path)
            continue
        examples.extend(found)
    progress(len(files), len(files), "checking for duplicates")

    for e in examples:
        e.messages = scrub.messages(e.messages)
    examples = _drop_near_duplicates(examples, options.near_dup_threshold, report)
    extras = [Example(messages=scrub.messages(e.messages), group=e.group, source=e.source) for e in extra]
    kept, dupes = unique([*examples, *extras])
    if dupes:
        report.skipped_pairs["exact duplicates"] += dupes
    if not kept:
        top = "; ".join(f"{n}: {r}" for r, n in (report.skipped_files + report.skipped_pairs).most_common(3))
        raise ProjectSetError("No training pairs came out of this project"
                              + (f" ({top})" if top else "") + ". Choose more languages or folders, or lower "
                              "the minimum length; only documented functions and classes make pairs.")
    assign_splits(kept, options.valid_fraction)
    report.train = sum(e.split == "train" for e in kept)
    report.valid = sum(e.split == "valid" for e in kept)
    report.extra = sum(not isinstance(e, CodeExample) for e in kept)
    report.files_used = len({e.path for e in kept if isinstance(e, CodeExample)})
    for e in kept:
        if isinstance(e, CodeExample):
            c = report.per_language.setdefault(e.language, Counter())
            c[e.kind] += 1
            c[e.split] += 1
    return ProjectSet(kept, report)


def export_project_set(root: Path, out: Path, options: ProjectSetOptions | None = None, *,
                       extra: Iterable[Example] = (), cancelled: Callable[[], bool] = lambda: False,
                       progress: Callable[[int, int, str], None] = lambda done, total, note: None) -> ProjectSetReport:
    """Build the set and write it to ``out`` (JSON Lines, atomically); the report says what is in it."""
    result = build_project_set(root, options, extra=extra, cancelled=cancelled, progress=progress)
    if cancelled():
        raise ProjectSetCancelled("Building the training set was cancelled; nothing was written.")
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(out, result.examples)
    except OSError as e:
        raise ProjectSetError(f"Cannot write {out}: {e.strerror or e}. Choose another place.") from None
    result.report.output = str(out)
    return result.report
