"""Verification of announced versions: what the hot swap accepts and what it refuses (no broker needed)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from _continual import base_checkpoint

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online.learner import ContinualLearner
from streamrec.models.online.settings import OnlineSettings, StreamExample
from streamrec.models.serving import NeuralScorer
from streamrec.state.checkpoint_store import CheckpointStore, sha256_of
from streamrec.state.vocab import ItemVocabulary
from streamrec.stream.topics import ModelUpdate
from streamrec.stream.updates.verify import Refused, load_verified


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    return base_checkpoint(tmp_path_factory.mktemp("base") / "base.pt")


def _announce(path: Path, checkpoint: Checkpoint, sha: str | None = None) -> ModelUpdate:
    return ModelUpdate(model=checkpoint.preset, sequence=1, version=checkpoint.version, path=str(path),
                       sha256=sha or sha256_of(path), trained_through={0: 5}, last_click_ts=None, examples_trained=0,
                       steps=0, published_at=time.time())


def _stored(tmp_path: Path, checkpoint: Checkpoint) -> ModelUpdate:
    stored = CheckpointStore(tmp_path / "store", keep=3).publish(lambda p: checkpoint.save(p), {})
    return _announce(stored.path, checkpoint, stored.sha256)


def test_a_learner_snapshot_with_a_new_item_is_accepted(base: Checkpoint, tmp_path: Path) -> None:
    learner = ContinualLearner(base, OnlineSettings(micro_batch_size=4), device="cpu")
    learner.add([StreamExample(("a", "b"), "new-item", 1.0e9), StreamExample(("new-item",), "c", 1.0e9 + 1)] * 4)
    while learner.step() is not None:
        pass
    snapshot = learner.snapshot({})
    scorer = load_verified(_stored(tmp_path, snapshot), NeuralScorer(base, device="cpu"), smoke_queries=4)
    assert scorer.version == snapshot.version and "new-item" in scorer.vocab


def test_a_truncated_file_is_refused_on_its_checksum(base: Checkpoint, tmp_path: Path) -> None:
    update = _stored(tmp_path, base)
    data = Path(update.path).read_bytes()
    Path(update.path).write_bytes(data[: len(data) // 2])
    with pytest.raises(Refused) as refused:
        load_verified(update, NeuralScorer(base, device="cpu"), smoke_queries=4)
    assert refused.value.reason == "checksum"


def test_garbage_with_a_matching_checksum_is_refused_on_its_format(base: Checkpoint, tmp_path: Path) -> None:
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(Refused) as refused:
        load_verified(_announce(path, base), NeuralScorer(base, device="cpu"), smoke_queries=4)
    assert refused.value.reason == "format"


def test_a_model_of_another_lineage_is_refused(base: Checkpoint, tmp_path: Path) -> None:
    shuffled = dataclasses.replace(base, vocab=ItemVocabulary.from_list(list(reversed(base.vocab.to_list()))))
    with pytest.raises(Refused) as refused:
        load_verified(_stored(tmp_path, shuffled), NeuralScorer(base, device="cpu"), smoke_queries=4)
    assert refused.value.reason == "vocabulary"


def test_another_architecture_is_refused(base: Checkpoint, tmp_path: Path) -> None:
    other = dataclasses.replace(base, config=dataclasses.replace(base.config, dim=8))
    with pytest.raises(Refused) as refused:
        load_verified(_stored(tmp_path, other), NeuralScorer(base, device="cpu"), smoke_queries=4)
    assert refused.value.reason == "incompatible"


def test_a_candidate_index_ships_with_a_version_and_is_loaded_with_it(base: Checkpoint, tmp_path: Path) -> None:
    from streamrec.config import load_settings
    from streamrec.stream.trainer.publish import candidate_index_builder

    settings = load_settings(scoring={"candidates_min_catalogue_items": 1})
    stored = CheckpointStore(tmp_path / "store", keep=3).publish(lambda p: base.save(p), {})
    index_path = candidate_index_builder(settings)(base, stored.path)
    assert index_path is not None and index_path.name == stored.path.name + ".hnsw"
    update = _announce(stored.path, base, stored.sha256).model_copy(update={"candidates_path": str(index_path)})
    serving = NeuralScorer(base, device="cpu")
    serving.candidates = dataclasses.replace(serving.candidates, candidates_min_catalogue_items=1)
    scorer = load_verified(update, serving, smoke_queries=4)
    assert scorer.index is not None and scorer.index.num_items == scorer.model.num_items
