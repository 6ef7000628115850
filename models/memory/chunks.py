"""Long-term memory input: users' histories cut into GLAD chunks, as one batched graph.

GLAD §2: a history of N_i items is split into d_i = ceil(N_i / c) sub-sequences
S_im of at most c items; every *unique* sub-sequence is one sequence node SE_j of a
bipartite user-sequence graph, shared by all users who produced it. A user with a longer
history therefore owns more memory nodes: memory grows with history instead of being a
fixed number of slots per user. With clusters (§2.2, "Clustered Sequence
Representations") each chunk also carries the id of the k-means cluster it falls in.

Nothing is padded here: chunk items are one flat vector with offsets (CSR) and the
user-chunk graph is an edge list. Padding appears only where a dense batched matmul
wants it (the target-attentive read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from streamrec.state.history import chunks as cut_chunks
from streamrec.state.vocab import PAD_INDEX

if TYPE_CHECKING:
    from streamrec.models.memory.clusters import ClusterIndex


@dataclass(frozen=True)
class Chunks:
    """A set of item chunks stored flat: ``items[ptr[j]:ptr[j + 1]]`` is chunk j, oldest first."""

    items: Tensor
    """Long [T]: item indices of all chunks, concatenated (no padding)."""
    ptr: Tensor
    """Long [N + 1]: offsets of each chunk in `items`."""

    @classmethod
    def from_lists(cls, chunk_lists: Sequence[Sequence[int]], device: torch.device | str | None = None) -> Chunks:
        sizes = torch.tensor([len(c) for c in chunk_lists], dtype=torch.long)
        ptr = torch.zeros(len(chunk_lists) + 1, dtype=torch.long)
        torch.cumsum(sizes, 0, out=ptr[1:])
        items = torch.tensor([i for c in chunk_lists for i in c], dtype=torch.long)
        return cls(items=items.to(device), ptr=ptr.to(device))

    @property
    def num_chunks(self) -> int:
        return self.ptr.numel() - 1

    def sizes(self) -> Tensor:
        """Long [N]: items per chunk (c, or fewer for a history's most recent tail chunk)."""
        return self.ptr[1:] - self.ptr[:-1]

    def chunk_of_item(self) -> Tensor:
        """Long [T]: which chunk each entry of `items` belongs to."""
        return torch.repeat_interleave(torch.arange(self.num_chunks, device=self.ptr.device), self.sizes())

    def positions(self) -> Tensor:
        """Long [T]: position of each item inside its chunk (0 = oldest)."""
        return torch.arange(self.items.numel(), device=self.ptr.device) - self.ptr[:-1][self.chunk_of_item()]

    def to(self, device: torch.device | str) -> Chunks:
        return Chunks(items=self.items.to(device), ptr=self.ptr.to(device))


@dataclass(frozen=True)
class MemoryBatch:
    """The long-term memory of a batch of B users: unique chunks and user -> chunk edges."""

    chunks: Chunks
    """The N unique chunks of the batch (a chunk two users share is one node)."""
    edge_user: Tensor
    """Long [E]: batch row of each user -> chunk edge, non-decreasing."""
    edge_chunk: Tensor
    """Long [E]: chunk of each edge; a user links to each of its distinct chunks once."""
    chunk_cluster: Tensor | None
    """Long [N]: ClusterIndex cluster of each chunk, or None when built without clusters."""
    batch_size: int

    def chunks_per_user(self) -> Tensor:
        """Long [B]: memory size of each user in chunks (0: anonymous or no history yet)."""
        return torch.bincount(self.edge_user, minlength=self.batch_size)

    def has_memory(self) -> Tensor:
        """Bool [B]: rows that get a long-term read; the others fall back to short-term scores."""
        return self.chunks_per_user() > 0

    def to(self, device: torch.device | str) -> MemoryBatch:
        cluster = None if self.chunk_cluster is None else self.chunk_cluster.to(device)
        return MemoryBatch(
            self.chunks.to(device), self.edge_user.to(device), self.edge_chunk.to(device), cluster, self.batch_size
        )


def history_chunks(history: Sequence[int], chunk_size: int) -> list[list[int]]:
    """GLAD's S_i1..S_id_i for one history of item indices; padding/unknown items (index 0) are dropped.

    Raises ValueError on a negative index (an encoding bug upstream, not user input).
    """
    if any(i < 0 for i in history):
        raise ValueError(f"negative item index in history: {min(history)}")
    return cut_chunks([i for i in history if i != PAD_INDEX], chunk_size)


def build_memory_batch(
    histories: list[list[int]], chunk_size: int, clusters: ClusterIndex | None, device: torch.device | str
) -> MemoryBatch:
    """Histories (item indices, oldest first; [] for anonymous users) -> MemoryBatch on `device`.

    Identical chunks are merged into one node across the whole batch (GLAD §2: one node
    SE_j per unique sub-sequence). With `clusters`, every chunk is assigned its cluster.
    """
    node_of: dict[tuple[int, ...], int] = {}
    edge_user: list[int] = []
    edge_chunk: list[int] = []
    for user, history in enumerate(histories):
        linked: set[int] = set()
        for chunk in history_chunks(history, chunk_size):
            node = node_of.setdefault(tuple(chunk), len(node_of))
            if node not in linked:
                linked.add(node)
                edge_user.append(user)
                edge_chunk.append(node)
    unique = Chunks.from_lists(list(node_of))
    cluster = clusters.assign(unique) if clusters is not None else None
    batch = MemoryBatch(
        chunks=unique,
        edge_user=torch.tensor(edge_user, dtype=torch.long),
        edge_chunk=torch.tensor(edge_chunk, dtype=torch.long),
        chunk_cluster=cluster,
        batch_size=len(histories),
    )
    return batch.to(device)
