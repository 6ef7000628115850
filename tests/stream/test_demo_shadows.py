"""The demo's shadow scorers next to a primary serving a checkpoint: their own scorer, their own RocksDB folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamrec.config import load_settings
from streamrec.models.registry import build_scorer
from streamrec.models.scorer import Query, close_scorer
from streamrec.models.serving import NeuralScorer
from streamrec.models.train import train_checkpoint
from streamrec.stream.harness.demo import DEMO_SHADOW_SCORERS, shadow_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from _toy_split import toy_split  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkpoint = train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", dim=8, max_epochs=1)
    return checkpoint.save(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.mark.parametrize("shadow", sorted({*DEMO_SHADOW_SCORERS, "sknn"}))
def test_shadows_of_a_checkpoint_serve_their_own_scorer_from_their_own_folder(
    shadow: str, checkpoint_file: Path, tmp_path: Path
) -> None:
    primary_settings = load_settings(scoring={"checkpoint_path": checkpoint_file}, state={"dir": tmp_path})
    settings = shadow_settings(primary_settings, shadow)
    assert settings.scoring.checkpoint_path is None and settings.scoring.scorer == shadow
    primary = build_scorer(primary_settings)  # holds the LOCK of its kNN fallback's folder
    try:
        shadow_scorer = build_scorer(settings)  # used to open the same folder and die on its LOCK
        try:
            assert isinstance(primary, NeuralScorer) and shadow_scorer.name == shadow
            assert shadow_scorer.recommend([Query(session_items=["a"])], k=3) == [[]]
        finally:
            close_scorer(shadow_scorer)
    finally:
        close_scorer(primary)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the demo test's process check reads /proc")
def test_demo_serving_a_checkpoint_runs_with_its_shadow(tmp_path: Path) -> None:
    """`STREAMREC_SCORING__CHECKPOINT_PATH=... streamrec demo`: every scorer answers every click (it used to die on a LOCK)."""
    from test_demo import REPO_ROOT, _write_events_csv

    events = tmp_path / "events.csv"
    clicks = _write_events_csv(events)
    from streamrec.state.clicklog.protocols import split_for

    checkpoint = train_checkpoint("grainrec-contextgnn", split_for("events-csv", events, "loo"), device="cpu", dim=8, max_epochs=1)
    path = checkpoint.save(tmp_path / "model.pt")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    env["STREAMREC_SCORING__CHECKPOINT_PATH"] = str(path)  # served instead of the demo's own starting model
    result = subprocess.run(
        [sys.executable, "-m", "streamrec", "demo", "--dataset", str(events), "--format", "events-csv",
         "--report", str(tmp_path / "report"), "--rate", "50", "--exit"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=400,
    )
    logs = "".join(p.read_text(errors="replace")[-2000:] for p in (tmp_path / "report").glob("*.log"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + logs
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    # it follows model-updates (updates.follow); its frozen twin and the kNN shadow answer too
    assert {s["scorer"] for s in report["scorers"]} == {"grainrec-contextgnn+online", "grainrec-contextgnn", "sknn"}
    assert all(s["recommended"] == report["counts"]["sent"] == clicks - clicks // 2 and s["missing"] == 0
               for s in report["scorers"])
