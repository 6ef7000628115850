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
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from streamrec.models.contextgnn import ContextGNNHead
from streamrec.models.graph.batch import collate_sessions
from streamrec.models.presets import ModelConfig
from streamrec.models.sequence_encoder import SelfAttentiveEncoder
from streamrec.models.session_encoder import SessionEncoder
from streamrec.state.vocab import PAD_INDEX

if TYPE_CHECKING:
    from streamrec.models.memory import LongTermMemory

Context = tuple[Sequence[int], Sequence[int]]
"""(session item indices, history item indices), oldest first; the session is non-empty."""


@dataclass
class ModelInput:
    """One batch of contexts: session graphs, and the users' long-term memory when the model has one."""

    graphs: Batch
    memory: Any | None = None
    """A `streamrec.models.memory.MemoryBatch` (None for models without memory)."""
    fold: int | None = None
    """Training only: the cross-validation fold of every example (the ContextGNN head then
    reads co-occurrence tables built without that fold, see ContextGNNHead.set_fold_tables)."""

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ModelInput:
        memory = self.memory.to(device) if self.memory is not None and hasattr(self.memory, "to") else self.memory
        return ModelInput(self.graphs.to(device, non_blocking=non_blocking), memory, self.fold)


class SessionRecommender(nn.Module):
    """Scores the catalogue (or given candidates) for a batch of session contexts."""

    item_counts: Tensor  # buffers, registered in __init__
    rankable: Tensor

    def __init__(self, config: ModelConfig, num_items: int) -> None:
        super().__init__()
        self.config = config
        self.encoder: SessionEncoder | SelfAttentiveEncoder = (
            SelfAttentiveEncoder(config, num_items)
            if config.encoder == "attention"
            else SessionEncoder(config, num_items)
        )
        self.memory = _long_term_memory(config) if config.memory else None
        if config.contextgnn and config.knn is None:
            raise ValueError(
                "the ContextGNN head needs ModelConfig.knn (train_checkpoint fills it from scoring.sknn_*)"
            )
        self.head = (
            ContextGNNHead(config.dim, num_items, config.recency_decay, config.scale, config.knn,
                           session_table=config.session_cooccurrence)
            if config.contextgnn and config.knn is not None
            else None
        )
        self.register_buffer("item_counts", torch.zeros(num_items))
        """Training clicks per item: the sampling distribution of sampled softmax and the cold fallback."""
        self.register_buffer("rankable", torch.ones(num_items, dtype=torch.bool))
        """Rows that may be recommended: a continually trained model (models/online) keeps spare
        rows for items not seen yet and masks items unseen for its TTL; a batch-trained one ranks all."""

    @property
    def num_items(self) -> int:
        return self.item_counts.numel()

    def forward(self, inputs: ModelInput, candidates: Tensor | None = None) -> Tensor:
        """Training logits [B, V] over the whole vocabulary (padding row scores 0), or [B, C] for candidates [B, C]."""
        session, nodes = self.encoder(inputs.graphs)
        return self.score(inputs, session, nodes, candidates)

    def score(self, inputs: ModelInput, session: Tensor, nodes: Tensor, candidates: Tensor | None = None) -> Tensor:
        """Logits from encoded sessions (`self.encoder(inputs.graphs)`): [B, V], or [B, C] for candidates [B, C].

        Split from `forward` so candidate generation (models/candidates/) can query with the
        session vectors before scoring. With candidates and no memory only the candidates'
        item vectors are normalised and the ContextGNN head works on its features' support
        (models/score_space.py): nothing of size [B, V] or [V, d] is computed.
        """
        scaled = self.config.scale * session  # scaling [B, d] instead of the [B, V] logits
        if self.memory is not None:  # the gate sees unit vectors, as the encoder emits them
            logits = self.config.scale * self.memory(inputs.memory, session, self.encoder.item_table(), candidates)
        elif candidates is None:
            logits = scaled @ self.encoder.item_table().T
        else:
            logits = torch.einsum("bd,bcd->bc", scaled, self.encoder.item_vectors(candidates))
        if self.head is not None:
            fold = inputs.fold if self.training else None
            logits = self.head(session, logits, inputs.graphs, nodes, candidates, fold)
        return logits

    def encode(self, contexts: Sequence[Context]) -> ModelInput:
        """Batch contexts (on CPU): the last `window` session clicks form the graph, everything earlier is history."""
        window = self.config.window
        graphs = collate_sessions([session[-window:] for session, _ in contexts])
        if self.memory is None:
            return ModelInput(graphs)
        from streamrec.models.memory import build_memory_batch

        histories = [list(history) + list(session[:-window]) for session, history in contexts]
        return ModelInput(graphs, build_memory_batch(histories, self.config.chunk_size, self.memory.clusters, "cpu"))

    def start_epoch(self, sequences: Sequence[Sequence[int]]) -> None:
        """Per-epoch upkeep: re-fit the memory's chunk clusters on the training chunks (GLAD §2.2)."""
        if self.memory is None or self.memory.clusters is None:
            return
        from streamrec.models.memory import history_chunks

        chunks = [chunk for sequence in sequences for chunk in history_chunks(sequence, self.config.chunk_size)]
        self.memory.refresh_clusters(chunks, self.encoder.item_table().detach())

    @torch.inference_mode()
    def rank_scores(self, inputs: ModelInput) -> Tensor:
        """Logits [B, V] for ranking: the padding row and rows not `rankable` can never be recommended."""
        logits = self(inputs).masked_fill(~self.rankable, float("-inf"))
        logits[:, PAD_INDEX] = float("-inf")
        return logits


def _long_term_memory(config: ModelConfig) -> LongTermMemory:
    """GLAD's LongTermMemory (written in parallel as streamrec.models.memory)."""
    try:
        from streamrec.models.memory import LongTermMemory
    except ImportError as exc:  # the preset asks for a component this install lacks
        raise RuntimeError(
            "preset needs streamrec.models.memory (GLAD long-term memory), which is not available"
        ) from exc
    return LongTermMemory(
        config.dim, config.chunk_size, heads=config.heads, use_clusters=config.clusters,
        target_attentive=config.target_attentive,
    )
