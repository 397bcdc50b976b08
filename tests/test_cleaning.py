from __future__ import annotations

import pytest

from qa_service.cleaning import (
    clean_text,
    collapse_whitespace,
    drop_bare_page_numbers,
    drop_repeated_short_lines,
    normalize_unicode,
    reflow_lines,
    repair_hyphenation,
    repeated_page_lines,
    strip_page_furniture,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("arbets\u00admarknaden", "arbetsmarknaden"),
        ("a\u00a0b", "a b"),
        ("rad\r\nrad", "rad\nrad"),
        ("noll\u200bbredd", "nollbredd"),
        ("A\u030angström", "Ångström"),  # NFC composes å
        ("\ufeffbom", "bom"),
    ],
)
def test_normalize_unicode(raw: str, expected: str) -> None:
    assert normalize_unicode(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("arbets-\nmarknaden", "arbetsmarknaden"),
        ("arbetsmarknads-\noch integrationsminister", "arbetsmarknads- och integrationsminister"),
        ("arbetsmarknads- och integrationsminister", "arbetsmarknads- och integrationsminister"),
        ("EU-\nkommissionen", "EU-kommissionen"),
        ("2022-\n2023", "2022-2023"),
        ("barn-\n eller ungdomsvård", "barn- eller ungdomsvård"),
        ("Sverige-\nDemokraterna", "Sverige-Demokraterna"),
        ("ingen bindestreck\nhär", "ingen bindestreck\nhär"),
    ],
)
def test_repair_hyphenation(raw: str, expected: str) -> None:
    assert repair_hyphenation(raw) == expected


SEED_LIKE = (
    "Serkan Köse har frågat mig vilka konkreta åtgärder jag och \n\n"
    "regeringen avser att vidta för att minska segregationen och \n\n"
    "stärka arbetsmarknadsetableringen i socioekonomiskt utsatta \n\n"
    "områden.  \n\n"
    "Det utanförskap som präglar delar av samhället påverkar oss \n\n"
    "alla. Totalt bor 710 000 \n\n"
    "personer i dessa områden, varav 170 000 är barn.  Regeringen är \n"
    " beslutsam att göra det som krävs för att minska utanförskapet. \n\n"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            SEED_LIKE,
            "Serkan Köse har frågat mig vilka konkreta åtgärder jag och regeringen avser att "
            "vidta för att minska segregationen och stärka arbetsmarknadsetableringen i "
            "socioekonomiskt utsatta områden.\n\n"
            "Det utanförskap som präglar delar av samhället påverkar oss alla. Totalt bor "
            "710 000 personer i dessa områden, varav 170 000 är barn. Regeringen är beslutsam "
            "att göra det som krävs för att minska utanförskapet.",
        ),
        (
            # Lines that are already paragraphs (long lines) stay paragraphs.
            "A" * 200 + ".\n" + "B" * 180 + ".\n",
            "A" * 200 + ".\n\n" + "B" * 180 + ".",
        ),
        (
            "Detta är en lång rad som bryts av layouten i mitten av en\n"
            "mening och fortsätter här med arbets-\n"
            "marknaden som ord.\n\n"
            "Nytt stycke efter tom rad.",
            "Detta är en lång rad som bryts av layouten i mitten av en mening och fortsätter "
            "här med arbetsmarknaden som ord.\n\nNytt stycke efter tom rad.",
        ),
        ("", ""),
    ],
)
def test_reflow_lines(raw: str, expected: str) -> None:
    assert reflow_lines(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("text\n12\nmer", "text\nmer"),
        ("text\n- 3 -\nmer", "text\nmer"),
        ("text\ns. 4\nmer", "text\nmer"),
        ("år 2023 var bra\n", "år 2023 var bra\n"),
        ("710 000 personer", "710 000 personer"),
    ],
)
def test_drop_bare_page_numbers(raw: str, expected: str) -> None:
    assert drop_bare_page_numbers(raw) == expected


def test_page_furniture_is_found_and_removed() -> None:
    words = ["jobb", "skola", "vård", "bostad", "trygghet"]
    pages = [
        f"Prop. 2022/23:1\nOm {w}.\nMer om {w} och annat.\nSlutet om {w}.\n{n}"
        for n, w in enumerate(words, start=1)
    ]
    furniture = repeated_page_lines(pages)
    cleaned = [strip_page_furniture(p, furniture) for p in pages]
    assert all("Prop. 2022/23:1" not in page for page in cleaned)
    assert cleaned[2] == "Om vård.\nMer om vård och annat.\nSlutet om vård."


def test_short_pages_are_never_furniture() -> None:
    pages = [f"Kort sida {n}.\n{n}" for n in range(1, 6)]
    assert repeated_page_lines(pages) == set()


def test_repeated_short_lines_dropped_but_sentences_kept() -> None:
    text = "\n".join(["Prop. 2022/23:1", "En mening."] * 6)
    out = drop_repeated_short_lines(text)
    assert "Prop. 2022/23:1" not in out
    assert out.count("En mening.") == 6


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  a   b \n\n\n c  ", "a b\n\nc"),
        ("a\nb\n\nc", "a b\n\nc"),
        # A list item keeps its line; a line that continues an item joins it.
        ("Följande:\n• ett\n  •  två\ntre", "Följande:\n• ett\n• två tre"),
        ("• ett\n\n\n• två", "• ett\n\n• två"),
        ("a • b\nc", "a • b c"),  # a bullet inside a line is text
        ("\n  •  \n", "•"),
    ],
)
def test_collapse_whitespace(raw: str, expected: str) -> None:
    assert collapse_whitespace(raw) == expected


def test_clean_text_on_the_seed_answer() -> None:
    from tests.conftest import SEED

    text = clean_text(SEED.read_text(encoding="utf-8"))
    assert "Totalt bor 710 000 personer i dessa områden, varav 170 000 är barn." in text
    assert "långsiktigt etablera sig på arbetsmarknaden" in text
    assert "  " not in text
    for paragraph in text.split("\n\n")[1:]:
        assert paragraph[0].isupper(), paragraph
        assert paragraph.endswith("."), paragraph


def test_a_markdown_list_keeps_one_item_per_line() -> None:
    from qa_service.readers.text import markdown_to_text

    markdown = "Regeringen föreslår:\n- fler platser i yrkesvux\n* kortare väntan på sfi\n\nSlut."
    assert clean_text(markdown_to_text(markdown), reflow=False) == (
        "Regeringen föreslår:\n• fler platser i yrkesvux\n• kortare väntan på sfi\n\nSlut."
    )
