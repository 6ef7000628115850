"""Continual vs frozen vs online kNN, prequential on YooChoose-100k, pure torch, no Kafka.

    .venv/bin/python bench/continual_offline.py --phase valid [--lr 1e-4 --replay-mix 0.5 ...]   # tuning
    .venv/bin/python bench/continual_offline.py --phase test                                       # report

Warm start: the `default` preset trained on the train file minus its latest 10% of sessions
(the protocol's validation part, state/clicklog/protocols.py) with a `--max-train-seconds` cap;
cached under reports/continual/ and reused. Then the stream, clicks in event-time order, in
chunks of `--chunk` clicks: every competitor answers each click that has an earlier click in
its session (top 20, judged against the click) and then learns the chunk (models/online/prequential.py):

- continual: ContinualLearner (models/online) from the warm checkpoint, one step per micro-batch;
- tables-only: the same learner with `learn_weights=False`: the warm-up weights, fed the same
             streamed tables and new-item rows (what the gradient steps add beyond counting);
- frozen:    the warm checkpoint behind NeuralScorer, never updated (no kNN fallback);
- sknn:      the online kNN (models/knn.py, ScoringSettings.sknn_*), fitted on the same training
             sessions and fed the same stream through `observe`.

--phase valid streams the validation sessions' clicks (judged): online settings are chosen
here. --phase test streams the validation clicks first (learned, not judged: they precede the
test file in time) and then the test file (judged). HR@20 and MRR@20 by state/ranking_metrics.RankingMetrics,
and for the continual model against each other competitor the paired difference with its 95%
bootstrap interval over sessions (state/paired.py).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import paths
import torch
from knn_tuning import with_spec
from paths import DATA

from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.knn import knn_params
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.prequential import Competitor, Continual, Frozen, Observing, PrequentialResult, prequential
from streamrec.models.presets import preset
from streamrec.models.registry import build_sknn
from streamrec.models.serving import NeuralScorer
from streamrec.state.clicklog.formats import read_log
from streamrec.state.clicklog.protocols import VALID_FRACTION, LoggedSession, session_split, sessions_of, split_by_end
from streamrec.state.clicklog.types import LoggedClick
from streamrec.state.knn_params import KnnParams
from streamrec.state.paired import PairedDifference, paired_differences

REPORTS = paths.REPORTS / "continual"


def main() -> None:
    args = _arguments()
    settings = online_settings(args)
    train_clicks = read_log(args.data / "yoochoose-100k.train.tsv", "yoochoose")
    test_clicks = read_log(args.data / "yoochoose-100k.test.tsv", "yoochoose")
    fit_sessions, valid_ids = fit_and_validation(train_clicks)
    checkpoint = warm_checkpoint(train_clicks, test_clicks, args.max_train_seconds, args.seed, head_knn(args.head_knn),
                                 session_table=session_table_flag(args.session_table), preset_name=args.preset)
    valid_stream = [c for c in train_clicks if c.session_id in valid_ids]
    if args.phase == "valid":
        stream, judged = valid_stream, [True] * len(valid_stream)
    else:
        stream = valid_stream + test_clicks
        judged = [False] * len(valid_stream) + [i >= args.skip_test_clicks for i in range(len(test_clicks))]
    competitors = standard_competitors(checkpoint, fit_sessions, settings, args.seed, args.publish_every_steps,
                                       args.resume_on_publish)
    continual = competitors["continual"]
    assert isinstance(continual, Continual)
    started = time.perf_counter()
    result = prequential(stream, competitors, args.chunk, judged)
    seconds = time.perf_counter() - started
    print(f"phase {args.phase}: {result.clicks:,} clicks streamed, {result.metrics['continual'].count:,} judged, "
          f"{seconds:.0f} s wall, {continual.steps} steps, {continual.snapshots} snapshots, "
          f"{len(continual.learner.vocab) - 1:,} items, capacity {continual.learner.model.num_items:,}")
    report = print_outcome(result, continual, args.chunk)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report.update({"phase": args.phase, "settings": asdict(settings), "chunk": args.chunk, "seconds": seconds,
                       "publish_every_steps": args.publish_every_steps, "resume_on_publish": args.resume_on_publish,
                       "checkpoint": checkpoint.version})
        args.out.write_text(json.dumps(report, indent=2) + "\n")


def standard_competitors(checkpoint: Checkpoint, fit_sessions: Sequence[LoggedSession], settings: OnlineSettings,
                         seed: int, publish_every_steps: int = 0,
                         resume_on_publish: bool = False) -> dict[str, Competitor]:
    """The four competitors of every continual bench, in report order: continual, tables-only, frozen, sknn.

    All start from `checkpoint`; the online kNN (the settings' parameters, in memory) is fitted on
    `fit_sessions`, the sessions the warm-up model was trained on."""
    knn = build_sknn(load_settings(), persist=False)
    knn.fit([s.items for s in fit_sessions])
    continual = Continual(ContinualLearner(checkpoint, settings, device="cpu", seed=seed), publish_every_steps,
                          resume_on_publish)
    tables_only = ContinualLearner(checkpoint, replace(settings, learn_weights=False), device="cpu", seed=seed)
    return {
        "continual": continual,
        "tables-only": Continual(tables_only),
        "frozen": Frozen(NeuralScorer(checkpoint, device="cpu")),
        "sknn": Observing(knn),
    }


def paired_against_continual(result: PrequentialResult) -> list[PairedDifference]:
    """continual - each other competitor, HR@20 and MRR@20, 95% intervals over sessions."""
    others = [name for name in result.metrics if name != "continual"]
    return paired_differences(result.metrics, pairs=[("continual", other) for other in others])


def print_outcome(result: PrequentialResult, continual: Continual, chunk: int) -> dict[str, Any]:
    """Print each competitor's figures and the paired differences; return them as a report dict."""
    summaries = {name: metrics.summary() for name, metrics in result.metrics.items()}
    print(f"{'model':<12} {'HR@20':>8} {'MRR@20':>8} {'answer s':>9} {'learn s':>8}")
    for name, summary in summaries.items():
        print(f"{name:<12} {summary['HR@20']:>8.4f} {summary['MRR@20']:>8.4f} "
              f"{result.answer_seconds[name]:>9.1f} {result.learn_seconds[name]:>8.1f}")
    steps = max(continual.steps, 1)
    print(f"continual learning: {1000 * result.learn_seconds['continual'] / steps:.1f} ms per step "
          f"(add + step + table refresh, {chunk} clicks per chunk, torch threads {torch.get_num_threads()})")
    paired = paired_against_continual(result)
    for p in paired:
        print(f"{p.a} - {p.b:<12} {p.metric:<7} {p.diff:+.4f} {p.interval_text}  {p.verdict}")
    return {"judged": result.metrics["continual"].count, "metrics": summaries,
            "learn_seconds": dict(result.learn_seconds), "answer_seconds": dict(result.answer_seconds),
            "paired": [p.to_dict() for p in paired]}


def fit_and_validation(train_clicks: list[LoggedClick]) -> tuple[list[LoggedSession], set[str]]:
    """The protocol's cut of the train file (its latest VALID_FRACTION of sessions validate): the sessions the
    warm-up model fits, in stream order (the order the kNN is fed them), and the validation sessions' ids."""
    sessions = sessions_of(train_clicks)
    _, valid = split_by_end(sessions, VALID_FRACTION)
    valid_ids = {s.session_id for s in valid}
    return [s for s in sessions if s.session_id not in valid_ids], valid_ids


def head_knn(spec: str) -> KnnParams:
    """`--head-knn` in bench/knn_tuning.py's --start spelling, else the preset's (presets.CONTEXTGNN_KNN), else
    the settings'."""
    default = preset("default").knn or knn_params(load_settings())
    return with_spec(default, spec) if spec else default


def session_table_flag(flag: str | None) -> bool | None:
    """`--session-table on|off`, None when not given (the preset decides)."""
    return None if flag is None else flag == "on"


def warm_checkpoint(train_clicks: list[LoggedClick], test_clicks: list[LoggedClick], max_train_seconds: float,
                     seed: int, knn: KnnParams, session_table: bool | None = None,
                     preset_name: str = "default") -> Checkpoint:
    """The warm-up model of `preset_name` with the head kNN parameters, training cap and session table (None: the
    preset's), cached by seed and the whole config's digest (so a changed preset retrains)."""
    session_table = preset(preset_name).session_cooccurrence if session_table is None else session_table
    config = preset(preset_name, knn=knn, session_cooccurrence=session_table, max_train_seconds=max_train_seconds)
    path = REPORTS / f"warm-{preset_name}-{config.digest}-seed{seed}.pt"
    if path.exists():
        return Checkpoint.load(path)
    from streamrec.models.train import train_checkpoint

    split = session_split(train_clicks, test_clicks)
    checkpoint = train_checkpoint(preset_name, split, device="cpu", seed=seed, knn=knn,
                                  max_train_seconds=max_train_seconds, session_cooccurrence=session_table)
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
    parser.add_argument("--head-knn", default="",
                        help="the warm-up model's head kNN parameters instead of the preset's: "
                             "window,backward_weight,max_neighbours,recency_decay,idf,repeat")
    parser.add_argument("--skip-test-clicks", type=int, default=0,
                        help="--phase test: the test file's first N clicks are learned, not judged (the streaming "
                             "bench sends its first --latency-clicks for the latency A/B and judges the rest)")
    parser.add_argument("--preset", default="default", help="the warm-up model's preset (default: `default`)")
    parser.add_argument("--session-table", choices=("on", "off"), default=None,
                        help="the warm-up model with or without the head's session table (default: the preset's "
                             "ModelConfig.session_cooccurrence)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--publish-every-steps", type=int, default=0,
                        help="snapshot (new distillation teacher) every N steps")
    parser.add_argument("--resume-on-publish", action="store_true", help="restart the learner from every snapshot")
    add_online_arguments(parser)
    return parser.parse_args()


def add_online_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per OnlineSettings field (`--lr`, `--distillation-weight`, ...), defaulting to the chosen values."""
    defaults = OnlineSettings()
    for f in fields(OnlineSettings):
        default = getattr(defaults, f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=default,
                            type=_on_off if isinstance(default, bool) else type(default))


def _on_off(text: str) -> bool:
    """A boolean flag's value (`bool("off")` would be True)."""
    if text.lower() in ("on", "true", "1", "yes"):
        return True
    if text.lower() in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def online_settings(args: argparse.Namespace) -> OnlineSettings:
    """The OnlineSettings the flags of `add_online_arguments` name."""
    return OnlineSettings(**{f.name: getattr(args, f.name) for f in fields(OnlineSettings)})


if __name__ == "__main__":
    main()
