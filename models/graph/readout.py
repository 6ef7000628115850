"""Session readout: the last click (local intent) fused with attention anchored on it (global).

SR-GNN's section "Generating Session Embeddings" ("Session-based Recommendation with Graph Neural
Networks", Wu et al., AAAI 2019, https://arxiv.org/abs/1811.00855):
    s_l     = h_n                                           [B, d]
    alpha_i = q^T sigmoid(W_1 h_n + W_2 h_i + c)            [N]   (no softmax, as in SR-GNN)
    s_g     = sum_{i in graph} alpha_i h_i                  [B, d]
    s_h     = W_3 [s_l ; s_g]                               [B, d]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LocalGlobalReadout(nn.Module):
    """One vector per session graph from its node states."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_last = nn.Linear(dim, dim, bias=True)  # W_1 and c
        self.w_node = nn.Linear(dim, dim, bias=False)  # W_2
        self.query = nn.Linear(dim, 1, bias=False)  # q
        self.fuse = nn.Linear(2 * dim, dim, bias=False)  # W_3

    def forward(self, h: Tensor, graph: Tensor, last: Tensor, num_graphs: int) -> Tensor:
        """h [N, d], graph [N] graph of each node, last [B] node id of the last click -> s_h [B, d]."""
        local = h[last]  # s_l [B, d]
        alpha = self.query(torch.sigmoid(self.w_last(local)[graph] + self.w_node(h)))  # [N, 1]
        glob = torch.zeros(num_graphs, h.size(1), device=h.device, dtype=h.dtype).index_add_(0, graph, alpha * h)
        return self.fuse(torch.cat([local, glob], dim=-1))
