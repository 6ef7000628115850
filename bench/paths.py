"""Where the benches find the shared data sets and write their reports: one definition for every bench."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT.parent / "shared" / "data"
"""../shared/data beside the checkout (its README: formats and protocols); never copied into the repo."""
REPORTS = REPO_ROOT / "reports"
"""Bench outputs (git-ignored)."""
