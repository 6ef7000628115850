"""`make bench`: end-to-end throughput and latency of streamrec next to a bare passthrough and the other engine.

One embedded broker, then for each system in turn (own topic prefix, own processes):
the max-throughput replay, a latency replay at 50% of that rate and one at the fixed rate of
the latency target, 2,500/s (bench/e2e.py).
Prints one table (events/s and p99 each, ratios to the passthrough), writes
reports/bench/results.json and a replay report per run under reports/bench/<system>/.

    .venv/bin/python bench/run_all.py [--systems passthrough,streamrec-quix,streamrec-faust]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from e2e import BenchPlan, BenchResult, System, measure, passthrough_system, streamrec_system
from rich.console import Console
from rich.table import Table

from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.stages.engines.registry import engine_names

SYSTEMS: dict[str, System] = {
    s.name: s for s in (passthrough_system(), *(streamrec_system(engine) for engine in engine_names()))
}
TARGET_EPS = 5_000.0
TARGET_P99_MS = 100.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if not value or not base else f"{value / base:.2f}x"


def results_table(results: list[BenchResult], fixed_rate_eps: float | None) -> Table:
    """One row per system; ratios are to the passthrough (the floor of Kafka I/O in Python)."""
    base = next((r for r in results if r.system == "passthrough"), None)
    table = Table(title="end to end, embedded broker: max events/s; latency (ms) at max, at 50% of max and at a "
                        "fixed rate; ÷ pass = ratio to the passthrough")
    at = f"@{fixed_rate_eps:,.0f}/s" if fixed_rate_eps else "@fixed"
    for column in ("system", "events/s", "÷ pass", "p99 max", "rate 50%", "p50 50%", "p99 50%", "÷ pass",
                   f"p50 {at}", f"p99 {at}", "÷ pass", "missing"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for r in results:
        table.add_row(r.system, f"{r.max_eps:,.0f}", _ratio(r.max_eps, base and base.max_eps), _ms(r.max_p99_ms),
                      f"{r.half_eps:,.0f}", _ms(r.half_p50_ms), _ms(r.half_p99_ms),
                      _ratio(r.half_p99_ms, base and base.half_p99_ms), _ms(r.target_p50_ms), _ms(r.target_p99_ms),
                      _ratio(r.target_p99_ms, base and base.target_p99_ms), f"{r.missing:,}")
    return table


def verdict(result: BenchResult, fixed_rate_eps: float | None) -> str:
    """The issue's targets for the real pipeline: >= 5,000 events/s, p99 <= 100 ms at half that rate (2,500/s)."""
    ok_rate = result.max_eps >= TARGET_EPS
    ok_p99 = (fixed_rate_eps == TARGET_EPS / 2 and result.target_p99_ms is not None
              and result.target_p99_ms <= TARGET_P99_MS)
    return (f"{result.system}: throughput {result.max_eps:,.0f}/s {'meets' if ok_rate else 'MISSES'} >= "
            f"{TARGET_EPS:,.0f}/s; p99 at {fixed_rate_eps or 0:,.0f}/s {_ms(result.target_p99_ms)} ms "
            f"{'meets' if ok_p99 else 'MISSES'} <= {TARGET_P99_MS:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated, from: " + ", ".join(SYSTEMS))
    parser.add_argument("--half-rate-s", type=float, default=15.0, help="duration of the 50%%-rate latency run")
    parser.add_argument("--latency-rate-eps", type=float, default=None,
                        help="send the latency run at this rate instead of half the measured maximum")
    parser.add_argument("--target-rate-eps", type=float, default=TARGET_EPS / 2,
                        help="rate of the fixed-rate run every system gets (0: skip it)")
    parser.add_argument("--single-record-batches", action="store_true", help="produce one record per batch everywhere")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    args = parser.parse_args()
    console = Console()
    results = []
    with EmbeddedBroker() as broker:
        plan = BenchPlan(bootstrap_servers=broker.bootstrap_servers, half_rate_s=args.half_rate_s,
                         latency_rate_eps=args.latency_rate_eps, target_rate_eps=args.target_rate_eps or None,
                         single_record_batches=args.single_record_batches)
        for name in args.systems.split(","):
            console.rule(name)
            results.append(measure(SYSTEMS[name], plan, args.out, console))
    Console(width=max(console.width, 150)).print(results_table(results, plan.target_rate_eps))
    for result in results:
        if result.system.startswith("streamrec-"):
            console.print(verdict(result, plan.target_rate_eps))
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
              "cpus": os.cpu_count(), "single_record_batches": args.single_record_batches,
              "results": [asdict(r) for r in results]}
    (args.out / "results.json").write_text(json.dumps(record, indent=2))
    console.print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
