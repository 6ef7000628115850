"""Which processes use the CPU while a benchmark runs: per-process shares every few seconds.

Reads /proc (Linux) and prints, every `--every-s` seconds for `--seconds`, the total CPU in use
(200% = both cores of this machine) and the busiest processes with their share. Run it beside
a benchmark to see whether the machine is saturated and by whom:

    .venv/bin/python bench/cpu_shares.py --seconds 120 > cpu.txt &  make bench
"""

from __future__ import annotations

import argparse
import os
import time

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds so far) of `pid`; None once it has ended."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def command_line(pid: int) -> str | None:
    """The command line of `pid`, arguments joined by spaces; None once it has ended."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (command line, user + system CPU seconds so far) of every readable process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        command, stat = command_line(int(entry)), proc_stat(int(entry))
        if command is not None and stat is not None:  # else it ended meanwhile
            out[int(entry)] = (command, stat[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--every-s", type=float, default=2.0)
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    started, before = time.monotonic(), cpu_seconds()
    while time.monotonic() - started < args.seconds:
        time.sleep(args.every_s)
        now = cpu_seconds()
        shares = sorted(((now[p][1] - before[p][1]) / args.every_s * 100, now[p][0]) for p in now if p in before)
        busy = [(share, command) for share, command in reversed(shares) if share >= 1.0]
        line = " | ".join(f"{share:3.0f}% {command[:48]}" for share, command in busy[: args.top])
        print(f"t={time.monotonic() - started:5.0f}s total={sum(s for s, _ in busy):4.0f}%  {line}", flush=True)
        before = now


if __name__ == "__main__":
    main()
