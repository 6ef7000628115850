"""A log too small for the demo gets one line and exit status 2, before any process is started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("rows", "says"), [
    (["s1,,a,1700000000"], "no click left to judge"),
    (["s1,,a,1700000000", "s1,,b,1700000010", "s2,,a,1700000020", "s2,,c,1700000030", "s3,,b,1700000040",
      "s3,,c,1700000050"], "the starting model needs at least"),
])
def test_a_log_too_small_for_the_demo_is_one_line(rows: list[str], says: str, tmp_path: Path) -> None:
    log = tmp_path / "events.csv"
    log.write_text("session_id,user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    env["STREAMREC_DEMO__CHECKPOINT_CACHE_DIR"] = str(tmp_path / "cache")
    result = subprocess.run([sys.executable, "-m", "streamrec", "demo", "--dataset", str(log), "--format", "events-csv",
                             "--exit", "--report", str(tmp_path / "report")],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and says in errors[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "cache").exists()  # nothing trained
