"""The live dashboard in headless Chromium while a small stream runs: its numbers appear and update.

Needs Debian's `chromium` (`make setup` installs it when run as root) and the `playwright`
package (the `test` extra); no browser download is used. Without them the test is skipped
with the reason, never silently.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from streamrec.config import Settings
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.stream.admin import ensure_topics
from streamrec.stream.clients.producer import ClickProducer
from streamrec.stream.harness.demo import shadow_settings
from streamrec.stream.topics import ClickEvent, Topics

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")
FAST_KAFKA = {"single_record_batches": False, "fetch_wait_max_ms": 10}


def _stream(settings: Settings, stop: threading.Event, rate_eps: float = 100.0) -> None:
    """Synthetic sessions at about `rate_eps` clicks/s (event time = now), plus a malformed click now and then."""
    clicks = generate(SyntheticSpec(users=30, sessions=400, items=60, intents=4, days=1.0))
    bad = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    with ClickProducer.from_settings(settings) as producer:
        for index, click in enumerate(clicks):
            if stop.is_set():
                break
            producer.send(ClickEvent(event_id=f"d-{uuid.uuid4().hex[:10]}", session_id=click.session_id,
                                     user_id=click.user_id, item_id=click.item_id, ts=time.time()))
            if index % 50 == 0:
                bad.produce(Topics(settings.kafka.topic_prefix).clicks, key=b"k", value=b"{broken")
                bad.poll(0)
                producer.flush(1.0)
            time.sleep(1.0 / rate_eps)
    bad.flush(10)


def _numeric(text: str) -> bool:
    return bool(NUMBER.match(text.strip()))


def test_dashboard_shows_live_numbers(make_settings: Callable[..., Settings], spawn_worker: Callable,
                                      spawn_api: Callable, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: `apt-get install -y chromium` (make setup does it when root) to run the "
                    "dashboard test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `pip install playwright` (the project's `test` extra) to run the "
                    "dashboard test")

    settings = make_settings(kafka=FAST_KAFKA)
    ensure_topics(settings)
    spawn_worker(settings)
    spawn_worker(shadow_settings(settings, "pop"), role="scoring")
    api = spawn_api(settings)
    api.wait_healthy()
    stop = threading.Event()
    streamer = threading.Thread(target=_stream, args=(settings, stop), daemon=True)
    streamer.start()
    screenshot = tmp_path / "dashboard.png"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 720})
            page.goto(f"{api.url}/dashboard")

            def figures() -> dict[str, str]:
                ids = ("clicks-per-s", "recommendations-per-s", "latency-p50", "latency-p99", "lag", "dead-letters")
                shown = {i: page.inner_text(f"#{i}") for i in ids}
                for row in page.query_selector_all("#scorers tr"):
                    name = row.get_attribute("data-scorer")
                    shown[f"hr-{name}"] = row.query_selector(".hr").inner_text()
                    shown[f"version-{name}"] = row.query_selector(".version").inner_text()
                return shown

            # a loaded CI machine starts workers slowly; a pass leaves as soon as all shows
            deadline = time.monotonic() + 180
            shown = figures()
            while time.monotonic() < deadline:
                shown = figures()
                live = all(_numeric(v) for k, v in shown.items() if not k.startswith("version-"))
                if live and float(shown["clicks-per-s"].replace(",", "")) > 0 and shown["dead-letters"] != "0" \
                        and {"hr-pop", f"hr-{settings.scoring.scorer}"} <= shown.keys():
                    break
                page.wait_for_timeout(500)
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"dashboard screenshot: {screenshot}")
            status = page.inner_text("#status")
            browser.close()
    finally:
        stop.set()
        streamer.join(timeout=30)

    print(f"dashboard figures: {shown}")
    assert status == "live"
    for name in ("clicks-per-s", "recommendations-per-s", "latency-p50", "latency-p99", "lag", "dead-letters"):
        assert _numeric(shown[name]), (name, shown)
    assert float(shown["clicks-per-s"].replace(",", "")) > 0
    assert float(shown["recommendations-per-s"].replace(",", "")) > 0
    assert int(shown["dead-letters"].replace(",", "")) > 0
    for scorer in ("pop", settings.scoring.scorer):
        assert _numeric(shown[f"hr-{scorer}"]), (scorer, shown)
        assert 0.0 <= float(shown[f"hr-{scorer}"]) <= 1.0
        assert shown[f"version-{scorer}"] not in ("", "–")
