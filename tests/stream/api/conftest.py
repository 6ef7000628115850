"""`spawn_api`: `python -m streamrec serve` as a real subprocess on a free port, configured only by STREAMREC_*.

Also `free_port()` and `ApiProcess.wait_healthy()` (polls /healthz until 200: the broker
answers and the recommendations topic is assigned).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from streamrec.config import Settings
from streamrec.stream.broker import free_port
from streamrec.stream.harness.demo import settings_env

REPO_ROOT = Path(__file__).resolve().parents[3]


class ApiProcess:
    """One `streamrec serve` in its own process group, output in a log file."""

    def __init__(self, settings: Settings, log_path: Path, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
        env.update(settings_env(settings))
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streamrec", "serve", "--host", host, "--port", str(port)],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.client = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_healthy(self, timeout_s: float = 60.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.alive, f"streamrec serve exited with {self.process.returncode}:\n{self.log()[-3000:]}"
            try:
                response = self.client.get("/healthz")
                if response.status_code == 200:
                    return dict(response.json())
                last = response.text
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise AssertionError(f"/healthz not ok after {timeout_s} s: {last}\n{self.log()[-3000:]}")

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self.client.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def spawn_api(tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Start API subprocesses (`port` to reuse one, e.g. for a restart; `host` to listen on); all are killed at
    teardown."""
    started: list[ApiProcess] = []

    def spawn(settings: Settings, port: int | None = None, host: str = "127.0.0.1") -> ApiProcess:
        api = ApiProcess(settings, tmp_path / f"api-{len(started)}.log", port or free_port(), host)
        started.append(api)
        return api

    yield spawn
    for index, api in enumerate(started):
        if api.alive:
            api.kill()
        print(f"--- api {index} (exit {api.process.returncode}) log tail ---\n{api.log()[-3000:]}")  # shown on failure
