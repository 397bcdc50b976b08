from __future__ import annotations

import pytest

from qa_service.metadata import (
    asked_by,
    doctype_name,
    intressent_people,
    iso_date,
    markdown_title,
    meta_from_filename,
    meta_from_manifest_record,
    parse_person,
    parse_text_header,
    question_dok_id,
    question_reference,
    quoted_minister,
)
from qa_service.schema import DocumentRef, Person


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("frs", "Svar på skriftlig fråga"),
        ("ip", "Interpellation"),
        ("mot", "Motion"),
        ("bet", "Betänkande"),
        ("prop", "Proposition"),
        ("xyz", "xyz"),
        (None, None),
    ],
)
def test_doctype_name(code: str | None, name: str | None) -> None:
    assert doctype_name(code) == name


@pytest.mark.parametrize(
    ("text", "person"),
    [
        ("Teresa Carvalho (S)", Person("Teresa Carvalho", "S")),
        ("  Johan   Pehrson (L) ", Person("Johan Pehrson", "L")),
        ("Ulf Kristersson", Person("Ulf Kristersson", None)),
        ("", None),
    ],
)
def test_parse_person(text: str, person: Person | None) -> None:
    assert parse_person(text) == person


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2019-03-22 00:00:00", "2019-03-22"), ("2024-10-04", "2024-10-04"), ("", None), (None, None)],
)
def test_iso_date(value: str | None, expected: str | None) -> None:
    assert iso_date(value) == expected


@pytest.mark.parametrize(
    ("text", "doctype", "rm", "nr", "author", "title", "body_start"),
    [
        (
            " Svar på fråga 2024/25:992 av Serkan Köse (S) \nRegeringens åtgärder för att "
            "bryta segregationen på \narbetsmarknaden \n\nSerkan Köse har frågat mig",
            "Svar på skriftlig fråga",
            "2024/25",
            "992",
            Person("Serkan Köse", "S", "författare"),
            "Regeringens åtgärder för att bryta segregationen på arbetsmarknaden",
            "Serkan Köse har frågat mig",
        ),
        (
            "Interpellation 2022/23:127 av Teresa Carvalho (S)\nÅtgärder mot segregation\n\nText",
            "Interpellation",
            "2022/23",
            "127",
            Person("Teresa Carvalho", "S", "författare"),
            "Åtgärder mot segregation",
            "Text",
        ),
        (
            "<!-- Budgetmotion 2024/25:3199 (S) | inlämnad 2024-10-04 | dok_id HC023199 -->\n"
            "Motion till riksdagen\n",
            "Motion",
            "2024/25",
            "3199",
            Person("S", "S", "parti"),
            "",
            "Motion till riksdagen",
        ),
    ],
)
def test_parse_text_header(
    text: str, doctype: str, rm: str, nr: str, author: Person, title: str, body_start: str
) -> None:
    meta, body = parse_text_header(text)
    assert (meta.doctype, meta.rm, meta.beteckning) == (doctype, rm, nr)
    assert meta.authors == [author]
    assert meta.title == title
    assert body.lstrip().startswith(body_start)


def test_text_without_header_is_unchanged() -> None:
    meta, body = parse_text_header("Bara vanlig text.\n")
    assert meta.title == "" and body == "Bara vanlig text.\n"


def test_comment_header_reads_date_and_dok_id() -> None:
    meta, _ = parse_text_header(
        "<!-- Budgetmotion 2024/25:3199 (S) | inlämnad 2024-10-04 | dok_id HC023199 -->\nx"
    )
    assert (meta.date, meta.dok_id) == ("2024-10-04", "HC023199")


@pytest.mark.parametrize(
    ("source", "doctype", "party", "rm", "date"),
    [
        ("airiksdagen/data/corpus/partiprogram-s-2025.txt", "Partiprogram", "S", None, "2025"),
        ("valmanifest-2022-mp.txt", "Valmanifest", "MP", None, "2022"),
        ("budgetmotion-v-202425.txt", "Motion", "V", "2024/25", None),
        ("g0vse/data/pressmeddelanden/2025/10/x.md", "Pressmeddelande", None, None, None),
        ("något/annat.txt", None, None, None, None),
        (
            "repo/propregeringen/downloaded/1998-99/130/index.html",
            "Proposition",
            None,
            "1998/99",
            None,
        ),
        (
            "repo/propregeringen/downloaded/1999-2000/17/x.pdf",
            "Proposition",
            None,
            "1999/2000",
            None,
        ),
        ("repo/souregeringen/downloaded/2013/75/index.html", "SOU", None, None, None),
        ("repo/afs/downloaded/konsolidering-afs-2011/19/index.pdf", None, None, None, None),
    ],
)
def test_meta_from_filename(
    source: str, doctype: str | None, party: str | None, rm: str | None, date: str | None
) -> None:
    meta = meta_from_filename(source)
    assert meta.doctype == doctype
    assert (meta.authors[0].party if meta.authors else None) == party
    assert (meta.rm, meta.date) == (rm, date)


@pytest.mark.parametrize(
    ("source", "beteckning"),
    [
        ("ferenda/test/files/repo/propregeringen/downloaded/1998-99/130/index.html", "130"),
        (
            "repo/dirregeringen/downloaded/2016/15/dir.-201615-dataskyddsforordningen.pdf",
            "Dir. 2016:15",
        ),
        ("repo/souregeringen/downloaded/2013/75/index.html", "SOU 2013:75"),
        ("repo/dsregeringen/downloaded/2016/46/index.html", "Ds 2016:46"),
        # Not the series' layout: no number.
        ("repo/propregeringen/index.html", None),
        ("repo/dirregeringen/downloaded/2016/index.html", None),
    ],
)
def test_ferenda_series_number_from_the_path(source: str, beteckning: str | None) -> None:
    assert meta_from_filename(source).beteckning == beteckning


def test_manifest_record_of_an_interpellation() -> None:
    meta = meta_from_manifest_record(
        {
            "file": "data/201415/ipq-201415--0006.xml",
            "dok_id": "H2106",
            "rm": "2014/15",
            "asker": {"name": "Elisabeth Svantesson", "party": "M"},
            "minister": {"name": "Magdalena Andersson", "party": "S"},
            "dates": {"sent": "2014-10-09"},
            "riksdagen_url": "https://data.riksdagen.se/dokument/H2106.html",
        }
    )
    assert meta.authors == [Person("Elisabeth Svantesson", "M", "frågeställare")]
    assert meta.minister == Person("Magdalena Andersson", "S", "minister")
    assert (meta.date, meta.dok_id) == ("2014-10-09", "H2106")


@pytest.mark.parametrize(
    ("text", "title"), [("# Rubrik här\n\ntext", "Rubrik här"), ("ingen rubrik", None)]
)
def test_markdown_title(text: str, title: str | None) -> None:
    assert markdown_title(text) == title


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "– Svenska är avgörande, säger arbetsmarknads- och integrationsminister Johan Pehrson.",
            ("Johan Pehrson", "arbetsmarknads- och integrationsminister"),
        ),
        (
            "Det är viktigt, säger gymnasie-, högskole-, och forskningsminister Lotta Edholm.",
            ("Lotta Edholm", "gymnasie-, högskole-, och forskningsminister"),
        ),
        (
            "säger jämställdhetsminister och biträdande arbetsmarknadsminister Paulina Brandberg",
            ("Paulina Brandberg", "jämställdhetsminister och biträdande arbetsmarknadsminister"),
        ),
        (
            "säger migrationsminister Maria Malmer Stenergard. Regeringen beslutade",
            ("Maria Malmer Stenergard", "migrationsminister"),
        ),
        (
            "säger arbetsmarknadsminister Johan Britz om beslutet.",
            ("Johan Britz", "arbetsmarknadsminister"),
        ),
        # Only the first quote counts; no minister, no person.
        (
            "säger statsminister Ulf Kristersson. Sedan säger finansminister Elisabeth Svantesson",
            ("Ulf Kristersson", "statsminister"),
        ),
        ("Det säger generaldirektören Maria Mindhammar.", None),
        ("Ministern säger att arbetet fortsätter.", None),
    ],
)
def test_quoted_minister(text: str, expected: tuple[str, str] | None) -> None:
    person = quoted_minister(text)
    assert (None if person is None else (person.name, person.role)) == expected


@pytest.mark.parametrize(
    ("intressenter", "authors", "minister"),
    [
        (None, [], None),
        (
            {"namn": "Erik Bengtzboe", "partibet": "M", "roll": "undertecknare"},
            [Person("Erik Bengtzboe", "M", "undertecknare")],
            None,
        ),
        (
            [
                {"namn": "Anna  Andersson", "partibet": "S", "roll": "undertecknare"},
                {"namn": "Erik Exempelsson", "partibet": "L", "roll": "stalldtill"},
            ],
            [Person("Anna Andersson", "S", "undertecknare")],
            Person("Erik Exempelsson", "L", "statsråd"),
        ),
        # The one who answered wins over the one the question was put to.
        (
            [
                {"namn": "Ulf Stalld", "partibet": "M", "roll": "stalldtill"},
                {"namn": "Eva Svarar", "partibet": "KD", "roll": "besvaradav"},
                {"namn": "", "roll": "undertecknare"},
            ],
            [],
            Person("Eva Svarar", "KD", "statsråd"),
        ),
    ],
)
def test_intressent_people(intressenter: object, authors: list, minister: object) -> None:  # type: ignore[type-arg]
    assert intressent_people(intressenter) == (authors, minister)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Svar på skriftlig fråga 2024/25:992 av Serkan Köse (S)", Person("Serkan Köse", "S")),
        ("Svar på fråga 2024/25:9002 av Bo  Berg (M)", Person("Bo Berg", "M")),
        ("av Anna Andersson (S) till Erik Exempelsson (L)", Person("Anna Andersson", "S")),
        ("besvarad av Erik Exempelsson (L)", None),
        ("Svar på skriftlig fråga 2024/25:992", None),
        (None, None),
    ],
)
def test_asked_by(text: str | None, expected: Person | None) -> None:
    person = asked_by(text)
    if expected is None:
        assert person is None
    else:
        assert person == Person(expected.name, expected.party, "frågeställare")


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        ("HC12992", "HC11992"),
        ("H912345", "H911345"),
        ("H602993", None),
        ("HB121", "HB111"),
        ("", None),
        (None, None),
    ],
)
def test_question_dok_id(answer: str | None, question: str | None) -> None:
    assert question_dok_id(answer) == question


def _status(doktyp: str, referens: object = None) -> dict:  # type: ignore[type-arg]
    dok = {"dok_id": "HC12992", "doktyp": doktyp, "rm": "2024/25", "beteckning": "992"}
    return {"dokument": dok, "dokreferens": {"referens": referens} if referens else None}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            _status(
                "frs",
                [
                    {"referenstyp": "behandlas_i", "ref_dok_typ": "bet", "ref_dok_id": "X"},
                    {"referenstyp": "fråga", "ref_dok_typ": "fr", "ref_dok_id": "HC11992",
                     "ref_dok_rm": "2024/25", "ref_dok_bet": "992"},
                ],
            ),
            DocumentRef("Skriftlig fråga", "HC11992", "2024/25", "992"),
        ),
        # No reference: the question of the answer's own number.
        (_status("frs"), DocumentRef("Skriftlig fråga", "HC11992", "2024/25", "992")),
        # A question points at its answer: that is no question reference.
        (_status("fr", {"referenstyp": "frågesvar", "ref_dok_typ": "frs"}), None),
        (_status("mot"), None),
    ],
)  # fmt: skip
def test_question_reference(status: dict, expected: DocumentRef | None) -> None:  # type: ignore[type-arg]
    assert question_reference(status) == expected
