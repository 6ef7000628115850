"""`streamrec demo`: embedded broker + worker + a shadow popularity scorer, one replay, a report, nothing left.

The demo shows the whole path on one machine: clicks -> stateful stage -> scoring stage
(kNN) -> recommendations, judged prequentially. A second scoring stage serving popularity
reads the same scoring requests in its own consumer group (a shadow deployment), so the
report compares both scorers on the very same stream. `streamrec serve` runs alongside (its
URL is printed: lookups and the live dashboard while the replay runs). Every process the demo starts runs
in its own process group and is stopped (SIGTERM, then SIGKILL) on the way out, also on
Ctrl-C or an error.
"""

from __future__ import annotations

import json
import os
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
from confluent_kafka.admin import AdminClient
from rich.console import Console

from streamrec.config.settings import Settings, load_settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.stages.engines.common import stateful_group
from streamrec.stream.harness.replay import DrainPolicy, Pacing, load_clicks, replay
from streamrec.stream.harness.report import ReplayReport, print_report, write_report
from streamrec.stream.stages.scoring import scoring_group

DEMO_SHADOW_SCORERS = ("pop",)
"""Scorers served next to the configured one, so every demo report has a baseline to beat."""
_READY_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 15.0


def settings_env(settings: Settings) -> dict[str, str]:
    """STREAMREC_<GROUP>__<FIELD> variables that reproduce `settings` exactly in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        fields = value if isinstance(value, dict) else {None: value}
        for field_name, field_value in fields.items():
            if field_value is not None:
                key = f"STREAMREC_{name.upper()}" + (f"__{field_name.upper()}" if field_name else "")
                if isinstance(field_value, (dict, list)):  # pydantic-settings parses complex values as JSON
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

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def worker_process(name: str, role: str, engine: str, settings: Settings, logs: Path) -> ManagedProcess:
    """`streamrec worker --role ROLE --engine ENGINE` configured with `settings` through STREAMREC_* variables."""
    argv = [sys.executable, "-m", "streamrec", "worker", "--role", role, "--engine", engine]
    return ManagedProcess(name, argv, settings_env(settings), logs / f"{name}.log")


def wait_for_groups(settings: Settings, groups: Sequence[str], processes: Sequence[ManagedProcess],
                    timeout_s: float = _READY_TIMEOUT_S) -> None:
    """Block until every consumer group is Stable (its members joined), failing fast if a process died."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
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


def demo_overrides(bootstrap_servers: str, state_dir: Path, engine: str) -> dict[str, dict[str, object]]:
    """Settings of the demo deployment: a short group session timeout, a throw-away state folder.

    `kafka.single_record_batches` stays off although the broker is Tansu: it only matters when a
    restarted worker recovers state from its changelog, which a demo on a fresh in-memory broker
    never does, and on Tansu it caps each producer at a few thousand records/s (measured: the
    demo's 24k clicks took 4.5 minutes with it, about 10 seconds without).
    """
    return {
        "kafka": {"bootstrap_servers": bootstrap_servers, "session_timeout_ms": 2000},
        "state": {"dir": state_dir, "engine": engine},
    }


def shadow_settings(settings: Settings, scorer: str) -> Settings:
    """A scoring stage serving `scorer` in its own consumer group: it answers every request the primary answers.

    It serves `scorer` itself, never the primary's checkpoint (`checkpoint_path` would override
    the name), and its statistics live in its own folder (models/registry.stats_path is per
    consumer group), so it never opens the primary's RocksDB and dies on its LOCK.
    """
    kafka = settings.kafka.model_copy(update={"consumer_group": f"{settings.kafka.consumer_group}-shadow-{scorer}"})
    scoring = settings.scoring.model_copy(update={"scorer": scorer, "checkpoint_path": None})
    return settings.model_copy(update={"kafka": kafka, "scoring": scoring})


def run_demo(dataset: Path | None, fmt: str, report_dir: Path, engine: str, warm: Path | None = None,
             shadow_scorers: Sequence[str] = DEMO_SHADOW_SCORERS) -> ReplayReport:
    """Start broker + worker (+ shadow scorers), replay `dataset` (synthetic by default), print and write the report."""
    console = Console()
    clicks = load_clicks(dataset, fmt)
    warm_clicks = load_clicks(warm, fmt) if warm is not None else []
    with tempfile.TemporaryDirectory(prefix="streamrec-demo-") as state_dir, EmbeddedBroker() as broker:
        settings = load_settings(**demo_overrides(broker.bootstrap_servers, Path(state_dir), engine))
        ensure_topics(settings)
        shadows = [shadow_settings(settings, s) for s in shadow_scorers if s != settings.scoring.scorer]
        fleet = [worker_process("worker", "all", engine, settings, report_dir)] + [
            worker_process(f"shadow-{s.scoring.scorer}", "scoring", engine, s, report_dir) for s in shadows
        ]
        groups = [stateful_group(settings), scoring_group(settings), *(scoring_group(s) for s in shadows)]
        console.print(f"demo: broker {broker.bootstrap_servers}, starting {len(fleet)} worker process(es) ({engine})")
        with ExitStack() as running:
            for process in fleet:
                running.enter_context(process)
            api, api_url = api_process(settings, report_dir)
            running.enter_context(api)
            console.print(f"demo: API {api_url} (live dashboard {api_url}/dashboard, docs {api_url}/docs) while the replay runs")
            wait_for_groups(settings, groups, fleet)
            report = replay(settings, clicks, warm=warm_clicks, pacing=Pacing(),
                            drain=DrainPolicy(idle_s=20.0, scorers=len(fleet)), dataset=str(dataset or "synthetic"), fmt=fmt,
                            warm_dataset=str(warm) if warm else None, console=console)
    print_report(report, console)
    paths = write_report(report, report_dir)
    console.print("wrote " + ", ".join(str(p) for p in paths) + f"; worker logs in {report_dir}")
    return report
