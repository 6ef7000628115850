"""CPU of the embedded broker and of each process at a constant click rate, as the topics fill up.

Starts one system of `make bench` (the bare passthrough or streamrec) on fresh topics, warms
it up, then replays `--streams` synthetic streams back to back at `--rate` clicks/s. Every
`--every-s` it prints each process's share of a core; at the end, p50/p99 per stretch of the
replay. With the rate constant, a share that climbs is a cost that grows with the data held:

    .venv/bin/python bench/broker_growth.py --system passthrough --streams 3
    .venv/bin/python bench/broker_growth.py --system streamrec-quix --streams 3

This is why every run of `make bench` (bench/e2e.py) starts on topics of its own.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

from cpu_shares import command_line, proc_stat
from e2e import DAY_S, BenchPlan, fresh_system, synthetic_stream
from rich.console import Console
from run_all import SYSTEMS

from streamrec.state.clicklog.synthetic import SyntheticSpec
from streamrec.state.clicklog.types import LoggedClick
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.harness.replay import Pacing


def cpu_seconds(pid: int) -> float:
    stat = proc_stat(pid)
    return stat[1] if stat is not None else 0.0  # 0 once the process ended


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        stat = proc_stat(pid)
        pid = stat[0] if stat is not None else 0
    return False


def processes_of(broker_pid: int) -> dict[str, int]:
    """name -> pid of this harness, the broker and the system's processes (this harness's descendants only)."""
    found = {"harness": os.getpid(), "broker": broker_pid}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not _descends_from(int(entry), os.getpid()):
            continue
        command = command_line(int(entry)) or ""
        if "streamrec worker" in command:
            found["worker (scoring)"] = int(entry)
        elif "spawn_main" in command and "resource_tracker" not in command:
            found["worker (stateful)"] = int(entry)
        elif "passthrough.py" in command:
            found["passthrough"] = int(entry)
    return found


def back_to_back(streams: int) -> list[LoggedClick]:
    spec, clicks = SyntheticSpec(), []
    start_ts = spec.start_ts
    for n in range(streams):
        part = synthetic_stream(spec, 10 + n, start_ts)
        clicks += part
        start_ts = part[-1].ts + DAY_S
    return clicks


def sample(pids: dict[str, int], every_s: float, stop: threading.Event, console: Console) -> None:
    last, began = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.perf_counter()
    while not stop.wait(every_s):
        now = {name: cpu_seconds(pid) for name, pid in pids.items()}
        shares = "  ".join(f"{name} {100 * (now[name] - last[name]) / every_s:3.0f}%" for name in sorted(now))
        console.print(f"t={time.perf_counter() - began:4.0f} s  {shares}")
        last = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=sorted(SYSTEMS), default="passthrough")
    parser.add_argument("--rate", type=float, default=2500.0, help="clicks per second")
    parser.add_argument("--streams", type=int, default=3, help="synthetic streams (~24k clicks each) back to back")
    parser.add_argument("--every-s", type=float, default=5.0)
    args = parser.parse_args()
    console = Console()
    clicks = back_to_back(args.streams)
    with EmbeddedBroker() as broker:
        plan = BenchPlan(bootstrap_servers=broker.bootstrap_servers)
        with fresh_system(SYSTEMS[args.system], plan, Path("reports/broker_growth"), console) as replayer:
            stop = threading.Event()
            assert broker.pid is not None
            pids = processes_of(broker.pid)
            sampler = threading.Thread(target=sample, args=(pids, args.every_s, stop, console), daemon=True)
            sampler.start()
            report = replayer.judge(clicks, pacing=Pacing(rate_eps=args.rate), label=f"{args.rate:,.0f}/s")
            stop.set()
            sampler.join()
    for scorer in report.scorers:
        console.print(f"{args.system} ({scorer.scorer}): {len(clicks):,} clicks at {args.rate:,.0f}/s, "
                      f"p50 {scorer.latency.p50_ms:.1f} ms, p99 {scorer.latency.p99_ms:.1f} ms; "
                      "per stretch of the replay:")
        for window in scorer.timeline:
            p50, p99 = (f"{v:6.1f}" if v is not None else "     -"
                        for v in (window.latency_p50_ms, window.latency_p99_ms))
            console.print(f"  up to click {window.clicks_sent:>7,}: p50 {p50} ms  p99 {p99} ms")


if __name__ == "__main__":
    main()
