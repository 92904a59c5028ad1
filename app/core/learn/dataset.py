"""Training examples on their way out of the app: scrubbed, de-duplicated, split, written.

Both exports (rated chats, and pairs built from the user's own project) end here, so the
rules for what may leave the machine live in one place:

* **scrub**: keys stored in the keyring, things that look like credentials (provider key
  prefixes, ``password = "..."``, private key blocks, bearer tokens) and absolute home paths
  are replaced before anything is written;
* **de-duplicate**: case- and whitespace-insensitive, the same rule the notebook uses;
* **split**: by a group key (a conversation, a file), hashed, so a group is always on the
  same side, in every run (no leakage from train to validation, stable across exports);
* **write**: JSON Lines in chat ``messages`` form (what ``training/data.py``'s
  ``from_chat_export`` reads as-is; the extra ``split`` key tells it which side a row is on).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from app.core.atomic import atomic_write_text

SECRET_MARK = "<secret removed>"
HOME_MARK = "~"

# Shapes of credentials that must never reach a training file. Deliberately broad: losing a
# few characters of an example costs nothing; shipping a key costs a lot.
# Private key blocks: _drop_private_keys (a lazy ".*?" retried from each BEGIN is quadratic).
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")
_SECRET_PATTERNS = [
    re.compile(r"\b(?:sk|pk|rk)-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_\-]{16,}"),  # OpenAI, Stripe, Anthropic
    re.compile(r"\btvly-[A-Za-z0-9_\-]{12,}"),                                      # Tavily
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),                                    # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),                                           # Hugging Face
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),                                 # Slack
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),                                            # AWS access key id
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),                                       # Google API key
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9_\-\.=]{16,}"),
]
# name = "value" where the name says it is a secret: keep the name, drop the value. The name is
# matched as a whole run of word characters and hyphens and then searched for the secret word:
# one pattern that looked for the word inside the run retried every position of it, and a
# 40 kB "a-a-a-…" in a chat took a minute to export (quadratic).
_ASSIGNMENT = re.compile(
    r"""(?x)
    ((?<![\w\-])[\w\-]++["']?\s*[:=]\s*)
    (["'])([^"'\n]{6,})\2
    """)
_SECRET_NAME = re.compile(r"(?i)api[_\-]?key|secret|token|passw(?:or)?d|passwd|credential|private[_\-]?key")


def _drop_private_keys(text: str) -> str:
    """Each BEGIN … END private key block replaced, in one pass: with no END after a BEGIN,
    none after a later BEGIN either."""
    out, pos = [], 0
    while (begin := _KEY_BEGIN.search(text, pos)) and (end := _KEY_END.search(text, begin.end())):
        out += [text[pos:begin.start()], SECRET_MARK]
        pos = end.end()
    return "".join(out) + text[pos:]


def _scrub_assignment(m: re.Match) -> str:
    name = m.group(1)
    if not _SECRET_NAME.search(name):
        return m.group(0)
    return f"{name}{m.group(2)}{SECRET_MARK}{m.group(2)}"


def _home_patterns(home: str | None) -> list[re.Pattern]:
    pats = [
        re.compile(r"(?<![\w.])/home/[^/\s\"'`]+"),
        re.compile(r"(?<![\w.])/Users/[^/\s\"'`]+"),
        re.compile(r"(?i)\b[A-Z]:\\\\?Users\\\\?[^\\\s\"'`]+"),
        re.compile(r"(?<![\w.])/root(?=/|\b)"),
    ]
    if home and home not in ("/", ""):
        pats.insert(0, re.compile(re.escape(home.rstrip("/\\")) + r"(?=[/\\]|\b)"))
    return pats


def _stored_keys() -> list[str]:
    """The values of keys in the keyring (empty where there is no usable keyring)."""
    try:
        from app.core import secrets
        values = [secrets.get_key(name) for name in secrets.KNOWN_KEYS]
    except Exception:  # noqa: BLE001 - no keyring means no stored key to leak
        return []
    return [v for v in values if v and len(v) >= 4]


@dataclass
class Scrubber:
    """Replaces secrets and home paths. Build once per export (it reads the keyring once)."""

    home: str | None = field(default_factory=lambda: os.path.expanduser("~"))
    keys: list[str] = field(default_factory=_stored_keys)

    def __post_init__(self) -> None:
        self._homes = _home_patterns(self.home)

    def __call__(self, text: str) -> str:
        for key in self.keys:
            text = text.replace(key, SECRET_MARK)
        text = _drop_private_keys(text)
        for pat in _SECRET_PATTERNS:
            text = pat.sub(SECRET_MARK, text)
        text = _ASSIGNMENT.sub(_scrub_assignment, text)
        for pat in self._homes:
            text = pat.sub(HOME_MARK, text)
        return text

    def messages(self, messages: list[dict]) -> list[dict]:
        return [{"role": m["role"], "content": self(m["content"])} for m in messages]


def dedup_key(messages: list[dict]) -> str:
    """Same rule as training/data.py: user and assistant text, case and whitespace folded."""
    h = hashlib.sha1()
    for m in messages:
        if m["role"] == "system":
            continue
        h.update(m["role"].encode())
        h.update(b"\0")
        h.update(" ".join(m["content"].split()).lower().encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def split_of(group: str, valid_fraction: float = 0.1, salt: str = "offline-coder-split-v1") -> str:
    """"train" or "valid" for a group key, the same in every run and on every machine."""
    digest = hashlib.sha256(f"{salt}\0{group}".encode("utf-8")).digest()
    return "valid" if int.from_bytes(digest[:8], "big") / 2**64 < valid_fraction else "train"


@dataclass
class Example:
    """One training example: chat messages, the group that decides its split, and where it came from."""

    messages: list[dict]
    group: str
    source: str = ""
    split: str = ""  # set by assign_splits


def assign_splits(examples: list[Example], valid_fraction: float = 0.1) -> None:
    """Split by group hash; when that leaves validation empty (few groups), move the smallest
    group whose removal keeps train non-empty, so a small export still has both sides."""
    groups = {e.group for e in examples}
    side = {g: split_of(g, valid_fraction) for g in groups}
    if len(groups) >= 2 and "valid" not in side.values():
        side[min(groups, key=lambda g: hashlib.sha256(g.encode()).hexdigest())] = "valid"
    for e in examples:
        e.split = side[e.group]


def unique(examples: Iterable[Example]) -> tuple[list[Example], int]:
    """Examples with duplicates dropped (first one kept) and how many were dropped."""
    seen: set[str] = set()
    kept, dropped = [], 0
    for e in examples:
        k = dedup_key(e.messages)
        if k in seen:
            dropped += 1
            continue
        seen.add(k)
        kept.append(e)
    return kept, dropped


def write_jsonl(path: Path, examples: list[Example]) -> None:
    """One row per example: ``{"messages": [...], "split": "train"|"valid", "source": ...}``.
    Written atomically: a failed export leaves the previous file as it was."""
    lines = [json.dumps({"messages": e.messages, "split": e.split or "train", "source": e.source},
                        ensure_ascii=False) for e in examples]
    atomic_write_text(Path(path), "\n".join(lines) + ("\n" if lines else ""))
