"""Reading a user's long-term representation out of the memory graph.

Two reads, switched by `LongTermMemory(target_attentive=...)`:

* `GraphRead`: GLAD's plain graph memory, the last GraphSAGE layer for the user node
  (eq. 1 at layer L) -> h_U^L [B, d], the same for every candidate.
* `TargetAttentiveRead`: §2.4 replaces that last layer by attention conditioned on the
  target item T_k (eq. 5), so each candidate reads the memory nodes relevant to it:

      alpha_jk  = h_{T_k} . h_{SE_j}^{L-1}                             (5)
      h_{U T_k} = sum_{SE_j in N(U)} alpha_jk h_{SE_j}^{L-1}

  Eq. 5 leaves alpha unnormalised (as in DIN, GLAD ref. 44). With `softmax=True` the
  weights are normalised over the user's nodes instead, which keeps the read inside the
  hull of the memory nodes, so a long history does not inflate its norm; `softmax=False`
  is eq. 5 verbatim.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import SAGEConv

from streamrec.models.memory.graph import MemoryGraph


class GraphRead(nn.Module):
    """Eq. 1 at the last layer: h_U^L = W_U^L [h_U^{L-1} || sum_{N(U)} h_SE^{L-1}]  -> [B, d]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = SAGEConv((dim, dim), dim, aggr="sum")

    def forward(self, users: Tensor, nodes: Tensor, graph: MemoryGraph) -> Tensor:
        """users [B, d], nodes [M, d] (layer L-1) -> h_U^L [B, d]."""
        return self.conv((nodes, users), graph.edge_index, size=(nodes.size(0), users.size(0)))


class TargetAttentiveRead(nn.Module):
    """Eq. 5 weights of every target over a user's memory nodes (no parameters of its own)."""

    def __init__(self, softmax: bool = True) -> None:
        super().__init__()
        self.softmax = softmax

    @staticmethod
    def logits(nodes: Tensor, targets: Tensor) -> Tensor:
        """Eq. 5's alpha = h_T . h_SE: nodes [R, M, d] (padded per user), targets [R, K, d] or [K, d] shared -> [R, K,
        M]."""
        if targets.dim() == 2:  # one target list for every row: one [K, d] x [d, R*M] matmul
            r, m, d = nodes.shape
            return (targets @ nodes.reshape(r * m, d).T).view(-1, r, m).transpose(0, 1)
        return targets @ nodes.transpose(1, 2)

    def weights(self, logits: Tensor, mask: Tensor) -> Tensor:
        """alpha [R, K, M], mask Bool [R, M] (>= 1 node per row) -> read weights [R, K, M].

        Padded slots get weight exactly 0, so uneven memories batch together unchanged.
        """
        keep = mask.unsqueeze(1)  # [R, 1, M]
        if self.softmax:
            return logits.masked_fill(~keep, float("-inf")).softmax(dim=-1)
        return logits.masked_fill(~keep, 0.0)
