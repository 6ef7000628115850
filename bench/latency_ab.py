"""Serving latency with the trainer running vs paused, alternating through one paced replay.

Why alternate: the embedded broker slows as its topics fill (every scorer's latency grows through a
run, the kNN shadow's as much as the continual stage's), so a "without trainer" slice at the start
of a run and a "with trainer" slice after it differ by more than the trainer. `TrainerToggle`
pauses the trainer's process group (SIGSTOP) and resumes it (SIGCONT) every `window_s` while the
replay sends at a fixed rate, so both arms share the broker, the state sizes and the rate.

A click counts for an arm when it was sent at least `margin_s` after that arm began and at least
`margin_s` before it ended (its answer then mostly comes back within the same arm). The pause is
kept well under the trainer's consumer-group session timeout, so pausing never costs it its group.
The kNN shadow, which never trains, is reported beside the continual stage as the control: a
difference the trainer causes shows in the continual stage and, on shared cores, in the control too.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from streamrec.stream.harness.prequential import PhaseTally


@dataclass
class TrainerToggle:
    """Alternates a process group between running and paused every `window_s` (a thread of its own)."""

    pgid: int
    window_s: float
    intervals: list[tuple[float, float, bool]] = field(default_factory=list)
    """(start, end, trainer running) on the perf_counter clock, the replay's send-time clock."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TrainerToggle:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._signal(signal.SIGCONT)  # never leave the trainer paused

    def _run(self) -> None:
        running, began = True, perf_counter()
        while not self._stop.wait(self.window_s):
            self._signal(signal.SIGSTOP if running else signal.SIGCONT)
            now = perf_counter()
            self.intervals.append((began, now, running))
            running, began = not running, now
        self.intervals.append((began, perf_counter(), running))

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass


def arm_latencies(phase: PhaseTally, scorer: str, intervals: list[tuple[float, float, bool]],
                  margin_s: float) -> dict[bool, np.ndarray]:
    """Latencies (ms) of `scorer`'s answers per arm (True: trainer running), by each click's send time."""
    tally = phase.scorers.get(scorer)
    arms: dict[bool, list[np.ndarray]] = {True: [], False: []}
    if tally is None:
        return {arm: np.empty(0) for arm in arms}
    for start, end, running in intervals:
        inside = (phase.sent_at >= start + margin_s) & (phase.sent_at < end - margin_s) & ~np.isnan(tally.latency_ms)
        arms[running].append(tally.latency_ms[inside])
    return {arm: np.concatenate(parts) if parts else np.empty(0) for arm, parts in arms.items()}


def summary(latencies: dict[bool, np.ndarray]) -> dict[str, float | int | None]:
    """p50 / p99 and click counts per arm."""
    out: dict[str, float | int | None] = {}
    for arm, label in ((False, "paused"), (True, "running")):
        values = latencies[arm]
        out[f"clicks_trainer_{label}"] = int(values.size)
        out[f"p50_ms_trainer_{label}"] = float(np.percentile(values, 50)) if values.size else None
        out[f"p99_ms_trainer_{label}"] = float(np.percentile(values, 99)) if values.size else None
    return out
