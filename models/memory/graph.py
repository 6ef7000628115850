"""The bipartite user / memory-node graph and GraphSAGE over it (GLAD §2.2, eq. 1-2).

Memory nodes are the batch's chunk nodes SE_j, or, with clusters, the cluster nodes CE_j
whose embedding is the mean of their member chunks' embeddings (§2.2: "Cluster node
embeddings are computed by mean-pooling over sequence node embeddings"). One SAGE layer
updates both sides with sum aggregation:

    h_U^{l+1}  = sigma(W_U^l  [h_U^l  || sum_{SE in N(U)}  h_SE^l])      (1)
    h_SE^{l+1} = sigma(W_SE^l [h_SE^l || sum_{U in N(SE)} h_U^l])        (2)

(torch_geometric's SAGEConv computes W [x_i || agg_j x_j] as lin_r(x_i) + lin_l(agg)).
sigma is applied between layers; the last layer's outputs stay linear because they are
dot-scored against signed item vectors (a ReLU there would discard half of that space).

User nodes start from the short-term vector z_U: a streaming system meets new users all
the time, so instead of GLAD's per-user random embeddings (a transductive table) each
user enters the graph with the one thing known about them now.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv
from torch_geometric.utils import scatter

from streamrec.models.memory.chunks import MemoryBatch


@dataclass(frozen=True)
class MemoryGraph:
    """The batch's memory: M node embeddings and memory -> user edges."""

    nodes: Tensor
    """[M, d] initial memory-node embeddings h^0 (chunks, or cluster means)."""
    edge_index: Tensor
    """Long [2, E]: row 0 memory node, row 1 user (batch row); sorted by user."""
    num_users: int

    def nodes_per_user(self) -> Tensor:
        """Long [B]: memory nodes each user links to (its memory size)."""
        return torch.bincount(self.edge_index[1], minlength=self.num_users)


def memory_graph(batch: MemoryBatch, chunk_embeddings: Tensor, use_clusters: bool) -> MemoryGraph:
    """Chunk embeddings [N, d] of `batch` -> the memory graph (chunk nodes, or cluster nodes)."""
    if not use_clusters:
        return MemoryGraph(chunk_embeddings, torch.stack([batch.edge_chunk, batch.edge_user]), batch.batch_size)
    if batch.chunk_cluster is None:
        raise ValueError("use_clusters is on but the MemoryBatch was built without a ClusterIndex")
    clusters, node_of_chunk = torch.unique(batch.chunk_cluster, return_inverse=True)
    m = clusters.numel()
    nodes = scatter(chunk_embeddings, node_of_chunk, dim=0, dim_size=m, reduce="mean")  # [M, d]
    # A user with several chunks in one cluster links to that cluster once.
    pair = torch.unique(batch.edge_user * m + node_of_chunk[batch.edge_chunk])  # sorted: by user, then node
    return MemoryGraph(nodes, torch.stack([pair % m, pair // m]), batch.batch_size)


class BipartiteSAGE(nn.Module):
    """`layers` rounds of eq. 1-2 -> (h_U [B, d], h_SE [M, d]) at the last round."""

    def __init__(self, dim: int, layers: int, users_out: bool = True) -> None:
        """`users_out=False` skips the last user update (eq. 5 replaces it), so no parameter is left unused."""
        super().__init__()
        self.to_nodes = nn.ModuleList(SAGEConv((dim, dim), dim, aggr="sum") for _ in range(layers))
        self.to_users = nn.ModuleList(
            SAGEConv((dim, dim), dim, aggr="sum") for _ in range(layers if users_out else max(layers - 1, 0))
        )
        self.activation = nn.ReLU()

    def forward(self, users: Tensor, graph: MemoryGraph) -> tuple[Tensor, Tensor]:
        nodes, to_users = graph.nodes, graph.edge_index
        to_nodes = to_users.flip(0)
        sizes = (nodes.size(0), users.size(0))
        last = len(self.to_nodes) - 1
        for layer, node_conv in enumerate(self.to_nodes):
            new_nodes = node_conv((users, nodes), to_nodes, size=sizes[::-1])  # eq. 2
            if layer < len(self.to_users):
                users = self.to_users[layer]((nodes, users), to_users, size=sizes)  # eq. 1
            nodes = new_nodes
            if layer < last:
                users, nodes = self.activation(users), self.activation(nodes)
        return users, nodes
