"""End-to-end measurement of one system on the embedded broker, with the replay harness.

A system is a set of processes that read `clicks` and answer on `recommendations`: the
real pipeline (`streamrec worker` on either engine) or the bare passthrough. Each is
measured the same way, by three runs on one shared broker. Each run starts the system on
topics of its own, warms it up with a short replay (drained: group joins, imports, first
fetches are paid) and then judges one stream with the same connected replay clients:

1. max: a synthetic stream sent flat out; throughput = answers / (last answer - first send);
2. target: a stream at a fixed rate, the same for every system (2,500/s: the p99 target
   is set at half of 5,000/s), so latencies compare at equal load;
3. half: a stream at 50% of the measured maximum (at max rate latency is only queueing).
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from streamrec.config import Settings, load_settings
from streamrec.config.settings import SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.state.clicklog.types import LoggedClick
from streamrec.stream.admin import ensure_topics
from streamrec.stream.harness.demo import ManagedProcess, settings_env, wait_for_groups, worker_process
from streamrec.stream.harness.replay import DrainPolicy, Pacing, Replayer
from streamrec.stream.harness.report import ReplayReport, write_report
from streamrec.stream.kafka import scoring_group, stateful_group
from streamrec.stream.stages.engines.registry import engine_names

Overrides = dict[str, dict[str, object]]
_BENCH_DIR = Path(__file__).resolve().parent
DAY_S = 86_400.0


@dataclass(frozen=True)
class System:
    """How to start one system under test and which consumer groups say it is ready."""

    name: str
    processes: Callable[[Settings, Path], list[ManagedProcess]]
    groups: Callable[[Settings], list[str]]


def streamrec_system(engine: str) -> System:
    """The real pipeline: `streamrec worker --role all` (stateful stage + kNN scoring stage)."""
    return System(
        name=f"streamrec-{engine}",
        processes=lambda settings, logs: [worker_process(f"worker-{engine}", "all", engine, settings, logs)],
        groups=lambda settings: [stateful_group(settings), scoring_group(settings)],
    )


def passthrough_system() -> System:
    """The floor: bench/passthrough.py, a plain confluent-kafka consume -> produce loop."""
    from passthrough import passthrough_group  # bench/ is on sys.path when run_all.py runs

    def processes(settings: Settings, logs: Path) -> list[ManagedProcess]:
        argv = [sys.executable, str(_BENCH_DIR / "passthrough.py")]
        return [ManagedProcess("passthrough", argv, settings_env(settings), logs / "passthrough.log")]

    return System(name="passthrough", processes=processes, groups=lambda settings: [passthrough_group(settings)])


@dataclass(frozen=True)
class BenchPlan:
    bootstrap_servers: str
    max_spec: SyntheticSpec = SyntheticSpec()
    warm_clicks: int = 2_000
    half_rate_s: float = 15.0
    latency_rate_eps: float | None = None
    """Rate of the latency run; None: half the measured maximum."""
    target_rate_eps: float | None = 2_500.0
    """Rate of a further fixed-rate run, the same for every system: the latency target's point (p99 at half of
    5,000/s). None: skipped."""
    single_record_batches: bool = False
    """Tansu's watermark work-around; off by default: it caps every producer at a few thousand records/s."""


@dataclass(frozen=True)
class BenchResult:
    system: str
    max_eps: float
    max_p99_ms: float | None
    half_target_eps: float
    half_eps: float
    half_p50_ms: float | None
    half_p99_ms: float | None
    target_eps: float | None
    target_p50_ms: float | None
    target_p99_ms: float | None
    missing: int
    clicks: int


def _overrides(plan: BenchPlan, system: System, state_dir: Path) -> Overrides:
    engine = system.name.removeprefix("streamrec-") if system.name.startswith("streamrec-") else engine_names()[0]
    tag = uuid.uuid4().hex[:6]  # topics and groups of their own: nothing left by an earlier run is seen
    return {
        "kafka": {"bootstrap_servers": plan.bootstrap_servers, "topic_prefix": f"bench-{system.name}-{tag}-",
                  "consumer_group": f"bench-{system.name}-{tag}", "session_timeout_ms": 2000,
                  "single_record_batches": plan.single_record_batches,
                  **({"fetch_wait_max_ms": SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS}
                     if plan.single_record_batches else {})},
        "state": {"dir": state_dir, "engine": engine},
    }


def synthetic_stream(spec: SyntheticSpec, seed_offset: int, start_ts: float) -> list[LoggedClick]:
    """Another synthetic stream of the same shape starting at `start_ts` (event time keeps moving forward)."""
    return _ordered(generate(replace(spec, seed=spec.seed + seed_offset, start_ts=start_ts)))


def _ordered(clicks: Sequence[LoggedClick]) -> list[LoggedClick]:
    return sorted(clicks, key=lambda c: c.ts)


def _only_scorer(report: ReplayReport, system: str) -> tuple[float, float | None, float | None, int]:
    """(throughput, p50, p99, missing) of the one scorer that answered; zeros when none did."""
    if not report.scorers:
        return 0.0, None, None, report.counts.sent
    if len(report.scorers) > 1:
        raise RuntimeError(f"{system}: expected one scorer, got {[s.scorer for s in report.scorers]}")
    s = report.scorers[0]
    return s.throughput_eps or 0.0, s.latency.p50_ms, s.latency.p99_ms, s.missing


@contextmanager
def fresh_system(system: System, plan: BenchPlan, reports: Path, console: Console) -> Iterator[Replayer]:
    """`system` started on topics of its own and warmed up; yields a connected replayer.

    Every run gets fresh topics because the embedded broker's CPU per record grows with the
    data its topics hold (bench/broker_growth.py: at a constant 2,500 records/s it climbs from
    ~30% to ~75% of a core within 25 s, with the bare passthrough as with the pipeline), so a run
    that followed others would measure their leftovers as much as itself.
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-{system.name}-") as state_dir, ExitStack() as running:
        settings = load_settings(**_overrides(plan, system, Path(state_dir)))
        ensure_topics(settings)
        processes = [running.enter_context(p) for p in system.processes(settings, reports / system.name)]
        wait_for_groups(settings, system.groups(settings), processes)
        spec = plan.max_spec
        warm = synthetic_stream(spec, 100, start_ts=spec.start_ts - (spec.days + 1) * DAY_S)[: plan.warm_clicks]
        # One replayer for the warm-up and the run: its clients stay connected, as a web app's would.
        with Replayer(settings, drain=DrainPolicy(idle_s=20.0), console=console) as replayer:
            replayer.warm_up(warm)
            yield replayer


def _run(system: System, plan: BenchPlan, reports: Path, console: Console, label: str, clicks: list[LoggedClick],
         rate_eps: float | None) -> ReplayReport:
    with fresh_system(system, plan, reports, console) as replayer:
        pacing = Pacing(rate_eps=rate_eps) if rate_eps else Pacing()
        title = f"{label}: {rate_eps:,.0f}/s" if rate_eps else f"{label}: flat out"
        report = replayer.judge(clicks, pacing=pacing, dataset=f"synthetic ({system.name}/{label})", label=title)
    write_report(report, reports / system.name / label)
    return report


def measure(system: System, plan: BenchPlan, reports: Path, console: Console) -> BenchResult:
    """Max, target-rate and half-rate runs of `system`, each on fresh topics after a warm-up."""
    spec = plan.max_spec
    max_clicks = _ordered(generate(spec))
    max_eps, _, max_p99, missing = _only_scorer(_run(system, plan, reports, console, "max", max_clicks, None),
                                                system.name)
    target_eps = target_p50 = target_p99 = None
    target_clicks: list[LoggedClick] = []
    if plan.target_rate_eps:
        target_count = int(plan.target_rate_eps * plan.half_rate_s)
        target_clicks = synthetic_stream(spec, 300, start_ts=spec.start_ts)[:target_count]
        target = _run(system, plan, reports, console, "target", target_clicks, plan.target_rate_eps)
        target_eps, target_p50, target_p99, target_missing = _only_scorer(target, system.name)
        missing += target_missing
    half_rate = plan.latency_rate_eps or max(max_eps / 2, 1.0)
    half_clicks = synthetic_stream(spec, 200, start_ts=spec.start_ts)[: int(half_rate * plan.half_rate_s)]
    half = _run(system, plan, reports, console, "half", half_clicks, half_rate)
    half_eps, half_p50, half_p99, half_missing = _only_scorer(half, system.name)
    return BenchResult(system=system.name, max_eps=max_eps, max_p99_ms=max_p99, half_target_eps=half_rate,
                       half_eps=half_eps, half_p50_ms=half_p50, half_p99_ms=half_p99, target_eps=target_eps,
                       target_p50_ms=target_p50, target_p99_ms=target_p99, missing=missing + half_missing,
                       clicks=len(max_clicks) + len(half_clicks) + len(target_clicks))
