"""Session encoder: item embeddings -> [GGNN, self-attention] x L -> local/global readout.

With `attention` off this is SR-GNN (its sections "Learning Item Embeddings on Session Graphs"
and "Generating Session Embeddings"); with it on, GRAINRec's alternation of short-range message
passing and long-range attention. The item table is shared with the scoring heads (two-tower dot
products use the same rows).

SR-GNN: "Session-based Recommendation with Graph Neural Networks", Wu et al., AAAI 2019,
https://arxiv.org/abs/1811.00855. GRAINRec: "GRAINRec: Graph and Attention Integrated Approach for
Real-Time Session-Based Item Recommendations", https://arxiv.org/abs/2411.09152.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

from streamrec.models.graph.attention import GraphSelfAttention, complete_edges
from streamrec.models.graph.ggnn import BidirectionalGGNN
from streamrec.models.graph.readout import LocalGlobalReadout
from streamrec.models.presets import ModelConfig
from streamrec.state.vocab import PAD_INDEX


class SessionEncoder(nn.Module):
    """Batch of session graphs -> session vectors s_h [B, d]."""

    def __init__(self, config: ModelConfig, num_items: int) -> None:
        super().__init__()
        self.items = nn.Embedding(num_items, config.dim, padding_idx=PAD_INDEX)
        nn.init.normal_(self.items.weight, std=1.0 / config.dim**0.5)
        self.dropout = nn.Dropout(config.embedding_dropout)
        self.gnn = nn.ModuleList(BidirectionalGGNN(config.dim, config.gnn_steps) for _ in range(config.layers))
        self.attention = nn.ModuleList(
            GraphSelfAttention(config.dim, config.heads, config.embedding_dropout)
            for _ in range(config.layers if config.attention else 0)
        )
        self.readout = LocalGlobalReadout(config.dim)

    def node_states(self, graphs: Batch) -> Tensor:
        """Context-aware node embeddings h [N, d] after all GNN/attention blocks."""
        h = self.dropout(self.items(graphs.x))
        pairs = complete_edges(graphs.ptr) if len(self.attention) else None
        for i, gnn in enumerate(self.gnn):
            h = gnn(h, graphs.edge_index, graphs.edge_weight_in, graphs.edge_weight_out)
            if pairs is not None:
                h = self.attention[i](h, pairs)
        return h

    def forward(self, graphs: Batch) -> tuple[Tensor, Tensor]:
        """(session vectors s_h [B, d], node states h [N, d]), both L2-normalised."""
        h = self.node_states(graphs)
        session = self.readout(h, graphs.batch, graphs.last, graphs.num_graphs)
        return F.normalize(session, dim=-1), F.normalize(h, dim=-1)

    def item_table(self) -> Tensor:
        """L2-normalised item vectors [V, d] (row 0 is padding and never ranked)."""
        return F.normalize(self.items.weight, dim=-1)

    def item_vectors(self, index: Tensor) -> Tensor:
        """Rows `index` (any shape) of `item_table()`, normalising only those rows -> [*index.shape, d]."""
        return F.normalize(self.items(index), dim=-1)
