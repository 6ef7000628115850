"""Ablation of the issue-3 model ladder on one split, baselines in the same run.

Every row is a preset (optionally with ModelConfig overrides) trained by
`streamrec.models.train.train_checkpoint` on the split's training sequences, with early
stopping on its validation examples, then ranked on the test examples through the Scorer
interface exactly as `streamrec evaluate` does (`models.evaluate.rank_examples`). The
baselines ("pop", "sknn") are built from the settings as there. Every row gets the same
`--max-train-seconds` budget (CPU time is the constraint), which overrides the presets'.

    .venv/bin/python bench/ablation.py --format yoochoose \\
        --dataset ../shared/data/yoochoose-100k.train.tsv --protocol session-split \\
        --rows sknn,srgnn,grainrec,glad,glad-clusters,glad-attentive,contextgnn,default \\
        --max-train-seconds 300 --out reports/ablation-yoochoose.json

A row may carry overrides: `grainrec-contextgnn:dim=96;lr=0.002`.
Validation figures are printed next to test figures so presets can be chosen on validation.
Every row after the first is also compared with the first, on validation and on test: the paired
difference of HR@20, MRR@20 and NDCG@10 with its 95% bootstrap interval over users (loo) or
sessions (state/paired.py), so an ablation says whether a component's gain is more than noise.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from streamrec.config import load_settings
from streamrec.models.evaluate import TOP_K, build_model, host_info, rank_examples, split_sizes
from streamrec.models.presets import ModelConfig
from streamrec.models.registry import list_scorers
from streamrec.models.serving import NeuralScorer
from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.protocols import split_for
from streamrec.state.clicklog.types import Split
from streamrec.state.paired import paired_difference
from streamrec.state.ranking_metrics import RankingMetrics

METRICS = ("HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR@20")
PAIRED_METRICS = ("HR@20", "MRR@20", "NDCG@10")
VALID_METRICS = ("NDCG@10", "HR@20", "MRR@20")


def parse_row(spec: str) -> tuple[str, dict[str, Any]]:
    """`name[:field=value;field=value]` -> (preset name, typed ModelConfig overrides)."""
    name, _, rest = spec.partition(":")
    types = {f.name: type(f.default) for f in fields(ModelConfig)}
    overrides: dict[str, Any] = {}
    for assignment in filter(None, rest.split(";")):
        key, _, value = assignment.partition("=")
        if key not in types:
            raise SystemExit(f"unknown ModelConfig field {key!r} in row {spec!r}")
        kind = types[key]
        overrides[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return name, overrides


def run_row(spec: str, split: Split, budget: float | None, device: str,
            seed: int) -> tuple[dict[str, Any], dict[str, RankingMetrics]]:
    """Train (or fit) one row and rank valid and test through its Scorer: (the row's figures, its valid/test
    tallies)."""
    settings = load_settings()
    name, overrides = parse_row(spec)
    started = time.perf_counter()
    if name in list_scorers():
        scorer, _ = build_model(name, split, device, seed, settings)
        epochs = None
    else:
        if budget is not None:
            overrides.setdefault("max_train_seconds", budget)
        checkpoint = train_checkpoint(name, split, device=device, seed=seed, **overrides)
        scorer = NeuralScorer(checkpoint, device=device)
        epochs = checkpoint.metrics["valid"].get("epoch")
    train_seconds = time.perf_counter() - started
    batch = settings.scoring.batch_max_size
    valid, _ = rank_examples(scorer, split.valid, batch, lambda n: None)
    test, rank_seconds = rank_examples(scorer, split.test, batch, lambda n: None)
    return {
        "row": spec,
        "model": name,
        "overrides": overrides,
        "best_epoch": epochs,
        "train_seconds": train_seconds,
        "valid": valid.summary(),
        "test": test.summary(),
        "test_predictions": test.count,
        "predictions_per_s": test.count / rank_seconds if rank_seconds > 0 else float("inf"),
    }, {"valid": valid, "test": test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--rows", required=True, help="comma-separated rows (see module docstring)")
    parser.add_argument("--max-train-seconds", type=float, default=None,
                        help="same training budget for every neural row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    console = Console()
    split = split_for(args.format, args.dataset, args.protocol)
    sizes = split_sizes(split)
    console.print(f"{args.protocol} split: {sizes}; top-{TOP_K} lists")
    rows: list[dict[str, Any]] = []
    tallies: list[dict[str, RankingMetrics]] = []
    for spec in args.rows.split(","):
        row, tally = run_row(spec.strip(), split, args.max_train_seconds, args.device, args.seed)
        tallies.append(tally)
        if len(tallies) > 1:
            row["paired_vs_first"] = {
                part: [paired_difference(tally[part], tallies[0][part], metric, (row["row"], rows[0]["row"])).to_dict()
                       for metric in PAIRED_METRICS]
                for part in ("valid", "test")
            }
        rows.append(row)
        console.print(f"ROW {json.dumps(row)}")
        report = {"dataset": str(args.dataset), "format": args.format, "protocol": args.protocol, "split": sizes,
                  "max_train_seconds": args.max_train_seconds, "rows": rows, "host": host_info(args.device)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(_table(rows, f"{args.dataset.name} · {args.protocol}"))
    for row in rows[1:]:
        for part, differences in row["paired_vs_first"].items():
            for d in differences:
                console.print(f"{part:<5} {d['a']} - {d['b']}  {d['metric']:<7} {d['diff']:+.4f} "
                              f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]")


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("row", *(f"valid {m}" for m in VALID_METRICS), *(f"test {m}" for m in METRICS), "epoch", "train s"):
        table.add_column(column, justify="left" if column == "row" else "right")
    for row in rows:
        valid = [f"{row['valid'][m]:.4f}" for m in VALID_METRICS]
        test = [f"{row['test'][m]:.4f}" for m in METRICS]
        table.add_row(row["row"], *valid, *test, str(row["best_epoch"] or "-"), f"{row['train_seconds']:.0f}")
    return table


if __name__ == "__main__":
    main()
