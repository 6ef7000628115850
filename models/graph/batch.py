"""Collate click sequences into one padding-free torch_geometric Batch of session graphs.

Each sequence of item indices becomes SR-GNN's session graph (its section "Constructing Session
Graphs"; "Session-based Recommendation with Graph Neural Networks", Wu et al., AAAI 2019,
https://arxiv.org/abs/1811.00855): one node per unique item, one directed edge u -> v per
observed transition with its count #(u -> v). Two normalisations of the same edges feed the bidirectional GGNN:

- ``edge_weight_out`` = #(u -> v) / outdeg(u)  (row-normalised A_out, as in SR-GNN)
- ``edge_weight_in``  = #(u -> v) / indeg(v)   (column-normalised A_in, as SR-GNN's code)

All graphs of a batch are built at once with tensor ops (no Python loop per graph), so
collation keeps up with a GPU. Nodes of a graph are contiguous (``ptr``) and ordered by
item index; ``click_node`` keeps the click order (SR-GNN's alias inputs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch


def collate_sessions(sequences: Sequence[Sequence[int]]) -> Batch:
    """Batch of session graphs from B non-empty click sequences of item indices (> 0).

    Fields (N nodes, E edges, T clicks in the whole batch):
      x [N] item index of each node; batch [N] graph of each node; ptr [B+1] node offsets;
      edge_index [2, E] (source, target) node ids; edge_count/edge_weight_out/edge_weight_in [E];
      last [B] node id of each graph's last click; click_node [T] node id of each click;
      click_ptr [B+1] click offsets.
    """
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("every session needs at least one click")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    clicks = torch.tensor([i for s in sequences for i in s], dtype=torch.long)
    click_graph = torch.repeat_interleave(torch.arange(len(sequences)), lengths)
    click_ptr = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])

    span = int(clicks.max()) + 1  # node key = graph * span + item: sorted by graph, then item
    node_key, click_node = torch.unique(click_graph * span + clicks, sorted=True, return_inverse=True)
    node_item, node_graph = node_key % span, node_key // span
    edge_index, count = _transitions(click_graph, click_node, node_key.numel())
    out_degree = torch.zeros(node_key.numel()).scatter_add_(0, edge_index[0], count)
    in_degree = torch.zeros(node_key.numel()).scatter_add_(0, edge_index[1], count)
    nodes_per_graph = torch.bincount(node_graph, minlength=len(sequences))
    return Batch(
        x=node_item,
        batch=node_graph,
        ptr=torch.cat([torch.zeros(1, dtype=torch.long), nodes_per_graph.cumsum(0)]),
        edge_index=edge_index,
        edge_count=count,
        edge_weight_out=count / out_degree[edge_index[0]],
        edge_weight_in=count / in_degree[edge_index[1]],
        last=click_node[click_ptr[1:] - 1],
        click_node=click_node,
        click_ptr=click_ptr,
    )


def _transitions(click_graph: Tensor, click_node: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Deduplicated edges between consecutive clicks of the same graph and their counts."""
    same_graph = click_graph[1:] == click_graph[:-1]
    src, dst = click_node[:-1][same_graph], click_node[1:][same_graph]
    keys, counts = torch.unique(src * num_nodes + dst, sorted=True, return_counts=True)
    edge_index = torch.stack([keys // num_nodes, keys % num_nodes])
    return edge_index, counts.to(torch.float32)


def graph_sizes(batch: Batch) -> Tensor:
    """Nodes per graph [B]."""
    return batch.ptr[1:] - batch.ptr[:-1]
