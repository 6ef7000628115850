"""Prequential ("test-then-train") evaluation of learners on a click stream, offline.

Clicks arrive in event-time order in chunks of `chunk` clicks. For each chunk every
competitor first answers every click that has an earlier click in its session (the query is
the session so far, the truth the click), and only then learns the chunk, so no answer has
seen the click it is judged on (Gama et al. 2013, prequential error). Every competitor sees
the same stream on the same schedule, so their figures compare directly.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streamrec.models.online.learner import ContinualLearner
from streamrec.models.online.settings import StreamExample
from streamrec.models.scorer import Query, Scorer
from streamrec.state.clicklog.types import LoggedClick
from streamrec.state.ranking_metrics import CUTOFFS, MRR_CUTOFF, RankingMetrics

TOP_K = max(*CUTOFFS, MRR_CUTOFF)


class Competitor(Protocol):
    def answer(self, sessions: Sequence[Sequence[str]]) -> list[list[str]]: ...

    def learn(self, examples: Sequence[StreamExample]) -> None: ...


@dataclass
class Continual:
    """The continual learner: answers with its live weights, learns by add + one step per micro-batch."""

    learner: ContinualLearner
    publish_every_steps: int = 0
    """> 0: take a snapshot every this many steps (it becomes the distillation teacher, as a published version)."""
    resume_on_publish: bool = False
    """With publishing: continue from each snapshot via `ContinualLearner.resume`, as a trainer restarted
    after every publication would (statistics rebuilt from the snapshot's tables, reservoir empty)."""
    steps: int = 0
    snapshots: int = 0

    def answer(self, sessions: Sequence[Sequence[str]]) -> list[list[str]]:
        return self.learner.recommend(sessions, TOP_K)

    def learn(self, examples: Sequence[StreamExample]) -> None:
        self.learner.add(examples)
        while self.learner.step() is not None:
            self.steps += 1
            if self.publish_every_steps and self.steps % self.publish_every_steps == 0:
                snapshot = self.learner.snapshot({"steps": self.steps})
                self.snapshots += 1
                if self.resume_on_publish:
                    self.learner = ContinualLearner.resume(
                        snapshot, self.learner.settings, device=str(self.learner.device)
                    )


@dataclass
class Frozen:
    """A Scorer that does not learn (a batch-trained checkpoint behind NeuralScorer, without fallback)."""

    scorer: Scorer

    def answer(self, sessions: Sequence[Sequence[str]]) -> list[list[str]]:
        return [[item for item, _ in ranked] for ranked in self.scorer.recommend([Query(s) for s in sessions], TOP_K)]

    def learn(self, examples: Sequence[StreamExample]) -> None:
        return None


@dataclass
class Observing(Frozen):
    """A Scorer that learns online through `observe` (the kNN), fed the session so far after each click."""

    def learn(self, examples: Sequence[StreamExample]) -> None:
        self.scorer.observe([(*e.session_items, e.target) for e in examples])


@dataclass
class PrequentialResult:
    metrics: dict[str, RankingMetrics] = field(default_factory=dict)
    clicks: int = 0
    answer_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    learn_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Wall-clock time each competitor spent answering / learning (this host, this load)."""


@dataclass
class Prequential:
    """A prequential run fed in parts: what `prequential` does, resumable between feeds.

    Everything it holds (the competitors, the tallies, every session so far) pickles, so a long stream
    (bench/continual_periods.py: hours of real drift) is saved after each part and resumed from there."""

    competitors: dict[str, Competitor]
    chunk: int
    result: PrequentialResult = field(init=False)
    sessions: dict[str, list[str]] = field(default_factory=dict)
    """The clicks of every session so far (the query of its next click), across feeds."""

    def __post_init__(self) -> None:
        self.result = PrequentialResult({name: RankingMetrics() for name in self.competitors})

    def feed(self, clicks: Iterable[LoggedClick], judged: Sequence[bool] | None = None) -> None:
        """Stream `clicks` (event-time order, after every click fed before); `judged[i]` False: learn click i without
        judging it. Tallies are keyed by stream position across feeds. The last partial chunk runs too, so
        nothing is pending between feeds."""
        batch: list[tuple[StreamExample, bool, int, str]] = []
        for offset, click in enumerate(clicks):
            prefix = self.sessions.setdefault(click.session_id, [])
            judge = judged is None or judged[offset]
            batch.append((StreamExample(tuple(prefix), click.item_id, click.ts), judge, self.result.clicks,
                          click.session_id))
            prefix.append(click.item_id)
            self.result.clicks += 1
            if len(batch) >= self.chunk:
                _run_chunk(batch, self.competitors, self.result)
                batch = []
        if batch:
            _run_chunk(batch, self.competitors, self.result)


def prequential(
    clicks: Iterable[LoggedClick], competitors: dict[str, Competitor], chunk: int, judged: Sequence[bool] | None = None
) -> PrequentialResult:
    """Stream `clicks` (event-time order) through every competitor; `judged[i]` False: learn click i without judging
    it."""
    run = Prequential(competitors, chunk)
    run.feed(clicks, judged)
    return run.result


def _run_chunk(
    batch: list[tuple[StreamExample, bool, int, str]], competitors: dict[str, Competitor], result: PrequentialResult
) -> None:
    """Every competitor answers the chunk's judged clicks (each kept under its stream position and
    session, for paired intervals: state/paired.py), then learns the whole chunk."""
    asked = [
        (example, position, session) for example, judge, position, session in batch if judge and example.session_items
    ]
    examples = [example for example, *_ in batch]
    for name, competitor in competitors.items():
        if asked:
            began = time.perf_counter()
            answers = competitor.answer([e.session_items for e, _, _ in asked])
            result.answer_seconds[name] += time.perf_counter() - began
            for (example, position, session), ranked in zip(asked, answers):
                result.metrics[name].add(ranked, example.target, key=position, group=session)
        began = time.perf_counter()
        competitor.learn(examples)
        result.learn_seconds[name] += time.perf_counter() - began
