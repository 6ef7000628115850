"""docs/webapp.md's Kafka examples run as written against a real broker and worker.

The page's ```python blocks (before any HTTP API section, which has its own test) and its
`streamrec produce` console example are executed in subprocesses; the only change is the
broker address, which the examples spell as `127.0.0.1:9092` (`streamrec broker`'s default).
The consumer examples loop forever, as a web app does: the harness feeds clicks in the
background and interrupts the loop after a while, then checks recommendations arrived.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from ops_helpers import wait_until

from streamrec.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
DOC = REPO_ROOT / "docs" / "webapp.md"
DOC_ADDRESS = "127.0.0.1:9092"


def kafka_sections() -> str:
    """The page up to its HTTP API section (if any)."""
    text = DOC.read_text()
    match = re.search(r"^## .*HTTP", text, flags=re.MULTILINE)
    return text[: match.start()] if match else text


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", kafka_sections(), flags=re.DOTALL)


def block_with(marker: str) -> str:
    blocks = [b for b in python_blocks() if marker in b]
    assert len(blocks) == 1, f"expected one python block containing {marker!r} in {DOC}"
    return blocks[0]


def run_python(code: str, broker: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    env["STREAMREC_KAFKA__BOOTSTRAP_SERVERS"] = broker
    return subprocess.run([sys.executable, "-c", code.replace(DOC_ADDRESS, broker)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


FEEDER = textwrap.dedent('''
    import signal, threading, time as _time, uuid as _uuid
    _producer_ns: dict = {}
    exec(PRODUCER_BLOCK, _producer_ns)

    def _feed() -> None:
        for n in range(600):
            _producer_ns["track_click"](f"docs-{_uuid.uuid4().hex[:6]}", f"sku-{n % 5}")
            _producer_ns["producer"].flush(5)
            _time.sleep(0.2)

    threading.Thread(target=_feed, daemon=True).start()

    class _Enough(BaseException):
        """Ends the example's endless loop (through its `finally` / `with`), as a shutdown would."""

    def _enough(*_):
        raise _Enough

    signal.signal(signal.SIGALRM, _enough)
    signal.alarm(ALARM_S)
    _ns: dict = {}
    try:
        exec(CONSUMER_BLOCK, _ns)
    except _Enough:
        pass
    print("LATEST=" + json.dumps(_ns.get("latest", {})))
''')


def consumer_harness(consumer_block: str, alarm_s: int = 25) -> str:
    return ("import json\n" + f"PRODUCER_BLOCK = {block_with('def track_click')!r}\n"
            f"CONSUMER_BLOCK = {consumer_block!r}\nALARM_S = {alarm_s}\n" + FEEDER)


@pytest.fixture
def docs_deployment(make_settings: Callable[..., Settings], spawn_worker: Callable) -> Settings:
    """A worker on the unprefixed topics the examples name (each test run answers only its own new clicks)."""
    settings = make_settings(kafka={"topic_prefix": ""})
    worker = spawn_worker(settings)
    assert wait_until(lambda: "worker starting" in worker.log(), timeout_s=60), worker.log()
    return settings


def test_every_kafka_example_is_found() -> None:
    blocks = python_blocks()
    assert len(blocks) == 4, blocks
    assert all(DOC_ADDRESS in b or "load_settings" in b for b in blocks)


def test_producer_examples_run(docs_deployment: Settings) -> None:
    broker = docs_deployment.kafka.bootstrap_servers
    raw = run_python(block_with("def track_click") + "\ntrack_click('docs-s1', 'sku-1')\nassert producer.flush(30) == "
                     "0\n",
                     broker)
    assert raw.returncode == 0, raw.stderr
    typed = run_python(block_with("ClickProducer"), broker)
    assert typed.returncode == 0, typed.stderr


def test_streamrec_produce_console_example(docs_deployment: Settings) -> None:
    console = re.search(r"```console\n\$ (.*?)\n(.*?)```", kafka_sections(), flags=re.DOTALL)
    assert console is not None
    command, expected = console.group(1), console.group(2).strip().splitlines()
    command = command.replace("| streamrec produce", f"| {sys.executable} -m streamrec produce")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    env["STREAMREC_KAFKA__BOOTSTRAP_SERVERS"] = docs_deployment.kafka.bootstrap_servers
    result = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr  # the example has one invalid line
    assert result.stderr.strip().splitlines() == expected, result.stderr


@pytest.mark.parametrize("marker", ["consumer.subscribe", "RecommendationFeed"])
def test_consumer_examples_receive_recommendations(docs_deployment: Settings, marker: str) -> None:
    result = run_python(consumer_harness(block_with(marker)), docs_deployment.kafka.bootstrap_servers)
    assert result.returncode == 0, result.stderr
    latest = json.loads(result.stdout.split("LATEST=", 1)[1])
    assert latest and all(isinstance(items, list) for items in latest.values()), result.stdout
    assert any(items for items in latest.values()), latest
