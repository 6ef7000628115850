"""`streamrec` command line: one verb per operator task; each delegates to one module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Streaming graph recommender on Kafka.")

DatasetOpt = Annotated[Optional[Path], typer.Option("--dataset", help="Click log to replay/evaluate (default: synthetic).")]
FormatOpt = Annotated[str, typer.Option("--format", help="amazon-beauty | yoochoose | diginetica | events-csv | synthetic")]


@app.command()
def settings(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the reference (docs/configuration.md) instead.")] = False,
) -> None:
    """Print the resolved settings (defaults < $STREAMREC_CONFIG < STREAMREC_* env)."""
    if markdown:
        from streamrec.config.reference import settings_markdown

        typer.echo(settings_markdown(), nl=False)
        return
    from streamrec.config import load_settings

    typer.echo(load_settings().model_dump_json(indent=2))


@app.command()
def broker(port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).")] = 9092) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) until Ctrl-C."""
    from streamrec.stream.broker import serve_forever

    serve_forever(port)


@app.command()
def worker(
    role: Annotated[str, typer.Option(help="all | stateful | scoring | api (= streamrec serve)")] = "all",
    engine: Annotated[Optional[str], typer.Option(help="quix | faust (default: settings.state.engine)")] = None,
) -> None:
    """Run the stateful stage and/or the scoring stage until SIGTERM/Ctrl-C."""
    from streamrec.stream.worker import run_worker

    run_worker(role=role, engine=engine)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default: settings.api.host).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to listen on (default: settings.api.port).")] = None,
) -> None:
    """Serve the HTTP API (latest recommendations, POST /clicks, /healthz, /metrics, /dashboard) until Ctrl-C."""
    from streamrec.stream.api import serve as serve_api

    serve_api(host=host, port=port)


@app.command()
def produce(topic: Annotated[str, typer.Option(help="Topic to write to.")] = "clicks") -> None:
    """Read JSON click events, one per line, from stdin and produce them (keyed by user, else session)."""
    from streamrec.stream.producer import produce_stdin

    produce_stdin(topic)


@app.command()
def replay(
    dataset: DatasetOpt = None,
    format: FormatOpt = "synthetic",
    warm: Annotated[Optional[Path], typer.Option(help="Log replayed first, unscored, to warm state.")] = None,
    speed: Annotated[float, typer.Option(help="Event-time speed-up (0: as fast as possible).")] = 0.0,
    report: Annotated[Path, typer.Option("--report", help="Report folder.")] = Path("reports/replay"),
    limit: Annotated[Optional[int], typer.Option(help="Replay at most this many clicks.")] = None,
) -> None:
    """Replay a click log through a running worker and report prequential quality and latency."""
    from streamrec.stream.replay import replay_command

    replay_command(dataset=dataset, fmt=format, warm=warm, speed=speed, report_dir=report, limit=limit)


@app.command()
def demo(
    dataset: DatasetOpt = None,
    format: FormatOpt = "synthetic",
    report: Annotated[Path, typer.Option("--report", help="Report folder.")] = Path("reports/demo"),
    engine: Annotated[str, typer.Option(help="quix | faust")] = "quix",
    warm: Annotated[Optional[Path], typer.Option(help="Log replayed first, unjudged, to warm state (e.g. a train split).")] = None,
) -> None:
    """Start the embedded broker and a worker (+ a shadow popularity scorer), replay a stream, report, stop everything."""
    from streamrec.stream.demo import run_demo

    run_demo(dataset=dataset, fmt=format, report_dir=report, engine=engine, warm=warm)


@app.command()
def train(
    dataset: DatasetOpt = None,
    format: FormatOpt = "synthetic",
    protocol: Annotated[str, typer.Option(help="loo | session-split")] = "session-split",
    model: Annotated[str, typer.Option(help="Model preset (see docs/models.md).")] = "default",
    out: Annotated[Path, typer.Option(help="Checkpoint file to write.")] = Path("checkpoints/model.pt"),
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:
    """Train a graph model and write a versioned checkpoint the streaming scorer loads."""
    from streamrec.models.train import train_command

    train_command(dataset=dataset, fmt=format, protocol=protocol, model=model, out=out, device=device)


@app.command()
def evaluate(
    dataset: DatasetOpt = None,
    format: FormatOpt = "synthetic",
    protocol: Annotated[str, typer.Option(help="loo | session-split")] = "session-split",
    models: Annotated[str, typer.Option(help="Comma-separated scorers/models to compare.")] = "pop,sknn,default",
    out: Annotated[Path, typer.Option(help="JSON results file.")] = Path("reports/evaluate.json"),
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:
    """Train and evaluate models offline under a standard protocol; print one table, write JSON."""
    from streamrec.models.evaluate import evaluate_command

    evaluate_command(dataset=dataset, fmt=format, protocol=protocol, models=models, out=out, device=device)


if __name__ == "__main__":
    app()
