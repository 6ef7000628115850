"""Self-attentive session encoder (SASRec family): the clicks in order -> Transformer blocks -> last position.

SASRec ("Self-Attentive Sequential Recommendation", Kang and McAuley, ICDM 2018,
https://arxiv.org/abs/1808.09781) encodes the click sequence with stacked self-attention blocks
over item plus position embeddings and reads the next item off the last position:

    E_t   = M_{x_t} + P_{n-1-t}                          (eq. 1-2; position counted back from the latest click)
    H^0   = Dropout(E),  H^l = Block_l(H^{l-1})          (eq. 3-6: pre-norm multi-head attention + GELU FFN)
    s_h   = LayerNorm(H^L_{n-1})                          (the latest click's state)
    r_v   = scale * cos(s_h, M_v)                         (eq. 7 with the shared item table; cosine as SessionEncoder)

Here each training example is one prefix (models/train.py), so the encoder attends over the whole
prefix without a causal mask: the target is never in the input. Positions are counted back from the
latest click, so "the click before last" has the same embedding in a session of 3 or of 30 clicks.
The model is trained with full-softmax cross-entropy over the catalogue (or sampled softmax with
many negatives, `sampled_negatives`), which Klenitskiy and Vasilev ("Turning Dross Into Gold Loss:
is BERT4Rec really better than SASRec?", RecSys 2023, https://arxiv.org/abs/2309.07602) showed is
what SASRec needs; SASRec's own binary loss with one negative under-trains it.

It reads the same batch of session graphs as `SessionEncoder` (the click order is kept there as
`click_node`/`click_ptr`) and returns the same pair (session vectors, node states), so the
two-tower score, the ContextGNN head, candidate generation and continual learning work unchanged
with either encoder (`ModelConfig.encoder`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

from streamrec.models.presets import ModelConfig
from streamrec.state.vocab import PAD_INDEX


class SelfAttentiveEncoder(nn.Module):
    """Batch of session graphs -> (session vectors s_h [B, d], node states [N, d]), both L2-normalised."""

    def __init__(self, config: ModelConfig, num_items: int) -> None:
        super().__init__()
        if config.dim % config.heads:
            raise ValueError(f"dim {config.dim} is not divisible by {config.heads} heads")
        self.items = nn.Embedding(num_items, config.dim, padding_idx=PAD_INDEX)
        nn.init.normal_(self.items.weight, std=1.0 / config.dim**0.5)
        self.positions = nn.Embedding(config.window, config.dim)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.dropout = nn.Dropout(config.embedding_dropout)
        block = nn.TransformerEncoderLayer(
            config.dim, config.heads, dim_feedforward=config.dim * 4, dropout=config.hidden_dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, graphs: Batch) -> tuple[Tensor, Tensor]:
        """(session vectors [B, d], node states [N, d]): a node's state is its latest click's."""
        clicks, slot, padding = _right_aligned(graphs)  # clicks [B, L] item per slot, slot [T], padding [B, L]
        length = clicks.size(1)
        back = torch.arange(length - 1, -1, -1, device=clicks.device)  # slot j is `length - 1 - j` clicks back
        h = self.dropout(self.items(clicks) + self.positions(back).unsqueeze(0))
        h = self.norm(self.blocks(h, src_key_padding_mask=padding))  # [B, L, d]
        flat = h.reshape(-1, h.size(-1))
        # a node's latest click: the largest slot among its clicks (slots grow with time)
        node_slot = torch.full((graphs.x.numel(),), -1, dtype=torch.long, device=clicks.device)
        node_slot = node_slot.scatter_reduce(0, graphs.click_node, slot, reduce="amax")
        session = h[:, -1]
        return F.normalize(session, dim=-1), F.normalize(flat[node_slot], dim=-1)

    def item_table(self) -> Tensor:
        """L2-normalised item vectors [V, d] (row 0 is padding and never ranked)."""
        return F.normalize(self.items.weight, dim=-1)

    def item_vectors(self, index: Tensor) -> Tensor:
        """Rows `index` (any shape) of `item_table()`, normalising only those rows -> [*index.shape, d]."""
        return F.normalize(self.items(index), dim=-1)


def _right_aligned(graphs: Batch) -> tuple[Tensor, Tensor, Tensor]:
    """Clicks of each session right-aligned in [B, L] (L the longest session; the latest click in the
    last column, PAD before the first): (items [B, L], flat slot b * L + j of every click [T], padding [B, L])."""
    click_ptr = graphs.click_ptr
    lengths = click_ptr[1:] - click_ptr[:-1]
    batch_size, longest = lengths.numel(), int(lengths.max())
    session = torch.repeat_interleave(torch.arange(batch_size, device=lengths.device), lengths)
    position = torch.arange(click_ptr[-1], device=lengths.device) - click_ptr[:-1][session]
    slot = session * longest + (longest - lengths[session]) + position
    items = torch.full((batch_size * longest,), PAD_INDEX, dtype=torch.long, device=lengths.device)
    items[slot] = graphs.x[graphs.click_node]
    items = items.view(batch_size, longest)
    return items, slot, items == PAD_INDEX
