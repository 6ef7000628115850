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


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (command line, user + system CPU seconds so far) of every readable process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        out[int(entry)] = (command, (int(fields[11]) + int(fields[12])) / _TICKS_PER_S)
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
