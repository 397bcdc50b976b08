"""Stage 3: the candidate rankings fused into one, every weight in one object.

Scores of BM25 and cosine similarity live on different scales. A hybrid search's legs are
fused by their min-max normalised scores, BM25's weight scaled by how much of the question
its best passages hold (``QA_FUSION=convex``, :mod:`qa_service.convex_fusion`), or by their
ranks (reciprocal rank fusion, :func:`qa_service.retrieval.rrf`); everything above them
by ranks. The candidates stage gives a tree of named rankings: a hybrid search's legs
under the question they searched for, the question's searches under a follow-up, the
follow-up beside the ranking within the hinted documents. :func:`fuse` folds the tree
from its leaves up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..config import Settings
from ..convex_fusion import convex_fusion
from ..hints import Hints
from ..retrieval import Ranking, rrf

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamedRanking:
    """A ranking to fuse and its weight: searched (``ranking``) or fused from ``parts``."""

    name: str
    weight: float = 1.0
    ranking: Ranking = field(default_factory=list)
    parts: tuple[NamedRanking, ...] = ()
    #: A fused node keeps at most this many (None: all).
    limit: int | None = None
    #: How a node of several parts fuses them: ``rrf`` or ``convex`` (normalised scores).
    method: str = "rrf"

    def names(self) -> list[str]:
        """The names of the leaves under this node, depth first (for tests and logs)."""
        if not self.parts:
            return [self.name]
        return [name for part in self.parts for name in part.names()]


@dataclass(frozen=True)
class FusionWeights:
    """The weight of every ranking that is fused, and of the hints' lift (BENCHMARKS.md)."""

    rrf_k: int = 60
    #: How a hybrid search's legs are fused (``rrf`` or ``convex``), and over how many of
    #: BM25's first passages its term coverage scales its weight (0: a fixed weight).
    hybrid_method: str = "convex"
    coverage_passages: int = 5
    #: The hybrid's legs: dense, BM25, the dense leg moved by feedback, the dense leg
    #: searched with an English question's Swedish glossary terms.
    dense: float = 1.0
    lexical: float = 1.0
    dense_feedback: float = 0.0
    glossary: float = 1.0
    #: Every passage ranked by its best sentence (a build with sentence vectors; 0: off).
    sentences: float = 0.0
    #: How far the glossary ranking's weight follows the share of an English question's
    #: words the glossary reads: weight × (1 − this + this × share).
    glossary_by_share: float = 1.0
    #: A follow-up: the literal question, the standalone query, the standalone query within
    #: the documents the previous turn cited.
    follow_up_question: float = 0.5
    follow_up_standalone: float = 1.0
    follow_up_focus: float = 0.5
    #: A question that continues without a pronoun, searched with the earlier topic words
    #: (0: not searched; the question's own words weigh 1).
    continuing_topic: float = 1.0
    #: The ranking within the documents that meet every hint of the question, when the
    #: hints name a kind of document, and when they name only parties or people.
    hinted_documents: float = 1.0
    hinted_without_kind: float = 0.5
    #: A fused score is multiplied by 1 + this times the share of the hints its document
    #: meets (:func:`qa_service.query.reranking.lift_hinted`; 0: off).
    hint_lift: float = 0.0

    def hinted(self, hints: Hints) -> float:
        """The weight of the hinted documents' ranking for these hints.

        A question that names a kind of document ("i Moderaternas motion", "the policy
        statement") names its source; one that names a party or a person alone is as
        often about them as from them ("vad regeringen och Sverigedemokraterna satsar").
        """
        return self.hinted_documents if hints.doctypes else self.hinted_without_kind

    @classmethod
    def from_settings(cls, settings: Settings) -> FusionWeights:
        return cls(
            rrf_k=settings.rrf_k,
            hybrid_method=settings.fusion,
            coverage_passages=settings.coverage_passages,
            dense=settings.dense_weight,
            lexical=settings.lexical_weight,
            dense_feedback=settings.dense_feedback_ranking_weight,
            glossary=settings.glossary_weight,
            sentences=settings.sentence_leg_weight,
            glossary_by_share=settings.glossary_by_share,
            follow_up_question=settings.follow_up_question_weight,
            follow_up_standalone=settings.follow_up_standalone_weight,
            follow_up_focus=settings.follow_up_focus_weight,
            continuing_topic=settings.continuing_topic_weight,
            hinted_documents=settings.hint_ranking_weight,
            hinted_without_kind=settings.hint_ranking_without_kind_weight,
            hint_lift=settings.hint_weight,
        )


def fuse(node: NamedRanking, *, rrf_k: int) -> Ranking:
    """One ranking from a tree of them.

    A leaf is its own ranking. A node of one part is that part as it is, scores and all
    (the lift multiplies them); of several, the RRF of its parts at their weights, or their
    convex fusion (``method``), cut to the node's ``limit``. A convex fusion's order is
    given RRF scores of its ranks, so the hints' lift and the answer's scores keep the
    scale they were measured on, whichever fusion chose the order.
    """
    if not node.parts:
        return list(node.ranking)
    if len(node.parts) == 1:
        fused = fuse(node.parts[0], rrf_k=rrf_k)
    else:
        rankings = [fuse(part, rrf_k=rrf_k) for part in node.parts]
        weights = [part.weight for part in node.parts]
        if node.method == "convex":
            fused = rrf([convex_fusion(rankings, weights)], k=rrf_k)
        else:
            fused = rrf(rankings, k=rrf_k, weights=weights)
    return fused[: node.limit] if node.limit is not None else fused
