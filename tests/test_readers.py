from __future__ import annotations

import json
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from qa_service.readers import SkipFile, read_document
from qa_service.readers.html import html_to_text
from qa_service.readers.riksdagen import parse_dokumentstatus
from qa_service.schema import Person
from tests.conftest import INTERPELLATION_TEI


def make_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def test_pdf_pages_are_numbered_from_one(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "a.pdf",
        ["Första sidan handlar om arbetsmarknaden.", "Andra sidan handlar om yrkesvux."],
    )
    result = read_document(path, "a.pdf")
    assert result.page_count == 2
    assert [s.page for s in result.sections] == [1, 2]
    assert "yrkesvux" in result.sections[1].text


def test_encrypted_pdf_is_skipped_with_reason(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", ["Hemlig text om budgeten."])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="hemligt", algorithm="AES-128")
    locked = tmp_path / "locked.pdf"
    with open(locked, "wb") as handle:
        writer.write(handle)
    with pytest.raises(SkipFile, match="encrypted"):
        read_document(locked, "locked.pdf")


def test_image_only_pdf_is_skipped(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50, style="F")
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    with pytest.raises(SkipFile, match="no text layer"):
        read_document(path, "scan.pdf")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"   \n\n", "empty file"),
        ("corrupt.pdf", b"%PDF-1.4 garbage", "corrupt PDF"),
        ("truncated.json", b'{"dokumentstatus": {', "corrupt JSON"),
        ("other.json", b'{"a": 1}', "not a Riksdagen"),
        ("bad.xml", b"<a><b></a>", "corrupt XML"),
        ("other.xml", b"<rss></rss>", "unsupported XML"),
        ("binary.txt", b"\x00\x01\x02binary", "binary file"),
        ("slides.pptx", b"PK..", "unsupported file type"),
    ],
)
def test_bad_files_are_skipped_with_a_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SkipFile, match=reason):
        read_document(path, name)


def test_non_utf8_text_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Utanförskap i områden.".encode("cp1252"))
    result = read_document(path, "latin1.txt")
    assert "Utanförskap" in result.sections[0].text
    assert result.warnings


def test_tei_interpellation(tmp_path: Path) -> None:
    path = tmp_path / "ipq.xml"
    path.write_text(INTERPELLATION_TEI, encoding="utf-8")
    result = read_document(path, "ipq.xml")
    meta = result.meta
    assert (meta.doctype, meta.rm, meta.beteckning) == ("Interpellation", "2022/23", "999")
    assert meta.title == "Yrkesvux i utsatta områden"
    assert meta.minister is not None and meta.minister.name == "Johan Pehrson"
    assert meta.minister.role == "Arbetsmarknads- och integrationsminister"
    assert meta.date == "2023-02-01"
    assert "arbetsmarknaden" in result.sections[0].text


def _dokumentstatus() -> dict:
    return {
        "dokumentstatus": {
            "dokument": {
                "dok_id": "H601AU7",
                "rm": "2018/19",
                "beteckning": "AU7",
                "doktyp": "bet",
                "titel": "Integration",
                "datum": "2019-03-22 00:00:00",
                "html": "<p><span>samhällsori</span><span>entering och s</span>"
                "<span>amhällets stöd</span></p><p>Nytt stycke.</p>",
            },
            "dokintressent": {"intressent": {"namn": "Anna A", "partibet": "C", "roll": "x"}},
            "debatt": {
                "anforande": [
                    {
                        "anf_nummer": "1",
                        "talare": "Erik Bengtzboe (M)",
                        "parti": "M",
                        "anf_text": "<p>Fru talman! Integrationen.</p>",
                    },
                ]
            },
        }
    }


def test_riksdagen_json_body_and_speeches(tmp_path: Path) -> None:
    path = tmp_path / "h601au7.json"
    path.write_text(json.dumps(_dokumentstatus()), encoding="utf-8")
    result = read_document(path, "h601au7.json")
    assert result.meta.doctype == "Betänkande"
    assert result.meta.date == "2019-03-22"
    assert "samhällsorientering och samhällets stöd" in result.sections[0].text
    speech = result.sections[1]
    assert (speech.speaker, speech.party) == ("Erik Bengtzboe (M)", "M")
    assert speech.heading == "Anförande 1: Erik Bengtzboe (M)"


def test_riksdagen_xml_with_escaped_html(tmp_path: Path) -> None:
    path = tmp_path / "index.xml"
    path.write_text(
        "<dokumentstatus><dokument><dok_id>GF03167</dok_id><rm>1991/92</rm>"
        "<beteckning>167</beteckning><doktyp>prop</doktyp><titel>om EG</titel>"
        "<html>&lt;br&gt;Regeringens proposition&lt;br&gt;om hemförsäljnings-&lt;br&gt;"
        "lagen&lt;br&gt;en&lt;br&gt;två&lt;br&gt;</html></dokument></dokumentstatus>",
        encoding="utf-8",
    )
    result = read_document(path, "index.xml")
    assert result.meta.doctype == "Proposition"
    assert result.reflow
    assert "hemförsäljnings-\nlagen" in result.sections[0].text


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p><span>s</span><span>amhällets</span></p>", "samhällets"),
        ("<p>201<span>8</span></p><p>nästa</p>", "2018\n\nnästa"),
        ("<div>a<br>b</div>", "a\n\nb"),
        ("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", "<script>alert(1)</script>"),
        ("<style>p{}</style><p>synlig</p><script>dold()</script>", "synlig"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup)[1] == text


def test_html_page_starts_at_h1(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Sida - Regeringen.se</title></head><body><ul><li>Meny</li></ul>"
        "<h1>Rubrik</h1><p>Innehåll.</p></body></html>",
        encoding="utf-8",
    )
    result = read_document(path, "page.html")
    assert result.meta.title == "Sida"
    assert result.sections[0].text == "Rubrik\n\nInnehåll."


def test_pdf_encrypted_with_empty_password_is_read(tmp_path: Path) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", ["Öppen text om yrkesvux."])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="", owner_password="ägare", algorithm="AES-128")
    path = tmp_path / "open.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    assert "yrkesvux" in read_document(path, "open.pdf").sections[0].text


def test_truncated_pdf_never_raises_past_the_reader(tmp_path: Path) -> None:
    whole = make_pdf(tmp_path / "whole.pdf", ["Sida ett om sfi.", "Sida två om yrkesvux."])
    data = whole.read_bytes()
    for cut in (len(data) // 4, len(data) // 2, len(data) - 30):
        path = tmp_path / f"cut-{cut}.pdf"
        path.write_bytes(data[:cut])
        try:
            result = read_document(path, path.name)
        except SkipFile as exc:
            assert exc.reason.startswith(("corrupt PDF", "no text layer", "PDF has no pages"))
        else:
            assert result.reader == "pdf"


ASKER = "Serkan Köse"


def _answer(**dok: str) -> dict:  # type: ignore[type-arg]
    """A written answer (frs) with the answering minister; ``dok`` overrides its fields."""
    fields = {
        "dok_id": "HC12992",
        "rm": "2024/25",
        "beteckning": "992",
        "doktyp": "frs",
        "titel": "Segregationen",
        "datum": "2025-03-19 00:00:00",
        "typrubrik": "Svar på skriftlig fråga 2024/25:992",
        "html": "<p>Frågan har ställts till mig.</p>",
        **dok,
    }
    return {
        "dokument": fields,
        "dokintressent": {
            "intressent": {"namn": "Eva Svarar", "partibet": "L", "roll": "besvaradav"}
        },
    }


@pytest.mark.parametrize(
    ("status", "asker"),
    [
        # The asker in typrubrik, in subtitel, in the body's first line, or nowhere.
        (_answer(typrubrik="Svar på skriftlig fråga 2024/25:992 av Serkan Köse (S)"), ASKER),
        (_answer(subtitel="av Serkan Köse (S)"), ASKER),
        (_answer(html="<p>Svar på fråga 2024/25:992 av Serkan Köse (S)</p><p>Text.</p>"), ASKER),
        (_answer(html="<p>Text av Ulf Annan (M) om något.</p>"), None),
        (_answer(), None),
    ],
)  # fmt: skip
def test_written_answer_is_linked_to_its_question(status: dict, asker: str | None) -> None:  # type: ignore[type-arg]
    meta = parse_dokumentstatus(status).meta
    assert meta.minister == Person("Eva Svarar", "L", "statsråd")
    assert meta.question is not None
    assert (meta.question.dok_id, meta.question.rm, meta.question.beteckning) == (
        "HC11992",
        "2024/25",
        "992",
    )
    assert (meta.question.author.name if meta.question.author else None) == asker
    assert [a.name for a in meta.authors] == ([asker] if asker else [])


UTF8_ONE_LATIN1 = "Försörjningsstöd och ".encode() + b"aktivitetskrav f\xf6r alla."


@pytest.mark.parametrize(
    ("data", "text", "warning"),
    [
        ("Försörjningsstöd".encode(), "Försörjningsstöd", None),
        (b"\xef\xbb\xbf" + "Försörjningsstöd".encode(), "Försörjningsstöd", None),
        # One Latin-1 byte in UTF-8: that byte alone is read as cp1252.
        (UTF8_ONE_LATIN1, "Försörjningsstöd och aktivitetskrav för alla.", "1 byte(s)"),
        (b"\xef\xbb\xbf" + UTF8_ONE_LATIN1, "Försörjningsstöd och aktivitetskrav för alla.", "1"),
        ("Försörjningsstöd – “bidrag”".encode("cp1252"), "Försörjningsstöd – “bidrag”", "cp1252"),
        ("slut på å".encode()[:-1], "slut på Ã", "1 byte(s)"),  # cut inside "å"
        (b"\x81 odefinierad", "\ufffd odefinierad", "cp1252"),
        ("Försörjningsstöd".encode("utf-16"), "Försörjningsstöd", None),
        (b"\xfe\xff" + "Försörjningsstöd".encode("utf-16-be"), "Försörjningsstöd", None),
        ("Försörjningsstöd\r\n".encode("utf-16-le"), "Försörjningsstöd\r\n", "UTF-16-LE"),
        ("Försörjningsstöd".encode("utf-16-be"), "Försörjningsstöd", "UTF-16-BE"),
        ("Försörjningsstöd".encode("utf-32"), "Försörjningsstöd", None),
        (b"\xff\xfe" + "Hej".encode("utf-16-le") + b"\x00", "Hej\ufffd", "not valid UTF-16-LE"),
        (b"", "", None),
    ],
    ids=[
        "utf8",
        "utf8-bom",
        "utf8-one-latin1-byte",
        "utf8-bom-one-latin1-byte",
        "cp1252",
        "utf8-truncated",
        "cp1252-undefined",
        "utf16-bom",
        "utf16be-bom",
        "utf16le-no-bom",
        "utf16be-no-bom",
        "utf32-bom",
        "utf16-odd-length",
        "empty",
    ],
)
def test_decode_text(data: bytes, text: str, warning: str | None) -> None:
    from qa_service.readers.base import decode_text

    decoded, warned = decode_text(data)
    assert decoded == text
    if warning is None:
        assert warned is None
    else:
        assert warned is not None and warning in warned


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 64,
        b"%PDF\x00\x01\x02\x03" * 100,
        b"\x00" * 100,
        b"\xff\xfe" + b"\x00\x00\x00\x00" * 4,  # a UTF-32 LE mark before NUL characters
        "text".encode("utf-16-le") + bytes(range(256)) * 8,
    ],
    ids=["all-bytes", "pdf-like", "nuls", "utf32-nul-characters", "utf16-then-binary"],
)
def test_decode_text_refuses_binary_data(data: bytes) -> None:
    from qa_service.readers.base import decode_text

    with pytest.raises(SkipFile, match="binary file"):
        decode_text(data)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bom.txt", "Utanförskap i områden.".encode("utf-16")),
        ("nobom.md", "# Utanförskap\n\nI områden.".encode("utf-16-le")),
        ("page.html", "<h1>Utanförskap</h1><p>I områden.</p>".encode("utf-16")),
    ],
)
def test_utf16_text_is_read_not_skipped_as_binary(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    result = read_document(path, name)
    assert "områden" in "\n".join(s.text for s in result.sections)


@pytest.mark.parametrize(
    ("value", "expected", "replaced"),
    [
        ("Försörjningsstöd 😀", "Försörjningsstöd 😀", 0),
        ("a\ud800b", "a\ufffdb", 1),
        ("\udfff\ud800", "\ufffd\ufffd", 2),
        (
            {"k\udfff": ["\ud800", 1, None, {"x": "ok"}]},
            {"k\ufffd": ["\ufffd", 1, None, {"x": "ok"}]},
            2,
        ),
    ],
)
def test_without_lone_surrogates(value: object, expected: object, replaced: int) -> None:
    from qa_service.readers.riksdagen import without_lone_surrogates

    assert without_lone_surrogates(value) == (expected, replaced)
