"""English terms of the domain and the Swedish words the corpus uses for them.

BM25 over Swedish passages cannot match an English question's words, only its names. The
lexical leg searches an English question with the Swedish terms of this glossary added,
and the dense leg searches them as a ranking of their own (``QA_GLOSSARY_WEIGHT``).

The glossary is built from the domain, group by group, each from the source named above
it: the institutions under their official English names, the ministers' titles, the
parties and kinds of document (``domain/*.toml``), the budget documents, the policy areas
and the policy terms the documents use (each Swedish term occurs in the shared corpus).
It holds no phrase because an evaluation question used it; its effect is measured on
English questions written after it (eval/english_after_glossary.jsonl, BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import cache

from .domain import kinds, parties

logger = logging.getLogger(__name__)

#: Institutions, under the English names they publish themselves: the agencies' own English
#: names (arbetsformedlingen.se/en, migrationsverket.se/English, forsakringskassan.se/en,
#: boverket.se/en, scb.se/en, polisen.se/en, skolverket.se/en, av.se/en), the ministries and
#: the Government Offices as government.se names them, the Riksdag and its committees as
#: riksdagen.se/en names them. Lower case; "the" and "Swedish" are left off where a
#: question may leave them off.
INSTITUTIONS: dict[str, str] = {
    "swedish public employment service": "arbetsförmedlingen",
    "public employment service": "arbetsförmedlingen",
    "swedish migration agency": "migrationsverket",
    "migration agency": "migrationsverket",
    "swedish social insurance agency": "försäkringskassan",
    "social insurance agency": "försäkringskassan",
    "national board of housing, building and planning": "boverket",
    "statistics sweden": "scb",
    "swedish police authority": "polisen",
    "police authority": "polisen",
    "police": "polisen",
    "swedish national agency for education": "skolverket",
    "national agency for education": "skolverket",
    "swedish work environment authority": "arbetsmiljöverket",
    "work environment authority": "arbetsmiljöverket",
    "swedish national audit office": "riksrevisionen",
    "swedish tax agency": "skatteverket",
    "swedish gender equality agency": "jämställdhetsmyndigheten",
    "swedish agency for government employers": "arbetsgivarverket",
    "swedish national financial management authority": "ekonomistyrningsverket",
    "swedish agency for higher vocational education": "myndigheten för yrkeshögskolan",
    "government offices": "regeringskansliet",
    "government": "regeringen",
    "prime minister's office": "statsrådsberedningen",
    "ministry of employment": "arbetsmarknadsdepartementet",
    "ministry of finance": "finansdepartementet",
    "ministry of justice": "justitiedepartementet",
    "ministry of health and social affairs": "socialdepartementet",
    "ministry of education and research": "utbildningsdepartementet",
    "ministry of culture": "kulturdepartementet",
    "ministry for foreign affairs": "utrikesdepartementet",
    "riksdag": "riksdagen",
    "swedish parliament": "riksdagen",
    "parliament": "riksdagen",
    "committee on the labour market": "arbetsmarknadsutskottet",
    "committee on finance": "finansutskottet",
    "committee on social insurance": "socialförsäkringsutskottet",
    "committee on justice": "justitieutskottet",
    "committee on social affairs": "socialutskottet",
    "committee on education": "utbildningsutskottet",
    "committee on the constitution": "konstitutionsutskottet",
    "parliamentary committee": "utskott",
    "committee of inquiry": "utredning kommitté",
    "inquiry": "utredning",
    "municipality": "kommun",
    "municipalities": "kommuner",
    "region": "region",
}

#: The ministers' titles as government.se gives them in English, and the Swedish titles
#: the documents use (the interpellations' addressees, the press releases' "säger …").
MINISTERS: dict[str, str] = {
    "prime minister": "statsminister statsministern",
    "minister for employment and integration": "arbetsmarknads- och integrationsminister",
    "minister for employment": "arbetsmarknadsminister arbetsmarknadsministern",
    "minister for integration": "integrationsminister",
    "minister for finance": "finansminister finansministern",
    "minister for justice": "justitieminister justitieministern",
    "minister for migration": "migrationsminister migrationsministern",
    "minister for social security": "socialförsäkringsminister",
    "minister for social affairs": "socialminister",
    "minister for education": "utbildningsminister",
    "minister for schools": "skolminister",
    "minister for gender equality": "jämställdhetsminister",
    "minister": "minister statsråd",
}

#: The budget documents and agreements by the English names government.se gives them.
NAMED_DOCUMENTS: dict[str, str] = {
    "budget bill": "budgetpropositionen",
    "spring fiscal policy bill": "vårpropositionen",
    "spring amending budget": "vårändringsbudget",
    "statement of government policy": "regeringsförklaringen",
    "tidö agreement": "tidöavtalet",
    "tido agreement": "tidöavtalet",
    "central government budget": "statens budget",
}

#: The policy areas of government.se (its English "Policy areas"), with the Swedish names
#: of regeringen.se's "Politikområden".
POLICY_AREAS: dict[str, str] = {
    "labour market policy": "arbetsmarknadspolitik",
    "labor market policy": "arbetsmarknadspolitik",
    "labour market": "arbetsmarknaden",
    "labor market": "arbetsmarknaden",
    "integration": "integration",
    "migration": "migration",
    "asylum": "asyl",
    "social insurance": "socialförsäkringar socialförsäkringen",
    "gender equality": "jämställdhet",
    "education": "utbildning",
    "housing policy": "bostadspolitik",
    "economic policy": "ekonomisk politik",
    "taxes": "skatter",
    "working life": "arbetsliv",
    "work environment": "arbetsmiljö",
    "discrimination": "diskriminering",
}

#: Policy terms: the programmes, benefits, rules and statistical categories the documents
#: name, with the English names the responsible agency or the Government Offices publish
#: for them. Every Swedish term occurs in the shared corpus (tests/test_glossary.py).
POLICY_TERMS: dict[str, str] = {
    # The labour market (Arbetsförmedlingen, SCB's labour force surveys)
    "unemployment": "arbetslöshet arbetslösheten",
    "unemployed": "arbetslösa",
    "long-term unemployment": "långtidsarbetslöshet",
    "long-term unemployed": "långtidsarbetslösa",
    "youth unemployment": "ungdomsarbetslöshet",
    "employment rate": "sysselsättningsgrad",
    "employment": "sysselsättning",
    "jobseekers": "arbetssökande",
    "job seekers": "arbetssökande",
    "unemployment insurance": "arbetslöshetsförsäkringen a-kassan",
    "unemployment insurance fund": "a-kassan arbetslöshetskassa",
    "activity support": "aktivitetsstöd",
    "daily allowance": "dagpenning",
    "job and development programme": "jobb- och utvecklingsgarantin",
    "job guarantee for young people": "jobbgarantin för ungdomar",
    "introduction programme": "etableringsprogrammet",
    "establishment programme": "etableringsprogrammet",
    "establishment allowance": "etableringsersättning",
    "establishment": "etablering",
    "labour market training": "arbetsmarknadsutbildning",
    "labor market training": "arbetsmarknadsutbildning",
    "work experience placement": "praktik",
    "subsidised employment": "subventionerade anställningar",
    "subsidized employment": "subventionerade anställningar",
    "wage subsidy": "lönebidrag",
    "new start jobs": "nystartsjobb",
    "new start job": "nystartsjobb",
    "introduction jobs": "introduktionsjobb",
    "entry jobs": "instegsjobb",
    "extra jobs": "extratjänster",
    "establishment jobs": "etableringsjobb",
    "employer": "arbetsgivare",
    "employers": "arbetsgivare",
    "notice of redundancy": "varsel",
    "layoffs": "varsel uppsägningar",
    # Social security and income support (Försäkringskassan, Socialstyrelsen)
    "income support": "försörjningsstöd",
    "financial assistance": "ekonomiskt bistånd",
    "social assistance": "försörjningsstöd ekonomiskt bistånd",
    "benefit cap": "bidragstak",
    "activity requirement": "aktivitetskrav",
    "activity requirements": "aktivitetskrav",
    "qualification for welfare": "kvalificering välfärden",
    "welfare dependency": "bidragsberoende",
    "housing allowance": "bostadsbidrag",
    "child allowance": "barnbidrag",
    "parental benefit": "föräldrapenning",
    "sickness benefit": "sjukpenning",
    "sickness insurance": "sjukförsäkringen",
    "sick leave": "sjukskrivning sjukfrånvaro",
    "sickness compensation": "sjukersättning",
    "activity compensation": "aktivitetsersättning",
    "sickness and activity compensation": "sjuk- och aktivitetsersättning",
    "incorrect payments": "felaktiga utbetalningar",
    "benefit fraud": "bidragsbrott",
    "earned income tax credit": "jobbskatteavdrag",
    "in-work tax credit": "jobbskatteavdrag",
    "welfare": "välfärd",
    "poverty": "fattigdom",
    "child poverty": "barnfattigdom",
    # Migration and citizenship (Migrationsverket)
    "residence permit": "uppehållstillstånd",
    "residence permits": "uppehållstillstånd",
    "permanent residence permit": "permanent uppehållstillstånd",
    "temporary residence permit": "tidsbegränsat uppehållstillstånd",
    "work permit": "arbetstillstånd",
    "work permits": "arbetstillstånd",
    "labour immigration": "arbetskraftsinvandring",
    "labor immigration": "arbetskraftsinvandring",
    "family reunification": "anhöriginvandring familjeåterförening",
    "citizenship": "medborgarskap",
    "swedish citizenship": "svenskt medborgarskap",
    "asylum seekers": "asylsökande",
    "refugees": "flyktingar",
    "refugee": "flykting",
    "unaccompanied minors": "ensamkommande",
    "immigration": "invandring",
    "immigrants": "invandrare",
    "expulsion": "utvisning",
    "deportation": "utvisning",
    "return migration": "återvandring",
    "voluntary return": "återvandring",
    "reception": "mottagande",
    "settlement act": "bosättningslagen",
    # Integration (the Establishment Act, the Government Offices' integration policy)
    "newly arrived": "nyanlända",
    "newly arrived immigrants": "nyanlända invandrare",
    "foreign-born": "utrikes födda",
    "foreign born": "utrikes födda",
    "born abroad": "utrikes födda",
    "civic orientation": "samhällsorientering",
    "segregation": "segregation",
    "social exclusion": "utanförskap",
    "exclusion": "utanförskap",
    "areas of exclusion": "utanförskapsområden",
    "exclusion area": "utanförskapsområde",
    "exclusion areas": "utanförskapsområden",
    "vulnerable areas": "utsatta områden",
    "vulnerable area": "utsatt område",
    "especially vulnerable areas": "särskilt utsatta områden",
    "socioeconomically disadvantaged areas": "socioekonomiskt utsatta områden",
    "honour-related violence and oppression": "hedersrelaterat våld och förtryck",
    "honour-related violence": "hedersrelaterat våld",
    "honor-related violence": "hedersrelaterat våld",
    "self-sufficiency": "egen försörjning",
    # Education and language (Skolverket, Myndigheten för yrkeshögskolan)
    "swedish for immigrants": "sfi",
    "swedish tuition for immigrants": "sfi",
    "municipal adult education": "komvux",
    "adult education": "vuxenutbildning komvux",
    "vocational adult education": "yrkesvux",
    "higher vocational education": "yrkeshögskolan",
    "folk high school": "folkhögskola",
    "upper secondary school": "gymnasieskola gymnasiet",
    "compulsory school": "grundskola",
    "preschool": "förskola",
    "validation": "validering",
    "language requirement": "språkkrav",
    "language requirements": "språkkrav",
    "knowledge of swedish": "svenskkunskaper",
    # Crime and justice (Polisen, Brå)
    "gang crime": "gängkriminalitet",
    "organised crime": "organiserad brottslighet",
    "organized crime": "organiserad brottslighet",
    "criminal networks": "kriminella nätverk",
    # The budget (ESV, the Budget Bill)
    "appropriation": "anslag",
    "expenditure area": "utgiftsområde",
}


def _domain_groups() -> dict[str, str]:
    """The parties and the kinds of document by their English names (domain/*.toml)."""
    found: dict[str, str] = {}
    for party in parties():
        for english in party.english:
            found[english.lower()] = party.name.lower()
    for kind in kinds():
        for english in kind.english:
            found.setdefault(english.lower(), kind.swedish)
    return found


def _build() -> dict[str, str]:
    glossary: dict[str, str] = {}
    for group in (
        INSTITUTIONS,
        MINISTERS,
        _domain_groups(),
        NAMED_DOCUMENTS,
        POLICY_AREAS,
        POLICY_TERMS,
    ):
        for english, swedish in group.items():
            glossary.setdefault(english, swedish)
    return glossary


#: English phrase (lower case) -> Swedish terms. Longer phrases win over their parts.
GLOSSARY: dict[str, str] = _build()


@cache
def _pattern() -> re.Pattern[str]:
    phrases = sorted(GLOSSARY, key=len, reverse=True)  # the longest phrase at a place wins
    alternatives = "|".join(re.escape(p) for p in phrases)
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")


def swedish_terms(text: str) -> list[str]:
    """The Swedish terms of the glossary phrases in an English text, in order, each once."""
    return list(dict.fromkeys(GLOSSARY[match] for match in _pattern().findall(text.lower())))


def with_swedish_terms(text: str, terms: Sequence[str] | None = None) -> str:
    """What BM25 is given for an English text: the text followed by the glossary's Swedish
    terms of it (``terms`` when they are already known: :func:`swedish_terms` of ``text``).
    Whether a text is English is for the caller to decide (``language.is_english``)."""
    return " ".join([text, *(swedish_terms(text) if terms is None else terms)])


def english_only_terms(text: str) -> list[str]:
    """The glossary phrases in a text that Swedish does not spell the same way
    ("unemployment", not "integration" or "motion")."""
    return [
        match for match in _pattern().findall(text.lower()) if match not in GLOSSARY[match].split()
    ]


def glossary_spans(text: str) -> list[tuple[int, int]]:
    """Where the glossary's phrases stand in a text: (start, end) character offsets."""
    return [match.span() for match in _pattern().finditer(text.lower())]
