"""Local state left from another cluster: one line naming `streamrec state clear`, which removes it.

Reproducing Quix's InvalidStoreChangelogOffset end to end on Tansu did not succeed (a stale
store on a second broker was not rejected within 2 minutes), so the explanation is checked
on Quix's real exception and the verb on a real state directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from quixstreams.state.exceptions import InvalidStoreChangelogOffset

from streamrec.config import load_settings
from streamrec.stream.observability.stage_errors import explain_stage_error

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_invalid_changelog_offset_is_explained_with_the_fix(tmp_path: Path) -> None:
    settings = load_settings(state={"dir": tmp_path / "state"})
    line = explain_stage_error(InvalidStoreChangelogOffset("offset >= highwater"), settings)
    assert line is not None and "streamrec state clear" in line and str(tmp_path / "state") in line
    assert explain_stage_error(RuntimeError("a bug"), settings) is None


def _state_clear(state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = ({k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
           | {"STREAMREC_STATE__DIR": str(state_dir)})
    return subprocess.run([sys.executable, "-m", "streamrec", "state", "clear", "--yes"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_state_clear_removes_the_state_directory(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    (state_dir / "streamrec-stateful" / "0").mkdir(parents=True)
    (state_dir / "streamrec-stateful" / "0" / "CURRENT").write_text("MANIFEST-000001\n")
    result = _state_clear(state_dir)
    assert result.returncode == 0 and "removed" in result.stdout, result.stderr
    assert not state_dir.exists()
    again = _state_clear(state_dir)
    assert again.returncode == 0 and "nothing to clear" in again.stdout, again.stderr
