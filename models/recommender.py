"""The full next-item model, composed from a preset's flags.

    graphs ──SessionEncoder──> s_h [B, d] ──┬─ two-tower:  scale * s_h . v_i          [B, V]
                                           │   (or GLAD: LongTermMemory(memory, s_h, V) when `memory`)
                                           └─ ContextGNN: + pair-wise scores on local items (when `contextgnn`)

Each optional part is a flag of `ModelConfig`, so the ablation ladder of models/presets.py
is one class. The GLAD memory is `streamrec.models.memory` (imported only when asked for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from streamrec.models.contextgnn import ContextGNNHead
from streamrec.models.graph.batch import collate_sessions
from streamrec.models.presets import ModelConfig
from streamrec.models.session_encoder import SessionEncoder
from streamrec.state.vocab import PAD_INDEX


@dataclass
class ModelInput:
    """One batch of contexts: session graphs, and the users' long-term memory when the model has one."""

    graphs: Batch
    memory: Any | None = None
    """A `streamrec.models.memory.MemoryBatch` (None for models without memory)."""

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ModelInput:
        memory = self.memory.to(device) if self.memory is not None and hasattr(self.memory, "to") else self.memory
        return ModelInput(self.graphs.to(device, non_blocking=non_blocking), memory)


class SessionRecommender(nn.Module):
    """Scores the catalogue (or given candidates) for a batch of session contexts."""

    def __init__(self, config: ModelConfig, num_items: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = SessionEncoder(config, num_items)
        self.memory = _long_term_memory(config) if config.memory else None
        self.head = (
            ContextGNNHead(config.dim, num_items, config.neighbours, config.recency_decay, config.scale)
            if config.contextgnn
            else None
        )
        self.register_buffer("item_counts", torch.zeros(num_items))
        """Training clicks per item: the sampling distribution of sampled softmax and the cold fallback."""

    @property
    def num_items(self) -> int:
        return self.item_counts.numel()

    def forward(self, inputs: ModelInput, candidates: Tensor | None = None) -> Tensor:
        """Logits [B, V] over the whole vocabulary, or [B, C] for candidates [B, C]; padding is -inf."""
        session, nodes = self.encoder(inputs.graphs)
        table = self.encoder.item_table()
        if self.memory is not None:
            two_tower = self.memory(inputs.memory, session, table, candidates)
        elif candidates is None:
            two_tower = session @ table.T
        else:
            two_tower = torch.einsum("bd,bcd->bc", session, table[candidates])
        logits = self.config.scale * two_tower
        if self.head is not None:
            logits = self.head(session, logits, inputs.graphs, nodes, candidates)
        if candidates is None:
            logits[:, PAD_INDEX] = float("-inf")
        return logits


Context = tuple[Sequence[int], Sequence[int]]
"""(session item indices, history item indices), oldest first; the session is non-empty."""


def model_input(config: ModelConfig, contexts: Sequence[Context]) -> ModelInput:
    """Batch contexts: the last `window` session clicks form the graph, everything earlier is history."""
    graphs = collate_sessions([session[-config.window :] for session, _ in contexts])
    if not config.memory:
        return ModelInput(graphs)
    from streamrec.models.memory import build_memory_batch

    histories = [list(history) + list(session[: -config.window]) for session, history in contexts]
    return ModelInput(graphs, build_memory_batch(histories))


def _long_term_memory(config: ModelConfig) -> nn.Module:
    """GLAD's LongTermMemory (written in parallel as streamrec.models.memory)."""
    try:
        from streamrec.models.memory import LongTermMemory
    except ImportError as exc:  # the preset asks for a component this install lacks
        raise RuntimeError("preset needs streamrec.models.memory (GLAD long-term memory), which is not available") from exc
    return LongTermMemory(dim=config.dim, clusters=config.clusters, target_attentive=config.target_attentive)
