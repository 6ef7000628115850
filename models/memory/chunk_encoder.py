"""Interaction sequence encoder for memory chunks (glad.md §2.1, §2.5).

GLAD encodes each chunk S_im with a Bert4Rec-style self-attention encoder: the chunk's
items, with a [MASK] token appended, go through the transformer and the output at the
mask token is the sequence-node embedding h_SE. Here every chunk is one small complete
graph (its items plus that readout token) and attention runs per graph with the session
encoder's `GraphSelfAttention`, so uneven chunks need no padding and the layers can be
the session encoder's own (weight sharing, as the issue allows).

    x_p   = E[item_p] + P[p]                 p = 0..|S|-1   (item table row + position)
    x_*   = r                                the appended readout ([MASK]) token
    h_SE  = (Attn_L o ... o Attn_1)(x)[*]    [N, d]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from streamrec.models.graph.attention import GraphSelfAttention, complete_edges
from streamrec.models.memory.chunks import Chunks


class ChunkEncoder(nn.Module):
    """Chunks of item indices -> sequence-node embeddings h_SE [N, d]."""

    def __init__(
        self, dim: int, chunk_size: int, heads: int = 2, layers: int = 1, dropout: float = 0.0, attention: nn.ModuleList | None = None
    ) -> None:
        """`attention`: layers to share with the session encoder; None builds `layers` own ones."""
        super().__init__()
        self.chunk_size = chunk_size
        self.positions = nn.Embedding(chunk_size, dim)
        nn.init.normal_(self.positions.weight, std=dim**-0.5)  # same scale as the item table rows
        self.readout = nn.Parameter(torch.randn(dim) * dim**-0.5)
        self.attention = attention if attention is not None else nn.ModuleList(GraphSelfAttention(dim, heads, dropout) for _ in range(layers))

    def forward(self, chunks: Chunks, item_table: Tensor) -> Tensor:
        """chunks (N chunks, T items), item_table [V, d] -> h_SE [N, d]."""
        positions = chunks.positions()
        if positions.numel() and int(positions.max()) >= self.chunk_size:
            raise ValueError(f"a chunk is longer than the encoder's chunk size {self.chunk_size}")
        n, t = chunks.num_chunks, chunks.items.numel()
        # Token layout: chunk j's items, then its readout token, then chunk j+1's items...
        ptr = chunks.ptr + torch.arange(n + 1, device=chunks.ptr.device)  # every graph one token longer
        readout_slot = ptr[1:] - 1  # [N]
        item_slot = ptr[:-1][chunks.chunk_of_item()] + positions  # [T]
        x = item_table[chunks.items] + self.positions(positions)  # [T, d]
        h = x.new_zeros(t + n, x.size(1)).index_copy(0, item_slot, x).index_copy(0, readout_slot, self.readout.expand(n, -1))
        pairs = complete_edges(ptr)  # every token attends to every token of its own chunk
        for layer in self.attention:
            h = layer(h, pairs)
        return h[readout_slot]
