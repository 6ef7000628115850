"""Output gating of short- and long-term representations (glad.md §2.3-2.4, eq. 3-4 and 6).

    g          = sigma(W_T z_U + W_G h_U^L)                        (3)
    h_U        = g * z_U + (1 - g) * h_U^L,     s_k = h_U . h_{T_k}   (4)

With the target-attentive read the long-term part depends on the candidate, h_{U T_k}^L
(eq. 5), and replaces h_U^L in eq. 3:

    s_k = h_{U T_k} . h_{T_k},  h_{U T_k} = g_k * z_U + (1 - g_k) * h_{U T_k}^L   (6)

Because g_k is an element-wise sigmoid, eq. 6 needs a d-vector per (user, candidate):
scoring all V items is [B, V, d] work. `conditioned_scores` never holds more than one
block of it: items are scored in blocks of at most `block_elements / (B d)`, and under
autograd each block is checkpointed (recomputed in backward) instead of stored. Linearity
saves most of the gate's cost: W_G h_{U T_k}^L = sum_j alpha_jk (W_G h_SE_j), so W_G is
applied once to the M memory nodes, not to B*V reads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from streamrec.models.memory.read import TargetAttentiveRead


class OutputGate(nn.Module):
    """Learned element-wise gate between z_U (short term) and the long-term read."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_short = nn.Linear(dim, dim, bias=True)  # W_T (carries the gate's bias)
        self.w_long = nn.Linear(dim, dim, bias=False)  # W_G: linear, so it commutes with eq. 5's sum

    def forward(self, short: Tensor, long: Tensor) -> Tensor:
        """Eq. 3-4: z_U [B, d], h_U^L [B, d] -> h_U [B, d]."""
        return mix(self.w_short(short) + self.w_long(long), short, long)


def mix(gate_logits: Tensor, short: Tensor, long: Tensor) -> Tensor:
    """g * z + (1 - g) * h with g = sigmoid(gate_logits), written as h + g * (z - h) (one fewer pass)."""
    return long + torch.sigmoid(gate_logits) * (short - long)


def _score_block(read: TargetAttentiveRead, short: Tensor, short_logits: Tensor, nodes: Tensor, long_logits: Tensor, mask: Tensor, targets: Tensor) -> Tensor:
    """Eq. 5, 3, 6 for one block of K targets -> s [R, K]. targets [K, d] (shared) or [R, K, d]."""
    alpha = read.weights(nodes, mask, targets)  # [R, K, M]
    long = alpha @ nodes  # h_{U T_k}^L  [R, K, d]    (eq. 5)
    logits = short_logits.unsqueeze(1) + alpha @ long_logits  # W_T z + W_G h_{U T_k}^L   (eq. 3)
    fused = mix(logits, short.unsqueeze(1), long)  # h_{U T_k}  [R, K, d]   (eq. 6)
    return (fused * targets).sum(-1)  # s_k = h_{U T_k} . h_{T_k}


def conditioned_scores(
    gate: OutputGate, read: TargetAttentiveRead, short: Tensor, nodes: Tensor, mask: Tensor, targets: Tensor, block_elements: int
) -> Tensor:
    """Eq. 6 scores of every target -> [R, K].

    short z_U [R, d]; nodes h_SE^{L-1} [R, M, d] padded per user, mask Bool [R, M] (every row
    has >= 1 node); targets [K, d] shared by all rows (all items) or [R, K, d] (per-row
    candidates). The largest intermediate is one block [R, K_b, d], K_b = block_elements / (R d).
    """
    short_logits = gate.w_short(short)  # [R, d]
    long_logits = gate.w_long(nodes)  # W_G h_SE  [R, M, d]
    k_dim = targets.dim() - 2
    block = max(1, block_elements // (short.size(0) * short.size(1)))
    args = (read, short, short_logits, nodes, long_logits, mask)
    scores = []
    for part in targets.split(block, dim=k_dim):
        if torch.is_grad_enabled():
            scores.append(checkpoint(_score_block, *args, part, use_reentrant=False))
        else:
            scores.append(_score_block(*args, part))
    return torch.cat(scores, dim=1)
