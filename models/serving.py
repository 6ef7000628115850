"""NeuralScorer: a trained checkpoint behind the Scorer interface the stream and evaluator use.

Queries are encoded with the checkpoint's vocabulary (unknown clicks are skipped, never an
error) and scored in batches of `batch_size` on the configured device. A query no click of
which the model knows, and (when configured) every session of at most
`fallback_max_length` clicks, goes to the fallback scorer (the kNN baseline); without a
fallback an unknown context gets the most popular training items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.recommender import Context
from streamrec.models.scorer import Query, Ranked, Scorer, learning_ledger, persist_scorer
from streamrec.state.learned import LearnedLedger


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as torch spells it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class NeuralScorer:
    """Serves a SessionRecommender checkpoint; `version` is the checkpoint's version stamp."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        device: str = "auto",
        fallback: Scorer | None = None,
        fallback_max_length: int = 0,
        batch_size: int = 512,
    ) -> None:
        self.name = checkpoint.preset
        self.checkpoint = checkpoint
        self.vocab = checkpoint.vocab
        self.device = resolve_device(device)
        self.model = checkpoint.build_model(self.device)
        self.fallback = fallback
        self.fallback_max_length = fallback_max_length
        self.batch_size = batch_size
        self._version = checkpoint.version
        self.reads_history = self.model.memory is not None
        """Only a model with long-term memory reads the history sent with a query (see `reads_history`)."""

    @property
    def version(self) -> str:
        return self._version

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        """The network is frozen between checkpoints; the fallback keeps learning online."""
        if self.fallback is not None:
            self.fallback.observe(sessions)

    @property
    def learned(self) -> LearnedLedger | None:
        """The fallback's ledger: its statistics are all this scorer learns online."""
        return learning_ledger(self.fallback) if self.fallback is not None else None

    def persist(self) -> None:
        """The fallback's statistics are all this scorer learns online."""
        if self.fallback is not None:
            persist_scorer(self.fallback)

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
        logits = self.model.rank_scores(self.model.encode(contexts).to(self.device))
        self._mask(logits, queries)
        return self._top_k(logits, k)

    def _mask(self, logits: Tensor, queries: list[Query]) -> None:
        """Excluded items score -inf (in place)."""
        rows, cols = [], []
        for row, query in enumerate(queries):
            excluded = self.vocab.encode_known(sorted(query.exclude))
            rows += [row] * len(excluded)
            cols += excluded
        if rows:
            logits[torch.tensor(rows, device=logits.device), torch.tensor(cols, device=logits.device)] = float("-inf")

    def _top_k(self, logits: Tensor, k: int) -> list[Ranked]:
        scores, index = logits.topk(min(k, logits.size(1) - 1), dim=1)
        ranked: list[Ranked] = []
        for row_scores, row_index in zip(scores.tolist(), index.tolist()):
            ranked.append([(self.vocab.item(i), s) for i, s in zip(row_index, row_scores) if s != float("-inf")])
        return ranked

    def _popular(self, query: Query, k: int) -> Ranked:
        """Most clicked training items, for a context the model knows nothing of."""
        counts = self.model.item_counts.clone()
        counts[0] = -1.0
        for item in self.vocab.encode_known(sorted(query.exclude)):
            counts[item] = -1.0
        values, index = counts.topk(min(k, counts.numel() - 1))
        return [(self.vocab.item(i), float(v)) for v, i in zip(values.tolist(), index.tolist()) if v >= 0]


def load_checkpoint_scorer(
    checkpoint: Path | Checkpoint, device: str, fallback: Scorer | None = None, fallback_max_length: int = 0
) -> NeuralScorer:
    """The streaming registry's entry point: a NeuralScorer from a checkpoint (file)."""
    loaded = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.load(Path(checkpoint))
    return NeuralScorer(loaded, device=device, fallback=fallback, fallback_max_length=fallback_max_length)
