"""Fixtures in layers: paths and settings, a real embedder, a small index, app and client."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_service.config import Settings
from qa_service.embedding import Embedder, SentenceTransformerEmbedder, make_embedder
from qa_service.ingest import run_ingest
from qa_service.service import QAService
from qa_service.web import create_app

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "corpus" / "svar-pa-fraga-2024-25-992.txt"
SHARED = ROOT.parent / "shared"

needs_shared = pytest.mark.skipif(
    not (SHARED / "corpus").is_dir(),
    reason=f"the shared corpus is not beside this checkout ({SHARED}/corpus is missing)",
)

INTERPELLATION_TEI = """<?xml version='1.0' encoding='utf-8'?>
<TEI xmlns="http://www.tei-c.org/ns/1.0">
  <teiHeader><fileDesc>
    <titleStmt><title>Interpellation 2022/23:999 av Anna Andersson (S)</title></titleStmt>
    <sourceDesc><bibl>
      <title>Interpellation 2022/23:999 av Anna Andersson (S) till Arbetsmarknads- och
      integrationsminister Johan Pehrson (L) om Yrkesvux i utsatta områden</title>
      <idno type="rdwebb">HA10999</idno>
      <ref type="dokument_url_html">http://data.riksdagen.se/dokument/HA10999</ref>
    </bibl></sourceDesc>
  </fileDesc>
  <profileDesc><correspDesc>
    <correspAction type="sent"><date when="2023-02-01"/></correspAction>
  </correspDesc></profileDesc></teiHeader>
  <text><body>
    <div type="ipqBody">
      <p>Yrkesvux är en väg till jobb för många som står långt från arbets-
      marknaden. Platserna räcker inte i Malmö och Göteborg.</p>
      <p>Vilka åtgärder avser ministern att vidta för fler platser inom yrkesvux?</p>
    </div>
  </body></text>
</TEI>
"""


def write_small_corpus(root: Path) -> Path:
    """A corpus the tests make themselves: the seed answer, a TEI file, Markdown, junk."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, root / SEED.name)
    (root / "ipq").mkdir()
    (root / "ipq" / "ipq-202223--0999.xml").write_text(INTERPELLATION_TEI, encoding="utf-8")
    (root / "press.md").write_text(
        "# Nytt jobbskatteavdrag för vanligt folk\n\n"
        "Regeringen sänker skatten på arbets\u00adinkomster. Det ska löna sig att arbeta.\n\n"
        "Jobbskatteavdraget förstärks med 10 miljarder kronor 2025.\n",
        encoding="utf-8",
    )
    (root / "xss.md").write_text(
        "# Om skript\n\nTexten <script>alert(1)</script> ska visas som text om sfi.\n",
        encoding="utf-8",
    )
    (root / "empty.txt").write_bytes(b"")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not really a pdf \x00\x01")
    (root / "notes.docx").write_bytes(b"PK\x03\x04 not supported")
    return root


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real default model, loaded once."""
    model = make_embedder(Settings())
    model.encode_query("uppvärmning")
    return model


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    """The bundled sentence-transformers model: the general path any model takes."""
    model = SentenceTransformerEmbedder()
    model.encode_query("uppvärmning")
    return model


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        index_dir=tmp_path / "indexes" / "test", conversations_db=tmp_path / "conversations.db"
    )


@pytest.fixture(scope="session")
def small_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """A published index over the small corpus, built once per test session."""
    base = tmp_path_factory.mktemp("small")
    corpus = write_small_corpus(base / "corpus")
    settings = Settings(
        index_dir=base / "indexes" / "small", conversations_db=base / "conversations.sqlite3"
    )
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    return settings


@pytest.fixture(scope="session")
def service(small_index: Settings, embedder: Embedder) -> QAService:
    qa = QAService(small_index, embedder=embedder)
    qa.load()
    return qa


@pytest.fixture
def app(small_index: Settings, service: QAService):  # type: ignore[no-untyped-def]
    return create_app(small_index, service=service)


@pytest.fixture
def client(app) -> Iterator:  # type: ignore[no-untyped-def]
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
