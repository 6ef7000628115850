"""ContextGNN-style fusion: pair-wise scores for familiar items, two-tower scores for the rest.

ContextGNN ("ContextGNN: Beyond Two-Tower Recommendation Systems",
https://arxiv.org/abs/2411.19513) scores items inside a user's local subgraph with
pair-wise representations and everything else with a two-tower dot product, and mixes the
two with weights an MLP computes from the user representation. Here the local subgraph of
a session is its own items plus their strongest co-occurrence neighbours in the training
log, and the pair-wise score of a local item v for session b is

    pair[b, v] = g_0 + g_1 * evidence[b, v] + g_2 * recency[b, v] + g_3 * <s_h, h_v>
                 + g_4 * knn[b, v] + g_5 * log knn[b, v]

    evidence[b, v] = sum_t decay^(n-1-t) * cooc(x_t, v) / max_v(.)      (cosine co-occurrence, [0, 1])
    recency[b, v]  = sum_{t: x_t = v} decay^(n-1-t)                     (repeat-click evidence)
    <s_h, h_v>     = session vector . GNN state of v's node (only for items in the session graph)
    knn[b, v]      = pop(v)^-idf * sum_j knn_decay^j (P(v | u_j) + repeat [v = u_j]) / max_v(.)
                     (the SKNN baseline's score, models/knn.py: u_j the j-th most recent distinct
                     item, P(v | u) the row-normalised co-occurrence; log knn clamped at -10)
    g(b)           = MLP([s_h ; log(1 + n) ; log(1 + |local|) ; log max_v knn_raw])  (per-session fusion weights)

and the final logit is exp(g_6(b)) * two_tower[b, v] + local[b, v] * pair[b, v]: the MLP also
sets how much the two-tower (exploratory) score counts for this session (short sessions borrow
co-click structure; the MLP learns how much, per session). The head starts as a blend of the
two-tower model and the kNN, then learns the mixture.

With the session table (ModelConfig.session_cooccurrence, on in the presets) the pair score
gains g_7 * together[b, v], and the table's rows join the local set:

    together[b, v] = sum_j decay^j * S(u_j, v) / max_v(.),   S(a, b) = n(a, b) / sqrt(n(a) n(b))

with n(a, b) the training sessions holding both items and n(a) those holding a (cosine over
sessions, `session_neighbours`). Both windowed tables see a few clicks around each click; S sees
whole sessions, the evidence the item-based session kNN uses; the windowed features alone
left the model tied with the kNN on HR@20 (why and how it was chosen: docs/models.md,
"The session table").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from streamrec.models.score_space import DenseSpace, ScoreSpace, SparseSpace
from streamrec.state.knn_params import KnnParams
from streamrec.state.vocab import PAD_INDEX


def cooccurrence_neighbours(
    sequences: Sequence[Sequence[int]], num_items: int, knn: KnnParams, normalisation: str = "cosine"
) -> tuple[Tensor, Tensor]:
    """Top-k co-occurrence neighbours per item (k = knn.max_neighbours): (index [V, k] long, weight [V, k] float).

    Pairs (a_t, a_{t+d}) for d <= knn.window count 1/d forward and knn.backward_weight/d backward (the next
    click matters most); with "cosine" the sum is divided by sqrt(freq(a) * freq(b)) so popular
    items do not become everyone's neighbour (and re-clicks a -> a are dropped), with "row" by
    the row's total (P(b | a), re-clicks kept: exactly the SKNN baseline's rows). Missing neighbours are PAD_INDEX with
    weight 0.
    """
    window, k = knn.window, knn.max_neighbours
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64)
    seq_id = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    sources, targets, weights = [], [], []
    for d in range(1, window + 1):
        same = seq_id[d:] == seq_id[:-d]
        a, b = flat[:-d][same], flat[d:][same]
        sources += [a, b]
        targets += [b, a]
        weights += [np.full(a.size, 1.0 / d), np.full(a.size, knn.backward_weight / d)]
    src, dst, w = np.concatenate(sources), np.concatenate(targets), np.concatenate(weights)
    keep = src != dst if normalisation == "cosine" else np.ones(src.size, dtype=bool)  # the kNN's rows count re-clicks
    keys, inverse = np.unique(src[keep] * num_items + dst[keep], return_inverse=True)
    total = np.bincount(inverse, weights=w[keep])
    row, col = keys // num_items, keys % num_items
    if normalisation == "cosine":
        freq = np.bincount(flat, minlength=num_items).astype(np.float64)
        total = total / np.sqrt(freq[row] * freq[col])
    else:  # "row": P(b | a), every session item votes with the same mass (as the SKNN baseline)
        total = total / np.bincount(row, weights=total, minlength=num_items)[row]
    return _top_k_per_row(row, col, total, num_items, k)


def _top_k_per_row(
    row: np.ndarray, col: np.ndarray, weight: np.ndarray, num_rows: int, k: int
) -> tuple[Tensor, Tensor]:
    order = np.lexsort((-weight, row))
    row, col, weight = row[order], col[order], weight[order]
    starts = np.searchsorted(row, row, side="left")
    rank = np.arange(row.size) - starts
    keep = rank < k
    index = np.full((num_rows, k), PAD_INDEX, dtype=np.int64)
    value = np.zeros((num_rows, k), dtype=np.float32)
    index[row[keep], rank[keep]] = col[keep]
    value[row[keep], rank[keep]] = weight[keep]
    return torch.from_numpy(index), torch.from_numpy(value)


def session_neighbours(sequences: Sequence[Sequence[int]], num_items: int, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Top-k items clicked in the same session at any distance: (index [V, k], weight [V, k], sessions [V]).

    weight(a, b) = #sessions holding both / sqrt(#sessions holding a * #sessions holding b), the
    cosine over sessions (each session counts a pair once, whatever its length or order); `sessions`
    counts the sessions holding each item. The windowed tables see a few clicks around each click;
    this one sees the whole session, the evidence the item-based session kNN uses.
    """
    sets = [np.unique(np.asarray(s, dtype=np.int64)) for s in sequences if len(s) > 0]
    sessions = (
        np.bincount(np.concatenate(sets), minlength=num_items).astype(np.float64) if sets else np.zeros(num_items)
    )
    pairs = [x for x in sets if x.size > 1]
    if not pairs:
        empty = _top_k_per_row(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), num_items, k)
        return empty + (torch.from_numpy(sessions.astype(np.float32)),)
    src = np.concatenate([np.repeat(x, x.size) for x in pairs])
    dst = np.concatenate([np.tile(x, x.size) for x in pairs])
    keep = src != dst
    keys, total = np.unique(src[keep] * num_items + dst[keep], return_counts=True)
    row, col = keys // num_items, keys % num_items
    weight = total / np.sqrt(sessions[row] * sessions[col])
    return _top_k_per_row(row, col, weight, num_items, k) + (torch.from_numpy(sessions.astype(np.float32)),)


LOG_FLOOR = -10.0
"""log knn is clamped here: local items the kNN does not reach (knn = 0) get the floor."""


class ContextGNNHead(nn.Module):
    """Fuses two-tower logits with pair-wise scores on each session's local item set."""

    FEATURES = 6  # bias, cosine co-occurrence, repeat recency, node pair score, knn, log knn
    SESSION_STATS = 3  # log(1 + clicks), log(1 + local items), log(raw kNN maximum): how much local evidence there is

    neighbour_index: Tensor  # buffers, registered in __init__ (the session ones only with a session table)
    neighbour_weight: Tensor
    knn_index: Tensor
    knn_weight: Tensor
    idf_weight: Tensor
    session_index: Tensor
    session_weight: Tensor
    session_count: Tensor

    def __init__(self, dim: int, num_items: int, recency_decay: float, scale: float, knn: KnnParams,
                 session_table: bool = False) -> None:
        """`knn`: the baseline's parameters (ModelConfig.knn), reproduced by the kNN feature and used for both
        windowed tables; `session_table`: also the session co-occurrence table and its feature
        (ModelConfig.session_cooccurrence)."""
        super().__init__()
        neighbours = knn.max_neighbours
        self.register_buffer("neighbour_index", torch.zeros(num_items, neighbours, dtype=torch.long))
        self.register_buffer("neighbour_weight", torch.zeros(num_items, neighbours))
        self.register_buffer("knn_index", torch.zeros(num_items, neighbours, dtype=torch.long))
        self.register_buffer("knn_weight", torch.zeros(num_items, neighbours))
        self.register_buffer("idf_weight", torch.ones(num_items))
        self.session_table = session_table
        if session_table:  # registered only when used: checkpoints without it keep loading
            self.register_buffer("session_index", torch.zeros(num_items, neighbours, dtype=torch.long))
            self.register_buffer("session_weight", torch.zeros(num_items, neighbours))
            self.register_buffer("session_count", torch.zeros(num_items))
        self.fold_tables: list[tuple[Tensor, ...]] = []
        """Out-of-fold (cosine index, cosine weight, row index, row weight[, session index, session weight])
        tables for training (not saved)."""
        self.recency_decay = recency_decay
        self.knn = knn
        outputs = self.FEATURES + 1 + int(session_table)  # + log weight of the two-tower score [+ session feature]
        hidden, fused = nn.Linear(dim + self.SESSION_STATS, dim), nn.Linear(dim, outputs)
        self.fusion = nn.Sequential(hidden, nn.ReLU(), fused)
        nn.init.zeros_(fused.weight)
        with torch.no_grad():  # start as a blend of the two-tower model and the kNN baseline
            bias = torch.zeros(outputs)
            bias[4] = scale / 2
            fused.bias.copy_(bias)

    def set_neighbours(self, cosine: tuple[Tensor, Tensor], row: tuple[Tensor, Tensor], item_counts: Tensor,
                       session: tuple[Tensor, Tensor, Tensor] | None = None) -> None:
        """Install the co-occurrence tables computed from the training log and the kNN's idf weights."""
        self.neighbour_index.copy_(cosine[0])
        self.neighbour_weight.copy_(cosine[1])
        self.knn_index.copy_(row[0])
        self.knn_weight.copy_(row[1])
        if self.session_table:
            assert session is not None, "a head with a session table needs session_neighbours(...)"
            self.session_index.copy_(session[0])
            self.session_weight.copy_(session[1])
            self.session_count.copy_(session[2])
        share = item_counts / item_counts.sum().clamp_min(1.0)
        self.idf_weight.copy_(share.clamp_min(1e-12) ** -self.knn.idf)

    def tables(self) -> tuple[Tensor, ...]:
        """The served tables: (cosine index, cosine weight, row index, row weight[, session index, session weight])."""
        served = (self.neighbour_index, self.neighbour_weight, self.knn_index, self.knn_weight)
        return served + (self.session_index, self.session_weight) if self.session_table else served

    def set_fold_tables(self, folds: Sequence[Sequence[tuple[Tensor, ...] | None]]) -> None:
        """Tables built without each training fold's sequences: fold f's examples read table f.

        Stacking (Wolpert 1992): a table built from all training sequences contains every
        training target's own transition, so in training the target is always "familiar" with
        inflated evidence, unlike at test time; out-of-fold tables keep the head honest.
        """
        device = self.knn_index.device  # call after moving the module
        width = len(self.tables())  # (index, weight) of each table this head reads
        tables = [tuple(t.to(device) for table in fold if table is not None for t in table[:2]) for fold in folds]
        if any(len(fold) < width for fold in tables):
            raise ValueError(f"each fold needs the {width // 2} tables this head reads (session table: "
                             f"{self.session_table})")
        self.fold_tables = [fold[:width] for fold in tables]

    def forward(
        self, session: Tensor, two_tower: Tensor, graphs: Batch, nodes: Tensor, candidates: Tensor | None = None,
        fold: int | None = None,
    ) -> Tensor:
        """session [B, d], two_tower [B, V] (or [B, C] with candidates [B, C]), nodes [N, d] -> logits like two_tower.

        `fold` (training only): read that fold's out-of-fold co-occurrence tables. With candidates
        the features are computed on their support only (models/score_space.py), never [B, V],
        and equal the dense features at the candidates.
        """
        tables = self.fold_tables[fold] if fold is not None and self.fold_tables else self.tables()
        space = self._space(session, graphs, tables, candidates)
        evidence, recency, node_pair, lengths = self._pair_features(session, graphs, nodes, tables[0], tables[1], space)
        distinct_age = self._distinct_age(graphs)
        knn, knn_max = self._knn_scores(session, graphs, tables[2], tables[3], space, distinct_age)
        together = (
            self._session_scores(graphs, tables[4], tables[5], space, distinct_age) if self.session_table else None
        )
        seen = (evidence > 0) | (recency > 0) | (knn > 0)
        if together is not None:
            seen = seen | (together > 0)
        familiar = space.row_count(seen)
        stats = torch.stack([torch.log1p(lengths), torch.log1p(familiar), knn_max.clamp_min(1e-12).log()], dim=-1)
        evidence, recency, node_pair, knn = (space.select(f) for f in (evidence, recency, node_pair, knn))
        local = space.select(seen.to(two_tower.dtype))
        log_knn = knn.clamp_min(1e-30).log().clamp_min(LOG_FLOOR)
        g = self.fusion(torch.cat([session, stats], dim=-1))  # [B, 7] (+1 with the session table)
        pair = g[:, :1] + g[:, 1:2] * evidence + g[:, 2:3] * recency + g[:, 3:4] * node_pair
        pair = pair + g[:, 4:5] * knn + g[:, 5:6] * log_knn
        if together is not None:
            pair = pair + g[:, 7:8] * space.select(together)
        return g[:, 6:7].exp() * two_tower + local * pair

    def familiar_items(self, items: Tensor) -> Tensor:
        """Items whose features can be non-zero for a session containing `items` [N]: the items
        themselves and their cosine and kNN co-occurrence rows -> [N, 1 + 2K] (PAD where a row is short).

        Candidate generation includes them all, so re-ranking candidates never misses an item the
        head would lift (everything else scores its two-tower logit only). With the session table,
        its rows too ([N, 1 + 3K])."""
        rows = [items.unsqueeze(-1), self.neighbour_index[items], self.knn_index[items]]
        if self.session_table:
            rows.append(self.session_index[items])
        return torch.cat(rows, dim=1)

    def _space(
        self, session: Tensor, graphs: Batch, tables: tuple[Tensor, ...], candidates: Tensor | None
    ) -> ScoreSpace:
        """Dense [B, V] features, or (with candidates) features on their support only (models/score_space.py)."""
        batch_size, num_items = session.size(0), tables[0].size(0)
        if candidates is None:
            return DenseSpace(batch_size, num_items, session, candidates)
        x = graphs.x  # clicks' items are the nodes' items
        neighbour_rows = [tables[i][x] for i in range(0, len(tables), 2)]  # [N, K] per table
        rows = torch.cat([graphs.batch] + [graphs.batch.repeat_interleave(r.size(1)) for r in neighbour_rows])
        items = torch.cat([x] + [r.flatten() for r in neighbour_rows])
        return SparseSpace(rows, items, num_items, session, candidates)

    @staticmethod
    def _distinct_age(graphs: Batch) -> Tensor:
        """Per node: 0 for the session's most recently clicked distinct item, 1 for the next, ... [N]."""
        device = graphs.x.device
        num_nodes, num_clicks = graphs.x.numel(), graphs.click_node.numel()
        position = torch.arange(num_clicks, device=device)
        last_click = torch.full((num_nodes,), -1, dtype=torch.long, device=device)
        last_click = last_click.scatter_reduce(0, graphs.click_node, position, reduce="amax")
        # per graph, most recent first
        order = torch.argsort(graphs.batch * (num_clicks + 1) + (num_clicks - last_click))
        distinct_age = torch.empty_like(order)
        distinct_age[order] = torch.arange(num_nodes, device=device) - graphs.ptr[graphs.batch[order]]
        return distinct_age

    def _session_scores(
        self, graphs: Batch, index: Tensor, weight: Tensor, space: ScoreSpace, distinct_age: Tensor
    ) -> Tensor:
        """together[b, v] = sum_j decay^j S(u_j, v) / max_v(.): the session table's evidence, u_j the j-th most
        recent distinct item, decay = recency_decay, S the cosine over sessions (session_neighbours)."""
        decay = self.recency_decay ** distinct_age.to(weight.dtype)  # [N]
        neighbour = index[graphs.x]  # [N, K]
        rows = graphs.batch.unsqueeze(-1).expand_as(neighbour)
        scores = space.without_padding(space.sum(rows, neighbour, weight[graphs.x] * decay.unsqueeze(-1)))
        return scores / space.per_row(space.row_max(scores).clamp_min(1e-12))

    def _knn_scores(
        self, session: Tensor, graphs: Batch, knn_index: Tensor, knn_weight: Tensor, space: ScoreSpace | None = None,
        distinct_age: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """knn[b, v] of the module docstring, max-normalised per row (models/knn.py's score), and the row maxima [B].

        In `space` (default: dense [B, V])."""
        space = space or DenseSpace(session.size(0), knn_index.size(0), session)
        distinct_age = self._distinct_age(graphs) if distinct_age is None else distinct_age
        weight = self.knn.recency_decay ** distinct_age.to(session.dtype)  # [N]
        neighbour = knn_index[graphs.x]  # [N, K]
        rows = torch.cat([graphs.batch.unsqueeze(-1).expand_as(neighbour).flatten(), graphs.batch])
        items = torch.cat([neighbour.flatten(), graphs.x])
        values = torch.cat([(knn_weight[graphs.x] * weight.unsqueeze(-1)).flatten(), self.knn.repeat * weight])
        scores = space.without_padding(space.sum(rows, items, values))
        scores = scores * space.per_item(self.idf_weight)
        top = space.row_max(scores)
        return scores / space.per_row(top.clamp_min(1e-12)), top

    def _pair_features(
        self, session: Tensor, graphs: Batch, nodes: Tensor, neighbour_index: Tensor, neighbour_weight: Tensor,
        space: ScoreSpace | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Evidence, recency and node-pair features (in `space`, default dense [B, V]), and session lengths [B]."""
        space = space or DenseSpace(session.size(0), neighbour_index.size(0), session)
        batch_size = session.size(0)
        lengths = graphs.click_ptr[1:] - graphs.click_ptr[:-1]
        click_graph = torch.repeat_interleave(torch.arange(batch_size, device=session.device), lengths)
        clicks = graphs.x[graphs.click_node]  # item of each click [T]
        age = graphs.click_ptr[1:][click_graph] - 1 - torch.arange(clicks.numel(), device=session.device)
        weight = self.recency_decay ** age.to(session.dtype)  # [T], 1 for the last click
        recency = space.sum(click_graph, clicks, weight)
        neighbour = neighbour_index[clicks]  # [T, K]
        contribution = neighbour_weight[clicks] * weight.unsqueeze(-1)
        evidence = space.without_padding(
            space.sum(click_graph.unsqueeze(-1).expand_as(neighbour), neighbour, contribution)
        )
        evidence = evidence / space.per_row(space.row_max(evidence).clamp_min(1e-12))
        node_pair = space.assign(graphs.batch, graphs.x, (session[graphs.batch] * nodes).sum(-1))
        return evidence, recency, node_pair, lengths.to(session.dtype)
