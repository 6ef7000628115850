"""docs/benchmarks.md stays the current figures: short, naming only bench scripts that exist, and every
section the code and the other docs point to is still there (earlier runs live in docs/benchmarks-history.md)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "benchmarks.md"
HISTORY = REPO / "docs" / "benchmarks-history.md"
MAX_LINES = 400

_SCRIPT = re.compile(r"\bbench/[\w/.-]+?\.py\b")
_QUOTED_SECTION = re.compile(r"benchmarks\.md,?\s+[\"']([^\"']+)[\"']")
_ANCHOR = re.compile(r"benchmarks\.md#([\w-]+)")
_SEARCHED = ("config", "models", "state", "stream", "streamrec", "bench", "docs", "tests")


def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _referring_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "Makefile"]
    for folder in _SEARCHED:
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".md") and p.is_file()]
    return [p for p in files if p.exists() and p not in (DOC, HISTORY, Path(__file__).resolve())]


def test_benchmarks_doc_is_at_most_400_lines() -> None:
    lines = DOC.read_text().splitlines()
    assert len(lines) <= MAX_LINES, (
        f"docs/benchmarks.md has {len(lines)} lines (at most {MAX_LINES}): keep each benchmark's latest figures "
        "there and move the replaced runs, verbatim, to docs/benchmarks-history.md"
    )


def test_every_bench_script_named_exists() -> None:
    named = sorted(set(_SCRIPT.findall(DOC.read_text())))
    assert named, "docs/benchmarks.md names no bench/*.py script"
    missing = [script for script in named if not (REPO / script).is_file()]
    assert not missing, f"docs/benchmarks.md names bench scripts that do not exist: {missing}"


def test_the_history_is_linked_from_the_doc() -> None:
    assert HISTORY.is_file()
    assert "benchmarks-history.md" in DOC.read_text()


def test_every_section_pointed_to_exists() -> None:
    """`docs/benchmarks.md, "Section"` in code and docs names text of the doc; `benchmarks.md#anchor` a heading."""
    text = DOC.read_text()
    anchors = {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    broken = []
    for path in _referring_files():
        source = path.read_text(errors="replace")
        if path.suffix == ".py":  # one text across implicitly concatenated string literals, escapes undone
            source = re.sub(r"\"\s*\n\s*\"", "", source).replace('\\"', '"')
        for quoted in _QUOTED_SECTION.findall(source):
            name = re.sub(r"\s*\n\s*#?\s*", " ", quoted).removesuffix("...").strip()  # wrapped across lines
            if not name:
                broken.append(f"{path.relative_to(REPO)}: an empty section name")
            elif name not in text:
                broken.append(f"{path.relative_to(REPO)}: {quoted!r}")
        broken += [f"{path.relative_to(REPO)}: #{a}" for a in _ANCHOR.findall(source) if a not in anchors]
    assert not broken, "sections of docs/benchmarks.md pointed to but not there:\n" + "\n".join(broken)
