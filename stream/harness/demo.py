"""`streamrec demo`: the whole design on one machine, judged, and left running with its dashboard.

On the embedded broker: the stateful stage and a scoring stage serving the default graph neural
model (trained at start on the warm part of the log within `demo.train_budget_s`, or taken from
the cache, stream/harness/demo_model.py), hot-swapping every version the trainer publishes; two
shadow scoring stages on the same scoring requests in their own consumer groups, the model's
frozen twin (never swapped) and the online kNN; the trainer; and `streamrec serve` with the
dashboard, told where every worker's /metrics is. The warm clicks are replayed flat out and
unjudged, then the judged clicks at `demo.rate_eps` (a realistic rate, so latency is service
latency); the report compares the three scorers on the very same clicks (stream/harness/demo_report.py).
Then, unless `--exit`, everything keeps running (the judged clicks sent again, `demo.loop`) with
the dashboard URL printed until Ctrl-C. Every process the demo starts runs in its own process
group and is stopped (SIGTERM, then SIGKILL) on the way out, also on Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from confluent_kafka import ConsumerGroupState
from pydantic import BaseModel, SecretStr
from rich.console import Console

from streamrec.config.settings import Settings, load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.state.clicklog.types import LoggedClick
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker, free_port
from streamrec.stream.clients.producer import ClickProducer
from streamrec.stream.harness.demo_model import looped, split_log, starting_model
from streamrec.stream.harness.demo_report import demo_figures, fetch_stats, print_demo_report, write_demo_report
from streamrec.stream.harness.replay import DrainPolicy, Pacing, Replayer, load_clicks
from streamrec.stream.harness.report import ReplayReport, print_report, write_report
from streamrec.stream.kafka import build_admin, scoring_group, shadow_consumer_group, stateful_group
from streamrec.stream.stages.engines.registry import get_engine
from streamrec.stream.topics import ONLINE_SUFFIX, ClickEvent, ClickType

DEMO_SHADOW_SCORERS = ("sknn",)
"""Baseline scorers served next to the neural model (besides its frozen twin), so every demo report has one to beat."""
DEMO_SYNTHETIC = SyntheticSpec(drift_share=0.5, drift_day=15.0)
"""The demo's default stream: half of the items change successors on day 15 of 30, about where the judged part
starts, so a model that keeps learning and one that does not part ways (bench/continual.py, docs/benchmarks.md)."""
_READY_TIMEOUT_S = 120.0
_DEMO_SESSION_TIMEOUT_MS = 10_000
"""Group session timeout of the demo's consumers: six busy processes share the cores, and a 2 s timeout expired under
load in bench/continual.py (a rebalance restarts the stateful stage)."""
_STOP_TIMEOUT_S = 15.0


def settings_env(settings: Settings) -> dict[str, str]:
    """STREAMREC_<GROUP>__<FIELD> variables that reproduce `settings` exactly in a child process."""
    env: dict[str, str] = {}
    dumped = settings.model_dump(mode="json")
    for name, group in settings:  # JSON dumps mask secrets (api.write_api_key, kafka.client_config): pass the values
        for field_name, field_value in group if isinstance(group, BaseModel) else ():
            if isinstance(field_value, SecretStr):
                dumped[name][field_name] = field_value.get_secret_value()
            elif isinstance(field_value, dict) and all(isinstance(v, str) for v in field_value.values()):
                dumped[name][field_name] = dict(field_value)
    for name, value in dumped.items():
        fields = value if isinstance(value, dict) else {None: value}
        for field_name, field_value in fields.items():
            if field_value is not None:
                key = f"STREAMREC_{name.upper()}" + (f"__{field_name.upper()}" if field_name else "")
                if isinstance(field_value, dict | list):  # pydantic-settings parses complex values as JSON
                    env[key] = json.dumps(field_value)
                else:
                    env[key] = str(field_value).lower() if isinstance(field_value, bool) else str(field_value)
    return env


def _inherited_env() -> dict[str, str]:
    """The parent's environment minus STREAMREC_* (a child gets its settings only from `settings_env`)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}


@dataclass
class ManagedProcess:
    """A child process in its own process group, its output in a log file; stopped on exit of the block."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __enter__(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                list(self.argv), env={**_inherited_env(), **self.env}, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """SIGTERM the process group (a graceful worker shutdown), SIGKILL what lingers; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig, wait_s in ((signal.SIGTERM, _STOP_TIMEOUT_S), (signal.SIGKILL, _STOP_TIMEOUT_S)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        process.poll()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def worker_process(name: str, role: str, engine: str, settings: Settings, logs: Path) -> ManagedProcess:
    """`streamrec worker --role ROLE --engine ENGINE` configured with `settings` through STREAMREC_* variables."""
    argv = [sys.executable, "-m", "streamrec", "worker", "--role", role, "--engine", engine]
    return ManagedProcess(name, argv, settings_env(settings), logs / f"{name}.log")


def wait_for_groups(settings: Settings, groups: Sequence[str], processes: Sequence[ManagedProcess],
                    timeout_s: float = _READY_TIMEOUT_S) -> None:
    """Block until every consumer group is Stable (its members joined), failing fast if a process died."""
    admin = build_admin(settings.kafka, {"log_level": 3})  # no INFO lines in the demo's output
    deadline = time.monotonic() + timeout_s
    pending = set(groups)
    while pending:
        dead = [p for p in processes if not p.alive()]
        if dead:
            raise RuntimeError(f"{dead[0].name} exited before it was ready; see {dead[0].log_path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"consumer groups {sorted(pending)} not stable after {timeout_s:.0f} s")
        for group, future in admin.describe_consumer_groups(sorted(pending)).items():
            if future.result(timeout=10).state == ConsumerGroupState.STABLE:
                pending.discard(group)
        time.sleep(0.25)


def api_process(settings: Settings, logs: Path) -> tuple[ManagedProcess, str]:
    """`streamrec serve` for the demo on `api.port`, or on a free port when that one is taken; with its URL."""
    port = settings.api.port
    with socket.socket() as probe:
        try:
            probe.bind((settings.api.host, port))
        except OSError:
            probe.bind((settings.api.host, 0))
            port = probe.getsockname()[1]
    argv = [sys.executable, "-m", "streamrec", "serve", "--host", settings.api.host, "--port", str(port)]
    return ManagedProcess("api", argv, settings_env(settings), logs / "api.log"), f"http://{settings.api.host}:{port}"


def demo_overrides(bootstrap_servers: str, state_dir: Path, engine: str,
                   session_timeout_ms: int = 2000) -> dict[str, dict[str, object]]:
    """Settings of the demo deployment: a short group session timeout, a throw-away state folder.

    `kafka.single_record_batches` stays off although the broker is Tansu: it only matters when a
    restarted worker recovers state from its changelog, which a demo on a fresh in-memory broker
    never does, and on Tansu it caps each producer at a few thousand records/s (the demo's stream
    takes minutes with it, seconds without: docs/benchmarks.md, "Smaller measurements behind code
    choices").
    """
    return {
        "kafka": {"bootstrap_servers": bootstrap_servers, "session_timeout_ms": session_timeout_ms},
        "state": {"dir": state_dir, "engine": engine},
    }


def shadow_settings(settings: Settings, scorer: str) -> Settings:
    """A scoring stage serving `scorer` in its own consumer group: it answers every request the primary answers.

    It serves `scorer` itself, never the primary's checkpoint (`checkpoint_path` would override
    the name), and its statistics live in its own folder (models/registry.stats_path is per
    consumer group), so it never opens the primary's RocksDB and dies on its LOCK.
    """
    kafka = settings.kafka.model_copy(update={"consumer_group": shadow_consumer_group(settings, scorer)})
    scoring = settings.scoring.model_copy(update={"scorer": scorer, "checkpoint_path": None})
    return settings.model_copy(update={"kafka": kafka, "scoring": scoring})


def _roles(preset: str) -> dict[str, str]:
    return {preset + ONLINE_SUFFIX: "continual", preset: "frozen twin",
            **{name: "shadow" for name in DEMO_SHADOW_SCORERS}}


def _fleet_settings(base: Settings, tmp: Path, broker: str, engine: str, checkpoint: Path,
                    preset: str) -> tuple[Settings, Settings, list[Settings], dict[str, Settings]]:
    """Settings of the primary (continual) stage, the frozen twin, the baselines, and of every process by name."""
    overrides = demo_overrides(broker, tmp / "state", engine, session_timeout_ms=_DEMO_SESSION_TIMEOUT_MS)
    ports = {name: free_port()
             for name in ("worker", "shadow-frozen", *(f"shadow-{s}" for s in DEMO_SHADOW_SCORERS), "trainer")}
    settings = base.model_copy(update={
        "kafka": base.kafka.model_copy(update=overrides["kafka"]),
        "state": base.state.model_copy(update=overrides["state"]),
        "scoring": base.scoring.model_copy(update={"checkpoint_path": checkpoint, "device": "cpu"}),
        "training": base.training.model_copy(update={"checkpoint_dir": tmp / "store", "device": "cpu",
                                                     "start_from": "latest"}),
        "api": base.api.model_copy(update={
            "scorer": preset + ONLINE_SUFFIX,
            "worker_metrics": {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items()}}),
    })
    frozen = settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"consumer_group": shadow_consumer_group(settings, "frozen")}),
        "updates": settings.updates.model_copy(update={"follow": False}),
        "state": settings.state.model_copy(update={"dir": tmp / "state-frozen"})})
    baselines = [shadow_settings(settings, name) for name in DEMO_SHADOW_SCORERS]
    baselines = [b.model_copy(update={"state": b.state.model_copy(update={"dir": tmp / f"state-{b.scoring.scorer}"})})
                 for b in baselines]
    by_name = {"worker": settings, "shadow-frozen": frozen, **{f"shadow-{b.scoring.scorer}": b for b in baselines},
               "trainer": settings}
    by_name = {name: s.model_copy(update={"metrics_port": ports[name]}) for name, s in by_name.items()}
    shadows = [by_name[f"shadow-{b.scoring.scorer}"] for b in baselines]
    return by_name["worker"], by_name["shadow-frozen"], shadows, by_name


def _wait_for_line(process: ManagedProcess, pattern: str, timeout_s: float) -> None:
    """Until `process`'s log holds `pattern` (a regex); RuntimeError when it dies or the time is up."""
    deadline = time.monotonic() + timeout_s
    while not re.search(pattern, process.log_path.read_text(errors="replace")):
        if time.monotonic() > deadline or not process.alive():
            raise RuntimeError(f"{process.name}: no '{pattern}' in its log after {timeout_s:.0f} s; see "
                               f"{process.log_path}")
        time.sleep(0.5)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _keep_running(settings: Settings, judged: Sequence[LoggedClick], fleet: Sequence[ManagedProcess],
                  api_url: str, loop: bool, console: Console) -> None:
    """Until Ctrl-C (or a process dies): the dashboard stays up; with `loop`, the judged clicks are sent again."""
    console.print(f"\n[bold]demo: running. Dashboard {api_url}/dashboard, API docs {api_url}/docs; Ctrl-C stops "
                  "everything.[/]")
    rate = settings.demo.rate_eps
    with ClickProducer.from_settings(settings) as producer:
        round_number = 0
        while True:
            round_number += 1
            clicks = list(looped(judged, round_number)) if loop else []
            started = time.monotonic()
            for index, click in enumerate(clicks):
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                producer.send(ClickEvent(event_id=f"demo-r{round_number}-{index}", session_id=click.session_id,
                                         user_id=click.user_id, item_id=click.item_id, ts=click.ts,
                                         type=ClickType(click.type)))
                if index % 500 == 0:
                    producer.flush(0)  # serves delivery reports
                    _check_alive(fleet)
            if not clicks:
                time.sleep(1.0)
            _check_alive(fleet)


def _check_alive(fleet: Sequence[ManagedProcess]) -> None:
    dead = [p for p in fleet if not p.alive()]
    if dead:
        raise RuntimeError(f"{dead[0].name} exited; see {dead[0].log_path}")


def run_demo(dataset: Path | None, fmt: str, report_dir: Path, engine: str, warm: Path | None = None,
             exit_after_report: bool = False, demo: Mapping[str, object] | None = None) -> ReplayReport:
    """Train or load the starting model, start the whole deployment, replay, report; then keep it up until Ctrl-C.

    `demo` overrides fields of the `demo` settings group (the command line's --rate, --train-seconds, --limit).
    """
    get_engine(engine)  # an unknown name: UnknownEngine, one line and exit 2, before anything starts
    console = Console()
    base = load_settings()
    given = {k: v for k, v in (demo or {}).items() if v is not None}
    base = base.model_copy(update={"demo": base.demo.model_copy(update=given)})
    clicks = load_clicks(dataset, fmt) if dataset is not None else sorted(generate(DEMO_SYNTHETIC), key=lambda c: c.ts)
    demo_log = split_log(clicks, load_clicks(warm, fmt) if warm is not None else None, base.demo)
    console.print(f"demo: {len(demo_log.warm):,} warm-up clicks (train the starting model, replayed unjudged), "
                  f"{len(demo_log.judged):,} judged clicks at {base.demo.rate_eps:g} clicks/s")
    checkpoint = base.scoring.checkpoint_path or starting_model(demo_log.warm, base.demo, console)
    preset = Checkpoint.load(checkpoint).preset
    # Ctrl-C and SIGTERM stop everything the same way, also where SIGINT came ignored (a background job of a script)
    previous = {sig: signal.signal(sig, _raise_keyboard_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tempfile.TemporaryDirectory(prefix="streamrec-demo-") as tmp, EmbeddedBroker() as broker:
            settings, frozen, baselines, by_name = _fleet_settings(base, Path(tmp), broker.bootstrap_servers, engine,
                                                                   Path(checkpoint), preset)
            ensure_topics(settings)
            fleet = [worker_process("worker", "all", engine, settings, report_dir),
                     worker_process("shadow-frozen", "scoring", engine, frozen, report_dir),
                     *(worker_process(f"shadow-{b.scoring.scorer}", "scoring", engine, b, report_dir)
                       for b in baselines)]
            trainer = worker_process("trainer", "trainer", engine, by_name["trainer"], report_dir)
            console.print(f"demo: broker {broker.bootstrap_servers}; starting {len(fleet)} workers, the trainer and "
                          f"the API ({engine}; logs in {report_dir})")
            with ExitStack() as running:
                for process in fleet:
                    running.enter_context(process)
                api, api_url = api_process(settings, report_dir)
                running.enter_context(api)
                console.print(f"demo: live dashboard {api_url}/dashboard (API docs {api_url}/docs)")
                wait_for_groups(settings, [stateful_group(settings), scoring_group(settings), scoring_group(frozen),
                                           *(scoring_group(b) for b in baselines)], fleet)
                drain = DrainPolicy(idle_s=30.0, scorers=len(fleet))
                with Replayer(settings, drain=drain, console=console) as replayer:
                    replayer.warm_up(demo_log.warm, str(warm or dataset or "synthetic"))
                    running.enter_context(trainer)  # from the stream's end: it learns the judged clicks, each once
                    _wait_for_line(trainer, "starting from|resuming from", _READY_TIMEOUT_S)
                    report = replayer.judge(demo_log.judged, pacing=Pacing(rate_eps=base.demo.rate_eps),
                                            dataset=str(dataset or "synthetic"), fmt=fmt, label="judged")
                del replayer  # its clients close now, not after the broker is gone
                print_report(report, console)
                # the dashboard's last chart point covers the replay's end
                time.sleep(2 * settings.api.history_interval_s)
                figures = demo_figures(report, _roles(preset), fetch_stats(api_url))
                print_demo_report(figures, console)
                paths = write_report(report, report_dir) + write_demo_report(figures, report_dir)
                console.print("wrote " + ", ".join(str(p) for p in paths))
                if not exit_after_report:
                    try:
                        _keep_running(settings, demo_log.judged, [*fleet, trainer, api], api_url, settings.demo.loop,
                                      console)
                    except KeyboardInterrupt:
                        console.print("demo: stopping the API, the trainer, the workers and the broker")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return report
