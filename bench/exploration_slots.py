"""Would reserving the list's last slots for items outside the session's co-occurrence rows lift HR@20?

    .venv/bin/python bench/exploration_slots.py [--preset default] [--slots 0,1,2,3,4,6,8]

The fused model ranks a "non-local" item (in no co-occurrence row of the session's items, and not
clicked in it) by its two-tower score alone, and local items carry most of the target mass, so
non-local items rarely reach the top 20 (bench/hit_breakdown.py). This bench asks whether the
model's best non-local items are worth a few of the 20 slots: the continual model of
bench/hit_breakdown.py answers the YooChoose validation stream (prequential, as there) with its
top 100; for each r the list is re-cut as its first 20 - r items plus the next r non-local items
in its own order (among non-local items the fused order is the two-tower order), and judged
against r = 0 with paired 95% intervals over sessions. Local sets are read from the learner's live
tables at the time of each answer. Validation only: this chooses nothing on the test file.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from hit_breakdown import add_validation_arguments, judged_clicks, target_kind, validation_run

from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.prequential import Continual, Observing, prequential
from streamrec.models.online.settings import StreamExample
from streamrec.state.paired import paired_difference
from streamrec.state.ranking_metrics import RankingMetrics

DEPTH = 100
"""How deep each answer is recorded: the reserved slots are filled from it."""


class LocalAware:
    """The continual model, recording each answer's top DEPTH and the session's local item set at that time."""

    def __init__(self, learner: ContinualLearner) -> None:
        self.inner = Continual(learner)
        self.answers: list[list[str]] = []
        self.local: list[set[str]] = []

    def answer(self, sessions: Sequence[Sequence[str]]) -> list[list[str]]:
        learner = self.inner.learner
        answers = learner.recommend(sessions, DEPTH)
        head = learner.model.head
        assert head is not None, "a preset with the ContextGNN head (its tables define what is local)"
        tables = head.tables()
        for session in sessions:
            rows = torch.tensor(learner.vocab.encode_known(session), dtype=torch.long)
            local = set(session)
            for index, weight in zip(tables[::2], tables[1::2]):
                chosen = index[rows][weight[rows] > 0]
                local.update(learner.vocab.item(int(r)) for r in chosen.unique().tolist())
            self.local.append(local)
        self.answers += answers
        return [a[:20] for a in answers]

    def learn(self, examples: Sequence[StreamExample]) -> None:
        self.inner.learn(examples)


def recut(ranked: Sequence[str], local: set[str], slots: int, k: int = 20) -> list[str]:
    """The first k - slots items, then the next `slots` non-local ones in order (topped up in order if short)."""
    head = list(ranked[: k - slots])
    explore = [item for item in ranked[k - slots:] if item not in local][:slots]
    rest = [item for item in ranked[k - slots:] if item not in explore]
    return (head + explore + rest)[:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_validation_arguments(parser)
    parser.add_argument("--slots", default="0,1,2,3,4,6,8")
    args = parser.parse_args()
    slot_counts = [int(s) for s in args.slots.split(",")]
    run = validation_run(args)
    checkpoint = run.checkpoint
    probe = LocalAware(ContinualLearner(checkpoint, OnlineSettings(), device="cpu", seed=args.seed))
    prequential(run.stream, {"continual": probe, "sknn": Observing(run.knn)}, 32)  # type: ignore[dict-item]
    judged = judged_clicks(run.stream)
    head = checkpoint.build_model().head
    warm_tables = head.tables()[::2] if head is not None else ()
    kinds = [target_kind(checkpoint, warm_tables, click.prefix, click.target) for click in judged]
    tallies: dict[int, RankingMetrics] = {}
    print(f"validation, preset {args.preset}, seed {args.seed}: {len(judged):,} judged clicks "
          f"(non-local by the warm-up tables: {kinds.count('non-local'):,})")
    print(f"{'slots':>5} {'HR@20':>8} {'MRR@20':>8} {'non-local HR@20':>16}  minus r=0: HR@20, MRR@20")
    for slots in slot_counts:
        tally = RankingMetrics()
        nonlocal_hits = 0
        for position, (click, ranked, local) in enumerate(zip(judged, probe.answers, probe.local)):
            answer = recut(ranked, local, slots)
            tally.add(answer, click.target, key=position, group=click.session_id)
            nonlocal_hits += kinds[position] == "non-local" and click.target in answer
        tallies[slots] = tally
        summary = tally.summary()
        line = (f"{slots:>5} {summary['HR@20']:>8.4f} {summary['MRR@20']:>8.4f} "
                f"{nonlocal_hits / max(kinds.count('non-local'), 1):>16.4f}")
        if slots != slot_counts[0]:
            diffs = [paired_difference(tally, tallies[slot_counts[0]], m, (f"r={slots}", f"r={slot_counts[0]}"))
                     for m in ("HR@20", "MRR@20")]
            line += "  " + ", ".join(f"{d.diff:+.4f} {d.interval_text}" for d in diffs)
        print(line, flush=True)


if __name__ == "__main__":
    main()
