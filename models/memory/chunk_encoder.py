"""Interaction sequence encoder for memory chunks (GLAD §2.1, §2.5).

GLAD encodes each chunk S_im with Bert4Rec: the chunk's items with a [MASK] token
appended go through a bidirectional transformer, and the output at the mask token is
the sequence-node embedding h_SE:

    x_p   = E[item_p] + P[p]                 p = 0..c-1   (item table row + position)
    x_c   = r                                the appended readout ([MASK]) token
    h_SE  = Transformer_L(x)[c]              [N, d]

Chunks are dense [N, c + 1] here, not edge lists like the session encoder's graph
attention: every chunk but a history's most recent one has exactly c items, so padding
costs almost nothing, while per-pair gathers of c^2 edges per chunk cost many times more
for the same result (docs/benchmarks.md, "Smaller measurements behind code choices"). Pads
are excluded by the key padding mask.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from streamrec.models.memory.chunks import Chunks


class ChunkEncoder(nn.Module):
    """Chunks of item indices -> sequence-node embeddings h_SE [N, d]."""

    def __init__(self, dim: int, chunk_size: int, heads: int = 2, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.chunk_size = chunk_size
        self.positions = nn.Embedding(chunk_size, dim)
        nn.init.normal_(self.positions.weight, std=dim**-0.5)  # same scale as the item table rows
        self.readout = nn.Parameter(torch.randn(dim) * dim**-0.5)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, chunks: Chunks, item_table: Tensor) -> Tensor:
        """chunks (N chunks of <= c items), item_table [V, d] -> h_SE [N, d]."""
        n, c = chunks.num_chunks, self.chunk_size
        sizes = chunks.sizes()
        if n and int(sizes.max()) > c:
            raise ValueError(f"a chunk has {int(sizes.max())} items, more than the encoder's chunk size {c}")
        slots = torch.arange(c, device=sizes.device)
        padded = slots >= sizes.unsqueeze(1)  # [N, c] True where a tail chunk has no item
        items = torch.zeros(n, c, dtype=torch.long, device=sizes.device)
        items[chunks.chunk_of_item(), chunks.positions()] = chunks.items
        x = item_table[items] + self.positions(slots)  # [N, c, d]
        x = torch.cat([x, self.readout.expand(n, 1, -1)], dim=1)  # [N, c+1, d]
        ignore = torch.cat([padded, padded.new_zeros(n, 1)], dim=1)  # the readout token is always attended
        return self.transformer(x, src_key_padding_mask=ignore)[:, c]
