"""Offline evaluation: train each model on a protocol's split, rank its test examples, compare.

Every model is judged only through the `Scorer` interface (the same call the streaming scoring
stage makes), so a baseline and a graph model are measured identically: queries go in batches
of `scoring.batch_max_size`, each asks for the top 20 (the deepest cut any metric uses), and
`RankingMetrics` scores the lists. Baselines ("pop", "sknn": `registry.list_scorers()`) are
built from the settings and fitted on the training sequences; every other name is a neural
preset trained by `streamrec.models.train.fit`. Training time and ranking throughput are
wall-clock measurements on this host, recorded with the host's description.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streamrec.config import Settings, load_settings
from streamrec.models.presets import PRESETS
from streamrec.models.registry import build_scorer, list_scorers
from streamrec.models.scorer import Fittable, Query, Scorer
from streamrec.state.clicklog.formats import MalformedLogError
from streamrec.state.clicklog.protocols import split_for
from streamrec.state.clicklog.types import Example, Split, TrainSequence
from streamrec.state.paired import PairedDifference, paired_differences
from streamrec.state.ranking_metrics import CUTOFFS, METRIC_NAMES, MRR_CUTOFF, RankingMetrics

TOP_K = max(*CUTOFFS, MRR_CUTOFF)
"""List length asked of every scorer: the deepest cut-off a metric reads."""
EVALUATE_PAIRED_METRICS: tuple[str, ...] = ("HR@20", "MRR@20", "NDCG@10")
"""Metrics `streamrec evaluate` compares pair-wise (state/paired.py) for every pair of models."""


@dataclass(frozen=True)
class ModelResult:
    """One model's test figures under one protocol."""

    model: str
    version: str
    metrics: dict[str, float]
    predictions: int
    train_seconds: float
    predictions_per_s: float
    tally: RankingMetrics = field(repr=False, compare=False)
    """Every test prediction's rank by example and group, for the paired comparison (not serialised)."""
    valid: dict[str, float] | None = None
    """A neural model's validation metrics at its chosen epoch (what presets are chosen on); None for baselines."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "version": self.version, "metrics": self.metrics, "predictions": self.predictions,
            "train_seconds": self.train_seconds, "predictions_per_s": self.predictions_per_s, "valid": self.valid,
        }


def paired_results(
    results: Sequence[ModelResult], metrics: Sequence[str] = EVALUATE_PAIRED_METRICS
) -> list[PairedDifference]:
    """Every pair of evaluated models (in the order given) on `metrics`, with 95% intervals over sessions or users."""
    return paired_differences({result.model: result.tally for result in results}, metrics)


def evaluate(
    split: Split,
    model_names: Sequence[str],
    device: str = "auto",
    progress: bool = True,
    seed: int = 0,
    settings: Settings | None = None,
) -> list[ModelResult]:
    """Train each named model on `split.train`, rank `split.test` through its Scorer, score it."""
    settings = settings or load_settings()
    results: list[ModelResult] = []
    with _progress(progress) as bar:
        for name in model_names:
            training = bar.add_task(f"training {name}", total=None)
            started = time.perf_counter()
            scorer, valid = build_model(name, split, device, seed, settings)
            train_seconds = time.perf_counter() - started
            bar.update(training, total=1, completed=1)
            task = bar.add_task(f"ranking {name}", total=len(split.test))
            metrics, rank_seconds = rank_examples(
                scorer, split.test, settings.scoring.batch_max_size, partial(bar.advance, task)
            )
            results.append(
                ModelResult(
                    model=name,
                    version=scorer.version,
                    metrics=metrics.summary(),
                    predictions=metrics.count,
                    train_seconds=train_seconds,
                    predictions_per_s=metrics.count / rank_seconds if rank_seconds > 0 else float("inf"),
                    tally=metrics,
                    valid=valid,
                )
            )
    return results


def known_models() -> list[str]:
    """Names `evaluate` accepts: the baselines, then the neural presets."""
    return [*list_scorers(), *PRESETS]


def build_model(
    name: str, split: Split, device: str, seed: int, settings: Settings
) -> tuple[Scorer, dict[str, float] | None]:
    """A trained Scorer and, for a neural model, its validation metrics: a baseline fitted on the train sequences,
    a checkpoint file loaded as it is (trained earlier, on the same split's training part: `streamrec train` writes
    one), else a neural preset trained now."""
    if name in list_scorers():
        scoring = settings.scoring.model_copy(update={"scorer": name, "checkpoint_path": None})
        scorer = build_scorer(settings.model_copy(update={"scoring": scoring}), persist=False)
        _fit_baseline(scorer, split.train)
        return scorer, None
    from streamrec.models.checkpoint import Checkpoint
    from streamrec.models.serving import NeuralScorer
    from streamrec.models.train import fit

    if _is_checkpoint(name):
        scorer = NeuralScorer(Checkpoint.load(Path(name)), device=device)
    else:
        scorer = fit(name, split, device, seed=seed)  # the preset's head kNN parameters (else the settings')
    return scorer, scorer.checkpoint.metrics.get("valid")


def _is_checkpoint(name: str) -> bool:
    return name.endswith(".pt") and Path(name).is_file()


def _fit_baseline(scorer: Scorer, train: Sequence[TrainSequence]) -> None:
    """Baselines learn whole sessions with `fit` (`Fittable`); a scorer without one gets them via `observe`."""
    sessions = [sequence.items for sequence in train]
    if isinstance(scorer, Fittable):
        scorer.fit(sessions)
    else:
        scorer.observe(sessions)


def rank_examples(
    scorer: Scorer, examples: Sequence[Example], batch_size: int, advance: Callable[[int], object]
) -> tuple[RankingMetrics, float]:
    """Metrics of `scorer` on `examples` and the seconds spent inside `recommend`.

    Each prediction is kept under its position in `examples` and its example's group (its session
    or user), so two scorers ranked on the same examples can be compared pair-wise (state/paired.py)."""
    metrics = RankingMetrics()
    seconds = 0.0
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        queries = [Query(e.session_items, e.history_items, e.user_id, e.exclude) for e in batch]
        began = time.perf_counter()
        ranked_lists = scorer.recommend(queries, TOP_K)
        seconds += time.perf_counter() - began
        for index, (example, ranked) in enumerate(zip(batch, ranked_lists), start=start):
            group = example.group if example.group is not None else index
            metrics.add(
                [item for item, _ in ranked], example.target, [score for _, score in ranked], key=index, group=group
            )
        advance(len(batch))
    return metrics, seconds


def evaluate_command(dataset: Path | None, fmt: str, protocol: str, models: str, out: Path, device: str) -> None:
    """`streamrec evaluate`: build the split, evaluate every model, print one table, write JSON."""
    console = Console()
    model_names = [name.strip() for name in models.split(",") if name.strip()]
    unknown = [name for name in model_names if name not in known_models() and not _is_checkpoint(name)]
    if not model_names or unknown:
        raise SystemExit(f"error: --models {models!r}: unknown {unknown}; known: {', '.join(known_models())}, "
                         "or the path of a checkpoint file (.pt) trained on this split's training part")
    with console.status(f"reading {dataset or 'synthetic log'} ({fmt}, {protocol})"):
        try:
            split = split_for(fmt, dataset, protocol)
        except MalformedLogError:  # the CLI says it in one line, exit 2, as for every other command
            raise
        except (ValueError, OSError) as error:
            raise SystemExit(f"error: {error}") from error
    sizes = split_sizes(split)
    console.print(f"{protocol} split: " + ", ".join(f"{key} {value:,}" for key, value in sizes.items()))
    results = evaluate(split, model_names, device)
    console.print(results_table(results, title=f"{dataset or 'synthetic'} · {protocol}"))
    paired = paired_results(results)
    if paired:
        console.print(paired_table(paired, unit="users" if split.protocol == "loo" else "sessions"))
    report = {
        "dataset": str(dataset) if dataset is not None else "synthetic",
        "format": fmt,
        "protocol": split.protocol,
        "split": sizes,
        "models": [result.to_dict() for result in results],
        "paired": [difference.to_dict() for difference in paired],
        "host": host_info(device),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}")


def split_sizes(split: Split) -> dict[str, int]:
    return {
        "train_sequences": len(split.train),
        "train_clicks": sum(len(sequence.items) for sequence in split.train),
        "valid_examples": len(split.valid),
        "test_examples": len(split.test),
        "items": len(split.items),
    }


def results_table(results: Sequence[ModelResult], title: str) -> Table:
    table = Table(title=title)
    table.add_column("model")
    for name in METRIC_NAMES:
        table.add_column(name, justify="right")
    table.add_column("train s", justify="right")
    table.add_column("pred/s", justify="right")
    for result in results:
        figures = [f"{result.metrics[name]:.4f}" for name in METRIC_NAMES]
        table.add_row(result.model, *figures, f"{result.train_seconds:.1f}", f"{result.predictions_per_s:,.0f}")
    return table


def paired_table(paired: Sequence[PairedDifference], unit: str) -> Table:
    """One row per (pair, metric): a - b, its 95% interval and the verdict ("beats" only when it excludes 0)."""
    table = Table(title=f"paired differences (95% bootstrap interval over {unit})")
    for column in ("a - b", "metric", "diff", "95% interval", "verdict"):
        table.add_column(column, justify="right" if column in ("diff", "95% interval") else "left")
    for p in paired:
        table.add_row(f"{p.a} - {p.b}", p.metric, f"{p.diff:+.4f}", p.interval_text, p.verdict)
    return table


def host_info(device: str) -> dict[str, object]:
    """Where the timings were taken: platform, CPU count, Python, torch and the accelerator if any."""
    info: dict[str, object] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "device": device,
    }
    try:
        import torch
    except ImportError:
        return info
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _progress(enabled: bool) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, disable=not enabled, transient=False)
