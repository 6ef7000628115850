"""Candidate path (HNSW top-M + neighbour matrix + familiar items, exact re-rank) vs full-catalogue scoring.

One run, the same NeuralScorer both ways (index swapped in / out), the default preset
(grainrec-contextgnn), CPU:

- real catalogues (--data, skipped when absent): a checkpoint trained briefly
  (`train_checkpoint`, --train-seconds of training, seed 0) on each data set's training part;
  queries are its VALIDATION examples (never test), with the protocol's exclusions;
- synthetic: a 1,000,000-item catalogue of clustered item vectors (the randomly initialised
  model's item table is replaced by cluster centre + noise; its session encoder stays
  untrained) with co-occurrence tables from in-cluster sessions; queries are further
  in-cluster sessions.

The untrained encoder's session vectors point away from every item (best cosine ~0.5), the
hard case for HNSW (queries far from the data); the synthetic index is therefore queried at
several ef values (--synthetic-ef-search) to show the recall/speed trade-off behind
`scoring.hnsw_ef_search`.

Figures: index build seconds (HNSW + neighbour matrix), recall@20 of the candidate path
against exact full scoring (the share of the full top-20 the candidate path returns), and
sessions/s of both paths with the same batch size; the ratio is the baseline comparison.

    .venv/bin/python bench/hnsw_candidates.py [--data ../shared/data] [--train-seconds 30] [--queries 500]
        [--synthetic-items 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamrec.config import load_settings
from streamrec.models.candidates import CandidateConfig
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.contextgnn import cooccurrence_neighbours, session_neighbours
from streamrec.models.knn import knn_params
from streamrec.models.presets import preset
from streamrec.models.recommender import SessionRecommender
from streamrec.models.scorer import Query, Ranked
from streamrec.models.serving import NeuralScorer
from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.protocols import split_for
from streamrec.state.vocab import ItemVocabulary

DATASETS = [  # name, format, file, protocol (as docs/benchmarks.md's offline evaluation)
    ("yoochoose-100k", "yoochoose", "yoochoose-100k.train.tsv", "session-split"),
    ("amazon-beauty", "amazon-beauty", "amazon-beauty.seq.txt", "loo"),
    ("diginetica", "diginetica", "diginetica-sample.item-views.csv", "session-split"),
]
PRESET = "grainrec-contextgnn"
K = 20


def recall_at_k(exact: list[Ranked], approximate: list[Ranked]) -> float:
    hits = sum(len({i for i, _ in a} & {i for i, _ in e}) for e, a in zip(exact, approximate))
    return hits / max(sum(len(e) for e in exact), 1)


def timed(scorer: NeuralScorer, queries: list[Query]) -> tuple[list[Ranked], float, float]:
    """(rankings, sessions per wall second, sessions per CPU second of this process: robust to other load on the
    machine)."""
    scorer.recommend(queries[: scorer.batch_size], K)  # warm-up
    started, cpu = time.perf_counter(), time.process_time()
    ranked = scorer.recommend(queries, K)
    return ranked, len(queries) / (time.perf_counter() - started), len(queries) / (time.process_time() - cpu)


def compare(
    name: str, checkpoint: Checkpoint, queries: list[Query], config: CandidateConfig, batch_size: int,
    efs: list[int] | None = None
) -> list[dict[str, Any]]:
    """Build the index, then score `queries` without it and with it (at each query-time ef of `efs`, default the
    setting's)."""
    scorer = NeuralScorer(checkpoint, device="cpu", batch_size=batch_size,
                          candidates=replace(config, candidates_min_catalogue_items=1))
    index = scorer.index
    assert index is not None
    scorer.index = None  # the full-catalogue path of the same scorer
    exact, full_rate, full_cpu = timed(scorer, queries)
    scorer.swap_index(index)
    rows = []
    for ef in efs or [config.hnsw_ef_search]:
        index.set_ef_search(ef)
        fast, fast_rate, fast_cpu = timed(scorer, queries)
        row = {
            "catalogue": name,
            "items": len(checkpoint.vocab) - 1,
            "queries": len(queries),
            "batch": batch_size,
            "ef_search": ef,
            "build_s": round(index.build_seconds, 1),
            "recall@20": round(recall_at_k(exact, fast), 4),
            "full_sessions_per_s": round(full_rate, 1),
            "hnsw_sessions_per_s": round(fast_rate, 1),
            "speedup": round(fast_rate / full_rate, 2),
            "full_sessions_per_cpu_s": round(full_cpu, 1),
            "hnsw_sessions_per_cpu_s": round(fast_cpu, 1),
            "cpu_speedup": round(fast_cpu / full_cpu, 2),
            "load_average": round(os.getloadavg()[0], 1),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def real_catalogue(name: str, fmt: str, file: str, protocol: str, args: argparse.Namespace,
                   config: CandidateConfig) -> list[dict[str, Any]]:
    path = args.data / file
    if not path.exists():
        print(f"{name}: {path} absent, skipped")
        return []
    split = split_for(fmt, path, protocol)
    started = time.perf_counter()
    checkpoint = train_checkpoint(PRESET, split, device="cpu", seed=0, max_train_seconds=args.train_seconds)
    print(f"{name}: trained {time.perf_counter() - started:.0f} s, valid {checkpoint.metrics.get('valid')}", flush=True)
    examples = random.Random(0).sample(list(split.valid), min(args.queries, len(split.valid)))
    queries = [Query(e.session_items, e.history_items, e.user_id, e.exclude) for e in examples]
    return compare(name, checkpoint, queries, config, batch_size=args.batch)


def synthetic_catalogue(args: argparse.Namespace, config: CandidateConfig) -> list[dict[str, Any]]:
    """Clustered item vectors and in-cluster sessions: structure an ANN index can exploit, like learned embeddings."""
    items, clusters, dim = args.synthetic_items, args.synthetic_clusters, 64
    rng = np.random.default_rng(0)
    cluster_of = rng.integers(0, clusters, items + 1)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    vectors = centres[cluster_of] + 0.6 * rng.standard_normal((items + 1, dim)).astype(np.float32)
    order = np.argsort(cluster_of[1:], kind="stable") + 1
    members = np.split(order, np.searchsorted(cluster_of[order], np.arange(1, clusters)))

    def session() -> list[int]:
        pool = members[rng.integers(0, clusters)]
        return rng.choice(pool, size=int(rng.integers(2, 9))).tolist()

    started = time.perf_counter()
    log = [session() for _ in range(args.synthetic_sessions)]
    # 20 co-occurrence neighbours: [1M, 100] tables would take 2.4 GB
    knn = replace(knn_params(load_settings()), max_neighbours=20)
    model_config = preset(PRESET, knn=knn)
    torch.manual_seed(0)
    model = SessionRecommender(model_config, items + 1).eval()
    with torch.no_grad():
        model.encoder.items.weight.copy_(torch.from_numpy(vectors))
        counts = np.bincount(np.concatenate(log), minlength=items + 1).astype(np.float32)
        model.item_counts.copy_(torch.from_numpy(counts))
        assert model.head is not None
        model.head.set_neighbours(
            cooccurrence_neighbours(log, items + 1, knn), cooccurrence_neighbours(log, items + 1, knn, "row"),
            model.item_counts,
            session_neighbours(log, items + 1, knn.max_neighbours) if model_config.session_cooccurrence else None,
        )
    vocab = ItemVocabulary(str(i) for i in range(1, items + 1))
    checkpoint = Checkpoint.from_model(PRESET, model, vocab, {})
    print(f"synthetic: {items} items, {len(log)} sessions, model ready in {time.perf_counter() - started:.0f} s",
          flush=True)
    queries = [Query(tuple(str(i) for i in session())) for _ in range(args.synthetic_queries)]
    efs = [int(ef) for ef in args.synthetic_ef_search.split(",")]
    return compare(f"synthetic-{items}", checkpoint, queries, config, batch_size=args.synthetic_batch, efs=efs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder of the real data sets")
    parser.add_argument("--train-seconds", type=float, default=30.0,
                        help="training time of each real-catalogue checkpoint")
    parser.add_argument("--queries", type=int, default=500, help="validation examples scored per real catalogue")
    parser.add_argument("--batch", type=int, default=256, help="scorer batch size on the real catalogues")
    parser.add_argument("--synthetic-items", type=int, default=1_000_000)
    parser.add_argument("--synthetic-clusters", type=int, default=2_000)
    parser.add_argument("--synthetic-sessions", type=int, default=300_000,
                        help="in-cluster sessions behind the co-occurrence tables")
    parser.add_argument("--synthetic-queries", type=int, default=256)
    parser.add_argument("--synthetic-batch", type=int, default=32,
                        help="scorer batch size at the synthetic catalogue ([B, V] full scoring)")
    parser.add_argument("--synthetic-ef-search", default="256,1024,2048,4096",
                        help="query-time ef values tried on the synthetic index")
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    config = CandidateConfig.from_settings(load_settings().scoring)
    print(f"candidate settings: {config}, load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = [] if args.skip_real else [row for d in DATASETS for row in real_catalogue(*d, args, config)]
    rows += synthetic_catalogue(args, config)
    print(f"{'catalogue':<20}{'items':>9}{'ef':>6}{'build s':>9}{'recall@20':>11}{'full /s':>10}{'hnsw /s':>10}"
          f"{'ratio':>8}{'full /cpu-s':>13}{'hnsw /cpu-s':>13}{'ratio':>8}")
    for row in rows:
        print(
            f"{row['catalogue']:<20}{row['items']:>9}{row['ef_search']:>6}{row['build_s']:>9}{row['recall@20']:>11}"
            f"{row['full_sessions_per_s']:>10}{row['hnsw_sessions_per_s']:>10}{row['speedup']:>8}"
            f"{row['full_sessions_per_cpu_s']:>13}{row['hnsw_sessions_per_cpu_s']:>13}{row['cpu_speedup']:>8}"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
