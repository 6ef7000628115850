"""NeuralScorer: a trained checkpoint behind the Scorer interface the stream and evaluator use.

Queries are encoded with the checkpoint's vocabulary (unknown clicks are skipped, never an
error) and scored in batches of `batch_size` on the configured device. A query no click of
which the model knows, and (when configured) every session of at most
`fallback_max_length` clicks, goes to the fallback scorer (the kNN baseline); without a
fallback an unknown context gets the most popular training items.

Catalogues of at least `CandidateConfig.candidates_min_catalogue_items` items are served from
candidates (models/candidates/): HNSW top-M for the session vector, GRAINRec's neighbour
matrix rows and the ContextGNN familiar items, re-ranked exactly by the full model; smaller
catalogues are scored in full. The index comes from the checkpoint's sidecar
(`sidecar_path`), written at publish time, or is built at load when the sidecar is missing
or refused; `swap_index` replaces it (a new index object, never one being added to).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from streamrec.models.candidates import CandidateConfig, CandidateIndex, CandidateIndexError, rerank, sidecar_path
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.device import resolve_device
from streamrec.models.online.serving_tables import ServingTables
from streamrec.models.recommender import Context, SessionRecommender
from streamrec.models.scorer import Query, Ranked, Scorer, close_scorer, learning_ledger, persist_scorer
from streamrec.state.learned import LearnedLedger
from streamrec.state.vocab import ItemVocabulary

log = logging.getLogger(__name__)


class NeuralScorer:
    """Serves a SessionRecommender checkpoint; `version` is the checkpoint's version stamp."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: str = "auto",
        fallback: Scorer | None = None,
        fallback_max_length: int = 0,
        batch_size: int = 512,
        candidates: CandidateConfig = CandidateConfig(),
        index: CandidateIndex | None = None,
    ) -> None:
        """`candidates`: when to use the candidate path and how to build its index; `index`: a
        prebuilt index of this checkpoint (built here when the catalogue needs one and none is given)."""
        self.name = checkpoint.preset
        self.checkpoint = checkpoint
        self._vocab = checkpoint.vocab
        self.device = resolve_device(device)
        self._model = checkpoint.build_model(self.device)
        self.tables: ServingTables | None = None
        """Set by `learn_tables` (a stage following model-updates): the head's co-occurrence tables
        learn every observed click between versions. None: the tables stay the checkpoint's (a frozen twin)."""
        self.fallback = fallback
        self.fallback_max_length = fallback_max_length
        self.batch_size = batch_size
        self._version = checkpoint.version
        self.reads_history = self.model.memory is not None
        """Only a model with long-term memory reads the history sent with a query (see `reads_history`)."""
        self.candidates = candidates
        self.index: CandidateIndex | None = None
        """The candidate index in use (None: full-catalogue scoring)."""
        if self.uses_candidates:
            self.swap_index(index if index is not None else self._build_index())
        self.trained_through: dict[int, int] | None = None
        """Per scoring-requests partition, the next offset the trainer had not read when it published this
        version (set by the model-updates follower from the announcement); stamped on every answer
        (`provenance`) so a replay can check the prequential guard. None: not trained on the stream."""

    @property
    def model(self) -> SessionRecommender:
        """The network served: the checkpoint's, or with `learn_tables` the tables' (rows added for new items)."""
        return self.tables.model if self.tables is not None else self._model

    @property
    def vocab(self) -> ItemVocabulary:
        return self.tables.vocab if self.tables is not None else self._vocab

    @property
    def uses_candidates(self) -> bool:
        """Whether the catalogue (padding excluded) is big enough for the candidate path."""
        return len(self.vocab) - 1 >= self.candidates.candidates_min_catalogue_items

    def swap_index(self, index: CandidateIndex) -> None:
        """Serve from `index` from the next batch on (one reference assignment; the old index is left alone).

        The index may come from elsewhere (a sidecar the trainer built): its query-time ef is set to this
        scorer's `candidates.hnsw_ef_search` before it serves, and `_rank` asks it for this scorer's
        `hnsw_top_m`, so the serving settings, not the builder's, decide the search.
        """
        if index.num_items != self.model.num_items or index.dim != self.model.config.dim:
            raise CandidateIndexError(
                f"candidate index of {index.num_items} items x {index.dim} does not fit the model "
                f"({self.model.num_items} x {self.model.config.dim})"
            )
        if index.config.hnsw_ef_search != self.candidates.hnsw_ef_search:
            index.set_ef_search(self.candidates.hnsw_ef_search)  # before it is visible to `_rank`: no query races this
        self.index = index

    def _build_index(self) -> CandidateIndex:
        index = CandidateIndex.build(self.model, self.candidates, self._version, threads=torch.get_num_threads())
        log.info("built the candidate index of %s (%d items) in %.1f s", self._version, len(self.vocab) - 1,
                 index.build_seconds)
        return index

    @property
    def version(self) -> str:
        return self._version

    def learn_tables(self, row_entries_cap: int, buffer_clicks: int, item_capacity_spare: float = 1.0) -> None:
        """From now on count every observed click into the head's tables, giving new items rows
        (models/online/serving_tables.py); the vocabulary is copied first (the checkpoint's stays as loaded).
        On the candidate path the catalogue does not grow: the index covers the version's rows only."""
        vocab = ItemVocabulary.from_list(self._vocab.to_list())
        self.tables = ServingTables(self._model, vocab, row_entries_cap, buffer_clicks, item_capacity_spare,
                                    may_grow=not self.uses_candidates)

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        """The network is frozen between checkpoints; the fallback keeps learning online (and the tables, see
        `observe_at`)."""
        self.observe_at(sessions, [None] * len(sessions))

    def observe_at(self, sessions: Sequence[Sequence[str]], positions: Sequence[tuple[int, int] | None]) -> None:
        """`observe`, with each click's (partition, offset) so a hot swap can re-count what the new version missed."""
        if self.fallback is not None:
            self.fallback.observe(sessions)
        if self.tables is not None:
            self.tables.observe(sessions, positions)

    @property
    def learned(self) -> LearnedLedger | None:
        """The fallback's ledger: its statistics are all this scorer learns online."""
        return learning_ledger(self.fallback) if self.fallback is not None else None

    def persist(self) -> None:
        """The fallback's statistics are all this scorer learns online."""
        if self.fallback is not None:
            persist_scorer(self.fallback)

    def close(self) -> None:
        """Flush and release the fallback's persisted statistics (its RocksDB lock), see `close_scorer`."""
        if self.fallback is not None:
            close_scorer(self.fallback)

    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]:
        results: list[Ranked | None] = [None] * len(queries)
        neural: list[tuple[int, Context]] = []
        deferred: list[int] = []
        for position, query in enumerate(queries):
            session = self.vocab.encode_known(query.session_items)
            history = self.vocab.encode_known(query.history_items)
            if self.fallback is not None and (not session or len(query.session_items) <= self.fallback_max_length):
                deferred.append(position)
            elif session or history:
                neural.append((position, (session or history[-1:], history if session else history[:-1])))
            else:
                results[position] = self._popular(query, k)
        for start in range(0, len(neural), self.batch_size):
            chunk = neural[start : start + self.batch_size]
            ranked = self._rank([context for _, context in chunk], [queries[p] for p, _ in chunk], k)
            for (position, _), answer in zip(chunk, ranked):
                results[position] = answer
        if deferred and self.fallback is not None:
            for position, answer in zip(deferred, self.fallback.recommend([queries[p] for p in deferred], k)):
                results[position] = answer
        return [answer if answer is not None else [] for answer in results]

    @torch.inference_mode()
    def _rank(self, contexts: list[Context], queries: list[Query], k: int) -> list[Ranked]:
        inputs = self.model.encode(contexts).to(self.device)
        index = self.index  # one index for the whole batch, whatever swap_index does meanwhile
        if index is None:
            logits = self.model.rank_scores(inputs)
            self._mask(logits, queries, None)
            return self._top_k(logits, k, None)
        top_m = self.candidates.hnsw_top_m + max(len(q.exclude) for q in queries)  # excluded items cost no slot
        logits, candidates = rerank(self.model, index, inputs, top_m, threads=torch.get_num_threads())
        self._mask(logits, queries, candidates)
        return self._top_k(logits, k, candidates)

    def _mask(self, logits: Tensor, queries: list[Query], candidates: Tensor | None) -> None:
        """Excluded items score -inf (in place); `logits` are over all items, or over `candidates` [B, C]."""
        for row, query in enumerate(queries):
            excluded = self.vocab.encode_known(sorted(query.exclude))
            if not excluded:
                continue
            excluded_items = torch.tensor(excluded, device=logits.device)
            if candidates is None:
                logits[row, excluded_items] = float("-inf")
            else:
                logits[row, torch.isin(candidates[row], excluded_items)] = float("-inf")

    def _top_k(self, logits: Tensor, k: int, candidates: Tensor | None) -> list[Ranked]:
        """Best k of each row: columns are items (the padding column never counts) or `candidates` [B, C]."""
        scores, index = logits.topk(min(k, logits.size(1) - (1 if candidates is None else 0)), dim=1)
        items = index if candidates is None else candidates.gather(1, index)
        ranked: list[Ranked] = []
        for row_scores, row_items in zip(scores.tolist(), items.tolist()):
            ranked.append([(self.vocab.item(i), s) for i, s in zip(row_items, row_scores) if s != float("-inf")])
        return ranked

    def _popular(self, query: Query, k: int) -> Ranked:
        """Most clicked training items, for a context the model knows nothing of."""
        counts = self.model.item_counts.masked_fill(~self.model.rankable, -1.0)  # spare and expired rows never
        counts[0] = -1.0
        for item in self.vocab.encode_known(sorted(query.exclude)):
            counts[item] = -1.0
        values, index = counts.topk(min(k, counts.numel() - 1))
        return [(self.vocab.item(i), float(v)) for v, i in zip(values.tolist(), index.tolist()) if v >= 0]


def load_checkpoint_scorer(
    checkpoint: Path | Checkpoint,
    device: str,
    fallback: Scorer | None = None,
    fallback_max_length: int = 0,
    candidates: CandidateConfig = CandidateConfig(),
    path: Path | None = None,
) -> NeuralScorer:
    """The streaming registry's entry point: a NeuralScorer from a checkpoint (file), with the candidate index
    sidecar next to `path` (the checkpoint's file) when the catalogue needs one."""
    if isinstance(checkpoint, Checkpoint):
        loaded = checkpoint
    else:
        path = Path(checkpoint)
        loaded = Checkpoint.load(path)
    index = None
    if path is not None and len(loaded.vocab) - 1 >= candidates.candidates_min_catalogue_items:
        try:
            index = CandidateIndex.load(sidecar_path(Path(path)), model_version=loaded.version)
        except CandidateIndexError as exc:
            log.warning("%s; building the candidate index now", exc)
    return NeuralScorer(loaded, device=device, fallback=fallback, fallback_max_length=fallback_max_length,
                        candidates=candidates, index=index)
