"""Stage 1: read the question once: its language, glossary terms, hints, and, after
earlier turns, whether it is a follow-up and which standalone query it stands for."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..conversation import Context, is_follow_up, standalone_query
from ..glossary import swedish_terms, with_swedish_terms
from ..hints import Hints, read_hints
from ..language import glossary_share, is_english

logger = logging.getLogger(__name__)

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")


@dataclass(frozen=True)
class QueryText:
    """One text that is searched, with what its language means for the search."""

    text: str
    english: bool = False
    #: The glossary's Swedish terms of an English text (none for a Swedish one).
    glossary: tuple[str, ...] = ()
    #: How much of the text the glossary reads in Swedish: for English the share of its
    #: words its phrases cover (:func:`qa_service.language.glossary_share`), 1 for Swedish.
    glossary_share: float = 1.0

    @classmethod
    def read(cls, text: str) -> QueryText:
        if not is_english(text):
            return cls(text)
        return cls(text, True, tuple(swedish_terms(text)), glossary_share(text))

    @property
    def lexical(self) -> str:
        """What BM25 is given: the text, and an English one's Swedish terms."""
        return with_swedish_terms(self.text, self.glossary) if self.english else self.text


@dataclass(frozen=True)
class QueryAnalysis:
    """Everything the later stages need to know about one question, read once."""

    #: The question as asked (validated).
    question: QueryText
    #: A follow-up's standalone query, when it differs from the question.
    rewritten: QueryText | None = None
    #: The documents the previous turn cited, searched again for a follow-up.
    focus: tuple[str, ...] = ()
    #: A question that continues the conversation without a pronoun: its words with the
    #: earlier turns' topic words (its own standalone query stays the question).
    topic: QueryText | None = None
    #: Party, kind, time and person the question names (hybrid mode only).
    hints: Hints = field(default_factory=Hints)

    @property
    def query(self) -> QueryText:
        """The text the question stands for: the standalone query, else the question."""
        return self.rewritten or self.question

    @property
    def standalone(self) -> str:
        return self.query.text

    @property
    def is_follow_up(self) -> bool:
        return self.rewritten is not None or bool(self.focus)


#: Whether the documents ``focus`` match a question nearly as well as the whole corpus.
Continues = Callable[[QueryText, Sequence[str]], bool]


def analyse(
    question: str,
    *,
    history: Sequence[Context] = (),
    mode: Mode = "hybrid",
    people: Collection[str] = (),
    continues: Continues | None = None,
    found_alone: Continues | None = None,
) -> QueryAnalysis:
    """Read a (validated) question asked after ``history``.

    A question that leans on earlier turns is rewritten with their topic words and its
    previous turn's documents are searched again; one with no pronoun that the previous
    turn's documents still answer about as well as the corpus (``continues``) keeps its
    words (its standalone query) and is searched within those documents too, and, unless
    its own best passage already lies in them (``found_alone``), with the earlier topic
    words as well (``topic``); any other question stands alone.
    """
    text = QueryText.read(question)
    rewritten: QueryText | None = None
    topic: QueryText | None = None
    focus: tuple[str, ...] = ()
    if history:
        last = history[-1].doc_ids
        earlier = [c.standalone_query for c in history]
        if is_follow_up(question):
            standalone = standalone_query(question, earlier)
            rewritten = QueryText.read(standalone) if standalone != question else None
            focus = last
        elif continues is not None and continues(text, last):
            # "Hur många fanns i åtgärden i augusti?": stay with the conversation's documents.
            focus = last
            if found_alone is None or not found_alone(text, last):
                # Its own words lead elsewhere: the earlier turns' words name the topic.
                with_topic = standalone_query(question, earlier)
                topic = QueryText.read(with_topic) if with_topic != question else None
    hints = read_hints((rewritten or text).text, people) if mode == "hybrid" else Hints()
    return QueryAnalysis(text, rewritten, focus, topic=topic, hints=hints)
