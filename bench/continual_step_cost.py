"""What one continual-learning step costs on this host: the Adam step vs the ContextGNN table refresh.

    .venv/bin/python bench/continual_step_cost.py [--steps 100]

Uses the warm YooChoose checkpoint of bench/continual_offline.py (run that first) and feeds
micro-batches of 32 random sessions (1-5 clicks over its catalogue); times `step()` (forward,
backward, Adam; table refresh switched off) and `refresh_tables()` (rewrite of the rows those
clicks touched) separately, and prints the refresh's share of a step.
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from continual_offline import REPORTS

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online import ContinualLearner, OnlineSettings, StreamExample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--checkpoint", default=str(REPORTS / "warm-default-180s.pt"))
    args = parser.parse_args()
    checkpoint = Checkpoint.load(args.checkpoint)
    settings = OnlineSettings(table_refresh_every_steps=10**9)
    learner = ContinualLearner(checkpoint, settings)
    items, rng = checkpoint.vocab.items, random.Random(0)
    step_s = refresh_s = 0.0
    rows = 0
    for n in range(args.steps):
        batch = []
        for _ in range(settings.micro_batch_size):
            session = [items[rng.randrange(len(items))] for _ in range(rng.randint(2, 6))]
            batch.append(StreamExample(tuple(session[:-1]), session[-1], 1.0e9 + n))
        learner.add(batch)
        began = time.perf_counter()
        learner.step()
        step_s += time.perf_counter() - began
        began = time.perf_counter()
        rows += learner.refresh_tables()
        refresh_s += time.perf_counter() - began
    print(f"{args.steps} steps of {settings.micro_batch_size} examples, {checkpoint.num_rows:,} item rows, "
          f"torch threads {torch.get_num_threads()}")
    print(f"step    {1000 * step_s / args.steps:7.1f} ms")
    print(f"refresh {1000 * refresh_s / args.steps:7.1f} ms ({rows / args.steps:.0f} rows per refresh)")
    print(f"refresh / step: x{refresh_s / max(step_s, 1e-12):.3f}")


if __name__ == "__main__":
    main()
