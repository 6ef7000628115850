"""SR-GNN's gated graph network, with messages along both edge directions.

torch_geometric's GatedGraphConv aggregates one direction only. SR-GNN ("Session-based
Recommendation with Graph Neural Networks", Wu et al., AAAI 2019, https://arxiv.org/abs/1811.00855;
its section "Learning Item Embeddings on Session Graphs") concatenates the normalised incoming
and outgoing adjacency rows, so node i hears both its predecessors and its successors:

    a_in(i)  = sum_{u -> i} w_in(u, i)  * W_in  h_u + b_in      (w_in  = #(u->i) / indeg(i))
    a_out(i) = sum_{i -> v} w_out(i, v) * W_out h_v + b_out     (w_out = #(i->v) / outdeg(i))
    a_t      = [a_in ; a_out]                                    [N, 2d]
    h_t      = GRU(a_t, h_{t-1})   (SR-GNN's update / reset gates z, r and candidate h~)  [N, d]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing


class BidirectionalGGNN(MessagePassing):
    """T rounds of gated message passing over in- and out-edges; parameters shared across rounds."""

    def __init__(self, dim: int, steps: int = 1) -> None:
        super().__init__(aggr="add")
        if steps < 1:
            raise ValueError("a GGNN needs at least one propagation step")
        self.steps = steps
        self.lin_in = nn.Linear(dim, dim, bias=False)
        self.lin_out = nn.Linear(dim, dim, bias=False)
        self.bias_in = nn.Parameter(torch.zeros(dim))
        self.bias_out = nn.Parameter(torch.zeros(dim))
        self.gru = nn.GRUCell(2 * dim, dim)

    def forward(self, h: Tensor, edge_index: Tensor, weight_in: Tensor, weight_out: Tensor) -> Tensor:
        """h [N, d], edge_index [2, E] (u -> v), weights [E] -> h_T [N, d]."""
        reverse = edge_index.flip(0)
        for _ in range(self.steps):
            a_in = self.propagate(edge_index, x=self.lin_in(h), weight=weight_in) + self.bias_in
            a_out = self.propagate(reverse, x=self.lin_out(h), weight=weight_out) + self.bias_out
            h = self.gru(torch.cat([a_in, a_out], dim=-1), h)
        return h

    def message(self, x_j: Tensor, weight: Tensor) -> Tensor:
        """Neighbour state scaled by its normalised edge weight: [E, d]."""
        return weight.unsqueeze(-1) * x_j
