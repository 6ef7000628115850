"""GRAINRec's self-attention layer over the nodes of each session graph, without padding.

GRAINRec: "GRAINRec: Graph and Attention Integrated Approach for Real-Time Session-Based Item
Recommendations", https://arxiv.org/abs/2411.09152.

GRAINRec alternates GNN layers (short-range, along transitions) with attention layers
(long-range: every node attends to every node of its own session). Instead of padding
sessions to a common length, each graph gets its complete set of node pairs as edges and
the softmax is taken per target node with torch_geometric.utils.softmax, so a batch of
many tiny graphs costs sum_g n_g^2 pairs rather than B * max_n^2.

    alpha_ij = softmax_j( (W_q h_i)^T (W_k h_j) / sqrt(d_head) )   per head, j in graph(i)
    h_i'     = LayerNorm(h_i + Dropout(W_o sum_j alpha_ij W_v h_j))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.utils import softmax


def complete_edges(ptr: Tensor) -> Tensor:
    """All (source, target) node pairs inside each graph, self-pairs included: [2, sum n_g^2].

    ptr [B+1] are the node offsets of a Batch (nodes of a graph are contiguous).
    """
    sizes = ptr[1:] - ptr[:-1]
    pairs_per_graph = sizes * sizes
    graph_of_pair = torch.repeat_interleave(torch.arange(sizes.numel(), device=ptr.device), pairs_per_graph)
    pair_start = torch.cumsum(pairs_per_graph, 0) - pairs_per_graph
    local = torch.arange(graph_of_pair.numel(), device=ptr.device) - pair_start[graph_of_pair]
    n = sizes[graph_of_pair]
    offset = ptr[:-1][graph_of_pair]
    return torch.stack([offset + local // n, offset + local % n])


class GraphSelfAttention(nn.Module):
    """Multi-head attention of every node over the nodes of its own graph (post-norm residual)."""

    def __init__(self, dim: int, heads: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, pairs: Tensor) -> Tensor:
        """h [N, d], pairs [2, P] from `complete_edges` -> h' [N, d]."""
        n = h.size(0)
        q, k, v = self.qkv(h).view(n, 3, self.heads, self.head_dim).unbind(1)  # each [N, H, d/H]
        src, dst = pairs
        score = (q[dst] * k[src]).sum(-1) / math.sqrt(self.head_dim)  # [P, H]
        alpha = softmax(score, dst, num_nodes=n)  # normalised over the sources of each target
        context = torch.zeros_like(q).index_add_(0, dst, alpha.unsqueeze(-1) * v[src])  # [N, H, d/H]
        return self.norm(h + self.dropout(self.out(context.reshape(n, -1))))
