from __future__ import annotations

import pytest

from qa_service.splitting import SectionSpan, split_sections, split_text


def words(text: str) -> int:
    return len(text.split())


SENTENCES = " ".join(f"Mening nummer {i} handlar om arbetsmarknaden." for i in range(40))


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        (SENTENCES, 30),
        (SENTENCES, 12),
        ("Stycke ett.\n\nStycke två är här.\n\n" + SENTENCES, 25),
        ("ord " * 500, 7),
        ("kort text", 50),
    ],
)
def test_every_chunk_fits_and_is_a_true_substring(text: str, budget: int) -> None:
    chunks = split_text(text, count_tokens=words, chunk_tokens=budget, overlap_tokens=4)
    assert chunks
    for offset, chunk in chunks:
        assert words(chunk) <= budget
        assert text[offset : offset + len(chunk)] == chunk
    covered = {i for offset, chunk in chunks for i in range(offset, offset + len(chunk))}
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())


def test_sentence_boundaries_are_preferred() -> None:
    chunks = split_text(SENTENCES, count_tokens=words, chunk_tokens=30, overlap_tokens=0)
    for _, chunk in chunks:
        assert chunk.endswith("arbetsmarknaden."), chunk
        assert chunk.startswith("Mening"), chunk


def test_empty_text_gives_no_chunks() -> None:
    assert split_text("  \n ", count_tokens=words, chunk_tokens=10, overlap_tokens=2) == []


def test_sections_keep_pages_and_never_cross() -> None:
    page1 = "Sidan ett om yrkesvux. " * 10
    page2 = "Sidan två om bidragstak. " * 10
    text = page1 + "\n\n" + page2
    spans = [
        SectionSpan(0, len(page1), page=1),
        SectionSpan(len(page1) + 2, len(text), page=2),
    ]
    chunks = split_sections(text, spans, count_tokens=words, chunk_tokens=20, overlap_tokens=2)
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        expected = "ett" if chunk.span.page == 1 else "två"
        assert expected in chunk.text
        assert ("ett" in chunk.text) != ("två" in chunk.text)


@pytest.mark.model
@pytest.mark.parametrize("model", ["embedder", "minilm"])
def test_real_tokenizer_budget(model: str, request: pytest.FixtureRequest) -> None:
    embedder = request.getfixturevalue(model)
    # Swedish words break into many word pieces: a character budget would overflow.
    text = "Arbetsmarknadsetableringen för utrikes födda i utanförskapsområden. " * 80
    chunks = split_text(
        text,
        count_tokens=embedder.count_tokens,
        chunk_tokens=embedder.max_tokens,
        overlap_tokens=32,
    )
    assert len(chunks) > 1
    assert max(embedder.count_tokens(c) for _, c in chunks) <= embedder.max_tokens


TABLE = "| Län | Medel 2025 | Sommarjobb | Jobb för unga |\n| --- | --- | --- | --- |\n" + "".join(
    f"| {name} län | {n} 910 000 | {n}950 | {n}80 |\n"
    for n, name in enumerate(["Stockholms", "Uppsala", "Skåne", "Västra Götalands"] * 8, 1)
)


@pytest.mark.model
@pytest.mark.parametrize("model", ["embedder", "minilm"])
def test_word_counts_add_up_and_tables_are_not_shattered(
    model: str, request: pytest.FixtureRequest
) -> None:
    embedder = request.getfixturevalue(model)
    words = TABLE.split()
    # The splitter adds up the counts of the parts it merges: they must be close to the
    # count of the merged text (a word counted one token short each was not).
    assert sum(embedder.count_tokens(w) for w in words) >= embedder.count_tokens(TABLE) * 0.9
    chunks = split_text(
        TABLE, count_tokens=embedder.count_tokens, chunk_tokens=256, overlap_tokens=32
    )
    tokens = [embedder.count_tokens(c) for _, c in chunks]
    assert max(tokens) <= 256
    assert len(chunks) <= -(-embedder.count_tokens(TABLE) // 200) + 1, tokens


def test_non_additive_tokenizer_does_not_recurse_forever() -> None:
    # Like SentencePiece: every string pays for a start marker, so parts do not add up.
    def count(text: str) -> int:
        return len(text.split()) * 3 + (4 if text else 0)

    text = "ett två tre fyra fem sex sju åtta nio tio " * 20
    chunks = split_text(text, count_tokens=count, chunk_tokens=20, overlap_tokens=4)
    assert chunks and all(count(c) <= 20 for _, c in chunks)
    assert all(text[o : o + len(c)] == c for o, c in chunks)


def test_a_stretch_of_text_becomes_one_passage(monkeypatch: pytest.MonkeyPatch) -> None:
    # Re-splitting overlapping pieces once produced the same stretch twice, and two
    # passages with one id stopped a whole ingest at the write.
    from qa_service import splitting

    monkeypatch.setattr(
        splitting, "split_text", lambda *_, **__: [(0, "Ett två."), (0, "Ett två."), (9, "Tre.")]
    )
    text = "Ett två. Tre."
    chunks = splitting.split_sections(
        text, [SectionSpan(0, len(text))], count_tokens=len, chunk_tokens=50, overlap_tokens=0
    )
    assert [(c.char_start, c.text) for c in chunks] == [(0, "Ett två."), (9, "Tre.")]
