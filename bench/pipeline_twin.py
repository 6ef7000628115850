"""The offline twin of a `bench/continual.py` run: same warm-up model, same logs, no Kafka.

    .venv/bin/python bench/pipeline_twin.py --run reports/continual-diginetica --format yoochoose \\
        --warm /tmp/period0.tsv --dataset /tmp/period1.tsv --limit 15000 --skip 2000

Why: when the streaming bench's continual model ranks worse than the offline learner, this says
whether the learner or the pipeline (trainer, published versions, serving tables) is the cause. The
run's `base.pt` (its warm-up model) starts bench/continual_offline.py's four competitors, the kNN
fitted on the sessions the model was fitted on; the warm log's rest (its validation tail, which the
streaming bench's trainer learns before the judged stream) is streamed unjudged, then the judged
log's first `--limit` clicks, the first `--skip` unjudged (the streaming bench's latency A/B).
Prequential in 32-click chunks; paired 95% intervals over sessions.

`--resume-after-warm` adds two copies of the continual learner that restart once, from their own
snapshot, when the warm log's rest is learned (as the streaming bench's trainer does between its warm
phase and the judged stream): `resumed` distils towards the warm-up model afterwards, as a resumed
trainer does (`ContinualLearner.resume(start=...)`); `resumed-unanchored` towards the snapshot, as it
did before that fix.

`--served-every N` adds the pipeline's serving path without Kafka: `continual-served` answers from the
continual learner's latest snapshot (taken every N clicks, as the trainer publishes) through
NeuralScorer, whose tables count every click between snapshots and re-count on each swap
(models/online/serving_tables.py, as a scoring stage following model-updates does), and
`tables-served` is the warm-up model behind NeuralScorer learning its tables the same way (the
streaming bench's tables-only shadow). If they lose what the pipeline loses, the serving path is the cause.

`--warm-flat-out` learns the warm log's rest as one chunk (every competitor adds all of it, then steps
through it), as the streaming bench's trainer reads that part, replayed flat out, in one go: how a
trainer catching up on a backlog learns.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from continual import learned_split
from continual_offline import print_outcome, standard_competitors

from streamrec.config.settings import UpdatesSettings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.device import MAX_TORCH_THREADS
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.prequential import Competitor, Continual, Frozen, Prequential
from streamrec.models.online.settings import StreamExample
from streamrec.models.serving import NeuralScorer
from streamrec.state.clicklog.formats import read_log
from streamrec.state.clicklog.protocols import sessions_of
from streamrec.state.clicklog.types import LoggedClick


class ResumedOnce(Continual):
    """The continual learner, restarted from its own snapshot after `after` examples."""

    def __init__(self, learner: ContinualLearner, after: int, start: Checkpoint | None) -> None:
        super().__init__(learner)
        self.after, self.start, self.seen = after, start, 0

    def learn(self, examples: Sequence[StreamExample]) -> None:
        super().learn(examples)
        before, self.seen = self.seen, self.seen + len(examples)
        if before < self.after <= self.seen:
            self.learner = ContinualLearner.resume(self.learner.snapshot({}), self.learner.settings,
                                                   device=str(self.learner.device), start=self.start)


def served(checkpoint: Checkpoint) -> NeuralScorer:
    """`checkpoint` as a following scoring stage serves it: its tables learn every observed click."""
    scorer = NeuralScorer(checkpoint, device="cpu")
    scorer.learn_tables(OnlineSettings().row_entries_cap, UpdatesSettings().table_buffer_clicks)
    return scorer


class Served(Frozen):
    """A NeuralScorer whose tables count every click; with a learner, swapped to its snapshot every `every` clicks."""

    def __init__(self, checkpoint: Checkpoint, learner: ContinualLearner | None = None, every: int = 0) -> None:
        super().__init__(served(checkpoint))
        self.continual = Continual(learner) if learner is not None else None
        self.every, self.since, self.position, self.swaps = every, 0, 0, 0

    def learn(self, examples: Sequence[StreamExample]) -> None:
        if self.continual is not None:
            self.continual.learn(examples)
        positions = [(0, self.position + n) for n in range(len(examples))]
        self.position += len(examples)
        scorer = self.scorer
        assert isinstance(scorer, NeuralScorer)
        scorer.observe_at([(*e.session_items, e.target) for e in examples], positions)
        self.since += len(examples)
        if self.continual is not None and self.since >= self.every:
            fresh = served(self.continual.learner.snapshot({}))
            assert fresh.tables is not None and scorer.tables is not None
            fresh.tables.take_over(scorer.tables, {0: self.position})
            self.scorer, self.since, self.swaps = fresh, 0, self.swaps + 1


class Recording:
    """A competitor whose answers are kept in the order asked: the n-th is the n-th judged click with an earlier
    click in its session."""

    def __init__(self, inner: Competitor) -> None:
        self.inner = inner
        self.answers: list[list[str]] = []

    def answer(self, sessions: Sequence[Sequence[str]]) -> list[list[str]]:
        answers = self.inner.answer(sessions)
        self.answers.extend(answers)
        return answers

    def learn(self, examples: Sequence[StreamExample]) -> None:
        self.inner.learn(examples)


def write_answers(path: Path, recorded: dict[str, Recording], stream: Sequence[LoggedClick], judged: Sequence[bool],
                  skip: int) -> None:
    """One JSON line per answer, keyed like bench/continual.py --answers: the judged phase's click index."""
    seen: set[str] = set()
    asked: list[int] = []
    for position, click in enumerate(stream):
        if judged[position] and click.session_id in seen:
            asked.append(position)
        seen.add(click.session_id)
    with gzip.open(path, "wt") as lines:
        for name, competitor in recorded.items():
            for position, items in zip(asked, competitor.answers, strict=True):
                lines.write(json.dumps({"index": position - skip, "scorer": name, "items": items}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="the bench/continual.py --out folder (its base.pt)")
    parser.add_argument("--warm", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--format", default="yoochoose")
    parser.add_argument("--limit", type=int, default=0, help="the judged log's first N clicks (0: all)")
    parser.add_argument("--skip", type=int, default=0, help="of those, the first N are learned, not judged")
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume-after-warm", action="store_true",
                        help="add the learner restarted once after the warm log's rest, anchored and not")
    parser.add_argument("--served-every", type=int, default=0,
                        help="> 0: add continual-served and tables-served, the learner's snapshot every N clicks")
    parser.add_argument("--answers", type=Path, help="write every judged answer here (JSON lines, gzip)")
    parser.add_argument("--warm-flat-out", action="store_true",
                        help="learn the warm log's rest as one backlog, as the streaming bench's trainer does")
    args = parser.parse_args()
    torch.set_num_threads(min(MAX_TORCH_THREADS, torch.get_num_threads()))
    warm = read_log(args.warm, args.format)
    main_log = read_log(args.dataset, args.format)
    main_log = main_log[: args.limit] if args.limit else main_log
    fit, rest = learned_split(warm, args.format)
    checkpoint = Checkpoint.load(args.run / "base.pt")
    # as bench/continual.py's trainer: no example of the warm backlog skips its gradient step
    settings = replace(OnlineSettings(), max_pending_examples=max(OnlineSettings().max_pending_examples, len(warm)))
    competitors = standard_competitors(checkpoint, sessions_of(fit), settings, args.seed)
    if args.resume_after_warm:
        for name, start in (("resumed", checkpoint), ("resumed-unanchored", None)):
            learner = ContinualLearner(checkpoint, settings, device="cpu", seed=args.seed)
            competitors[name] = ResumedOnce(learner, len(rest), start)
    if args.served_every:
        learner = ContinualLearner(checkpoint, settings, device="cpu", seed=args.seed)
        competitors["continual-served"] = Served(checkpoint, learner, args.served_every)
        competitors["tables-served"] = Served(checkpoint)
    recorded = {name: Recording(competitor) for name, competitor in competitors.items()} if args.answers else {}
    started = time.perf_counter()
    run = Prequential({**competitors, **recorded}, len(rest) if args.warm_flat_out else args.chunk)
    run.feed(rest, [False] * len(rest))
    run.chunk = args.chunk
    judged = [i >= args.skip for i in range(len(main_log))]
    run.feed(main_log, judged)
    result = run.result
    if args.answers:
        write_answers(args.answers, recorded, rest + main_log, [False] * len(rest) + judged, len(rest) + args.skip)
    print(f"{len(rest):,} warm clicks learned first, {sum(judged):,} judged, {time.perf_counter() - started:.0f} s")
    continual = competitors["continual"]
    assert isinstance(continual, Continual)
    print_outcome(result, continual, args.chunk)


if __name__ == "__main__":
    main()
