"""Fusing the dense and keyword rankings.

Weighted reciprocal-rank fusion: a chunk scores ``w / (k + rank)`` in each list it appears
in. Ranks, not scores, because cosine similarities and BM25 scores live on unrelated scales.
Weighted, because on the stdlib benchmark plain equal-weight RRF scored below dense alone:
keyword hits are many and noisy for natural-language questions, so they get a smaller say.
And a small ``k``: with the textbook k=60 neighbouring ranks differ so little that one top
keyword hit lifts a chunk some 26 dense places; with k=10 and weight 0.2 it is worth about 3.
bench/retrieval_quality.py --tune chose dense 1.0, bm25 0.2, k 10 (MRR 1.023x dense alone on
1,000 stdlib queries, 1.026x on a second sample; bm25 0.3/k 60 was 0.969x; 1.011x with the
shipped embedder). The weights are settings ([retrieval] in settings.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from app.core.settings import RetrievalSettings


@dataclass(frozen=True)
class RankWeights:
    dense: float = 1.0
    bm25: float = 0.2
    k: int = 10

    @classmethod
    def from_settings(cls, r: "RetrievalSettings") -> "RankWeights":
        return cls(r.dense_weight, r.bm25_weight, r.rrf_k)


def fuse(dense: Sequence[int], keyword: Sequence[int], w: RankWeights = RankWeights()) -> list[tuple[int, float]]:
    """(id, score) best first. Ties keep dense order, then keyword order."""
    scores: dict[int, float] = {}
    for rank, cid in enumerate(dense):
        scores[cid] = scores.get(cid, 0.0) + w.dense / (w.k + rank + 1)
    for rank, cid in enumerate(keyword):
        scores[cid] = scores.get(cid, 0.0) + w.bm25 / (w.k + rank + 1)
    return sorted(scores.items(), key=lambda kv: -kv[1])
