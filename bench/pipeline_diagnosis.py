"""Where a `bench/continual.py` run loses against its offline twin: click by click, version by version.

    .venv/bin/python bench/pipeline_diagnosis.py --run reports/continual-diginetica-store \\
        --twin-answers reports/continual-diginetica-answers/twin-answers.jsonl.gz \\
        --warm /tmp/period0.tsv --dataset /tmp/period1.tsv --limit 15000 --skip 2000 [--held-out 2000]

Needs the run's `--answers` (answers.jsonl.gz) and, for the version figures, its `--keep-store`; the twin's
answers come from `bench/pipeline_twin.py --answers`. Prints, for each pair (streaming scorer, twin
competitor), MRR@20 on the same judged clicks by kind of target (a re-click of a session item or not, a
new item or not); on re-clicks, how often the session's last item is in the top 20 and a session item
ranked first; how many examples a serving version had fallen behind the click it answered; the stage's
answers against the same versions answering the same clicks without the stage's streaming tables; and
with `--held-out N`, the warm phase's last version and the run's last version against the twin's learner
at the same points (the warm tail as one backlog, then the judged log in 32-click chunks), all served
frozen on the N clicks after `--limit`, which none of them learned.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import gzip
import json
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from continual import learned_split

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.device import MAX_TORCH_THREADS
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.settings import StreamExample
from streamrec.models.scorer import Query
from streamrec.models.serving import NeuralScorer
from streamrec.state.clicklog.formats import read_log
from streamrec.state.clicklog.types import LoggedClick
from streamrec.state.ranking_metrics import metric_of_rank

PAIRS = [("default+online", "continual-served"), ("default+online", "continual"), ("default", "frozen"),
         ("default+tables", "tables-served"), ("sknn", "sknn")]
JUDGED_PHASE = "4"
"""bench/continual.py's phases: w1 warm-up (fit sessions), w2 warm-up (the rest), m3 latency A/B, m4 judged."""


def reciprocal_rank(items: Sequence[str], target: str) -> float:
    """MRR@20 of one answer, by the project's one metric implementation."""
    return metric_of_rank("MRR@20", list(items).index(target) + 1 if target in items else None)


def stage_answers(run: Path) -> dict[str, dict[int, tuple[list[str], str]]]:
    """scorer -> judged click index -> (items, model version)."""
    answers: dict[str, dict[int, tuple[list[str], str]]] = collections.defaultdict(dict)
    for line in gzip.open(run / "answers.jsonl.gz", "rt"):
        a = json.loads(line)
        m = re.search(r"-m(\d+)-(\d+)$", a["event_id"])
        if m and m.group(1) == JUDGED_PHASE:
            answers[a["scorer"]].setdefault(int(m.group(2)), (a["items"], a["version"]))
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--twin-answers", type=Path, required=True)
    parser.add_argument("--warm", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--format", default="yoochoose")
    parser.add_argument("--limit", type=int, default=15000)
    parser.add_argument("--skip", type=int, default=2000)
    parser.add_argument("--held-out", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(min(MAX_TORCH_THREADS, torch.get_num_threads()))
    warm, log = read_log(args.warm, args.format), read_log(args.dataset, args.format)
    phase = log[args.skip : args.limit]
    sessions: dict[str, list[str]] = collections.defaultdict(list)
    for click in warm + log[: args.skip]:
        sessions[click.session_id].append(click.item_id)
    query: dict[int, list[str]] = {}  # the stage's query after click i: the session including it
    following: dict[int, int] = {}  # click i -> the next click of its session (the target)
    last: dict[str, int] = {}
    for i, click in enumerate(phase):
        sessions[click.session_id].append(click.item_id)
        query[i] = list(sessions[click.session_id])
        if click.session_id in last:
            following[last[click.session_id]] = i
        last[click.session_id] = i
    known = set(Checkpoint.load(args.run / "base.pt").vocab.items)
    stage = stage_answers(args.run)
    twin: dict[str, dict[int, list[str]]] = collections.defaultdict(dict)
    for line in gzip.open(args.twin_answers, "rt"):
        a = json.loads(line)
        twin[a["scorer"]][a["index"]] = a["items"]
    by_kind: dict[str, dict[tuple[str, str], list[tuple[float, float]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    reclicks: dict[tuple[str, str], list[tuple[bool, bool, bool, bool]]] = collections.defaultdict(list)
    for i, j in following.items():
        target, prefix = phase[j].item_id, query[i]
        kinds = ["all", "re-click" if target in prefix else "not a re-click",
                 "new target" if target not in known else "known target"]
        for ours, theirs in PAIRS:
            if i not in stage[ours] or j not in twin[theirs]:
                continue
            a, b = stage[ours][i][0], twin[theirs][j]
            for kind in kinds:
                by_kind[kind][(ours, theirs)].append((reciprocal_rank(a, target), reciprocal_rank(b, target)))
            if target in prefix:
                reclicks[(ours, theirs)].append((prefix[-1] in a[:20], prefix[-1] in b[:20],
                                                 bool(a) and a[0] in prefix, bool(b) and b[0] in prefix))
    print("MRR@20 on the same judged clicks, stage vs twin")
    for kind, pairs in by_kind.items():
        print(f"  {kind}")
        for (ours, theirs), values in pairs.items():
            n = len(values)
            ours_mrr, theirs_mrr = sum(a for a, _ in values) / n, sum(b for _, b in values) / n
            print(f"    {ours:>15} {ours_mrr:.4f}  {theirs:<17} {theirs_mrr:.4f}  (n {n:,})")
    print("re-clicks: the session's last item in the top 20 / a session item ranked first, stage vs twin")
    for (ours, theirs), flags in reclicks.items():
        n = len(flags)
        share = [sum(f[k] for f in flags) / n for k in range(4)]
        print(f"    {ours:>15} vs {theirs:<17} last {share[0]:.3f} / {share[1]:.3f}"
              f"  first {share[2]:.3f} / {share[3]:.3f}")
    store = args.run / "store"
    if not store.is_dir():
        print("no store (run bench/continual.py with --keep-store for the version figures)")
        return
    versions = {json.loads(f.read_text())["version"]: f for f in sorted(store.glob("v*.json"))}
    trained = {v: json.loads(f.read_text())["examples_trained"] for v, f in versions.items()}
    served = {i: version for i, (_, version) in stage["default+online"].items() if version in versions}
    warm_examples = min(trained.values(), key=lambda n: abs(n - len(learned_split(warm, args.format)[1])))
    behind = sorted(warm_examples + args.skip + i - trained[v] for i, v in served.items())
    print(f"examples a serving version was behind the click it answered: median {behind[len(behind) // 2]}, "
          f"p90 {behind[int(0.9 * (len(behind) - 1))]}")
    by_version: dict[str, list[int]] = collections.defaultdict(list)
    for i in following:
        if i in served:
            by_version[served[i]].append(i)
    stage_sum = frozen_sum = 0.0
    for version, clicks in by_version.items():
        scorer = NeuralScorer(Checkpoint.load(versions[version].with_suffix(".ckpt")), device="cpu")
        for i, ranked in zip(clicks, scorer.recommend([Query(query[i]) for i in clicks], 20)):
            target = phase[following[i]].item_id
            stage_sum += reciprocal_rank(stage["default+online"][i][0], target)
            frozen_sum += reciprocal_rank([item for item, _ in ranked], target)
    n = sum(len(c) for c in by_version.values())
    print(f"MRR@20 on {n:,} clicks: the stage {stage_sum / n:.4f}; the same versions without its streaming tables "
          f"{frozen_sum / n:.4f}")
    if args.held_out:
        held_out(args, warm, log, versions)


def held_out(args: argparse.Namespace, warm: list[LoggedClick], log: list[LoggedClick],
             versions: dict[str, Path]) -> None:
    """The run's versions against the twin's learner at the same points, frozen, on clicks none of them learned."""
    fit, rest = learned_split(warm, args.format)
    base = Checkpoint.load(args.run / "base.pt")
    settings = dataclasses.replace(OnlineSettings(), max_pending_examples=max(OnlineSettings().max_pending_examples,
                                                                               len(warm)))
    sessions: dict[str, list[str]] = collections.defaultdict(list)
    for click in fit:
        sessions[click.session_id].append(click.item_id)

    def examples(clicks: Sequence[LoggedClick]) -> list[StreamExample]:
        out = []
        for click in clicks:
            out.append(StreamExample(tuple(sessions[click.session_id]), click.item_id, click.ts))
            sessions[click.session_id].append(click.item_id)
        return out

    learner = ContinualLearner(base, settings)
    learner.add(examples(rest))  # one backlog, as the trainer reads the warm tail replayed flat out
    while learner.step() is not None:
        pass
    after_warm = learner.snapshot({})
    learner = ContinualLearner.resume(after_warm, settings, start=base)
    judged = log[: args.limit]
    for start in range(0, len(judged), 32):
        learner.add(examples(judged[start : start + 32]))
        while learner.step() is not None:
            pass
    queries, targets = [], []
    for click in log[args.limit : args.limit + args.held_out]:
        if sessions[click.session_id]:
            queries.append(Query(list(sessions[click.session_id])))
            targets.append(click.item_id)
        sessions[click.session_id].append(click.item_id)
    ordered = list(versions.values())
    warm_version = next(f for f in ordered if json.loads(f.read_text())["examples_trained"] >= len(rest))
    for name, checkpoint in (("warm-up model", base), ("twin after the warm tail", after_warm),
                             ("run's warm-phase version", Checkpoint.load(warm_version.with_suffix(".ckpt"))),
                             ("twin at the end", learner.snapshot({})),
                             ("run's last version", Checkpoint.load(ordered[-1].with_suffix(".ckpt")))):
        ranked = NeuralScorer(checkpoint, device="cpu").recommend(queries, 20)
        rr = [reciprocal_rank([item for item, _ in r], t) for r, t in zip(ranked, targets)]
        print(f"held-out MRR@20 ({len(rr):,} clicks) {name}: {sum(rr) / len(rr):.4f}")


if __name__ == "__main__":
    main()
