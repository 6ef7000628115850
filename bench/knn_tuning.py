"""Ad-hoc tuning of the kNN and popularity baselines on YooChoose-100k (session next-click, time split).

Protocol (shared/data/README.md): train on the train file; for every prefix of every test
session predict the next click; test clicks on items never seen in training are dropped
(then sessions shorter than 2); rank all items, no masking. Reports HR@20 and MRR@20.

    .venv/bin/python bench/knn_tuning.py                 # default settings, sknn + pop
    .venv/bin/python bench/knn_tuning.py --sweep         # vary one kNN parameter at a time around the settings

This reads the TSVs directly; the official loaders and `streamrec evaluate` live elsewhere.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path

from rich.progress import track

from streamrec.config import load_settings
from streamrec.models.knn import session_knn
from streamrec.models.popularity import popularity
from streamrec.models.scorer import Query, Scorer

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
K = 20
SWEEP: dict[str, list[float]] = {
    "window": [1, 2, 5, 10],
    "backward_weight": [0.0, 0.25, 1.0],
    "recency_decay": [0.3, 0.7, 1.0],
    "idf": [0.0, 0.2],
    "repeat": [0.0, 0.1, 1.0],
    "half_life_clicks": [10_000, 50_000],
}
"""Values tried per kNN parameter by --sweep (the others stay at their settings)."""


def read_sessions(path: Path) -> list[list[str]]:
    """Sessions of a `SessionId ItemId Time` TSV, clicks in time order, sessions in start order."""
    clicks: dict[str, list[tuple[float, str]]] = defaultdict(list)
    with path.open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            clicks[row["SessionId"]].append((float(row["Time"]), row["ItemId"]))
    ordered = sorted(clicks.values(), key=lambda c: min(c))
    return [[item for _, item in sorted(c)] for c in ordered]


def test_examples(test: list[list[str]], known: set[str]) -> list[tuple[list[str], str]]:
    """(prefix, next item) for every prefix of every test session, unknown items dropped first."""
    examples = []
    for session in test:
        kept = [item for item in session if item in known]
        examples += [(kept[:i], kept[i]) for i in range(1, len(kept))]
    return examples


def evaluate(scorer: Scorer, examples: list[tuple[list[str], str]], batch: int = 256) -> tuple[float, float]:
    """HR@K and MRR@K of `scorer` over `examples`."""
    hits, rr = 0, 0.0
    for start in track(range(0, len(examples), batch), description=scorer.name, transient=True):
        chunk = examples[start : start + batch]
        ranked = scorer.recommend([Query(session_items=prefix) for prefix, _ in chunk], K)
        for (_, target), top in zip(chunk, ranked):
            items = [item for item, _ in top]
            if target in items:
                hits += 1
                rr += 1.0 / (items.index(target) + 1)
    return hits / len(examples), rr / len(examples)


def default_knn(train: list[list[str]], **overrides: float) -> Scorer:
    s = load_settings().scoring
    params = dict(
        window=s.sknn_window,
        backward_weight=s.sknn_backward_weight,
        max_neighbours=s.sknn_neighbours,
        half_life_clicks=s.sknn_half_life_clicks,
        recency_decay=s.sknn_recency_decay,
        idf=s.sknn_idf,
        repeat=s.sknn_repeat,
    )
    params.update(overrides)
    return session_knn(**params).fit(train)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sweep", action="store_true", help="Vary one kNN parameter at a time around the settings.")
    args = parser.parse_args()
    train = read_sessions(args.data / "yoochoose-100k.train.tsv")
    test = read_sessions(args.data / "yoochoose-100k.test.tsv")
    known = {item for session in train for item in session}
    examples = test_examples(test, known)
    print(f"train sessions {len(train)}, items {len(known)}; test examples {len(examples)}")

    runs: list[tuple[str, Callable[[], Scorer]]] = [
        ("pop", lambda: popularity().fit(train)),
        ("sknn (settings)", lambda: default_knn(train)),
    ]
    if args.sweep:
        runs += [(f"sknn {name}={value}", partial(default_knn, train, **{name: value}))
                 for name, values in SWEEP.items() for value in values]
    for label, build in runs:
        scorer = build()
        t0 = time.perf_counter()
        hr, mrr = evaluate(scorer, examples)
        rate = len(examples) / (time.perf_counter() - t0)
        print(f"{label:36s} HR@{K} {hr:.4f}  MRR@{K} {mrr:.4f}  ({rate:,.0f} queries/s)", flush=True)

if __name__ == "__main__":
    main()
