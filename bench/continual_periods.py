"""Continual learning under real drift: DIGINETICA's 17 periods, prequential, every competitor on the same clicks.

    .venv/bin/python bench/continual_periods.py --judge 1-6    # validation: settings are chosen here
    .venv/bin/python bench/continual_periods.py --judge 7-16   # test: read once, after the choice

Periods 1-16 are ~970k clicks, hours on a 2-core machine: the stream is saved after every period
(SnapshotFolder) and a run resumes after the latest saved period. Every click is answered and judged,
so the two reads are the same stream: `--judge 7-16` continues the validation run, and `--judge`
only picks the periods reported.

Protocol (../shared/data/README.md, "DIGINETICA periods"): the `default` preset is trained on
period 0 only (early stopping on period 0's latest 10% of sessions, `--max-train-seconds` cap;
cached under reports/continual/); then periods 1..`--stop` are streamed in order through the four
competitors of bench/continual_offline.py (continual, tables-only, frozen twin, online kNN), each
click answered (top 20 for the session so far) before anyone learns it.

Printed and written (`--out`, default reports/continual-periods/): HR@20 and MRR@20 per period
and over all judged clicks for every competitor, the paired differences continual - other with
95% intervals over sessions (state/paired.py), and periods.png: the per-period curves with
ADER's published averages beside them. ADER (Mi et al., RecSys 2020) reports Recall@20 50.21 and
MRR@20 17.32 on these periods under its own protocol: retrain on period t-1 plus exemplars, then
test on the whole of period t (not click by click), SASRec backbone, averaged over 16 cycles; our
figures are prequential (each click judged before it is learned), so the two compare only loosely.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from continual_offline import add_online_arguments, online_settings, print_outcome, standard_competitors
from paths import DATA, REPORTS

import streamrec
from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.device import MAX_TORCH_THREADS
from streamrec.models.knn import knn_params
from streamrec.models.online import OnlineSettings
from streamrec.models.online.prequential import Continual, Prequential, PrequentialResult
from streamrec.state.clicklog.formats import read_log
from streamrec.state.clicklog.protocols import recent_split, sessions_of
from streamrec.state.clicklog.types import LoggedClick

PERIOD_ZERO_TS = 1_400_000_000.0
WEEK_S = 7 * 86_400.0
ADER_PUBLISHED = {"HR@20": 0.5021, "MRR@20": 0.1732}
"""ADER's averages over the 16 cycles on these periods (its Table, SASRec backbone; protocol in the docstring)."""


def period_of(click: LoggedClick) -> int:
    """The period a click belongs to: the file's synthetic Time starts period p at 1400000000 + p weeks."""
    return int((click.ts - PERIOD_ZERO_TS) // WEEK_S)


def periods_range(spec: str) -> range:
    """'7-16' -> range(7, 17); '3' -> range(3, 4)."""
    low, _, high = spec.partition("-")
    return range(int(low), int(high or low) + 1)


STREAM_FORMAT = 1
"""Part of a saved stream's identity: raise it when a learner default changes behaviour (streams saved under the
old default must not resume; the identity names only the settings that differ from the defaults)."""
LAST_PERIOD = 16
VALIDATION_PERIODS = range(1, 7)
"""Settings are chosen on these (../shared/data/README.md); 7-16 are read once."""
PROGRESS_CHUNKS = 320
"""Progress is printed every this many chunks within a period (~10k clicks at the default chunk)."""


@dataclass(frozen=True)
class PeriodSpan:
    """Where a period lies in the stream (positions first..end-1, the tallies' keys) and how long it took."""

    first: int
    end: int
    seconds: float

    @property
    def keys(self) -> range:
        return range(self.first, self.end)


class SnapshotFolder:
    """The stream's state after the latest finished period (every competitor, the tallies, the period spans).

    Periods 1-16 take hours on a 2-core machine; a stopped run resumes after its latest finished period.
    Every click is judged, so one stream serves both reads: the validation periods' figures do not change
    as later periods stream (no answer is ever re-scored), and `--judge 7-16` reads the same run further on.
    Only the latest snapshot is kept (each holds every competitor's weights and optimiser, ~100s of MB)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, period: int) -> Path:
        return self.folder / f"after-period-{period:02d}.pt"

    def latest(self) -> tuple[Prequential, dict[int, PeriodSpan], int] | None:
        found = sorted(self.folder.glob("after-period-*.pt"))
        if not found:
            return None
        state = torch.load(found[-1], weights_only=False)  # our own pickle, written by save() below
        return state["run"], state["spans"], state["period"]

    def save(self, period: int, run: Prequential, spans: dict[int, PeriodSpan]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.path(period).with_suffix(".partial")
        torch.save({"period": period, "run": run, "spans": spans}, partial)
        os.replace(partial, self.path(period))
        for older in self.folder.glob("after-period-*.pt"):
            if older != self.path(period):
                older.unlink()


def _stream_identity(checkpoint: Checkpoint, args: argparse.Namespace) -> str:
    """What a snapshot's stream depends on: the warm-up model, the learner's and the kNN's settings, chunk, seed,
    the teacher's refresh."""
    settings, defaults = online_settings(args), OnlineSettings()
    changed = {f.name: getattr(settings, f.name) for f in fields(OnlineSettings)
               if getattr(settings, f.name) != getattr(defaults, f.name)}  # a new field leaves old streams valid
    parts = [checkpoint.version, repr(sorted(changed.items())), repr(knn_params(load_settings())), str(args.chunk),
             str(args.seed), streamrec.__version__, str(STREAM_FORMAT)]
    if args.publish_every_steps:
        parts.append(f"publish-every-{args.publish_every_steps}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:10]


def warm_checkpoint(period_zero: list[LoggedClick], max_train_seconds: float, seed: int) -> Checkpoint:
    """The default preset trained on period 0 (its latest 10% of sessions validate), cached per config, data, cap
    and seed."""
    from streamrec.models.presets import preset

    config = preset("default")
    name = f"warm-periods0-{len(period_zero)}-default-{config.digest}-{max_train_seconds:.0f}s-seed{seed}.pt"
    path = REPORTS / "continual" / name
    if path.exists():
        return Checkpoint.load(path)
    from streamrec.models.train import train_checkpoint

    checkpoint = train_checkpoint("default", recent_split(period_zero, test_fraction=0.0), device="cpu", seed=seed,
                                  max_train_seconds=max_train_seconds)
    print(f"warm-up model on period 0: {checkpoint.metrics}", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(path)
    return checkpoint


def main() -> None:
    args = _arguments()
    source = args.data / "diginetica-periods.tsv"
    if not source.exists():
        raise SystemExit(f"no {source}: this bench needs the DIGINETICA periods file (see ../shared/data/README.md)")
    judge = periods_range(args.judge)
    stop = args.stop if args.stop is not None else judge[-1]
    if judge[0] < 1 or judge[-1] > stop or stop > LAST_PERIOD:
        raise SystemExit(f"--judge {args.judge} --stop {stop}: judged periods must lie in 1..--stop, and --stop in "
                         f"1..{LAST_PERIOD}")
    clicks = read_log(source, "yoochoose")  # the same SessionId/ItemId/Time columns
    by_period: dict[int, list[LoggedClick]] = {}
    for click in clicks:
        by_period.setdefault(period_of(click), []).append(click)
    checkpoint = warm_checkpoint(by_period.get(0, []), args.max_train_seconds, args.seed)
    snapshots = SnapshotFolder(args.out / f"stream-{_stream_identity(checkpoint, args)}")
    resumed = snapshots.latest()
    if resumed is None:
        competitors = standard_competitors(checkpoint, sessions_of(by_period.get(0, [])), online_settings(args),
                                           args.seed, args.publish_every_steps)  # the kNN fits period 0, as the model
        run = Prequential(competitors, args.chunk)
        spans: dict[int, PeriodSpan] = {}
        done = 0
    else:
        torch.set_num_threads(min(MAX_TORCH_THREADS, torch.get_num_threads()))  # as the learner's __init__ does
        run, spans, done = resumed
        print(f"resumed after period {done} from {snapshots.path(done)} ({run.result.clicks:,} clicks streamed)")
    started = time.perf_counter()
    for period in range(done + 1, stop + 1):  # none when a snapshot is already past --stop: its figures are final
        began, first = time.perf_counter(), run.result.clicks
        _feed_period(run, by_period.get(period, []), period)
        spans[period] = PeriodSpan(first, run.result.clicks, time.perf_counter() - began)
        snapshots.save(period, run, spans)
        figures = _period_figures(run.result, spans[period])
        print(f"period {period:>2} streamed: {spans[period].end - first:,} clicks in {spans[period].seconds:.0f} s; "
              + "  ".join(f"{name} {f['HR@20']:.4f}/{f['MRR@20']:.4f}" for name, f in figures.items()), flush=True)
    seconds = time.perf_counter() - started
    continual = run.competitors["continual"]
    assert isinstance(continual, Continual)
    judged_keys = [key for period in judge for key in spans[period].keys]
    judged = PrequentialResult({name: tally.restricted(judged_keys) for name, tally in run.result.metrics.items()},
                               clicks=run.result.clicks, answer_seconds=run.result.answer_seconds,
                               learn_seconds=run.result.learn_seconds)
    print(f"periods 1-{max(spans)} streamed ({run.result.clicks:,} clicks, {seconds:.0f} s wall in this run, "
          f"{sum(s.seconds for s in spans.values()):.0f} s in all), periods "
          f"{judge[0]}-{judge[-1]} judged ({judged.metrics['continual'].count:,} clicks), {continual.steps} steps")
    report = print_outcome(judged, continual, args.chunk)
    per_period = {period: _period_figures(run.result, spans[period]) for period in judge}
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"judge{judge[0]}-{judge[-1]}"
    report.update({"judge": [judge[0], judge[-1]], "streamed_through": max(spans), "chunk": args.chunk,
                   "stream_seconds": {p: s.seconds for p, s in spans.items()}, "checkpoint": checkpoint.version,
                   "per_period": per_period, "ader_published": ADER_PUBLISHED})
    (args.out / f"{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_periods({period: _period_figures(run.result, span) for period, span in spans.items()}, args.out / f"{tag}.png")
    print(f"wrote {args.out / f'{tag}.json'} and {args.out / f'{tag}.png'}")


def _feed_period(run: Prequential, clicks: list[LoggedClick], period: int) -> None:
    """Feed one period in parts of PROGRESS_CHUNKS chunks (whole chunks, so the parts change nothing), with progress."""
    part, began = PROGRESS_CHUNKS * run.chunk, time.perf_counter()
    for start in range(0, len(clicks), part):
        run.feed(clicks[start: start + part])
        done = min(start + part, len(clicks))
        print(f"  period {period}: {done:,}/{len(clicks):,} clicks, {time.perf_counter() - began:.0f} s", flush=True)


def _period_figures(result: PrequentialResult, span: PeriodSpan) -> dict[str, dict[str, float]]:
    return {name: tally.restricted(span.keys).summary() for name, tally in result.metrics.items()}


def plot_periods(per_period: dict[int, dict[str, dict[str, float]]], path: Path) -> None:
    """HR@20 and MRR@20 per period for every competitor, ADER's published averages as dotted lines."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    periods = sorted(per_period)
    names = list(next(iter(per_period.values()))) if per_period else []
    for ax, metric in zip(axes, ("HR@20", "MRR@20")):
        for name in names:
            ax.plot(periods, [per_period[p][name][metric] for p in periods], marker="o", label=name)
        ax.axhline(ADER_PUBLISHED[metric], linestyle=":", color="grey", label="ADER (published, own protocol)")
        if periods and periods[-1] > VALIDATION_PERIODS[-1]:
            ax.axvline(VALIDATION_PERIODS[-1] + 0.5, color="black", linewidth=0.8)
            ax.text(VALIDATION_PERIODS[-1] + 0.6, ax.get_ylim()[1], "test →", va="top", fontsize=8)
        ax.set(xlabel="period (week)", ylabel=metric, title=f"{metric} per period, prequential")
        ax.set_xticks(periods)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--judge", default="1-6", help="periods judged, e.g. 1-6 (validation) or 7-16 (test)")
    parser.add_argument("--stop", type=int, default=None, help="last period streamed (default: the last judged)")
    parser.add_argument("--chunk", type=int, default=32, help="clicks answered before the competitors learn them")
    parser.add_argument("--max-train-seconds", type=float, default=600.0, help="warm-up training cap on period 0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPORTS / "continual-periods")
    parser.add_argument("--publish-every-steps", type=int, default=0,
                        help="snapshot the learner every N steps; each snapshot becomes the distillation teacher, as a "
                             "published version does for the trainer (0: the warm-up model stays the teacher)")
    add_online_arguments(parser)
    return parser.parse_args()


if __name__ == "__main__":
    main()
