"""Continual learning under real drift: DIGINETICA's 17 periods, prequential, every competitor on the same clicks.

    .venv/bin/python bench/continual_periods.py --judge 1-6            # validation: settings are chosen here
    .venv/bin/python bench/continual_periods.py --judge 7-16           # test: read once, after the choice
    .venv/bin/python bench/continual_periods.py --judge 1-3 --stop 3   # a short run (streams periods 1-3 only)

Protocol (../shared/data/README.md, "DIGINETICA periods"): the `default` preset is trained on
period 0 only (early stopping on period 0's latest 10% of sessions, `--max-train-seconds` cap;
cached under reports/continual/); then periods 1..`--stop` are streamed in order through the four
competitors of bench/continual_offline.py (continual, tables-only, frozen twin, online kNN), each
click answered (top 20 for the session so far) before anyone learns it. Clicks of the periods in
`--judge` are judged; earlier periods are learned without judging (the test read streams periods
1-6 too, so the models arrive at period 7 in the state the validation run left them in).

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
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from continual_offline import print_outcome, standard_competitors

from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.prequential import Continual, prequential
from streamrec.models.registry import build_sknn
from streamrec.state.clicklog.formats import read_log
from streamrec.state.clicklog.protocols import recent_split, sessions_of
from streamrec.state.clicklog.types import LoggedClick

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
REPORTS = Path(__file__).resolve().parents[1] / "reports"
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


def warm_checkpoint(period_zero: list[LoggedClick], max_train_seconds: float, seed: int) -> Checkpoint:
    """The default preset trained on period 0 (its latest 10% of sessions validate), cached per cap and seed."""
    from streamrec.models.presets import preset

    config = preset("default")
    path = REPORTS / "continual" / f"warm-periods0-default-{config.encoder}-{max_train_seconds:.0f}s-seed{seed}.pt"
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
    clicks = read_log(source, "yoochoose")  # the same SessionId/ItemId/Time columns
    by_period = [period_of(c) for c in clicks]
    checkpoint = warm_checkpoint([c for c, p in zip(clicks, by_period) if p == 0], args.max_train_seconds, args.seed)
    stream = [(c, p) for c, p in zip(clicks, by_period) if 1 <= p <= stop]
    judged = [p in judge for _, p in stream]
    knn = build_sknn(load_settings(), persist=False)
    knn.fit([s.items for s in sessions_of(c for c, p in zip(clicks, by_period) if p == 0)])
    settings = OnlineSettings()
    continual = Continual(ContinualLearner(checkpoint, settings, device="cpu", seed=args.seed))
    competitors = standard_competitors(continual, checkpoint, settings, knn, args.seed)
    started = time.perf_counter()
    result = prequential((c for c, _ in stream), competitors, args.chunk, judged)
    seconds = time.perf_counter() - started
    print(f"periods 1-{stop} streamed ({result.clicks:,} clicks), periods {judge[0]}-{judge[-1]} judged "
          f"({result.metrics['continual'].count:,} clicks), {seconds:.0f} s wall, {continual.steps} steps")
    report = print_outcome(result, continual, args.chunk)
    positions: dict[int, list[int]] = {}
    for position, (_, period) in enumerate(stream):
        positions.setdefault(period, []).append(position)
    per_period = {
        period: {name: tally.restricted(positions.get(period, [])).summary() for name, tally in result.metrics.items()}
        for period in judge if period <= stop
    }
    for period, figures in per_period.items():
        print(f"period {period:>2}: "
              + "  ".join(f"{name} {f['HR@20']:.4f}/{f['MRR@20']:.4f}" for name, f in figures.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"judge{judge[0]}-{judge[-1]}"
    report.update({"judge": [judge[0], judge[-1]], "stop": stop, "seconds": seconds, "chunk": args.chunk,
                   "checkpoint": checkpoint.version, "per_period": per_period, "ader_published": ADER_PUBLISHED})
    (args.out / f"{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_periods(per_period, args.out / f"{tag}.png")
    print(f"wrote {args.out / f'{tag}.json'} and {args.out / f'{tag}.png'}")


def plot_periods(per_period: dict[int, dict[str, dict[str, float]]], path: Path) -> None:
    """HR@20 and MRR@20 per period for every competitor, ADER's published averages as dotted lines."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    periods = sorted(per_period)
    names = list(next(iter(per_period.values()))) if per_period else []
    for ax, metric in zip(axes, ("HR@20", "MRR@20")):
        for name in names:
            ax.plot(periods, [per_period[p][name][metric] for p in periods], marker="o", label=name)
        ax.axhline(ADER_PUBLISHED[metric], linestyle=":", color="grey", label="ADER (published, own protocol)")
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
    return parser.parse_args()


if __name__ == "__main__":
    main()
