"""Stage 1: read the question once: its language, glossary terms, hints, and, after
earlier turns, whether it is a follow-up and which standalone query it stands for."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..conversation import Context, is_follow_up, standalone_query
from ..glossary import swedish_terms
from ..hints import Hints, read_hints
from ..language import is_english

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

    @classmethod
    def read(cls, text: str) -> QueryText:
        english = is_english(text)
        return cls(text, english, tuple(swedish_terms(text)) if english else ())

    @property
    def lexical(self) -> str:
        """What BM25 is given: the text, and an English one's Swedish terms."""
        return " ".join([self.text, *self.glossary]) if self.english else self.text


@dataclass(frozen=True)
class QueryAnalysis:
    """Everything the later stages need to know about one question, read once."""

    #: The question as asked (validated).
    question: QueryText
    #: A follow-up's standalone query, when it differs from the question.
    rewritten: QueryText | None = None
    #: The documents the previous turn cited, searched again for a follow-up.
    focus: tuple[str, ...] = ()
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
) -> QueryAnalysis:
    """Read a (validated) question asked after ``history``.

    A question that leans on earlier turns is rewritten with their topic words and its
    previous turn's documents are searched again; one with no pronoun that the previous
    turn's documents still answer about as well as the corpus (``continues``) keeps its
    words but is searched within them too; any other question stands alone.
    """
    text = QueryText.read(question)
    rewritten: QueryText | None = None
    focus: tuple[str, ...] = ()
    if history:
        last = history[-1].doc_ids
        if is_follow_up(question):
            standalone = standalone_query(question, [c.standalone_query for c in history])
            rewritten = QueryText.read(standalone) if standalone != question else None
            focus = last
        elif continues is not None and continues(text, last):
            # "Hur många fanns i åtgärden i augusti?": stay with the conversation's documents.
            focus = last
    analysis = QueryAnalysis(text, rewritten, focus)
    if mode == "hybrid":
        hints = read_hints(analysis.query.text, people)
        analysis = QueryAnalysis(text, rewritten, focus, hints)
    return analysis
