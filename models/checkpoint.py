"""Versioned model checkpoints: weights + item vocabulary + preset/config + metrics + version stamp.

One file (torch.save of plain types, loadable with weights_only=True, so loading never
executes pickled code). The version stamp `<preset>-<content hash>-<UTC time>` is what the
streaming scorer reports on every recommendation, so a served score can always be traced
to the exact weights that produced it.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from streamrec.models.presets import ModelConfig
from streamrec.models.recommender import SessionRecommender
from streamrec.state.vocab import ItemVocabulary

FORMAT = "streamrec-checkpoint"
FORMAT_VERSION = 2
"""2: the config carries the kNN parameters the head was trained with (ModelConfig.knn); a v1 file
predates them (its head used constants that may differ from today's settings) and is refused."""


@dataclass
class Checkpoint:
    """Everything needed to rebuild and serve a trained SessionRecommender."""

    preset: str
    config: ModelConfig
    vocab: ItemVocabulary
    state_dict: dict[str, Any]
    """Tensors, plus plain extra state of some modules (the memory's fitted clusters)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    learner_state: dict[str, Any] = field(default_factory=dict)
    """What a continual learner (models/online) needs to resume but serving does not (per-item
    last-seen times, counters); plain types and tensors, not part of the content hash."""

    @classmethod
    def from_model(
        cls, preset: str, model: SessionRecommender, vocab: ItemVocabulary, metrics: dict[str, Any]
    ) -> Checkpoint:
        state = {
            name: v.detach().cpu().clone() if isinstance(v, Tensor) else v for name, v in model.state_dict().items()
        }
        return cls(preset=preset, config=model.config, vocab=vocab, state_dict=state, metrics=metrics)

    @property
    def content_hash(self) -> str:
        """sha256 over weights, vocabulary and config (12 hex digits): equal content, equal hash."""
        digest = hashlib.sha256()
        for name in sorted(self.state_dict):
            value = self.state_dict[name]
            digest.update(name.encode())
            digest.update(value.numpy().tobytes() if isinstance(value, Tensor) else repr(value).encode())
        digest.update("\n".join(self.vocab.to_list()).encode())
        digest.update(repr(self.config.identity()).encode())
        return digest.hexdigest()[:12]

    @property
    def version(self) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.created))
        return f"{self.preset}-{self.content_hash}-{stamp}"

    def build_model(self, device: torch.device | str = "cpu") -> SessionRecommender:
        """The model with these weights, in eval mode on `device`.

        The embedding table may have more rows than the vocabulary (a continually trained model
        keeps spare rows, masked by the `rankable` buffer); checkpoints older than that buffer rank every row.
        """
        model = SessionRecommender(self.config, num_items=self.num_rows)
        state = dict(self.state_dict)
        state.setdefault("rankable", torch.ones(self.num_rows, dtype=torch.bool))
        model.load_state_dict(state)
        return model.to(device).eval()

    @property
    def num_rows(self) -> int:
        """Rows of the item tables: len(vocab) after batch training, the capacity after continual growth."""
        counts = self.state_dict.get("item_counts")
        return int(counts.shape[0]) if isinstance(counts, Tensor) else len(self.vocab)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "preset": self.preset,
            "config": self.config.to_dict(),
            "vocab": self.vocab.to_list(),
            "state_dict": self.state_dict,
            "metrics": self.metrics,
            "created": self.created,
            "learner_state": self.learner_state,
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)  # readers never see a half-written checkpoint
        return path

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """The checkpoint in `path`; CheckpointError (one line naming the file) when it cannot be served."""
        path = Path(path)
        payload = _read_payload(path)
        try:
            checkpoint = cls(
                preset=payload["preset"],
                config=ModelConfig.from_dict(payload["config"]),
                vocab=ItemVocabulary.from_list(payload["vocab"]),
                state_dict=payload["state_dict"],
                metrics=payload["metrics"],
                created=payload["created"],
                learner_state=payload.get("learner_state", {}),
            )
            stamp = payload["version"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: damaged {FORMAT} file ({type(exc).__name__}: {_one_line(exc)})") from None
        if checkpoint.version != stamp:
            raise CheckpointError(f"{path}: content does not match its version stamp {stamp}")
        return checkpoint


class CheckpointError(ValueError):
    """A checkpoint that cannot be served; the message is one line naming the file and what is wrong with it."""


_ZIP_MAGIC = b"PK\x03\x04"
"""torch.save writes a zip archive; anything else is not one of ours."""


def _one_line(exc: BaseException) -> str:
    """The first sentence of an exception's message (torch's run over several lines)."""
    lines = str(exc).strip().splitlines()
    return (lines[0].split(". ")[0] if lines else type(exc).__name__)[:160]


def _read_payload(path: Path) -> dict[str, Any]:
    """torch.load of `path` with every way it can fail turned into one `CheckpointError` line."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file (train one with `streamrec train --out {path}`)")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        with path.open("rb") as file:
            head = file.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint file ({exc.strerror})") from None
    if not head:
        raise CheckpointError(f"{path}: checkpoint file is empty (0 bytes: an interrupted copy? "
                              "copy or train it again)")
    if head != _ZIP_MAGIC:
        raise CheckpointError(f"{path}: corrupt bytes, not a {FORMAT} file (torch.save writes a zip archive; "
                              f"this starts with {head!r})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: not a {FORMAT} file (it holds Python objects a checkpoint never has)") from None
    except Exception as exc:  # noqa: BLE001 - torch reports a cut or damaged archive as RuntimeError, EOFError, ...
        raise CheckpointError(f"{path}: truncated or damaged checkpoint file ({path.stat().st_size:,} bytes; "
                              f"torch: {_one_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: wrong format, not a {FORMAT} file (a torch file of something else)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: {FORMAT} version {payload.get('format_version')!r}; this streamrec reads "
                              f"version {FORMAT_VERSION} (v2 saves the kNN parameters the model was trained with): "
                              "retrain it with `streamrec train`")
    return payload
