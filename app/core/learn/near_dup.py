"""Near-duplicate code, found with hashed shingles (MinHash + banding, then the exact Jaccard).

Projects copy code: the same helper in two packages, a test fixture pasted with one name
changed. Exact de-duplication misses those; training on both over-weights them, and a copy
on each side of the split leaks train into validation. Code is normalised (lower case, one
token per word or punctuation mark, so whitespace and layout do not count), cut into
shingles of ``K`` tokens (comments removed first), and two texts whose shingle sets have a Jaccard similarity of at
least ``threshold`` are near-duplicates; the first one (in the given order) is kept.

MinHash with ``BANDS`` × ``ROWS`` hashes only proposes candidates (a pair at 0.9 similarity is
proposed with probability > 0.9999, at 0.5 about 0.64); every candidate is then checked on
the exact shingle sets, so the threshold is exact. No dependency beyond numpy.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

K = 5
BANDS, ROWS = 16, 4
_PRIME = (1 << 61) - 1
_TOKEN = re.compile(r"\w+|[^\w\s]")
# Comments do not make code different: block comments, and line comments that start a line or
# follow code after a space (so "a#b" in a string mostly survives; a heuristic is enough here).
_COMMENT = re.compile(r"/\*.*?\*/|(?:^|(?<=\s))(?://|#|--)[^\n]*", re.S)
_rng = np.random.default_rng(20240611)
_A = _rng.integers(1, 1 << 31, BANDS * ROWS, dtype=np.uint64)
_B = _rng.integers(0, 1 << 31, BANDS * ROWS, dtype=np.uint64)


def shingles(text: str) -> np.ndarray:
    """The sorted, unique 32-bit hashes of the text's K-token shingles."""
    tokens = _TOKEN.findall(_COMMENT.sub(" ", text).lower())
    if not tokens:
        return np.zeros(0, np.uint64)
    grams = [" ".join(tokens[i:i + K]) for i in range(max(1, len(tokens) - K + 1))]
    hashes = [int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=4).digest(), "little") for g in grams]
    return np.unique(np.asarray(hashes, dtype=np.uint64))


def _signature(sh: np.ndarray) -> np.ndarray:
    # (a*x + b) mod p with a, x < 2^31·2^32: the product stays below 2^64 (no wrap-around)
    return ((np.outer(_A, sh) + _B[:, None]) % _PRIME).min(axis=1)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def near_duplicates(texts: list[str], threshold: float = 0.9) -> dict[int, int]:
    """``{index: index of the earlier text it nearly repeats}`` for every text to drop."""
    sets = [shingles(t) for t in texts]
    buckets: dict[tuple[int, bytes], list[int]] = {}
    dropped: dict[int, int] = {}
    for i, sh in enumerate(sets):
        if not len(sh):
            continue
        sig = _signature(sh)
        candidates: list[int] = []
        keys = [(band, sig[band * ROWS:(band + 1) * ROWS].tobytes()) for band in range(BANDS)]
        for key in keys:
            for j in buckets.get(key, ()):
                if j not in candidates:
                    candidates.append(j)
        match = next((j for j in sorted(candidates) if jaccard(sh, sets[j]) >= threshold), None)
        if match is not None:
            dropped[i] = match
            continue  # a dropped text is not a reference for later ones
        for key in keys:
            buckets.setdefault(key, []).append(i)
    return dropped
