"""k-means over chunk embeddings: GLAD's clustered memory (GLAD §2.2, Fig. 2).

Chunks whose embeddings are close are grouped into one cluster node CE_j, so users who
read similar sub-sequences become 2-hop neighbours in the memory graph and the stored
memory shrinks (eq. 8: N_seq * e / c_f + N_U * e).

Why a frozen clustering space: cluster membership is decided in `build_memory_batch`,
on the data side, without the model. Fitting and assigning must therefore use the same
fixed featurisation, so `fit` snapshots the item table and both `fit` and `assign` embed a
chunk as the L2-normalised mean of its item vectors in that snapshot (GLAD clusters the
outputs of an encoder frozen after pre-training, phase 1 of §2.5; the snapshot plays
that role and is refreshed by the trainer, e.g. once per epoch). The *cluster node
embedding* used by the GNN is still the mean of the trainable chunk encodings (graph.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from streamrec.models.memory.chunks import Chunks

PRIOR_COUNT = 100.0
"""Chunks a centroid is taken to have absorbed when a checkpoint predates `counts`."""
_ROWS_PER_STEP = 8192
"""Rows of the [rows, K] distance matrix computed at once (bounds memory for large fits)."""


def chunk_features(chunks: Chunks, item_table: Tensor) -> Tensor:
    """[N, d] clustering coordinates: normalised mean of each chunk's item vectors.

    Items beyond the table (added to the vocabulary after the snapshot) are ignored; a
    chunk with none left gets the zero vector.
    """
    known = chunks.items < item_table.size(0)
    rows = chunks.chunk_of_item()[known]
    zeros = item_table.new_zeros(chunks.num_chunks, item_table.size(1))
    summed = zeros.index_add_(0, rows, item_table[chunks.items[known]])
    return F.normalize(summed, dim=-1)  # the mean and the sum point the same way


def _nearest(points: Tensor, centroids: Tensor) -> tuple[Tensor, Tensor]:
    """(index [N], squared distance [N]) of each point's nearest centroid, in row blocks."""
    sq_norms = (centroids * centroids).sum(-1)
    index, dist = [], []
    for block in points.split(_ROWS_PER_STEP):
        d2 = sq_norms - 2 * block @ centroids.T + (block * block).sum(-1, keepdim=True)  # [rows, K]
        best = d2.min(dim=1)
        index.append(best.indices)
        dist.append(best.values.clamp_min(0))
    return torch.cat(index), torch.cat(dist)


def _kmeans_plus_plus(points: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007); stops early when all points are covered."""
    first = torch.randint(points.size(0), (1,), generator=generator)
    centroids = points[first]
    dist = ((points - centroids) ** 2).sum(-1)
    while centroids.size(0) < k and dist.sum() > 0:
        pick = torch.multinomial(dist, 1, generator=generator)
        centroids = torch.cat([centroids, points[pick]])
        dist = torch.minimum(dist, ((points - points[pick]) ** 2).sum(-1))
    return centroids


def kmeans(points: Tensor, k: int, generator: torch.Generator, iterations: int) -> Tensor:
    """Lloyd's k-means (MacQueen, GLAD ref. 22) -> centroids [k' <= k, d]; deterministic for a seeded generator.

    A cluster left empty is re-seeded with the point currently farthest from its centroid.
    """
    centroids = _kmeans_plus_plus(points, k, generator)
    assignment = torch.full((points.size(0),), -1, dtype=torch.long)
    for _ in range(iterations):
        new_assignment, dist = _nearest(points, centroids)
        if torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
        counts = torch.bincount(assignment, minlength=centroids.size(0))
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        centroids = sums / counts.clamp_min(1).unsqueeze(1).to(points.dtype)
        for empty in (counts == 0).nonzero().flatten().tolist():
            far = int(dist.argmax())
            centroids[empty] = points[far]
            dist[far] = 0
    return centroids


class ClusterIndex:
    """Cluster ids for chunks: `fit` on a corpus of chunks, then `assign` any chunk (seen or new)."""

    def __init__(self, num_clusters: int, seed: int = 0, iterations: int = 25, max_fit_chunks: int = 50_000) -> None:
        if num_clusters < 1:
            raise ValueError(f"num_clusters must be >= 1, got {num_clusters}")
        self.num_clusters = num_clusters
        self.seed = seed
        self.iterations = iterations
        self.max_fit_chunks = max_fit_chunks
        """k-means runs on a seeded sample of at most this many chunks; all chunks are then assignable."""
        self.centroids: Tensor | None = None
        self.item_table: Tensor | None = None
        self.counts: Tensor | None = None
        """Chunks each centroid has absorbed: the per-centroid step size 1/count of `partial_fit`."""

    @property
    def fitted(self) -> bool:
        return self.centroids is not None

    @torch.no_grad()
    def fit(self, chunks: Chunks, item_table: Tensor) -> int:
        """Snapshot `item_table` [V, d] and cluster `chunks`; returns the number of clusters found.

        Fewer than `num_clusters` come back when there are fewer distinct chunk embeddings.
        """
        if chunks.num_chunks == 0:
            raise ValueError("cannot fit clusters on zero chunks")
        snapshot = item_table.detach().to("cpu", torch.float32).clone()
        points = chunk_features(chunks.to("cpu"), snapshot)
        generator = torch.Generator().manual_seed(self.seed)
        if points.size(0) > self.max_fit_chunks:
            points = points[torch.randperm(points.size(0), generator=generator)[: self.max_fit_chunks]]
        self.centroids = kmeans(points, self.num_clusters, generator, self.iterations)
        self.item_table = snapshot
        self.counts = torch.bincount(_nearest(points, self.centroids)[0], minlength=self.centroids.size(0)).float()
        return self.centroids.size(0)

    @torch.no_grad()
    def partial_fit(self, chunks: Chunks, item_table: Tensor) -> None:
        """One mini-batch k-means update (Sculley 2010, "Web-scale k-means clustering") with new chunks.

        For a stream: each centroid moves towards the mean of the batch's chunks assigned to it by
        m_c / (n_c + m_c) (n_c: chunks it absorbed before), the per-centroid learning rate 1/count
        of Sculley's Algorithm 1 applied to the batch at once. The clustering space stays the
        snapshot taken by `fit`, so earlier assignments do not move; rows of items added to the
        vocabulary since (beyond the snapshot) are appended from `item_table`, so new items count.
        Unfitted, this is `fit`.
        """
        if chunks.num_chunks == 0:
            return
        if self.centroids is None or self.item_table is None:
            self.fit(chunks, item_table)
            return
        table = item_table.detach().to("cpu", torch.float32)
        if table.size(0) > self.item_table.size(0):
            self.item_table = torch.cat([self.item_table, table[self.item_table.size(0) :]])
        points = chunk_features(chunks.to("cpu"), self.item_table)
        index, _ = _nearest(points, self.centroids)
        members = torch.bincount(index, minlength=self.centroids.size(0)).float()
        sums = torch.zeros_like(self.centroids).index_add_(0, index, points)
        counts = self.counts if self.counts is not None else torch.full_like(members, PRIOR_COUNT)
        counts = counts + members
        self.centroids = (
            self.centroids + (sums - members.unsqueeze(1) * self.centroids) / counts.clamp_min(1).unsqueeze(1)
        )
        self.counts = counts

    @torch.no_grad()
    def assign(self, chunks: Chunks) -> Tensor:
        """Long [N] (on the chunks' device): the nearest centroid of every chunk."""
        if self.centroids is None or self.item_table is None:
            raise RuntimeError("ClusterIndex is not fitted: call LongTermMemory.refresh_clusters (or fit) first")
        index, _ = _nearest(chunk_features(chunks.to("cpu"), self.item_table), self.centroids)
        return index.to(chunks.items.device)

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors that reproduce `assign` exactly (kept in LongTermMemory's checkpoint)."""
        if self.centroids is None or self.item_table is None:
            return {}
        state = {"centroids": self.centroids, "item_table": self.item_table}
        if self.counts is not None:
            state["counts"] = self.counts
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.centroids = state.get("centroids")
        self.item_table = state.get("item_table")
        self.counts = state.get("counts")
