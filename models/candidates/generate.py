"""Candidate generation and exact re-ranking (GRAINRec §3.4 inference, ContextGNN's local items).

For each session the candidates are the union of

- the HNSW top-M items for its session vector s_h (the best two-tower scores, approximately),
- the neighbour-matrix rows of its items (GRAINRec: items similar to those in the session),
- the familiar items: its items and their co-occurrence rows (ContextGNNHead.familiar_items),
  the only items whose ContextGNN pair-wise score can be non-zero,

and the full model then scores exactly those ([B, C], models/recommender.py `score`). Every
item outside the candidates has only its two-tower score, so the re-ranked top-k equals the
full-catalogue top-k whenever HNSW returns the exact top-M two-tower items and M covers k
plus the familiar items ranked above them; bench/hnsw_candidates.py measures how close it
comes (recall@20 against full scoring).
"""

from __future__ import annotations

import torch
from torch import Tensor

from streamrec.models.candidates.index import CandidateIndex
from streamrec.models.recommender import ModelInput, SessionRecommender
from streamrec.state.vocab import PAD_INDEX


def pack_rows(rows: Tensor, items: Tensor, batch_size: int, num_items: int) -> Tensor:
    """Distinct non-PAD items per row from (row, item) pairs -> [B, C] ascending, PAD-padded (C >= 1)."""
    keep = items != PAD_INDEX
    keys = torch.unique(rows[keep] * num_items + items[keep], sorted=True)
    key_rows = keys // num_items
    counts = torch.bincount(key_rows, minlength=batch_size)
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    starts = torch.cumsum(counts, 0) - counts
    packed = torch.full((batch_size, width), PAD_INDEX, dtype=torch.long, device=items.device)
    packed[key_rows, torch.arange(keys.numel(), device=keys.device) - starts[key_rows]] = keys % num_items
    return packed


def candidate_items(
    model: SessionRecommender, index: CandidateIndex, inputs: ModelInput, session: Tensor, top_m: int, threads: int = 1
) -> Tensor:
    """Candidates [B, C] (PAD-padded) for encoded sessions `session` [B, d] of `inputs`."""
    graphs = inputs.graphs
    batch_size = session.size(0)
    nearest = index.query(session, top_m, threads).to(session.device)  # [B, M]
    x = graphs.x
    similar = index.neighbours.to(x.device)[x]  # [N, k]
    familiar = model.head.familiar_items(x) if model.head is not None else x.unsqueeze(-1)  # [N, *]
    rows = torch.cat([
        torch.arange(batch_size, device=x.device).repeat_interleave(nearest.size(1)),
        graphs.batch.repeat_interleave(similar.size(1)),
        graphs.batch.repeat_interleave(familiar.size(1)),
    ])
    items = torch.cat([nearest.flatten(), similar.flatten(), familiar.flatten()])
    return pack_rows(rows, items, batch_size, model.num_items)


@torch.inference_mode()
def rerank(
    model: SessionRecommender, index: CandidateIndex, inputs: ModelInput, top_m: int, threads: int = 1
) -> tuple[Tensor, Tensor]:
    """(logits [B, C], candidates [B, C]): the full model's exact scores of each session's candidates.

    PAD and every row the model may not rank (`model.rankable`: spare capacity of a grown table, items
    expired by the continual learner) score -inf, exactly as `SessionRecommender.rank_scores` masks them
    on the full-catalogue path: the index and the neighbour rows may still point at such rows.
    """
    session, nodes = model.encoder(inputs.graphs)
    candidates = candidate_items(model, index, inputs, session, top_m, threads)
    logits = model.score(inputs, session, nodes, candidates)
    unrankable = (candidates == PAD_INDEX) | ~model.rankable[candidates]
    return logits.masked_fill(unrankable, float("-inf")), candidates
