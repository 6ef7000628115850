"""GLAD long-term user memory as one module (GLAD Fig. 1), switchable for the ablation.

    chunks --ChunkEncoder--> h_SE^0 --(clusters: mean per cluster)--> memory nodes
    users (z_U) + memory nodes --GraphSAGE, L-1 layers (eq. 1-2)--> h^{L-1}
    target_attentive: h_{U T_k}^L = eq. 5 read per candidate, fused by eq. 3 + 6
    otherwise:        h_U^L       = eq. 1 last layer,          fused by eq. 3-4
                      (GLAD's plain graph memory: a sum read, the same for every target)

Rows whose user has no history (anonymous sessions, first visits) never touch the memory:
their scores are exactly `short_term_scores`, the same expression the short-term-only
model uses, so adding the memory cannot change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

from streamrec.models.memory.chunk_encoder import ChunkEncoder
from streamrec.models.memory.chunks import Chunks, MemoryBatch
from streamrec.models.memory.clusters import ClusterIndex
from streamrec.models.memory.gate import OutputGate, conditioned_scores
from streamrec.models.memory.graph import BipartiteSAGE, MemoryGraph, memory_graph
from streamrec.models.memory.read import GraphRead, TargetAttentiveRead


def dot_scores(users: Tensor, targets: Tensor) -> Tensor:
    """users [R, d] . targets: [V, d] shared by all rows -> [R, V]; per-row [R, C, d] -> [R, C]."""
    if targets.dim() == 2:
        return users @ targets.T
    return (targets @ users.unsqueeze(-1)).squeeze(-1)


def short_term_scores(short: Tensor, item_table: Tensor, candidates: Tensor | None = None) -> Tensor:
    """z_U . h_T (eq. 4 with g = 1): [B, V] for all items, or [B, C] for candidate indices [B, C].

    The no-memory fallback, and the scores of the short-term-only model.
    """
    return dot_scores(short, item_table if candidates is None else item_table[candidates])


class LongTermMemory(nn.Module):
    """Scores candidates with the gated fusion of a short-term vector and the user's graph memory."""

    def __init__(
        self,
        dim: int,
        chunk_size: int,
        *,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.0,
        use_clusters: bool = False,
        num_clusters: int = 256,
        cluster_seed: int = 0,
        target_attentive: bool = True,
        read_softmax: bool = True,
        block_elements: int = 1 << 20,
    ) -> None:
        """`layers` is GLAD's L (GraphSAGE depth including the read layer, >= 1);
        `block_elements` bounds the [R, K_b, d] blocks of the target-attentive scoring (cache-sized by default)."""
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.chunk_size = chunk_size
        self.use_clusters = use_clusters
        self.block_elements = block_elements
        self.encoder = ChunkEncoder(dim, chunk_size, heads, dropout=dropout)
        self.graph = BipartiteSAGE(dim, layers - 1, users_out=not target_attentive)
        self.read: TargetAttentiveRead | GraphRead = (
            TargetAttentiveRead(read_softmax) if target_attentive else GraphRead(dim)
        )
        self.gate = OutputGate(dim)
        self.clusters = ClusterIndex(num_clusters, seed=cluster_seed) if use_clusters else None

    @property
    def target_attentive(self) -> bool:
        return isinstance(self.read, TargetAttentiveRead)

    @torch.no_grad()
    def refresh_clusters(self, chunk_item_lists: Sequence[Sequence[int]], item_table: Tensor) -> int:
        """Re-fit the k-means clusters on the training chunks (e.g. once per epoch); returns the cluster count.

        `chunk_item_lists` are chunks as cut by `history_chunks`; duplicates are clustered once.
        """
        if self.clusters is None:
            raise RuntimeError("this LongTermMemory was built with use_clusters=False")
        unique = list(dict.fromkeys(tuple(c) for c in chunk_item_lists if c))
        return self.clusters.fit(Chunks.from_lists(unique), item_table)

    def memory_graph(self, memory: MemoryBatch, item_table: Tensor) -> MemoryGraph:
        """Encode the batch's chunks and lay out its memory graph (chunk or cluster nodes)."""
        return memory_graph(memory, self.encoder(memory.chunks, item_table), self.use_clusters)

    def memory_nodes(self, memory: MemoryBatch, short: Tensor, item_table: Tensor) -> tuple[Tensor, Tensor]:
        """Each user's memory nodes after L-1 GraphSAGE layers, padded: ([B, M_max, d], mask Bool [B, M_max])."""
        graph = self.memory_graph(memory, item_table)
        _, nodes = self.graph(short, graph)
        node, user = graph.edge_index
        return to_dense_batch(nodes[node], user, batch_size=memory.batch_size)

    def forward(
        self, memory: MemoryBatch, short: Tensor, item_table: Tensor, candidates: Tensor | None = None
    ) -> Tensor:
        """memory (B users), short z_U [B, d], item_table [V, d], candidates Long [B, C] or None
        -> logits [B, C], or [B, V] for all items. Rows without history equal `short_term_scores` exactly."""
        fallback = short_term_scores(short, item_table, candidates)
        rows = memory.has_memory().nonzero().flatten()
        if rows.numel() == 0:
            return fallback
        targets = item_table if candidates is None else item_table[candidates[rows]]  # [V, d] or [R, C, d]
        if isinstance(self.read, TargetAttentiveRead):
            nodes, mask = self.memory_nodes(memory, short, item_table)
            fused = conditioned_scores(
                self.gate, self.read, short[rows], nodes[rows], mask[rows], targets, self.block_elements
            )
        else:
            fused = dot_scores(self._user_representation(self.read, memory, short, item_table)[rows], targets)
        return fallback.index_copy(0, rows, fused)

    def _user_representation(self, read: GraphRead, memory: MemoryBatch, short: Tensor, item_table: Tensor) -> Tensor:
        """Eq. 1 (L layers) then eq. 3-4 -> h_U [B, d], one vector per user whatever the target."""
        graph = self.memory_graph(memory, item_table)
        users, nodes = self.graph(short, graph)
        return self.gate(short, read(users, nodes, graph))

    def get_extra_state(self) -> dict[str, Any]:
        """Checkpoint the fitted clusters with the weights, so a served model assigns chunks as in training."""
        return {"clusters": self.clusters.state_dict() if self.clusters is not None else {}}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if self.clusters is not None:
            self.clusters.load_state_dict(state["clusters"])
