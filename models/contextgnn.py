"""ContextGNN-style fusion: pair-wise scores for familiar items, two-tower scores for the rest.

ContextGNN (contextgnn-summary.md) scores items inside a user's local subgraph with
pair-wise representations and everything else with a two-tower dot product, and mixes the
two with weights an MLP computes from the user representation. Here the local subgraph of
a session is its own items plus their strongest co-occurrence neighbours in the training
log, and the pair-wise score of a local item v for session b is

    pair[b, v] = g_0(b) + g_1(b) * evidence[b, v] + g_2(b) * recency[b, v] + g_3(b) * <s_h, h_v>

    evidence[b, v] = sum_t decay^(n-1-t) * cooc(x_t, v) / max_v(.)      (kNN / co-occurrence, [0, 1])
    recency[b, v]  = sum_{t: x_t = v} decay^(n-1-t)                     (repeat-click evidence)
    <s_h, h_v>     = session vector . GNN state of v's node (only for items in the session graph)
    g(b)           = MLP([s_h ; log(1 + n)])                             (per-session fusion weights)

and the final logit is two_tower[b, v] + local[b, v] * pair[b, v] (sr-gnn-notes §8.2: short
sessions borrow co-click structure; the MLP learns how much, per session).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from streamrec.state.vocab import PAD_INDEX


def cooccurrence_neighbours(
    sequences: Sequence[Sequence[int]], num_items: int, window: int, k: int
) -> tuple[Tensor, Tensor]:
    """Top-k co-occurrence neighbours per item: (index [V, k] long, weight [V, k] float).

    Pairs (a_t, a_{t+d}) for d <= window count 1/d forward and 0.5/d backward (the next
    click matters most); the sum is divided by sqrt(freq(a) * freq(b)) so popular items do
    not become everyone's neighbour. Missing neighbours are PAD_INDEX with weight 0.
    """
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64)
    seq_id = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    sources, targets, weights = [], [], []
    for d in range(1, window + 1):
        same = seq_id[d:] == seq_id[:-d]
        a, b = flat[:-d][same], flat[d:][same]
        sources += [a, b]
        targets += [b, a]
        weights += [np.full(a.size, 1.0 / d), np.full(a.size, 0.5 / d)]
    src, dst, w = np.concatenate(sources), np.concatenate(targets), np.concatenate(weights)
    keep = src != dst
    keys, inverse = np.unique(src[keep] * num_items + dst[keep], return_inverse=True)
    total = np.bincount(inverse, weights=w[keep])
    row, col = keys // num_items, keys % num_items
    freq = np.bincount(flat, minlength=num_items).astype(np.float64)
    total = total / np.sqrt(freq[row] * freq[col])
    return _top_k_per_row(row, col, total, num_items, k)


def _top_k_per_row(row: np.ndarray, col: np.ndarray, weight: np.ndarray, num_rows: int, k: int) -> tuple[Tensor, Tensor]:
    order = np.lexsort((-weight, row))
    row, col, weight = row[order], col[order], weight[order]
    starts = np.searchsorted(row, row, side="left")
    rank = np.arange(row.size) - starts
    keep = rank < k
    index = np.full((num_rows, k), PAD_INDEX, dtype=np.int64)
    value = np.zeros((num_rows, k), dtype=np.float32)
    index[row[keep], rank[keep]] = col[keep]
    value[row[keep], rank[keep]] = weight[keep]
    return torch.from_numpy(index), torch.from_numpy(value)


class ContextGNNHead(nn.Module):
    """Fuses two-tower logits with pair-wise scores on each session's local item set."""

    FEATURES = 4  # bias, co-occurrence evidence, repeat recency, node pair score

    def __init__(self, dim: int, num_items: int, neighbours: int, recency_decay: float, scale: float) -> None:
        super().__init__()
        self.register_buffer("neighbour_index", torch.zeros(num_items, neighbours, dtype=torch.long))
        self.register_buffer("neighbour_weight", torch.zeros(num_items, neighbours))
        self.recency_decay = recency_decay
        self.fusion = nn.Sequential(nn.Linear(dim + 1, dim), nn.ReLU(), nn.Linear(dim, self.FEATURES))
        nn.init.zeros_(self.fusion[-1].weight)
        with torch.no_grad():  # start as a blend of the two-tower model and the co-occurrence kNN
            self.fusion[-1].bias.copy_(torch.tensor([0.0, scale / 2, 0.0, 0.0]))

    def set_neighbours(self, index: Tensor, weight: Tensor) -> None:
        """Install the co-occurrence table computed from the training log."""
        self.neighbour_index.copy_(index)
        self.neighbour_weight.copy_(weight)

    def forward(self, session: Tensor, two_tower: Tensor, graphs: Batch, nodes: Tensor, candidates: Tensor | None = None) -> Tensor:
        """session [B, d], two_tower [B, V] (or [B, C] with candidates [B, C]), nodes [N, d] -> logits like two_tower."""
        evidence, recency, node_pair, lengths = self._pair_features(session, graphs, nodes)
        if candidates is not None:
            evidence, recency, node_pair = (f.gather(1, candidates) for f in (evidence, recency, node_pair))
        local = ((evidence > 0) | (recency > 0)).to(two_tower.dtype)
        g = self.fusion(torch.cat([session, torch.log1p(lengths).unsqueeze(-1)], dim=-1))  # [B, 4]
        pair = g[:, :1] + g[:, 1:2] * evidence + g[:, 2:3] * recency + g[:, 3:4] * node_pair
        return two_tower + local * pair

    def _pair_features(self, session: Tensor, graphs: Batch, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Dense [B, V] evidence, recency and node-pair features, and session lengths [B]."""
        batch_size, num_items = session.size(0), self.neighbour_index.size(0)
        lengths = graphs.click_ptr[1:] - graphs.click_ptr[:-1]
        click_graph = torch.repeat_interleave(torch.arange(batch_size, device=session.device), lengths)
        clicks = graphs.x[graphs.click_node]  # item of each click [T]
        age = graphs.click_ptr[1:][click_graph] - 1 - torch.arange(clicks.numel(), device=session.device)
        weight = self.recency_decay ** age.to(session.dtype)  # [T], 1 for the last click
        recency = session.new_zeros(batch_size, num_items).index_put_((click_graph, clicks), weight, accumulate=True)
        neighbour = self.neighbour_index[clicks]  # [T, K]
        contribution = self.neighbour_weight[clicks] * weight.unsqueeze(-1)
        evidence = session.new_zeros(batch_size, num_items).index_put_(
            (click_graph.unsqueeze(-1).expand_as(neighbour), neighbour), contribution, accumulate=True
        )
        evidence[:, PAD_INDEX] = 0.0
        evidence = evidence / evidence.amax(dim=1, keepdim=True).clamp_min(1e-12)
        node_pair = session.new_zeros(batch_size, num_items)
        node_pair[graphs.batch, graphs.x] = (session[graphs.batch] * nodes).sum(-1)
        return evidence, recency, node_pair, lengths.to(session.dtype)
