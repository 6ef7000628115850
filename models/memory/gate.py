"""Output gating of short- and long-term representations (GLAD §2.3-2.4, eq. 3-4 and 6).

    g          = sigma(W_T z_U + W_G h_U^L)                        (3)
    h_U        = g * z_U + (1 - g) * h_U^L,     s_k = h_U . h_{T_k}   (4)

With the target-attentive read the long-term part depends on the candidate, h_{U T_k}^L
(eq. 5), and replaces h_U^L in eq. 3:

    s_k = h_{U T_k} . h_{T_k},  h_{U T_k} = g_k * z_U + (1 - g_k) * h_{U T_k}^L   (6)

Because g_k is an element-wise sigmoid, eq. 6 needs a d-vector per (user, candidate):
scoring all V items is [B, V, d] work. Two things keep it cheap (`conditioned_scores`):

* Algebra. With r_k = sum_j a_jk h_j (eq. 5, h_j = h_SE_j^{L-1}) and u_k = g_k * h_{T_k},

      s_k = h_{T_k} . r_k + u_k . z_U - u_k . r_k
          = sum_j a_jk alpha_jk + u_k . z_U - sum_j a_jk (u_k . h_j)

  and, W_G being linear, W_T z_U + W_G r_k = [a_k, 1] @ [W_G h_1 .. W_G h_M, W_T z_U + b]^T.
  So the read r_k itself is never formed: the [R, K, d] passes are one matmul (gate
  logits), a sigmoid, a product with h_T, and one matmul back to [R, K, M + 1].
* Blocks. Targets are scored in blocks of at most `block_elements / (R d)` so that the
  [R, K_b, d] intermediates stay in cache; under autograd each block is checkpointed
  (recomputed in backward), so memory does not grow with V.
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
        """Eq. 3-4: z_U [B, d], h_U^L [B, d] -> h_U = g * z + (1 - g) * h = h + g * (z - h)  [B, d]."""
        g = torch.sigmoid(self.w_short(short) + self.w_long(long))
        return long + g * (short - long)


def _score_block(
    read: TargetAttentiveRead, gate_rows: Tensor, value_rows: Tensor, nodes: Tensor, mask: Tensor, targets: Tensor
) -> Tensor:
    """Eq. 5, 3, 6 for one block of K targets -> s [R, K].

    gate_rows [R, M+1, d] = [W_G h_1 .. W_G h_M, W_T z + b]; value_rows [R, M+1, d] = [h_1 .. h_M, z];
    nodes [R, M, d]; targets [K, d] (shared) or [R, K, d].
    """
    alpha = read.logits(nodes, targets)  # h_T . h_j  [R, K, M]
    a = read.weights(alpha, mask)  # eq. 5 weights  [R, K, M]
    a1 = torch.cat([a, a.new_ones(a.shape[:-1] + (1,))], dim=-1)  # [R, K, M+1]
    u = torch.sigmoid(a1 @ gate_rows) * targets  # g_k * h_T  [R, K, d]   (eq. 3)
    w = u @ value_rows.transpose(1, 2)  # [u . h_1 .. u . h_M, u . z]  [R, K, M+1]
    return (a * (alpha - w[..., :-1])).sum(-1) + w[..., -1]  # eq. 6


def conditioned_scores(
    gate: OutputGate, read: TargetAttentiveRead, short: Tensor, nodes: Tensor, mask: Tensor, targets: Tensor,
    block_elements: int,
) -> Tensor:
    """Eq. 6 scores of every target -> [R, K].

    short z_U [R, d]; nodes h_SE^{L-1} [R, M, d] padded per user, mask Bool [R, M] (every row
    has >= 1 node); targets [K, d] shared by all rows (all items) or [R, K, d] (per-row
    candidates). The largest intermediate is one block [R, K_b, d], K_b = block_elements / (R d).
    """
    z = short.unsqueeze(1)  # [R, 1, d]
    gate_rows = torch.cat([gate.w_long(nodes), gate.w_short(z)], dim=1)
    value_rows = torch.cat([nodes, z], dim=1)
    k_dim = targets.dim() - 2
    block = max(1, block_elements // (short.size(0) * short.size(1)))
    scores = []
    for part in targets.split(block, dim=k_dim):
        if torch.is_grad_enabled():
            scores.append(checkpoint(_score_block, read, gate_rows, value_rows, nodes, mask, part, use_reentrant=False))
        else:
            scores.append(_score_block(read, gate_rows, value_rows, nodes, mask, part))
    return torch.cat(scores, dim=1)
