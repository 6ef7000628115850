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
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from continual import learned_split
from continual_offline import print_outcome, standard_competitors

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.device import MAX_TORCH_THREADS
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.prequential import Continual, prequential
from streamrec.models.online.settings import StreamExample
from streamrec.state.clicklog.formats import read_log
from streamrec.state.clicklog.protocols import sessions_of


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
    args = parser.parse_args()
    torch.set_num_threads(min(MAX_TORCH_THREADS, torch.get_num_threads()))
    warm = read_log(args.warm, args.format)
    main_log = read_log(args.dataset, args.format)
    main_log = main_log[: args.limit] if args.limit else main_log
    fit, rest = learned_split(warm, args.format)
    checkpoint = Checkpoint.load(args.run / "base.pt")
    competitors = standard_competitors(checkpoint, sessions_of(fit), OnlineSettings(), args.seed)
    if args.resume_after_warm:
        for name, start in (("resumed", checkpoint), ("resumed-unanchored", None)):
            learner = ContinualLearner(checkpoint, OnlineSettings(), device="cpu", seed=args.seed)
            competitors[name] = ResumedOnce(learner, len(rest), start)
    stream = rest + main_log
    judged = [False] * len(rest) + [i >= args.skip for i in range(len(main_log))]
    started = time.perf_counter()
    result = prequential(stream, competitors, args.chunk, judged)
    print(f"{len(rest):,} warm clicks learned first, {sum(judged):,} judged, {time.perf_counter() - started:.0f} s")
    continual = competitors["continual"]
    assert isinstance(continual, Continual)
    print_outcome(result, continual, args.chunk)


if __name__ == "__main__":
    main()
