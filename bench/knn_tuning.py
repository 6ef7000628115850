"""Choosing the kNN baseline's defaults (`scoring.sknn_*`) on VALIDATION splits, never on test.

Splits are the ones `streamrec evaluate` uses (state/clicklog/protocols.py), read through the
official loaders:

- YooChoose-100k `session-split`: the validation examples are every prefix of the LATEST 10%
  of the train file's sessions (by end time), held out of training; the test file is not read
  for selection (only its final figures are printed at the end, for docs, after selection).
- Beauty `loo`: per user the second-to-last item given the items before it (the test item is
  the last one, never used here).

Search: coordinate ascent, one pass over the parameters in `GRID` order, each value tried with
the others at the current best; a value is kept when it raises the objective, the mean over
both data sets of validation NDCG@20 relative to the starting point (the settings' defaults),
so neither data set dominates by scale. Every figure printed is a ratio to the start.

    .venv/bin/python bench/knn_tuning.py --data ../shared/data   # the sweep on validation, then test: start vs chosen
    .venv/bin/python bench/knn_tuning.py --beauty-valid 5000     # subsample Beauty's validation examples (faster)
    .venv/bin/python bench/knn_tuning.py --start 3,0.5,100,0.5,0.1,0.3   # start elsewhere: window,backward_weight,
                                                                         # max_neighbours,recency_decay,idf,repeat
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from paths import DATA

from streamrec.config import load_settings
from streamrec.models.evaluate import rank_examples
from streamrec.models.knn import SessionKNN, knn_params, session_knn_from
from streamrec.state.clicklog.protocols import split_for
from streamrec.state.clicklog.types import Example, Split
from streamrec.state.knn_params import KnnParams

OBJECTIVE = "NDCG@20"
GRID: dict[str, Sequence[float]] = {
    "window": [1, 2, 3, 5],
    "backward_weight": [0.0, 0.25, 0.5, 1.0],
    "recency_decay": [0.3, 0.5, 0.7],
    "idf": [0.0, 0.1, 0.2],
    "repeat": [0.0, 0.1, 0.3, 1.0],
    "max_neighbours": [50, 100, 200],
}
"""Values tried per parameter (`half_life_clicks` stays 0: both logs are short, decay is for long streams)."""


def _fit(params: KnnParams, split: Split) -> SessionKNN:
    return session_knn_from(params).fit([s.items for s in split.train])


def score(params: KnnParams, split: Split, examples: Sequence[Example]) -> dict[str, float]:
    metrics, _ = rank_examples(_fit(params, split), examples, 512, lambda _n: None)
    return metrics.summary()


def with_spec(base: KnnParams, spec: str) -> KnnParams:
    """`base` with "window,backward_weight,max_neighbours,recency_decay,idf,repeat" (the --start spelling) applied."""
    w, b, n, d, i, r = (float(v) for v in spec.split(","))
    return replace(base, window=int(w), backward_weight=b, max_neighbours=int(n), recency_decay=d, idf=i, repeat=r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--start", default="", help="Starting point instead of the settings: "
                        "window,backward_weight,max_neighbours,recency_decay,idf,repeat.")
    parser.add_argument("--beauty-valid", type=int, default=0, help="Subsample Beauty's validation examples (0: all).")
    args = parser.parse_args()
    started = time.perf_counter()
    splits = {
        "yoochoose": split_for("yoochoose", args.data / "yoochoose-100k.train.tsv", "session-split"),
        "beauty": split_for("amazon-beauty", args.data / "amazon-beauty.seq.txt", "loo"),
    }
    valid = {name: list(split.valid) for name, split in splits.items()}
    if args.beauty_valid:
        valid["beauty"] = random.Random(0).sample(valid["beauty"], min(args.beauty_valid, len(valid["beauty"])))
    for name, split in splits.items():
        print(f"{name}: train sequences {len(split.train):,}, validation examples {len(valid[name]):,}", flush=True)

    start = with_spec(knn_params(load_settings()), args.start) if args.start else knn_params(load_settings())
    base = {name: score(start, split, valid[name])[OBJECTIVE] for name, split in splits.items()}
    print(f"start {start}: valid {OBJECTIVE} " + ", ".join(f"{n} {v:.4f}" for n, v in base.items()), flush=True)

    def objective(params: KnnParams) -> tuple[float, dict[str, float]]:
        figures = {name: score(params, split, valid[name])[OBJECTIVE] for name, split in splits.items()}
        return sum(figures[n] / base[n] for n in figures) / len(figures), figures

    best, best_value = start, 1.0
    for field, values in GRID.items():
        for value in values:
            candidate = replace(best, **{field: type(getattr(best, field))(value)})
            if candidate == best:
                continue
            ratio, figures = objective(candidate)
            mark = " <- kept" if ratio > best_value else ""
            print(f"{field}={value:<8} valid {OBJECTIVE} " + ", ".join(f"{n} {v:.4f}" for n, v in figures.items())
                  + f"  objective {ratio:.4f} x start{mark}", flush=True)
            if ratio > best_value:
                best, best_value = candidate, ratio
    print(f"chosen {best}: objective {best_value:.4f} x start ({time.perf_counter() - started:.0f} s)", flush=True)
    # Reported, not selected on: the test figures of the start and of the chosen parameters, and
    # of the chosen ones made order-free (pairs counted both ways alike, every session item
    # weighted alike): what the sequential transitions and the recency weighting are worth.
    order_free = replace(best, backward_weight=1.0, recency_decay=1.0)
    for name, split in splits.items():
        before, after, free = (score(p, split, split.test) for p in (start, best, order_free))
        print(f"test {name}: "
              + ", ".join(f"{m} {before[m]:.4f} -> {after[m]:.4f}" for m in ("HR@20", "NDCG@10", "MRR@20"))
              + "; order-free: " + ", ".join(f"{m} {free[m]:.4f}" for m in ("HR@20", "NDCG@10", "MRR@20")), flush=True)


if __name__ == "__main__":
    main()
