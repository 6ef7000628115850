"""Checkpoint round trip: weights, vocabulary, config, metrics and a content-derived version stamp."""

from __future__ import annotations

import io
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from _toy_split import toy_split

from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint, CheckpointError
from streamrec.models.knn import knn_params
from streamrec.models.presets import CONTEXTGNN_KNN, ModelConfig
from streamrec.models.recommender import SessionRecommender
from streamrec.models.train import train_checkpoint
from streamrec.state.vocab import ItemVocabulary


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    return train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", dim=16, max_epochs=2)


def test_round_trip_keeps_everything(checkpoint: Checkpoint, tmp_path: Path) -> None:
    loaded = Checkpoint.load(checkpoint.save(tmp_path / "model.pt"))
    assert loaded.version == checkpoint.version
    assert loaded.preset == "grainrec-contextgnn" and loaded.config == checkpoint.config
    assert loaded.vocab.to_list() == checkpoint.vocab.to_list()
    assert loaded.metrics == checkpoint.metrics and "NDCG@10" in loaded.metrics["valid"]
    assert loaded.config.knn == CONTEXTGNN_KNN  # the kNN parameters the head was trained with: its preset's
    contexts = [(checkpoint.vocab.encode(["a", "b"]), [])]
    before = (m := checkpoint.build_model()).rank_scores(m.encode(contexts))
    after = (m := loaded.build_model()).rank_scores(m.encode(contexts))
    assert torch.equal(before, after)


def test_version_is_preset_content_hash_and_time(checkpoint: Checkpoint) -> None:
    preset, digest, stamp = checkpoint.version.rsplit("-", 2)
    assert preset == "grainrec-contextgnn" and len(digest) == 12 and stamp.endswith("Z")


def test_changed_weights_change_the_hash(checkpoint: Checkpoint) -> None:
    state = {k: v.clone() for k, v in checkpoint.state_dict.items()}
    state["encoder.items.weight"][1, 0] += 1.0
    changed = Checkpoint(checkpoint.preset, checkpoint.config, checkpoint.vocab, state, checkpoint.metrics,
                         checkpoint.created)
    assert changed.content_hash != checkpoint.content_hash


def test_tampered_or_foreign_files_are_refused(checkpoint: Checkpoint, tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["encoder.items.weight"] += 1.0
    torch.save(payload, path)
    with pytest.raises(ValueError, match="version stamp"):
        Checkpoint.load(path)
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a"):
        Checkpoint.load(path)


def test_vocabulary_reserves_index_zero_and_round_trips() -> None:
    vocab = ItemVocabulary(["x", "y", "x"])
    assert len(vocab) == 3 and vocab.index("x") == 1 and vocab.index("unknown") == 0
    assert vocab.encode(["y", "nope"]) == [2, 0] and vocab.encode_known(["nope", "y"]) == [2]
    assert ItemVocabulary.from_list(vocab.to_list()).items == ["x", "y"]
    with pytest.raises(ValueError):
        ItemVocabulary.from_list(["x", "x"])


def _zip_of(payload: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "content", "complaint"), [
    ("missing", None, "no such checkpoint file"),
    ("empty", b"", "empty"),
    ("truncated", "half", "truncated or damaged"),
    ("corrupt", b"\x00\x08Z\x1e not a zip archive at all" * 20, "corrupt bytes"),
    ("wrong-format", _zip_of({"weights": torch.zeros(2)}), "wrong format"),
    ("pickled-objects", _zip_of(ItemVocabulary(["a"])), "Python objects"),
])
def test_unloadable_files_raise_one_line_naming_the_file(
    checkpoint: Checkpoint, tmp_path: Path, name: str, content: bytes | str | None, complaint: str
) -> None:
    path = tmp_path / f"{name}.pt"
    if content == "half":
        whole = checkpoint.save(path).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as raised:
        Checkpoint.load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and complaint in message and "\n" not in message
    assert isinstance(raised.value, ValueError)


def test_explicit_knn_parameters_override_the_presets() -> None:
    chosen = replace(knn_params(load_settings()), window=2, max_neighbours=7)
    assert chosen != CONTEXTGNN_KNN
    trained = train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", knn=chosen, dim=8, max_epochs=1)
    assert trained.config.knn == chosen
    srgnn = train_checkpoint("srgnn", toy_split(), device="cpu", dim=8, max_epochs=1)
    assert srgnn.config.knn == knn_params(load_settings())


def test_checkpoints_written_before_the_session_table_load_without_it(checkpoint: Checkpoint) -> None:
    """A config saved without `session_cooccurrence` (older checkpoints) builds the head without the
    session table, and the state dict of such a model loads strictly; the presets now have it."""
    old = train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", dim=8, max_epochs=1,
                           session_cooccurrence=False)
    saved = {k: v for k, v in old.config.to_dict().items() if k != "session_cooccurrence"}
    config = ModelConfig.from_dict(saved)
    assert config == old.config and not config.session_cooccurrence
    model = SessionRecommender(config, num_items=old.num_rows)
    model.load_state_dict(old.state_dict)  # strict: no session buffers expected, none present
    assert model.head is not None and not model.head.session_table
    assert checkpoint.config.session_cooccurrence and "head.session_index" in checkpoint.state_dict


def test_a_file_written_before_the_session_table_keeps_its_version_stamp(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints on disk from before `session_cooccurrence` existed load with their stamp (the hash
    leaves an added field out while it holds the value its absence means), and serve."""
    old = train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", dim=8, max_epochs=1,
                           session_cooccurrence=False)
    with monkeypatch.context() as before:  # the code before the field: its config had no such key
        before.setattr(ModelConfig, "to_dict",
                       lambda self: {k: v for k, v in asdict(self).items() if k != "session_cooccurrence"})
        path = old.save(tmp_path / "old.pt")
        stamp = old.version
    assert "session_cooccurrence" not in torch.load(path, weights_only=False)["config"]
    loaded = Checkpoint.load(path)
    assert loaded.version == stamp and not loaded.config.session_cooccurrence
    assert loaded.build_model().head is not None
    with_table = replace(old, config=replace(old.config, session_cooccurrence=True))
    assert with_table.content_hash != old.content_hash  # once set, the field is part of the content
