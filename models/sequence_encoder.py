"""Self-attentive session encoder (SASRec family): the clicks in order -> causal Transformer blocks -> last position.

SASRec ("Self-Attentive Sequential Recommendation", Kang and McAuley, ICDM 2018,
https://arxiv.org/abs/1808.09781) encodes the click sequence with stacked causal self-attention
blocks and reads the next item off the last position:

    H^0   = Dropout(M_{x_1..n})                            (eq. 1: item embeddings)
    A     = softmax(Q K^T / sqrt(d) + B_{i-j} + causal)   (eq. 3-4; B a learned bias per head and distance)
    H^l   = Block_l(H^{l-1})                               (eq. 5-6: pre-norm attention + GELU feed-forward)
    F_t   = LayerNorm(H^L_t)                               (the state after click t)
    r_v   = scale * cos(F_n, M_v)                          (eq. 7 with the shared item table; cosine as SessionEncoder)

Optionally (`ModelConfig.lowpass_mix` alpha > 0) every block mixes a fixed filter into its attention
output, as BSARec ("An Attentive Inductive Bias for Sequential Recommendation beyond the
Self-Attention", Shin et al., AAAI 2024, https://arxiv.org/abs/2312.10325) does:

    Z     = LN(H^{l-1})
    low_t = mean(Z_{t-k+1..t})                              (low-pass: the latest k = lowpass_clicks states)
    D     = low + beta^2 * (Z - low)                        (the high frequencies rescaled by a learned beta [d])
    H^l   = H^{l-1} + Dropout(alpha * D + (1 - alpha) * Attention(Z)), then the feed-forward

BSARec's low-pass keeps the lowest Fourier frequencies of the whole sequence, which reads clicks
after t; a causal moving average is the low-pass that keeps the property below.

One change from the paper: where SASRec adds an absolute position embedding to the input, the
attention here carries a learned bias per head and distance i - j (as T5's relative positions,
Raffel et al., JMLR 2020). With the causal mask, the state after click t then depends only on
clicks 1..t and their distances, never on how long the session grows afterwards, so

    encode_sequences(x_1..n)[t]  ==  forward(prefix x_1..t)'s session vector

and one pass over a training sequence trains every one of its prefixes at once
(models/sequence_training.py), while serving encodes one prefix per request as before. The model
is trained with full-softmax cross-entropy over the catalogue, which Klenitskiy and Vasilev
("Turning Dross Into Gold Loss: is BERT4Rec really better than SASRec?", RecSys 2023,
https://arxiv.org/abs/2309.07602) showed is what SASRec needs.

`forward` reads the same batch of session graphs as `SessionEncoder` (the click order is kept
there as `click_node`/`click_ptr`) and returns the same pair (session vectors, node states), so the
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
        self.window = config.window
        self.items = nn.Embedding(num_items, config.dim, padding_idx=PAD_INDEX)
        nn.init.normal_(self.items.weight, std=1.0 / config.dim**0.5)
        self.distance_bias = nn.Parameter(torch.zeros(config.heads, config.window))
        """B[h, i - j]: what head h adds to the attention of click i on the click i - j clicks before it."""
        self.dropout = nn.Dropout(config.embedding_dropout)
        self.blocks = nn.ModuleList(
            _Block(config.dim, config.heads, config.hidden_dropout, config.lowpass_mix, config.lowpass_clicks)
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.dim)

    def encode_sequences(self, clicks: Tensor) -> Tensor:
        """Clicks [B, L] left-aligned (PAD after the last click) -> states F [B, L, d], unnormalised.

        F[b, t] is the state after click t of sequence b; it does not depend on clicks after t
        (causal) nor on padding (which only ever comes after)."""
        length = clicks.size(1)
        position = torch.arange(length, device=clicks.device)
        distance = (position.unsqueeze(1) - position.unsqueeze(0)).clamp(0, self.window - 1)  # [L, L], i - j
        future = position.unsqueeze(0) > position.unsqueeze(1)  # key after query
        bias = self.distance_bias[:, distance].masked_fill(future, float("-inf")).unsqueeze(0)  # [1, heads, L, L]
        h = self.dropout(self.items(clicks))
        for block in self.blocks:
            h = block(h, bias)
        return self.norm(h)

    def forward(self, graphs: Batch) -> tuple[Tensor, Tensor]:
        """(session vectors [B, d], node states [N, d]): a node's state is its latest click's."""
        clicks, slot, lengths = _left_aligned(graphs)  # clicks [B, L], flat slot of every click [T], lengths [B]
        h = self.encode_sequences(clicks)  # [B, L, d]
        flat = h.reshape(-1, h.size(-1))
        # a node's latest click: the largest slot among its clicks (slots grow with time)
        node_slot = torch.full((graphs.x.numel(),), -1, dtype=torch.long, device=clicks.device)
        node_slot = node_slot.scatter_reduce(0, graphs.click_node, slot, reduce="amax")
        session = h[torch.arange(lengths.numel(), device=clicks.device), lengths - 1]
        return F.normalize(session, dim=-1), F.normalize(flat[node_slot], dim=-1)

    def item_table(self) -> Tensor:
        """L2-normalised item vectors [V, d] (row 0 is padding and never ranked)."""
        return F.normalize(self.items.weight, dim=-1)

    def item_vectors(self, index: Tensor) -> Tensor:
        """Rows `index` (any shape) of `item_table()`, normalising only those rows -> [*index.shape, d]."""
        return F.normalize(self.items(index), dim=-1)


class CausalBandFilter(nn.Module):
    """z [B, L, d] -> low + beta^2 * (z - low) [B, L, d], low_t the mean of z over positions t-k+1..t (BSARec's
    low/high-frequency split made causal: position t reads nothing after t, so right padding changes nothing)."""

    def __init__(self, dim: int, clicks: int) -> None:
        super().__init__()
        if clicks < 1:
            raise ValueError(f"lowpass_clicks must be at least 1, got {clicks}")
        self.clicks = clicks
        self.sqrt_beta = nn.Parameter(torch.randn(1, 1, dim))
        """Per-dimension gain of the high frequencies, squared (BSARec's sqrt(beta), randomly initialised)."""

    def forward(self, z: Tensor) -> Tensor:
        length = z.size(1)
        total = F.pad(z.cumsum(1), (0, 0, 1, 0))  # [B, L + 1, d], total[:, t] = sum of z[:, :t]
        start = (torch.arange(1, length + 1, device=z.device) - self.clicks).clamp(min=0)
        count = (torch.arange(1, length + 1, device=z.device) - start).view(1, -1, 1)
        low = (total[:, 1:] - total[:, start]) / count
        return low + self.sqrt_beta**2 * (z - low)


class _Block(nn.Module):
    """Pre-norm block: x + Attention(LN(x)) then x + FFN(LN(x)), the FFN GELU of width 4d (SASRec eq. 5-6);
    with `mix` > 0 the attention output is mixed with `CausalBandFilter` (BSARec)."""

    def __init__(self, dim: int, heads: int, dropout: float, mix: float = 0.0, lowpass_clicks: int = 10) -> None:
        super().__init__()
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"lowpass_mix must be in [0, 1], got {mix}")
        self.heads, self.mix = heads, mix
        self.filter = CausalBandFilter(dim, lowpass_clicks) if mix > 0 else None
        self.attention_norm, self.ffn_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = dropout

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """x [B, L, d], bias [1, heads, L, L] (−inf where a query may not look) -> [B, L, d]."""
        batch, length, dim = x.shape
        z = self.attention_norm(x)
        q, k, v = self.qkv(z).view(batch, length, 3, self.heads, dim // self.heads).unbind(2)
        attended = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=bias,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )  # [B, heads, L, d / heads]
        mixed = self.out(attended.transpose(1, 2).reshape(batch, length, dim))
        if self.filter is not None:
            mixed = self.mix * self.filter(z) + (1.0 - self.mix) * mixed
        x = x + self.dropout(mixed)
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


def _left_aligned(graphs: Batch) -> tuple[Tensor, Tensor, Tensor]:
    """Clicks of each session left-aligned in [B, L] (L the longest session; PAD after the latest click):
    (items [B, L], flat slot b * L + j of every click [T], lengths [B])."""
    click_ptr = graphs.click_ptr
    lengths = click_ptr[1:] - click_ptr[:-1]
    batch_size, longest = lengths.numel(), int(lengths.max())
    session = torch.repeat_interleave(torch.arange(batch_size, device=lengths.device), lengths)
    position = torch.arange(click_ptr[-1], device=lengths.device) - click_ptr[:-1][session]
    slot = session * longest + position
    items = torch.full((batch_size * longest,), PAD_INDEX, dtype=torch.long, device=lengths.device)
    items[slot] = graphs.x[graphs.click_node]
    return items.view(batch_size, longest), slot, lengths
