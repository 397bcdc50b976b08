"""TEI XML of the Swedish Parliament Corpus (Swerik): interpellations."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..cleaning import repair_hyphenation
from ..metadata import parse_person
from ..schema import DocumentMeta, Section
from .base import ReadResult, SkipFile

NS = {"tei": "http://www.tei-c.org/ns/1.0"}
_TITLE = re.compile(
    r"^(?P<kind>\w+) (?P<rm>\d{4}/\d{2}):(?P<nr>\d+) av (?P<asker>.+?\))"
    r"(?: till (?P<minister>.+?\)))?(?:, (?P<role>[^()]*?))?(?: om (?P<subject>.+))?$"
)


def _text(element: ET.Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _paragraph(element: ET.Element) -> str:
    return " ".join(repair_hyphenation("".join(element.itertext())).split())


def read_tei(root: ET.Element) -> ReadResult:
    full_title = _text(root.find(".//tei:sourceDesc/tei:bibl/tei:title", NS)) or _text(
        root.find(".//tei:titleStmt/tei:title", NS)
    )
    meta = DocumentMeta(title=full_title, doctype="Interpellation")
    match = _TITLE.match(full_title)
    if match:
        meta.rm, meta.beteckning = match["rm"], match["nr"]
        asker = parse_person(match["asker"], "frågeställare")
        meta.authors = [asker] if asker else []
        if match["minister"]:
            minister = match["minister"]
            # "Arbetsmarknads- och integrationsminister Johan Pehrson (L)" -> role + person
            role_match = re.match(r"^(?P<role>.*minister)\s+(?P<who>.+)$", minister)
            if role_match:
                meta.minister = parse_person(role_match["who"], role_match["role"])
            else:
                meta.minister = parse_person(minister, (match["role"] or "").strip() or None)
        if match["subject"]:
            meta.title = match["subject"]
    idno = root.find(".//tei:sourceDesc/tei:bibl/tei:idno[@type='rdwebb']", NS)
    meta.dok_id = _text(idno) or None
    link = root.find(".//tei:sourceDesc/tei:bibl/tei:ref[@type='dokument_url_html']", NS)
    if link is not None and link.text:
        meta.url = link.text.strip().replace("http://", "https://") + ".html"
    sent = root.find(".//tei:correspAction[@type='sent']/tei:date", NS)
    if sent is not None:
        meta.date = sent.get("when")
    body = root.find(".//tei:div[@type='ipqBody']", NS)
    if body is None:
        body = root.find(".//tei:text/tei:body", NS)
    paragraphs = [_paragraph(p) for p in body.iter(f"{{{NS['tei']}}}p")] if body is not None else []
    text = "\n\n".join(p for p in paragraphs if p)
    if not text:
        raise SkipFile("TEI document has no body text")
    return ReadResult(meta=meta, sections=[Section(text)], reader="tei", reflow=False)
