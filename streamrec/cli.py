"""`streamrec` command line: one verb per operator task; each delegates to one module."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from streamrec.state.clicklog.formats import FORMATS
from streamrec.stream.stages.engines.registry import engine_names


class _App(typer.Typer):
    """A user's mistake ends in one line on stderr and exit status 2 (bad input) or 1 (no broker), never a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            from streamrec.errors import as_user_error

            error = as_user_error(exc)
            if error is None:
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.status)


app = _App(add_completion=False, no_args_is_help=True, help="Streaming graph recommender on Kafka.",
           pretty_exceptions_enable=False)

Format = Enum("Format", {name: name for name in (*FORMATS, "synthetic")}, type=str)  # type: ignore[misc]
"""--format choices: the readers' formats plus the synthetic generator."""

DatasetOpt = Annotated[Path | None, typer.Option("--dataset",
                                                 help="Click log to replay/evaluate (default: synthetic).")]
FormatOpt = Annotated[Format, typer.Option("--format", help="Format of --dataset.")]
ReplayFormatOpt = Annotated[Format | None, typer.Option(
    "--format", help="Format of --dataset (default: detected from the file's first line, and said).")]
ENGINE_CHOICES = " | ".join(engine_names())
"""--engine choices: the engine registry (stream/stages/engines/registry.py), the default first."""


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"streamrec {version('streamrec')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Streaming graph recommender on Kafka."""


def _dataset_format(dataset: Path | None, fmt: Format | None) -> str:
    """The format to read `dataset` in: the one given, else detected from its first line (and said); checks the
    file exists."""
    if dataset is None:
        return fmt.value if fmt is not None else "synthetic"
    from streamrec.errors import UserError
    from streamrec.state.clicklog.formats import train_test_pair
    from streamrec.state.clicklog.sniff import detect_format

    if not dataset.is_file() and train_test_pair(dataset) is None:
        raise UserError(f"--dataset {dataset}: no such file (nor a <prefix>.train.tsv/.test.tsv pair)")
    if fmt is not None:
        if fmt.value == "synthetic":
            raise UserError("--format synthetic generates its own clicks: drop --dataset, or give the file's format")
        return fmt.value
    detected = detect_format(dataset)
    if detected is None:
        raise UserError(f"--dataset {dataset}: cannot tell its format from its first line; "
                        f"give --format ({', '.join(FORMATS)})")
    typer.echo(f"--format not given: {dataset} looks like {detected}", err=True)
    return detected


@app.command()
def settings(
    markdown: Annotated[bool, typer.Option("--markdown",
                                           help="Print the reference (docs/configuration.md) instead.")] = False,
) -> None:
    """Print the resolved settings (defaults < $STREAMREC_CONFIG < STREAMREC_* env)."""
    if markdown:
        from streamrec.config.reference import settings_markdown

        typer.echo(settings_markdown(), nl=False)
        return
    from streamrec.config import load_settings

    typer.echo(load_settings().model_dump_json(indent=2))


@app.command()
def scorers() -> None:
    """List the scorer names `scoring.scorer` (STREAMREC_SCORING__SCORER) accepts; a checkpoint path works too."""
    from streamrec.models.registry import list_scorers

    for name, description in list_scorers().items():
        typer.echo(f"{name:<12} {description}")
    typer.echo(f"{'<path>':<12} a checkpoint written by `streamrec train` (see docs/models.md)")


state_app = typer.Typer(no_args_is_help=True, help="Local state of the stateful stage (RocksDB under state.dir).")
app.add_typer(state_app, name="state")


@state_app.command("clear")
def state_clear(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the local state directory (e.g. state left from another cluster); the worker rebuilds it from the
    changelogs."""
    from streamrec.config import load_settings
    from streamrec.state.local import clear_state_dir

    directory = load_settings().state.dir
    if not directory.exists():
        typer.echo(f"{directory} does not exist: nothing to clear")
        return
    if not yes:
        typer.confirm(f"delete {directory}? (stop the worker first)", abort=True)
    clear_state_dir(directory)
    typer.echo(f"removed {directory}")


@app.command()
def broker(port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).")] = 9092) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) until Ctrl-C."""
    from streamrec.stream.broker import serve_forever

    serve_forever(port)


@app.command()
def worker(
    role: Annotated[str, typer.Option(help="all | stateful | scoring | trainer | api (= streamrec serve)")] = "all",
    engine: Annotated[str | None, typer.Option(help=f"{ENGINE_CHOICES} (default: settings.state.engine)")] = None,
) -> None:
    """Run the stateful stage and/or the scoring stage until SIGTERM/Ctrl-C."""
    from streamrec.stream.worker import run_worker

    run_worker(role=role, engine=engine)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: settings.api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: settings.api.port).")] = None,
) -> None:
    """Serve the HTTP API (latest recommendations, POST /clicks, /healthz, /metrics, /dashboard) until Ctrl-C."""
    from streamrec.stream.api import serve as serve_api

    serve_api(host=host, port=port)


@app.command()
def produce(topic: Annotated[str, typer.Option(help="Topic to write to.")] = "clicks") -> None:
    """Read JSON click events, one per line, from stdin and produce them (keyed by user, else session)."""
    from streamrec.stream.clients.producer import produce_stdin

    produce_stdin(topic)


@app.command()
def replay(
    dataset: DatasetOpt = None,
    format: ReplayFormatOpt = None,
    warm: Annotated[Path | None, typer.Option(help="Log replayed first, unscored, to warm state.")] = None,
    rate: Annotated[float | None, typer.Option(min=0.001,
                                               help="Send this many clicks per second (overrides --speed).")] = None,
    speed: Annotated[float, typer.Option(min=0.0, help="Event-time speed-up: 60 plays an hour of the log in a minute "
                                         "(0: as fast as possible).")] = 0.0,
    report: Annotated[Path, typer.Option("--report", help="Report folder.")] = Path("reports/replay"),
    limit: Annotated[int | None, typer.Option(help="Replay at most this many clicks.")] = None,
) -> None:
    """Replay a click log through a running worker and report prequential quality and latency."""
    from streamrec.stream.harness.replay import replay_command

    fmt = _dataset_format(dataset, format)
    if warm is not None:
        _dataset_format(warm, Format(fmt))
    replay_command(dataset=dataset, fmt=fmt, warm=warm, speed=speed, report_dir=report, limit=limit, rate_eps=rate)


@app.command()
def demo(
    dataset: DatasetOpt = None,
    format: ReplayFormatOpt = None,
    report: Annotated[Path, typer.Option("--report",
                                         help="Report folder (and the processes' logs).")] = Path("reports/demo"),
    engine: Annotated[str, typer.Option(help=ENGINE_CHOICES)] = engine_names()[0],
    warm: Annotated[Path | None, typer.Option(help="Log the starting model trains on, replayed first, unjudged "
                                              "(e.g. a train split); default: the first demo.warm_share of "
                                              "--dataset.")] = None,
    rate: Annotated[float | None, typer.Option(min=0.001,
                                               help="Judged clicks per second (default: demo.rate_eps).")] = None,
    train_seconds: Annotated[float | None, typer.Option(min=0.1, help="Training budget of the starting model "
                                                        "(default: demo.train_budget_s).")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="Judged clicks at most (default: demo.judged_clicks_max; "
                                              "0: all).")] = None,
    exit_: Annotated[bool, typer.Option("--exit", help="Stop everything after the report (tests, CI) instead of "
                                        "keeping the dashboard up until Ctrl-C.")] = False,
) -> None:
    """The whole design on the embedded broker: neural model + trainer + hot swap, kNN and frozen-twin shadows,
    dashboard."""
    from streamrec.stream.harness.demo import run_demo

    fmt = _dataset_format(dataset, format)
    if warm is not None:
        _dataset_format(warm, Format(fmt))
    run_demo(dataset=dataset, fmt=fmt, report_dir=report, engine=engine, warm=warm, exit_after_report=exit_,
             demo={"rate_eps": rate, "train_budget_s": train_seconds, "judged_clicks_max": limit})


@app.command()
def train(
    dataset: DatasetOpt = None,
    format: FormatOpt = Format["synthetic"],
    protocol: Annotated[str, typer.Option(help="loo | session-split")] = "session-split",
    model: Annotated[str, typer.Option(help="Model preset (see docs/models.md).")] = "default",
    out: Annotated[Path, typer.Option(help="Checkpoint file to write.")] = Path("checkpoints/model.pt"),
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    follow: Annotated[bool, typer.Option("--follow", help="Keep training on the live stream instead (the trainer "
                                         "role: settings.training, same as `worker --role trainer`).")] = False,
) -> None:
    """Train a graph model and write a versioned checkpoint the streaming scorer loads."""
    if follow:
        from streamrec.stream.worker import run_worker

        run_worker(role="trainer")
        return
    from streamrec.models.presets import PRESETS

    if model not in PRESETS:
        raise typer.BadParameter(f"unknown preset {model!r}; choose one of {', '.join(sorted(PRESETS))}",
                                 param_hint="--model")
    from streamrec.models.train import train_command

    train_command(dataset=dataset, fmt=format.value, protocol=protocol, model=model, out=out, device=device)


@app.command()
def evaluate(
    dataset: DatasetOpt = None,
    format: FormatOpt = Format["synthetic"],
    protocol: Annotated[str, typer.Option(help="loo | session-split")] = "session-split",
    models: Annotated[str, typer.Option(help="Comma-separated scorers/models to compare.")] = "pop,sknn,default",
    out: Annotated[Path, typer.Option(help="JSON results file.")] = Path("reports/evaluate.json"),
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:
    """Train and evaluate models offline under a standard protocol; print one table, write JSON."""
    from streamrec.models.evaluate import evaluate_command

    evaluate_command(dataset=dataset, fmt=format.value, protocol=protocol, models=models, out=out, device=device)


if __name__ == "__main__":
    app()
