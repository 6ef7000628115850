"""Versioned model checkpoints: weights + item vocabulary + preset/config + metrics + version stamp.

One file (torch.save of plain types, loadable with weights_only=True, so loading never
executes pickled code). The version stamp `<preset>-<content hash>-<UTC time>` is what the
streaming scorer reports on every recommendation, so a served score can always be traced
to the exact weights that produced it.
"""

from __future__ import annotations

import hashlib
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

    @classmethod
    def from_model(cls, preset: str, model: SessionRecommender, vocab: ItemVocabulary, metrics: dict[str, Any]) -> Checkpoint:
        state = {name: v.detach().cpu().clone() if isinstance(v, Tensor) else v for name, v in model.state_dict().items()}
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
        digest.update(repr(sorted(self.config.to_dict().items())).encode())
        return digest.hexdigest()[:12]

    @property
    def version(self) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.created))
        return f"{self.preset}-{self.content_hash}-{stamp}"

    def build_model(self, device: torch.device | str = "cpu") -> SessionRecommender:
        """The model with these weights, in eval mode on `device`."""
        model = SessionRecommender(self.config, num_items=len(self.vocab))
        model.load_state_dict(self.state_dict)
        return model.to(device).eval()

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
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)  # readers never see a half-written checkpoint
        return path

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: a {FORMAT} v{payload.get('format_version')} file, this version reads v{FORMAT_VERSION} "
                             "(v2 saves the kNN parameters the model was trained with): retrain it with `streamrec train`")
        checkpoint = cls(
            preset=payload["preset"],
            config=ModelConfig.from_dict(payload["config"]),
            vocab=ItemVocabulary.from_list(payload["vocab"]),
            state_dict=payload["state_dict"],
            metrics=payload["metrics"],
            created=payload["created"],
        )
        if checkpoint.version != payload["version"]:
            raise ValueError(f"{path}: content does not match its version stamp {payload['version']}")
        return checkpoint
