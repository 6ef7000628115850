"""`streamrec demo` left running (no --exit): versions hot-swapped, the dashboard in headless Chromium, Ctrl-C stops
all.

The whole design on a short stream: the starting model trained on the warm half within a small
budget, the trainer publishing every few seconds, the continual stage hot-swapping, the frozen
twin and the kNN as shadows, `streamrec serve` with the dashboard. The test waits for two model
versions to be served, reads the dashboard from the page (charts with several points, a swap on
the version timeline, the trainer's examples/s above 0), saves a screenshot, sends SIGINT and
checks that every process the demo started has ended.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from test_demo import LEAK_MARK, REPO_ROOT, _processes_marked

from streamrec.stream.broker import free_port

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")
CHARTS = ("chart-rate", "chart-latency", "chart-hr", "chart-mrr", "chart-lag", "chart-trainer-rate")


def _write_events_csv(path: Path) -> None:
    import csv

    from streamrec.state.clicklog.synthetic import SyntheticSpec, generate

    clicks = generate(SyntheticSpec(users=40, sessions=400, items=120, intents=6, days=2.0))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["session_id", "user_id", "item_id", "timestamp"])
        writer.writerows([c.session_id, c.user_id or "", c.item_id, c.ts] for c in clicks)


def _wait_for(condition, timeout_s: float, what: str, demo: subprocess.Popen, output: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert demo.poll() is None, (f"the demo exited ({demo.returncode}) while waiting for {what}:\n"
                                     f"{output.read_text()[-4000:]}")
        value = condition()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"no {what} after {timeout_s:.0f} s:\n{output.read_text()[-4000:]}")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the process check reads /proc")
def test_demo_keeps_running_with_swaps_on_the_dashboard_until_ctrl_c(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: `apt-get install -y chromium` (make setup does it when root) to run the "
                    "dashboard test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `pip install playwright` (the project's `test` extra) to run the "
                    "dashboard test")

    events = tmp_path / "events.csv"
    _write_events_csv(events)
    mark = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    env.update({LEAK_MARK: mark, "STREAMREC_DEMO__CHECKPOINT_CACHE_DIR": str(tmp_path / "cache"),
                "STREAMREC_TRAINING__PUBLISH_EVERY_S": "3", "STREAMREC_API__HISTORY_INTERVAL_S": "1",
                "STREAMREC_API__PORT": str(free_port()), "COLUMNS": "160"})
    output = tmp_path / "demo.out"
    with output.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "streamrec", "demo", "--dataset", str(events), "--format", "events-csv",
             "--report", str(tmp_path / "report"), "--train-seconds", "8", "--rate", "30", "--limit", "900"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    screenshot = tmp_path / "dashboard.png"
    try:
        url = _wait_for(lambda: (m := re.search(r"dashboard (http://[\d.]+:\d+)/dashboard", output.read_text()))
                        and m.group(1), 240, "dashboard URL", demo, output)
        with httpx.Client(base_url=url, timeout=10.0) as client:
            def two_versions_served() -> dict | None:
                try:
                    stats = client.get("/stats").json()
                except httpx.HTTPError:
                    return None
                serving = stats.get("serving", {}).get(stats.get("serving_scorer"), {})
                return stats if (serving.get("versions_served") or 0) >= 2 else None

            stats = _wait_for(two_versions_served, 300, "second model version served", demo, output)
            _wait_for(lambda: "Ctrl-C stops everything" in output.read_text(), 300, "end report", demo, output)
            assert stats["serving_scorer"].endswith("+online")
            assert client.get("/docs").status_code == 200 and b"/static/docs.js" in client.get("/docs").content

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/dashboard")

            def shown() -> dict[str, object]:
                return {
                    "points": {c: int(page.get_attribute(f"#{c}", "data-points") or 0) for c in CHARTS},
                    "swaps": int(page.get_attribute("#swap-timeline", "data-swaps") or 0),
                    "swap_rows": len(page.query_selector_all("#swaps tr[data-scorer]")),
                    "trainer": page.inner_text("#trainer-examples-per-s"),
                    "status": page.inner_text("#status"),
                    "version": page.inner_text("#serving-version"),
                    "scorers": sorted(r.get_attribute("data-scorer")
                                      for r in page.query_selector_all("#scorers tr[data-scorer]")),
                }

            def ready() -> bool:
                s = shown()
                return (min(s["points"].values()) >= 3 and s["swaps"] >= 1
                        and NUMBER.match(s["trainer"].strip()) is not None
                        and float(s["trainer"].replace(",", "")) > 0)

            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not ready():
                page.wait_for_timeout(1000)
            figures = shown()
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"dashboard screenshot: {screenshot}\ndashboard figures: {figures}")
            browser.close()
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            returncode = demo.wait(timeout=120)
        except subprocess.TimeoutExpired:
            demo.kill()
            returncode = None

    text = output.read_text()
    assert returncode == 0, text[-4000:]
    assert _processes_marked(mark) == [], "processes of the demo still running after Ctrl-C"
    assert figures["status"] == "live"
    assert all(n >= 3 for n in figures["points"].values()), figures
    assert figures["swaps"] >= 1 and figures["swap_rows"] >= 1, figures
    assert float(str(figures["trainer"]).replace(",", "")) > 0, figures
    assert figures["version"] not in ("", "–")
    assert {"default+online", "default", "sknn"} <= set(figures["scorers"]), figures
    assert screenshot.stat().st_size > 0
    assert list((tmp_path / "cache").glob("default-*.pt")), "the starting model trained at start is not cached"
    # the end report came before: for every scorer whether its latency is service latency or queueing (which
    # one depends on the machine's load, not on the code), the neural model next to the kNN and the frozen twin
    assert "Ctrl-C stops everything" in text and "demo: stopping" in text
    for scorer in ("default+online", "default", "sknn"):
        assert re.search(rf"{re.escape(scorer)}: (service latency|QUEUEING)", text), text[-4000:]
        assert re.search(rf"{re.escape(scorer)} +│ +(continual|frozen twin|shadow) ", text), text[-4000:]
