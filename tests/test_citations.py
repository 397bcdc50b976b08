"""Citations follow the kind of document: who wrote it, and how its minister is named
(the addressee of a question "till", the one who answers "besvarad av", the sender of a
press release "från"), as Riksdagen and regeringen.se head their own documents."""

from __future__ import annotations

import pytest

from qa_service.answer import citation, document_label
from qa_service.domain import kind_named, kinds
from qa_service.hashing import file_sha256
from qa_service.ingest import SourceFile, build_document, load_sidecars
from qa_service.readers import read_document
from qa_service.schema import Document, DocumentMeta, DocumentRef, Person
from tests.conftest import SEED, SHARED, needs_shared


def doc(**meta: object) -> Document:
    return Document("d", "x.txt", "0" * 64, DocumentMeta(**meta), "text", "text")  # type: ignore[arg-type]


ASKER = Person("Anna Andersson", "S", "frågeställare")
MINISTER = Person("Erik Exempelsson", "L", "statsråd")


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (
            {
                "doctype": "Interpellation",
                "rm": "2022/23",
                "beteckning": "99",
                "authors": [ASKER],
                "minister": MINISTER,
            },
            "Interpellation 2022/23:99 av Anna Andersson (S) till Erik Exempelsson (L).",
        ),
        (
            {
                "doctype": "Skriftlig fråga",
                "rm": "2024/25",
                "beteckning": "9001",
                "authors": [ASKER],
                "minister": MINISTER,
            },
            "Skriftlig fråga 2024/25:9001 av Anna Andersson (S) till Erik Exempelsson (L).",
        ),
        (
            {
                "doctype": "Svar på skriftlig fråga",
                "rm": "2024/25",
                "beteckning": "9001",
                "minister": MINISTER,
                "question": DocumentRef("Skriftlig fråga", None, "2024/25", "9001", ASKER),
                "date": "2025-03-19",
            },
            "Svar på fråga 2024/25:9001 av Anna Andersson (S) besvarad av Erik Exempelsson (L), "
            "2025-03-19.",
        ),
        (
            {
                "doctype": "Pressmeddelande",
                "title": "Fler i arbete",
                "minister": Person("Johan Pehrson", None, "arbetsmarknadsminister"),
                "date": "2022-12",
            },
            "Pressmeddelande från Johan Pehrson, ”Fler i arbete”, 2022-12.",
        ),
        (
            {"doctype": "Pressmeddelande", "title": "Nya lagar", "date": "2022-06"},
            "Pressmeddelande, ”Nya lagar”, 2022-06.",
        ),
        (
            {"doctype": "Kommittédirektiv", "beteckning": "Dir. 2014:15", "title": "Översyn"},
            "Dir. 2014:15, ”Översyn”.",
        ),
        (
            {"doctype": "SOU", "beteckning": "SOU 2014:16", "title": "Lätt att göra rätt"},
            "SOU 2014:16, ”Lätt att göra rätt”.",
        ),
        (
            {"doctype": "Partiprogram", "title": "Idéer", "authors": [Person("C", "C", "parti")]},
            "Partiprogram (C), ”Idéer”.",
        ),
        (
            {
                "doctype": "Motion",
                "rm": "2018/19",
                "beteckning": "1107",
                "authors": [Person("Erik Bengtzboe", "M", "undertecknare"), ASKER],
            },
            "Motion 2018/19:1107 av Erik Bengtzboe (M) m.fl.",
        ),
        # A kind the tables do not know keeps its own name and "till".
        (
            {"doctype": "Promemoria", "title": "PM", "minister": MINISTER},
            "Promemoria till Erik Exempelsson (L), ”PM”.",
        ),
        ({"title": "Okänt"}, "Dokument, ”Okänt”."),
    ],
)
def test_citation_follows_the_kind(meta: dict[str, object], expected: str) -> None:
    assert citation(doc(**meta)) == expected


def test_every_kind_with_a_minister_names_how() -> None:
    assert {k.name: k.minister for k in kinds() if k.minister} == {
        "Svar på skriftlig fråga": "besvarad av",
        "Skriftlig fråga": "till",
        "Interpellation": "till",
        "Pressmeddelande": "från",
    }
    assert kind_named("Svar på skriftlig fråga").citation == "Svar på fråga"  # type: ignore[union-attr]
    assert document_label(
        doc(doctype="Svar på skriftlig fråga", rm="2024/25", beteckning="992")
    ) == ("Svar på fråga 2024/25:992")


def _read(source: str) -> Document:
    """A document of ../shared read as the ingest reads it, with its folder's sidecar."""
    root = SEED.parent if "/" not in source else SHARED / "corpus"
    path = root / source
    manifest = root / source.split("/")[0] / "manifest.jsonl"
    sidecars = (
        load_sidecars([SourceFile(manifest, manifest.relative_to(root).as_posix())])
        if manifest.is_file()
        else {}
    )
    result = read_document(path, source)
    return build_document(
        SourceFile(path, source), result, file_sha256(path), sidecars.get(path.resolve())
    )[0]


#: One document of every kind in the shared corpus, cited as its source heads it.
SHARED_CITATIONS = [
    (
        "riksdagen-interpellations/data/201415/ipq-201415--0006.xml",
        "Interpellation 2014/15:6 av Elisabeth Svantesson (M) till Magdalena Andersson (S), "
        "”Arbetsmarknaden för yngre och äldre”, 2014-10-09.",
    ),
    (
        "svar-pa-fraga-2024-25-992.txt",
        "Svar på fråga 2024/25:992 av Serkan Köse (S), "
        "”Regeringens åtgärder för att bryta segregationen på arbetsmarknaden”.",
    ),
    (
        "g0vse/data/pressmeddelanden/2022/11/budgetpropositionen-for-2023-reformer-for-att-starka-sverige-i-en-utmanande-tid.md",
        "Pressmeddelande från Elisabeth Svantesson, ”Budgetpropositionen för 2023: Reformer "
        "för att stärka Sverige i en utmanande tid”, 2022-11.",
    ),
    (
        "g0vse/data/pressmeddelanden/2022/06/nya-lagar-och-forordningar-trader-i-kraft-vid-halvarsskiftet-2022.md",
        "Pressmeddelande, ”Nya lagar och förordningar träder i kraft vid halvårsskiftet 2022”, "
        "2022-06.",
    ),
    (
        "openriksdag/data/raw/mot-2018-2021.json/h6021107.json",
        "Motion 2018/19:1107 av Erik Bengtzboe (M), ”Reformera Arbetsförmedlingen”, 2018-11-27.",
    ),
    (
        "airiksdagen/data/corpus/budgetmotion-c-202223.txt",
        "Motion 2022/23:2180 av Annie Lööf (C), ”Jobben, klimatet och hela landet – "
        "Centerpartiets budgetmotion för 2023”, 2022-11-23.",
    ),
    (
        "openriksdag/data/raw/bet-2018-2021.json/h601au1.json",
        "Betänkande 2018/19:AU1, ”Utgiftsområde 13 Jämställdhet och nyanlända invandrares "
        "etablering”, 2018-12-17.",
    ),
    (
        "openriksdag/data/raw/prop-2018-2021.json/h60310.json",
        "Proposition 2018/19:10, ”Riksrevisionens rapport om deltagarantal i nya "
        "arbetsmarknadspolitiska insatser”, 2018-11-07.",
    ),
    (
        "g0vse/data/rattsliga-dokument/proposition/2014/03/prop.-201314104.md",
        "Proposition, ”Insatser för vissa nyanlända invandrares etablering m.m.”, 2014-03.",
    ),
    (
        "g0vse/data/rattsliga-dokument/skrivelse/2014/03/skr.-201314199.md",
        "Skr. 2013/14:199, ”Riksrevisionens rapport om subventionerade anställningar för "
        "nyanlända”, 2014-03-20.",
    ),
    (
        "g0vse/data/rattsliga-dokument/kommittedirektiv/2014/02/dir.-201415.md",
        "Dir. 2014:15, ”Översyn av Arbetsförmedlingen”, 2014-02-06.",
    ),
    (
        "g0vse/data/rattsliga-dokument/statens-offentliga-utredningar/2014/03/sou-201416.md",
        "SOU 2014:16, ”Det ska vara lätt att göra rätt - Åtgärder mot felaktiga utbetalningar "
        "inom den arbetsmarknadspolitiska verksamheten”, 2014-03-27.",
    ),
    (
        "g0vse/data/rattsliga-dokument/departementsserien-och-promemorior/2015/05/ds-201526.md",
        "Ds 2015:26, ”Avskaffande av systemet med etableringslotsar”, 2015-05-04.",
    ),
    (
        "g0vse/data/regeringsuppdrag/2014/04/a20141646a.md",
        "Regeringsuppdrag, ”Uppdrag till Arbetsförmedlingen och Svenska ESF-rådet att påbörja "
        "genomförandet av sysselsättningsinitiativet för unga”, 2014-04.",
    ),
    (
        "g0vse/data/artiklar/2015/12/etableringsplan-blir-eget-skal-for-att-kunna-beviljas-nystartsjobb-eller-instegsjobb.md",
        "Artikel, ”Etableringsplan blir eget skäl för att kunna beviljas nystartsjobb eller "
        "instegsjobb”, 2015-12-17.",
    ),
    (
        "g0vse/data/tal/2015/09/regeringsforklaringen-den-15-september-2015.md",
        "Tal, ”Regeringsförklaringen den 15 september 2015”, 2015-09-15.",
    ),
    (
        "g0vse/data/rapporter/2018/04/teknisk-bilaga-till-fordjupningsrutan-snabbare-etablering-bland-nyanlanda-april-2018.md",
        "Rapport, ”Teknisk bilaga till fördjupningsrutan Snabbare etablering bland nyanlända "
        "april 2018”, 2018-04-16.",
    ),
    (
        "airiksdagen/data/corpus/partiprogram-c-2013.txt",
        "Partiprogram (C), ”En hållbar framtid – Våra idéer gör skillnad”, 2013-03-01.",
    ),
    (
        "airiksdagen/data/corpus/valmanifest-2022-c.txt",
        "Valmanifest (C), ”Valmanifest 2022 (C)”, 2022.",
    ),
    ("airiksdagen/data/corpus/tidoavtalet-2022.pdf", "Överenskommelse, ”Tidöavtalet”, 2022."),
    # ferenda's copies of regeringen.se's series: kind and number from the path.
    (
        "ferenda/test/files/repo/propregeringen/downloaded/1998-99/130/index.html",
        "Proposition 1998/99:130, ”Ny bokföringslag m.m.”.",
    ),
    (
        "ferenda/test/files/repo/dirregeringen/downloaded/2014/158/index.html",
        "Dir. 2014:158, ”Tilläggsdirektiv till Utredningen om en översyn av fondregelverket”.",
    ),
    (
        "ferenda/test/files/repo/souregeringen/downloaded/2013/75/index.html",
        "SOU 2013:75, ”Organisering av framtidens e-förvaltning”.",
    ),
    (
        "ferenda/test/files/repo/dsregeringen/downloaded/2016/46/index.html",
        "Ds 2016:46, ”En ny organisation för etikprövning av forskning”.",
    ),
]


@needs_shared
@pytest.mark.parametrize(("source", "expected"), SHARED_CITATIONS)
def test_citation_of_every_kind_in_the_shared_corpus(source: str, expected: str) -> None:
    assert citation(_read(source)) == expected
