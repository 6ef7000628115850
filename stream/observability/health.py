"""Broker health of a worker: wait for it at start, watch it while running, stop within a bound.

A supervisor must be able to tell a broken worker from a working one:

- At start an unreachable broker is retried with exponential backoff
  (`health.broker_retry_initial_ms` doubling up to `broker_retry_max_ms`), logging one line per
  attempt, forever or until `health.broker_wait_max_s`; then one error line and exit status 1.
- While running, `HealthMonitor` asks the broker for metadata every `health.probe_interval_ms`.
  The worker is healthy when the broker answers and every topic of the deployment exists (a
  broker replaced by an empty one answers but has lost them). `streamrec_healthy` (1/0) and
  `streamrec_unhealthy_seconds` export the state; unhealthy for `health.broker_lost_exit_s`,
  the worker stops and exits with status 3 (`EXIT_BROKER_LOST`).
- `ShutdownDeadline`: once a stop is requested, the process exits within
  `health.shutdown_timeout_s` even if a commit or a flush blocks on a lost broker (status 4).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client import Gauge

from streamrec.config import Settings
from streamrec.stream.kafka import build_admin, topics

log = logging.getLogger("streamrec.health")

EXIT_BROKER_UNREACHABLE = 1
"""No broker answered within `health.broker_wait_max_s` at start."""
EXIT_BROKER_LOST = 3
"""Unhealthy (broker lost or its topics gone) for `health.broker_lost_exit_s` while running."""
EXIT_SHUTDOWN_TIMEOUT = 4
"""A stop did not finish within `health.shutdown_timeout_s`; uncommitted work is re-read on restart."""

HEALTHY = Gauge("streamrec_healthy", "1 while the broker answers and the deployment's topics exist, else 0.")
UNHEALTHY_SECONDS = Gauge("streamrec_unhealthy_seconds", "How long the worker has been unhealthy (0 when healthy).")
BROKER_UP = Gauge("streamrec_broker_up", "1 if the last metadata request to the broker succeeded, else 0.")


def start_hint(settings: Settings) -> str:
    """What to do about an unreachable broker, in one clause."""
    return ("start one with `streamrec broker` or point STREAMREC_KAFKA__BOOTSTRAP_SERVERS at your cluster")




class NoBroker(RuntimeError):
    """No broker answered at the configured bootstrap servers (a command that needs one cannot start)."""


def require_broker(settings: Settings, timeout_s: float = 5.0) -> None:
    """Raise NoBroker, with what to do, unless the broker answers a metadata request within `timeout_s`."""
    result = probe(_admin(settings), (), timeout_s)
    if not result.reachable:
        raise NoBroker(f"no Kafka broker reachable at {settings.kafka.bootstrap_servers}: {start_hint(settings)}")


def _admin(settings: Settings) -> AdminClient:
    # log_level 0: librdkafka's own connection-refused lines would repeat what the probe logs, several per attempt.
    return build_admin(settings.kafka, {"log_level": 0})


@dataclass(frozen=True)
class Probe:
    """One metadata request's outcome: healthy, or why not."""

    healthy: bool
    reachable: bool
    reason: str = ""


def probe(admin: AdminClient, topics: tuple[str, ...], timeout_s: float) -> Probe:
    """Ask the broker for metadata: is it reachable, and are all `topics` there?"""
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        return Probe(False, False, f"no answer ({exc.args[0].str() if exc.args else exc})")
    if not metadata.brokers:
        return Probe(False, False, "no broker in the metadata")
    missing = [t for t in topics if t not in metadata.topics]
    if missing:
        return Probe(False, True, f"topic(s) {', '.join(missing)} missing (a new, empty broker?)")
    return Probe(True, True)


def wait_for_broker(settings: Settings, stop: threading.Event) -> bool:
    """Block until the broker answers a metadata request; False if `stop` was set or `broker_wait_max_s` passed.

    One INFO line per failed attempt, no traceback: the usual cause is starting the worker before the broker.
    """
    health = settings.health
    servers = settings.kafka.bootstrap_servers
    admin = _admin(settings)
    started = time.monotonic()
    delay_s = health.broker_retry_initial_ms / 1000
    attempt = 0
    while not stop.is_set():
        attempt += 1
        result = probe(admin, (), timeout_s=min(5.0, max(1.0, delay_s)))
        if result.reachable:
            if attempt > 1:
                log.info("broker at %s answered after %d attempts", servers, attempt)
            return True
        waited_s = time.monotonic() - started
        if health.broker_wait_max_s and waited_s + delay_s > health.broker_wait_max_s:
            log.error("no Kafka broker reachable at %s after %d attempts in %.0f s (health.broker_wait_max_s); %s",
                      servers, attempt, waited_s, start_hint(settings))
            return False
        log.warning("broker at %s not reachable (attempt %d, %s); retrying in %.1f s", servers, attempt,
                    result.reason, delay_s)
        if stop.wait(delay_s):
            return False
        delay_s = min(delay_s * 2, health.broker_retry_max_ms / 1000)
    return False


class HealthMonitor:
    """Probe the broker every `probe_interval_ms` on a daemon thread; stop the worker when unhealthy too long."""

    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self._settings = settings
        self._stop = stop
        self._topics = topics(settings).all
        self.failed = False
        """Set when the monitor stopped the worker (it then exits with EXIT_BROKER_LOST)."""
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        HEALTHY.set(1)
        BROKER_UP.set(1)
        UNHEALTHY_SECONDS.set(0)

    def start(self) -> HealthMonitor:
        self._thread.start()
        return self

    def _run(self) -> None:
        health = self._settings.health
        servers = self._settings.kafka.bootstrap_servers
        interval_s = health.probe_interval_ms / 1000
        admin = _admin(self._settings)
        unhealthy_since: float | None = None
        while not self._stop.wait(interval_s):
            result = probe(admin, self._topics, timeout_s=max(1.0, interval_s))
            BROKER_UP.set(1 if result.reachable else 0)
            HEALTHY.set(1 if result.healthy else 0)
            now = time.monotonic()
            if result.healthy:
                if unhealthy_since is not None:
                    log.info("healthy again: broker at %s answers after %.0f s", servers, now - unhealthy_since)
                unhealthy_since = None
                UNHEALTHY_SECONDS.set(0)
                continue
            if unhealthy_since is None:
                unhealthy_since = now
                exit_in = (f"exiting in {health.broker_lost_exit_s:.0f} s unless it recovers"
                           if health.broker_lost_exit_s else "staying up")
                log.error("unhealthy: broker at %s: %s; %s", servers, result.reason, exit_in)
            down_s = now - unhealthy_since
            UNHEALTHY_SECONDS.set(down_s)
            if health.broker_lost_exit_s and down_s >= health.broker_lost_exit_s:
                log.error("unhealthy for %.0f s (health.broker_lost_exit_s): broker at %s: %s; stopping with status %d",
                          down_s, servers, result.reason, EXIT_BROKER_LOST)
                self.failed = True
                self._stop.set()
                return


class ShutdownDeadline:
    """Once `stop` is set, give the process `timeout_s` to finish; then log one line and exit hard.

    A stage that commits or flushes to a broker that is gone blocks for minutes (librdkafka's
    message timeout); a supervisor sending SIGTERM needs the process gone in bounded time.
    Children started with `die_with_parent` go with it.
    """

    def __init__(self, stop: threading.Event, timeout_s: float,
                 status: Callable[[], int | None] = lambda: None) -> None:
        self._stop = stop
        self._timeout_s = timeout_s
        self._status = status
        """The exit status to use (None: EXIT_SHUTDOWN_TIMEOUT), e.g. EXIT_BROKER_LOST when that caused the stop."""
        self._finished = threading.Event()
        threading.Thread(target=self._watch, name="shutdown-deadline", daemon=True).start()

    def _watch(self) -> None:
        self._stop.wait()
        if self._finished.wait(self._timeout_s):
            return
        status = self._status() or EXIT_SHUTDOWN_TIMEOUT
        log.error("shutdown did not finish within %.0f s (health.shutdown_timeout_s; broker unreachable?): "
                  "exiting with status %d, uncommitted work is re-read on restart", self._timeout_s, status)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(status)

    def finished(self) -> None:
        """The process stopped in time: disarm."""
        self._finished.set()
