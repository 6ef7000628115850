"""Continual vs frozen vs online kNN, prequential on YooChoose-100k (issue 11), pure torch, no Kafka.

    .venv/bin/python bench/continual_offline.py --phase valid [--lr 1e-4 --replay-mix 0.5 ...]   # tuning
    .venv/bin/python bench/continual_offline.py --phase test                                       # report

Warm start: the `default` preset trained on the train file minus its latest 10% of sessions
(the protocol's validation part, state/clicklog/protocols.py) with a `--max-train-seconds` cap;
cached under reports/continual/ and reused. Then the stream, clicks in event-time order, in
chunks of `--chunk` clicks: every competitor answers each click that has an earlier click in
its session (top 20, judged against the click) and then learns the chunk (models/online/prequential.py):

- continual: ContinualLearner (models/online) from the warm checkpoint, one step per micro-batch;
- frozen:    the warm checkpoint behind NeuralScorer, never updated (no kNN fallback);
- sknn:      the online kNN (models/knn.py, ScoringSettings.sknn_*), fitted on the same training
             sessions and fed the same stream through `observe`.

--phase valid streams the validation sessions' clicks (judged): online settings are chosen
here. --phase test streams the validation clicks first (learned, not judged: they precede the
test file in time) and then the test file (judged). HR@20 and MRR@20 by state/metrics.RankingMetrics.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

from knn_tuning import with_spec

from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.knn import knn_params
from streamrec.models.registry import build_sknn
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.presets import preset
from streamrec.models.online.prequential import Continual, Frozen, Observing, prequential
from streamrec.models.serving import NeuralScorer
from streamrec.state.clicklog.formats import read_log
from streamrec.state.clicklog.protocols import VALID_FRACTION, _tail_count, sessions_of, session_split
from streamrec.state.clicklog.types import LoggedClick
from streamrec.state.knn_params import KnnParams

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
REPORTS = Path(__file__).resolve().parents[1] / "reports" / "continual"


def main() -> None:
    args = _arguments()
    settings = OnlineSettings(**{f.name: getattr(args, f.name) for f in fields(OnlineSettings)})
    train_clicks = read_log(args.data / "yoochoose-100k.train.tsv", "yoochoose")
    test_clicks = read_log(args.data / "yoochoose-100k.test.tsv", "yoochoose")
    fit_ids, valid_ids = _fit_valid_sessions(train_clicks)
    head_knn = _head_knn(args.head_knn)
    checkpoint = _warm_checkpoint(train_clicks, test_clicks, args.max_train_seconds, args.seed, head_knn,
                                  session_table=_session_table(args.session_table))
    valid_stream = [c for c in train_clicks if c.session_id in valid_ids]
    if args.phase == "valid":
        stream, judged = valid_stream, [True] * len(valid_stream)
    else:
        stream = valid_stream + test_clicks
        judged = [False] * len(valid_stream) + [i >= args.skip_test_clicks for i in range(len(test_clicks))]
    knn = build_sknn(load_settings(), persist=False)  # the online kNN with the settings' parameters, in memory
    knn.fit([s.items for s in sessions_of(train_clicks) if s.session_id in fit_ids])
    continual = Continual(ContinualLearner(checkpoint, settings, device="cpu", seed=args.seed), args.publish_every_steps, args.resume_on_publish)
    competitors = {
        "continual": continual,
        "frozen": Frozen(NeuralScorer(checkpoint, device="cpu")),
        "sknn": Observing(knn),
    }
    started = time.perf_counter()
    result = prequential(stream, competitors, args.chunk, judged)
    seconds = time.perf_counter() - started
    summaries = {name: metrics.summary() for name, metrics in result.metrics.items()}
    judged_count = result.metrics["continual"].count
    print(f"phase {args.phase}: {result.clicks:,} clicks streamed, {judged_count:,} judged, {seconds:.0f} s wall, "
          f"{continual.steps} steps, {continual.snapshots} snapshots, "
          f"{len(continual.learner.vocab) - 1:,} items, capacity {continual.learner.model.num_items:,}")
    print(f"{'model':<10} {'HR@20':>8} {'MRR@20':>8} {'answer s':>9} {'learn s':>8}")
    for name, summary in summaries.items():
        print(f"{name:<10} {summary['HR@20']:>8.4f} {summary['MRR@20']:>8.4f} "
              f"{result.answer_seconds[name]:>9.1f} {result.learn_seconds[name]:>8.1f}")
    steps = max(continual.steps, 1)
    print(f"continual learning: {1000 * result.learn_seconds['continual'] / steps:.1f} ms per step "
          f"(add + step + table refresh, {args.chunk} clicks per chunk, torch threads {torch.get_num_threads()})")
    for baseline in ("frozen", "sknn"):
        hr = summaries["continual"]["HR@20"] / max(summaries[baseline]["HR@20"], 1e-12)
        mrr = summaries["continual"]["MRR@20"] / max(summaries[baseline]["MRR@20"], 1e-12)
        print(f"continual / {baseline}: HR@20 x{hr:.4f}, MRR@20 x{mrr:.4f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"phase": args.phase, "settings": asdict(settings), "chunk": args.chunk, "seconds": seconds,
                  "publish_every_steps": args.publish_every_steps, "resume_on_publish": args.resume_on_publish,
                  "learn_seconds": dict(result.learn_seconds), "answer_seconds": dict(result.answer_seconds),
                  "judged": judged_count, "checkpoint": checkpoint.version, "metrics": summaries}
        args.out.write_text(json.dumps(report, indent=2) + "\n")


def _fit_valid_sessions(train_clicks: list[LoggedClick]) -> tuple[set[str], set[str]]:
    """The protocol's split of the train file: latest VALID_FRACTION of sessions by end time validate."""
    by_end = sorted(sessions_of(train_clicks), key=lambda s: s.end_ts)
    n_valid = _tail_count(len(by_end), VALID_FRACTION)
    return {s.session_id for s in by_end[: len(by_end) - n_valid]}, {s.session_id for s in by_end[len(by_end) - n_valid :]}


def _head_knn(spec: str) -> KnnParams:
    """`--head-knn` in bench/knn_tuning.py's --start spelling, else the preset's (presets.CONTEXTGNN_KNN), else the settings'."""
    default = preset("default").knn or knn_params(load_settings())
    return with_spec(default, spec) if spec else default


def _session_table(flag: str | None) -> bool | None:
    """`--session-table on|off`, None when not given (the preset decides)."""
    return None if flag is None else flag == "on"


def _warm_checkpoint(train_clicks: list[LoggedClick], test_clicks: list[LoggedClick], max_train_seconds: float, seed: int,
                     head_knn: KnnParams, session_table: bool | None = None) -> Checkpoint:
    """The warm-up model, cached per training cap, seed, head kNN parameters and session table (None: the preset's)."""
    session_table = preset("default").session_cooccurrence if session_table is None else session_table
    tables = "session" if session_table else "nosession"
    path = REPORTS / f"warm-default-{max_train_seconds:.0f}s-seed{seed}-knn{head_knn.digest}-{tables}.pt"
    if path.exists():
        return Checkpoint.load(path)
    from streamrec.models.train import train_checkpoint

    split = session_split(train_clicks, test_clicks)
    checkpoint = train_checkpoint("default", split, device="cpu", seed=seed, knn=head_knn, max_train_seconds=max_train_seconds,
                                  session_cooccurrence=session_table)
    print(f"warm-up model: kNN parameters {checkpoint.config.knn}, {checkpoint.metrics}", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(path)
    return checkpoint


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=("valid", "test"), default="test")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--chunk", type=int, default=32, help="clicks answered before the competitors learn them")
    parser.add_argument("--max-train-seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head-knn", default="", help="the warm-up model's head kNN parameters instead of the preset's: "
                        "window,backward_weight,max_neighbours,recency_decay,idf,repeat")
    parser.add_argument("--skip-test-clicks", type=int, default=0,
                        help="--phase test: the test file's first N clicks are learned, not judged (the streaming bench "
                             "sends its first --latency-clicks for the latency A/B and judges the rest)")
    parser.add_argument("--session-table", choices=("on", "off"), default=None,
                        help="the warm-up model with or without the head's session table (default: the preset's "
                             "ModelConfig.session_cooccurrence)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--publish-every-steps", type=int, default=0, help="snapshot (new distillation teacher) every N steps")
    parser.add_argument("--resume-on-publish", action="store_true", help="restart the learner from every snapshot")
    defaults = OnlineSettings()
    for f in fields(OnlineSettings):
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(getattr(defaults, f.name)), default=getattr(defaults, f.name))
    return parser.parse_args()


if __name__ == "__main__":
    main()
