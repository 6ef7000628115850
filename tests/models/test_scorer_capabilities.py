"""Scorer capabilities are declared (models/scorer.py protocols), never looked up by name.

Every built-in scorer satisfies exactly the capabilities it claims, a scorer that declares none
gets the neutral behaviour, and no module of the package asks for a capability by a string.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

from _toy_split import toy_split

import streamrec.models
import streamrec.stream
from streamrec.config import load_settings
from streamrec.models.registry import build_scorer, list_scorers
from streamrec.models.scorer import (
    Closeable,
    Fittable,
    KeepsLedger,
    ObservesPositions,
    Persistent,
    Query,
    Ranked,
    ReadsHistory,
    RunsOnDevice,
    Scorer,
    close_scorer,
    learning_ledger,
    persist_scorer,
    reads_history,
)
from streamrec.models.serving import NeuralScorer
from streamrec.models.statistics_scorer import StatisticsScorer
from streamrec.models.train import train_checkpoint
from streamrec.state.learned import LearnedLedger

CAPABILITIES = (Closeable, Persistent, KeepsLedger, ObservesPositions, ReadsHistory, Fittable, RunsOnDevice)
STATISTICS = {Fittable, Persistent, Closeable, KeepsLedger}
"""What a baseline over streaming statistics can do besides score (models/statistics_scorer.py)."""
CLAIMS: dict[str, set[type]] = {"sknn": STATISTICS, "pop": STATISTICS}
"""The capabilities each scorer `streamrec scorers` lists claims; a new built-in scorer adds its line."""
NEURAL = {Closeable, Persistent, KeepsLedger, ObservesPositions, ReadsHistory, RunsOnDevice}
"""A checkpoint served by NeuralScorer: it does not `fit` (training is models/train.py's business)."""
NAMES = {"observe_at", "persist", "learned", "reads_history", "close", "fit", "device", "tables", "trained_through"}
"""Capability members the package once looked up with getattr/hasattr; none may be again."""


def _declared(scorer: object) -> set[type]:
    return {capability for capability in CAPABILITIES if isinstance(scorer, capability)}


def test_every_listed_scorer_claims_its_capabilities(tmp_path: Path) -> None:
    assert set(list_scorers()) == set(CLAIMS), "a built-in scorer without a line in CLAIMS"
    for name, claimed in CLAIMS.items():
        scorer = build_scorer(load_settings(scoring={"scorer": name}, state={"dir": tmp_path}), persist=False)
        assert isinstance(scorer, Scorer) and isinstance(scorer, StatisticsScorer)
        assert _declared(scorer) == claimed, name
        assert isinstance(learning_ledger(scorer), LearnedLedger) and not reads_history(scorer)
        assert isinstance(scorer, Fittable) and scorer.fit([["a", "b"]]) is scorer
        persist_scorer(scorer)
        close_scorer(scorer)


def test_a_checkpoint_scorer_claims_its_capabilities() -> None:
    checkpoint = train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", dim=8, max_epochs=1, patience=1,
                                  batch_size=16)
    scorer = NeuralScorer(checkpoint, device="cpu")
    assert isinstance(scorer, Scorer) and _declared(scorer) == NEURAL
    assert scorer.trained_through is None, "declared, set only by the model-updates follower"
    assert learning_ledger(scorer) is None and not reads_history(scorer)  # no fallback, no long-term memory
    persist_scorer(scorer)
    close_scorer(scorer)


class _Bare:
    """A scorer that declares nothing beyond the Scorer protocol (and a `learned` that is no ledger)."""

    name, version = "bare", "v"

    def __init__(self) -> None:
        self.learned: list[str] = []

    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]:
        return [[] for _ in queries]

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        pass


def test_a_scorer_without_capabilities_gets_the_neutral_behaviour() -> None:
    bare = _Bare()
    assert isinstance(bare, Scorer) and _declared(bare) == {KeepsLedger}
    close_scorer(bare)
    persist_scorer(bare)
    assert learning_ledger(bare) is None and not reads_history(bare)


def _lookups_by_name(path: Path) -> list[str]:
    """getattr/hasattr/setattr calls in `path` naming a capability with a string, and trained_through patched on."""
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "hasattr", "setattr"}):
            name = node.args[1] if len(node.args) >= 2 else None
            if isinstance(name, ast.Constant) and name.value in NAMES:
                found.append(f"{path}:{node.lineno}: {node.func.id}(..., {name.value!r})")
    found += [f"{path}:{n}: {line.strip()}" for n, line in enumerate(source.splitlines(), 1)
              if "trained_through" in line and "type: ignore" in line]
    return found


def test_no_capability_is_looked_up_by_name() -> None:
    roots = (Path(streamrec.models.__file__).parent, Path(streamrec.stream.__file__).parent)
    sources = sorted(path for root in roots for path in root.rglob("*.py"))
    assert any(path.name == "knn.py" for path in sources) and any(path.name == "follower.py" for path in sources)
    found = [lookup for path in sources for lookup in _lookups_by_name(path)]
    assert not found, "declare these in models/scorer.py instead:\n" + "\n".join(found)


def test_the_lookup_check_finds_a_lookup(tmp_path: Path) -> None:
    """The check above is not vacuous: the pattern it forbids is found."""
    sample = tmp_path / "sample.py"
    sample.write_text('close = getattr(scorer, "close", None)\nok = getattr(settings, "port")\n'
                      'x.trained_through = {}  # type: ignore[attr-defined]\n')
    assert [line.split(": ", 1)[1] for line in _lookups_by_name(sample)] == [
        "getattr(..., 'close')", "x.trained_through = {}  # type: ignore[attr-defined]"]
