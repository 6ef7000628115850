"""`streamrec demo --exit` end to end on a small events CSV: the neural model, its frozen twin and the kNN judged on
the same clicks, a sane report, and no process left behind (the run left up until Ctrl-C: test_demo_live.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.protocols import split_for
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate

REPO_ROOT = Path(__file__).resolve().parents[3]
LEAK_MARK = "STREAMREC_DEMO_TEST_MARK"


def _write_events_csv(path: Path) -> int:
    clicks = generate(SyntheticSpec(users=15, sessions=50, items=40, intents=3, days=1.0))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["session_id", "user_id", "item_id", "timestamp"])
        writer.writerows([c.session_id, c.user_id or "", c.item_id, c.ts] for c in clicks)
    return len(clicks)


def _processes_marked(mark: str) -> list[int]:
    """Pids of live processes whose environment carries `mark` (children inherit it, orphans too)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # exited meanwhile, or not ours to read
            continue
        if f"{LEAK_MARK}={mark}".encode() in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="process check reads /proc")
def test_demo_serving_a_checkpoint_reports_every_scorer_and_leaves_no_process(tmp_path: Path) -> None:
    """`STREAMREC_SCORING__CHECKPOINT_PATH=... streamrec demo --exit`: the checkpoint, its frozen twin and the kNN
    shadow answer every click (the shadow used to die on the primary's LOCK); the demo that trains its own
    starting model is test_demo_live.py."""
    events = tmp_path / "events.csv"
    clicks = _write_events_csv(events)
    checkpoint = train_checkpoint("grainrec-contextgnn", split_for("events-csv", events, "loo"), device="cpu", dim=8,
                                  max_epochs=1)
    mark = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    env[LEAK_MARK] = mark  # not a settings variable: pydantic-settings ignores unknown STREAMREC_* names
    env["STREAMREC_SCORING__CHECKPOINT_PATH"] = str(checkpoint.save(tmp_path / "model.pt"))
    env["STREAMREC_DEMO__CHECKPOINT_CACHE_DIR"] = str(tmp_path / "cache")  # never ~/.cache

    result = subprocess.run(
        [sys.executable, "-m", "streamrec", "demo", "--dataset", str(events), "--format", "events-csv",
         "--report", str(tmp_path / "report"), "--rate", "50", "--exit"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=400,
    )

    logs = "".join(p.read_text(errors="replace")[-2000:] for p in (tmp_path / "report").glob("*.log"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + logs
    assert _processes_marked(mark) == []
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    warm = clicks // 2  # demo.warm_share
    assert report["counts"]["warm_sent"] == warm and report["counts"]["sent"] == clicks - warm
    assert report["counts"]["dlq"] == 0
    # it follows model-updates (updates.follow); its frozen twin and the kNN shadow answer too
    assert {s["scorer"] for s in report["scorers"]} == {"grainrec-contextgnn+online", "grainrec-contextgnn", "sknn"}
    for scorer in report["scorers"]:
        assert scorer["recommended"] == clicks - warm and scorer["missing"] == 0
        assert 0 < scorer["judged"] < clicks - warm
    for name in ("report.md", "timeline.png", "latency.png", "demo.md", "demo.json"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    demo = json.loads((tmp_path / "report" / "demo.json").read_text())
    assert {s["role"] for s in demo["scorers"]} == {"continual", "frozen twin", "shadow"}
    assert demo["api_answered"] and demo["paired"]
    assert "HR@20" in result.stdout
    assert "demo: live dashboard http://" in result.stdout  # the demo also runs `streamrec serve` and says where
    assert "listening on http://" in (tmp_path / "report" / "api.log").read_text()
    assert not (tmp_path / "cache").exists()  # a checkpoint was given: nothing trained, nothing cached
