"""Riksdagen open data ``dokumentstatus`` in JSON and XML.

The document body comes from the ``html`` field; each chamber-debate speech in
``debatt.anforande`` becomes its own section with speaker and party. People come from
``dokintressent``: the minister a question is put to or answered by is the document's
minister, everyone else an author. A written answer (``frs``) is linked to its question
(``dokreferens``), and the question's asker is the answer's author when Riksdagen names
them in the answer's heading (``typrubrik``, ``subtitel`` or the first line of the body).
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..metadata import (
    as_list,
    asked_by,
    doctype_name,
    intressent_people,
    iso_date,
    question_reference,
    riksdagen_url,
)
from ..schema import DocumentMeta, Section
from .base import ReadResult, SkipFile
from .html import html_to_text, unescape_if_escaped


def xml_to_dict(element: ET.Element) -> Any:
    """Element tree -> nested dicts; repeated children become lists, leaves their text."""
    children = list(element)
    if not children:
        return element.text or ""
    result: dict[str, Any] = {}
    for child in children:
        value = xml_to_dict(child)
        if child.tag in result:
            existing = result[child.tag]
            if not isinstance(existing, list):
                result[child.tag] = [existing]
            result[child.tag].append(value)
        else:
            result[child.tag] = value
    return result


def _body_text(markup: str) -> tuple[str, bool]:
    """Text of an ``html`` field and whether it is line-wrapped layout text."""
    markup = unescape_if_escaped(markup)
    br_count = len(re.findall(r"<br\s*/?>", markup, re.I))
    p_count = len(re.findall(r"<p[\s>]", markup, re.I))
    if br_count > 3 * max(p_count, 1):
        # Old documents: plain text with <br> at every printed line end.
        plain = re.sub(r"<br\s*/?>", "\n", markup, flags=re.I)
        plain = re.sub(r"<[^>]+>", "", plain)
        return html_lib.unescape(plain), True
    return html_to_text(markup)[1], False


def parse_dokumentstatus(status: dict[str, Any]) -> ReadResult:
    """Metadata and sections from a decoded ``dokumentstatus`` object."""
    dok = status.get("dokument")
    if not isinstance(dok, dict):
        raise SkipFile("dokumentstatus without a 'dokument' object")
    intressenter = status.get("dokintressent") or {}
    authors, minister = intressent_people(
        intressenter.get("intressent") if isinstance(intressenter, dict) else None
    )
    dok_id = dok.get("dok_id") or None
    doktyp = (dok.get("doktyp") or dok.get("typ") or "").lower()
    meta = DocumentMeta(
        title=" ".join((dok.get("titel") or "").split()),
        doctype=doctype_name(doktyp),
        dok_id=dok_id,
        rm=dok.get("rm") or None,
        beteckning=dok.get("beteckning") or None,
        date=iso_date(dok.get("datum")),
        authors=authors,
        minister=minister,
        url=riksdagen_url(dok_id),
        organ=dok.get("organ") or None,
    )
    sections: list[Section] = []
    body, layout = _body_text(dok.get("html") or "")
    if doktyp == "frs":
        _link_question(meta, status, dok, body)
    if body.strip():
        sections.append(Section(body))
    debatt = status.get("debatt") or {}
    speeches = as_list(debatt.get("anforande") if isinstance(debatt, dict) else None)
    for speech in speeches:
        if not isinstance(speech, dict):
            continue
        text = html_to_text(unescape_if_escaped(speech.get("anf_text") or ""))[1]
        if not text.strip():
            continue
        speaker = " ".join((speech.get("talare") or "").split()) or None
        number = speech.get("anf_nummer")
        heading = f"Anförande {number}: {speaker}" if number else speaker
        sections.append(
            Section(text, heading=heading, speaker=speaker, party=speech.get("parti") or None)
        )
    if not sections:
        raise SkipFile("dokumentstatus has no text (empty html and no speeches)")
    return ReadResult(meta=meta, sections=sections, reader="riksdagen", reflow=layout)


def _link_question(
    meta: DocumentMeta, status: dict[str, Any], dok: dict[str, Any], body: str
) -> None:
    """Give a written answer its question, and the question's asker as its author."""
    question = question_reference(status)
    first_line = next((line for line in body.split("\n") if line.strip()), "")
    asker = next(
        (p for p in (asked_by(dok.get(k)) for k in ("typrubrik", "subtitel")) if p), None
    ) or (asked_by(first_line) if first_line.lstrip().startswith("Svar på") else None)
    if asker is None:
        asker = next((p for p in meta.authors if p.role != "parti"), None)
    elif not meta.authors:
        meta.authors = [asker]
    if question is not None:
        meta.question = dataclasses.replace(question, author=asker)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(value: Any) -> tuple[Any, int]:
    """``value`` (parsed JSON) with every lone surrogate (``"\\ud800"``, which JSON
    allows and UTF-8 cannot hold) replaced by U+FFFD, and how many were replaced."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _LONE_SURROGATE.subn("\ufffd", value)
        return value, 0
    if isinstance(value, list):
        pairs = [without_lone_surrogates(item) for item in value]
        return [item for item, _ in pairs], sum(n for _, n in pairs)
    if isinstance(value, dict):
        pairs = [without_lone_surrogates([key, item]) for key, item in value.items()]
        return {key: item for (key, item), _ in pairs}, sum(n for _, n in pairs)
    return value, 0


def read_riksdagen_json(path: Path, source: str) -> ReadResult:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SkipFile(f"corrupt JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("dokumentstatus"), dict):
        raise SkipFile("JSON is not a Riksdagen dokumentstatus document")
    data, replaced = without_lone_surrogates(data)
    result = parse_dokumentstatus(data["dokumentstatus"])
    if replaced:
        result.warnings.append(f"{replaced} lone surrogate escape(s) in the JSON replaced")
    return result


def read_riksdagen_xml(root: ET.Element) -> ReadResult:
    status = xml_to_dict(root)
    if not isinstance(status, dict):
        raise SkipFile("empty dokumentstatus XML")
    return parse_dokumentstatus(status)
