"""Where HR@20 is won and lost: the continual model and the online kNN by kind of target.

    .venv/bin/python bench/hit_breakdown.py --data ../shared/data [--seed 0] [--session-table off] [--preset NAME]

The validation phase of bench/continual_offline.py (YooChoose-100k, the train file's latest 10% of
sessions, prequential), with every judged click classed by its target against the warm-up model's
tables: `repeat` (already in the session), `local` (not in it, but in a co-occurrence row of one of
its items: the head scores it pair-wise), `non-local` (only the two-tower score can rank it).
Validation only: this chooses nothing on the test file.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import continual_offline as offline
from paths import DATA
from torch import Tensor

from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.prequential import Continual, Observing, prequential
from streamrec.models.registry import build_sknn
from streamrec.models.scorer import Scorer
from streamrec.state.clicklog.formats import read_log
from streamrec.state.clicklog.types import LoggedClick

KINDS = ("repeat", "local", "non-local")


class Recorded:
    """A competitor whose top-20 answers are kept, in the order they were asked."""

    def __init__(self, inner: Continual | Observing) -> None:
        self.inner = inner
        self.answers: list[list[str]] = []

    def answer(self, sessions: Sequence[Sequence[str]]) -> list[list[str]]:
        answers = self.inner.answer(sessions)
        self.answers += answers
        return answers

    def learn(self, examples: Sequence[object]) -> None:
        self.inner.learn(examples)  # type: ignore[arg-type]


def target_kind(checkpoint: Checkpoint, tables: Sequence[Tensor], prefix: Sequence[str], target: str) -> str:
    """repeat / local / non-local, by the warm-up model's neighbour tables (`tables`: their index halves)."""
    if target in prefix:
        return "repeat"
    rows = [r for r in (checkpoint.vocab.index(i) for i in prefix) if r > 0]
    local = {int(v) for table in tables for v in table[rows].flatten().tolist()}
    return "local" if checkpoint.vocab.index(target) in local else "non-local"


class JudgedClick(NamedTuple):
    """A click the prequential loop judges: its session, the session so far, and the clicked item."""

    session_id: str
    prefix: list[str]
    target: str


def judged_clicks(stream: Sequence[LoggedClick]) -> list[JudgedClick]:
    """Every click with an earlier click in its session, in stream order (the order competitors answer them)."""
    sessions: dict[str, list[str]] = {}
    judged = []
    for click in stream:
        prefix = sessions.setdefault(click.session_id, [])
        if prefix:
            judged.append(JudgedClick(click.session_id, list(prefix), click.item_id))
        prefix.append(click.item_id)
    return judged


@dataclass(frozen=True)
class ValidationRun:
    """bench/continual_offline.py's validation phase: the warm-up model, the stream it has not learned (the train
    file's latest sessions), and the online kNN fitted on what the model was trained on."""

    checkpoint: Checkpoint
    stream: list[LoggedClick]
    knn: Scorer


def add_validation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train-seconds", type=float, default=180.0)
    parser.add_argument("--preset", default="default", help="the warm-up model's preset (default: `default`)")
    parser.add_argument("--session-table", choices=("on", "off"), default=None,
                        help="the warm-up model with or without the head's session table (default: the preset's)")


def validation_run(args: argparse.Namespace) -> ValidationRun:
    """The run `add_validation_arguments`' flags name (the warm-up model is cached, see continual_offline)."""
    train = read_log(args.data / "yoochoose-100k.train.tsv", "yoochoose")
    test = read_log(args.data / "yoochoose-100k.test.tsv", "yoochoose")
    fit, valid_ids = offline.fit_and_validation(train)
    checkpoint = offline.warm_checkpoint(train, test, args.max_train_seconds, args.seed, offline.head_knn(""),
                                         session_table=offline.session_table_flag(args.session_table),
                                         preset_name=args.preset)
    knn = build_sknn(load_settings(), persist=False)
    knn.fit([s.items for s in fit])
    return ValidationRun(checkpoint, [c for c in train if c.session_id in valid_ids], knn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_validation_arguments(parser)
    args = parser.parse_args()
    run = validation_run(args)
    checkpoint = run.checkpoint
    learner = ContinualLearner(checkpoint, OnlineSettings(), device="cpu", seed=args.seed)
    competitors = {"continual": Recorded(Continual(learner)), "sknn": Recorded(Observing(run.knn))}
    prequential(run.stream, competitors, 32)  # type: ignore[arg-type]
    judged = judged_clicks(run.stream)
    head = checkpoint.build_model().head
    tables = head.tables()[::2] if head is not None else ()
    counts: Counter[tuple[str, str]] = Counter()
    for position, (_, prefix, target) in enumerate(judged):
        kind = target_kind(checkpoint, tables, prefix, target)
        counts[kind, "clicks"] += 1
        for name, competitor in competitors.items():
            counts[kind, name] += target in competitor.answers[position][:20]
    print(f"validation, seed {args.seed}, session table {checkpoint.config.session_cooccurrence}: "
          f"{len(judged):,} judged clicks")
    print(f"{'target':<10} {'clicks':>7} {'share':>6} {'continual HR@20':>16} {'sknn HR@20':>11}")
    for kind in KINDS:
        n = counts[kind, "clicks"]
        print(f"{kind:<10} {n:>7,} {n / len(judged):>6.1%} {counts[kind, 'continual'] / max(n, 1):>16.4f} "
              f"{counts[kind, 'sknn'] / max(n, 1):>11.4f}")
    hits = {name: [target in answers[:20] for (_, _, target), answers in zip(judged, c.answers)]
            for name, c in competitors.items()}
    both = list(zip(hits["continual"], hits["sknn"]))
    print(f"hits only the continual model has: {sum(c and not k for c, k in both)}; "
          f"only the kNN: {sum(k and not c for c, k in both)}; both: {sum(c and k for c, k in both)}")


if __name__ == "__main__":
    main()
