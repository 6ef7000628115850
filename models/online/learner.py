"""ContinualLearner: keeps a published checkpoint learning from the click stream.

Per step (one micro-batch of new examples):

    loss = CE(model(new + replayed), targets)                        (full softmax over rankable rows)
         + distillation_weight * T^2 * KL(p_prev(. | r) || p(. | r))  over the replayed exemplars r

the ADER recipe (Mi et al., RecSys 2020: cross-entropy on new data plus knowledge distillation
from the previous model on exemplars), with a reservoir of the stream as the exemplar set. The
previous model is the checkpoint the learner started from (`OnlineSettings.distill_from` "start",
an anchor), or each snapshot in turn ("latest", ADER's choice). Adam at `OnlineSettings.lr`.

The ContextGNN head's co-occurrence evidence comes from counts kept fresh click by click
(cooccurrence.py), written into the head every `table_refresh_every_steps` steps, so the model
serves the online kNN's evidence plus its own scores. A step trains on its new examples
before their clicks reach the tables it reads (their own transition is not yet in the table,
as at serving time: the stacking argument of ContextGNNHead.set_fold_tables), however many
examples wait: a waiting example is counted once a step has trained on it, or when a snapshot
is taken. Counting a backlog on arrival (a trainer catching up) let most of its steps read
tables that held their own targets, and taught the model to trust the tables over the session
(docs/benchmarks.md, "The real pipeline"). Replayed examples are in the tables, which is why the
replay share is kept modest.

The catalogue grows on the stream (catalogue.py); GLAD memory presets update their chunk
clusters with mini-batch k-means (ClusterIndex.partial_fit).
"""

from __future__ import annotations

import collections
import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.device import MAX_TORCH_THREADS, resolve_device
from streamrec.models.online import catalogue
from streamrec.models.online.cooccurrence import StreamingCooccurrence
from streamrec.models.online.reservoir import Reservoir
from streamrec.models.online.settings import OnlineSettings, StepReport, StreamExample
from streamrec.models.recommender import Context, SessionRecommender
from streamrec.state.vocab import PAD_INDEX, ItemVocabulary

MASKED_LOGIT = -1e4
"""Logit of rows that are not rankable in the distillation (finite, so KL has no inf - inf)."""
NEVER = -math.inf


class ContinualLearner:
    """Fine-tunes a checkpoint on stream examples; `snapshot` publishes a servable Checkpoint."""

    def __init__(self, checkpoint: Checkpoint, settings: OnlineSettings, device: str = "cpu", seed: int = 0) -> None:
        torch.set_num_threads(min(MAX_TORCH_THREADS, torch.get_num_threads()))
        torch.manual_seed(seed)
        self.settings = settings
        self.preset = checkpoint.preset
        self.device = resolve_device(device)
        self.vocab = ItemVocabulary.from_list(checkpoint.vocab.to_list())
        self.model: SessionRecommender = self._with_frozen_parts(_built(checkpoint, self.device).train())
        state = checkpoint.learner_state
        config = self.model.config
        self.stats = StreamingCooccurrence.from_tables(
            self.model.head, self.model.item_counts, config.knn, settings.row_entries_cap
        )
        seen = state.get("item_last_seen_ts")
        self.last_seen = np.full(self.model.num_items, NEVER)
        if isinstance(seen, Tensor):
            self.last_seen[: seen.numel()] = seen.double().numpy()
        self._unstamped = True
        """No click seen yet: rows without a last-seen time get the first click's time (TTL starts there)."""
        self.free_rows: set[int] = {r for r in range(1, len(self.vocab)) if not bool(self.model.rankable[r])}
        """Rows of expired items, recyclable for new items."""
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        self.replay: Reservoir[StreamExample] = Reservoir(settings.replay_buffer_size, seed)
        self.teacher = self._frozen_copy() if settings.distils else None
        self.teacher_rows = len(self.vocab)
        """Rows holding an item when the teacher was taken; rows beyond were spare capacity, unknown to it."""
        self.recycled_since_teacher: set[int] = set()
        """Rows given to another item since the teacher was taken: it knows them as their old items."""
        self.pending: collections.deque[StreamExample] = collections.deque()
        self.uncounted = 0
        """The newest waiting examples not counted in `stats` yet: a step counts its examples after training on
        them, so the tables it reads never hold the transitions it learns (however far behind it is)."""
        self.cluster_chunks: list[list[int]] = []
        self.steps = int(state.get("steps", 0))
        self.examples = int(state.get("examples", 0))
        self.skipped = int(state.get("skipped_examples", 0))
        self.trained_through_ts = float(state.get("trained_through_ts", NEVER))

    @classmethod
    def resume(
        cls, checkpoint: Checkpoint, settings: OnlineSettings, device: str = "cpu", seed: int = 0,
        start: Checkpoint | None = None,
    ) -> ContinualLearner:
        """Continue from a published snapshot (item last-seen times and counters come from its learner_state).

        The constructor, which accepts any checkpoint (a batch-trained one has no learner_state), plus the
        teacher: with `distill_from` "start" it must stay the checkpoint the learning started from, `start`,
        not the snapshot resumed from (what a restart costs otherwise: docs/benchmarks.md, "DIGINETICA
        periods"). Without `start` the snapshot is the teacher.
        """
        learner = cls(checkpoint, settings, device=device, seed=seed)
        if start is not None and learner.teacher is not None and settings.distill_from == "start":
            learner.anchor_teacher(start)
        return learner

    def anchor_teacher(self, start: Checkpoint) -> None:
        """Distil towards `start` (a checkpoint this learner descends from); rows holding an item it did not
        hold (recycled for another item, or added after it within its capacity) are unknown to it."""
        self.teacher = _frozen(_built(start, self.device))
        self.teacher_rows = len(start.vocab)
        self.recycled_since_teacher = {r for r in range(1, min(self.teacher_rows, len(self.vocab)))
                                       if start.vocab.item(r) != self.vocab.item(r)}

    # ---- learning ------------------------------------------------------------------

    def add(self, examples: Sequence[StreamExample]) -> None:
        """Give new items rows and mark items seen now; queue the examples for the next steps, which count
        their co-occurrences after training on them (an empty prefix only counts the click, now)."""
        for example in examples:
            if self._unstamped:  # items of a batch-trained checkpoint count as seen at the first click
                known = self.last_seen[: len(self.vocab)]
                known[np.isneginf(known)] = example.ts
                self._unstamped = False
            self.trained_through_ts = max(self.trained_through_ts, example.ts)
            prefix: list[int] = []
            for item in example.session_items:
                prefix.append(self._row_for(item, prefix, example.ts))
            target = self._row_for(example.target, prefix, example.ts)
            self.examples += 1
            if prefix:
                self.pending.append(example)
                self.uncounted += 1
            else:
                self.stats.observe(prefix, target)
        while len(self.pending) > self.settings.max_pending_examples:  # behind: oldest skip the gradient
            (skipped,), uncounted = self._take_pending(1)
            self._count(uncounted)
            self.replay.offer(skipped)
            self.skipped += 1

    def step(self) -> StepReport | None:
        """One optimiser step on up to `micro_batch_size` pending examples plus replayed ones; None when none
        pending."""
        if not self.pending:
            return None
        self._expire()
        new, uncounted = self._take_pending(min(self.settings.micro_batch_size, len(self.pending)))
        mix = self.settings.replay_mix
        replayed = self.replay.sample(round(len(new) * mix / (1.0 - mix))) if mix > 0 else []
        new_batch, replay_batch = self._encode(new), self._encode(replayed)
        contexts, targets = new_batch[0] + replay_batch[0], new_batch[1] + replay_batch[1]
        loss_value = distillation_value = 0.0
        if contexts and self.settings.learn_weights:
            self.model.train()
            logits = self._logits(self.model, contexts)
            loss = F.cross_entropy(logits, torch.tensor(targets, device=self.device))
            if self.teacher is not None and replay_batch[0]:
                distillation = self._distillation(logits[len(new_batch[0]) :], replay_batch[0])
                loss = loss + self.settings.distillation_weight * distillation
                distillation_value = float(distillation.detach())
            self.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            self.optimiser.step()
            loss_value = float(loss.detach())
        for example in new:
            self.replay.offer(example)
        self._count(uncounted)  # after the step: it trained on them as serving sees them, before their counts
        self.steps += 1
        if self.steps % self.settings.table_refresh_every_steps == 0:
            self.refresh_tables()
        self._update_clusters(new)
        return StepReport(
            step=self.steps,
            new_examples=len(new),
            replayed_examples=len(replayed),
            loss=loss_value,
            distillation=distillation_value,
            items=len(self.vocab) - 1,
            capacity=self.model.num_items,
            trained_through_ts=self.trained_through_ts,
            skipped_examples=self.skipped,
        )

    def refresh_tables(self) -> int:
        """Write the streaming counts into the head's tables, item_counts and idf weights now; rows rewritten."""
        idf = self.model.head.knn.idf if self.model.head else 0.0
        return self.stats.write_tables(self.model.head, self.model.item_counts, idf)

    def snapshot(self, metrics: dict[str, Any]) -> Checkpoint:
        """A servable Checkpoint of the current weights, vocabulary and tables, with `metrics`
        (e.g. trained-through offsets) recorded; with `distill_from` "latest" it becomes the distillation teacher.

        Its tables count every example added, the waiting ones too (they are counted now): a snapshot holds
        every click up to the offsets it is published with."""
        self._count(list(self.pending)[len(self.pending) - self.uncounted :])
        self.uncounted = 0
        self.refresh_tables()
        self.model.eval()
        checkpoint = Checkpoint.from_model(
            self.preset, self.model, ItemVocabulary.from_list(self.vocab.to_list()), dict(metrics)
        )
        checkpoint.learner_state = {
            "item_last_seen_ts": torch.from_numpy(self.last_seen.copy()),
            "steps": self.steps,
            "examples": self.examples,
            "skipped_examples": self.skipped,
            "trained_through_ts": self.trained_through_ts,
            "settings": self.settings.to_dict(),
        }
        if self.settings.distils and self.settings.distill_from == "latest":
            self.teacher = self._frozen_copy()
            self.teacher_rows = len(self.vocab)
            self.recycled_since_teacher.clear()
        self.model.train()
        return checkpoint

    # ---- serving the live model (evaluation, tests) ----------------------------------

    @torch.inference_mode()
    def recommend(
        self, sessions: Sequence[Sequence[str]], k: int, histories: Sequence[Sequence[str]] | None = None
    ) -> list[list[str]]:
        """Top-k item ids for each session (oldest click first) with the current weights; [] without a known click."""
        histories = histories or [()] * len(sessions)
        contexts = [(self.vocab.encode_known(s), self.vocab.encode_known(h)) for s, h in zip(sessions, histories)]
        usable = [i for i, (session, _) in enumerate(contexts) if session]
        answers: list[list[str]] = [[] for _ in sessions]
        if not usable:
            return answers
        self.model.eval()
        logits = self.model.rank_scores(self.model.encode([contexts[i] for i in usable]).to(self.device))
        scores, index = logits.topk(min(k, logits.size(1)), dim=1)
        for i, row_scores, row_index in zip(usable, scores.tolist(), index.tolist()):
            answers[i] = [self.vocab.item(r) for r, s in zip(row_index, row_scores) if s != float("-inf")]
        self.model.train()
        return answers

    # ---- internals -----------------------------------------------------------------

    def _row_for(self, item: str, co_clicked: list[int], ts: float) -> int:
        """The item's row (a new one, recycled or appended, for an item first seen); marks it seen at `ts`."""
        row = self.vocab.index(item)
        if row == PAD_INDEX:
            row = self._new_row(item)
            catalogue.init_row(self.model, row, co_clicked)
        self.free_rows.discard(row)
        self.model.rankable[row] = True
        self.last_seen[row] = max(self.last_seen[row], ts)
        return row

    def _new_row(self, item: str) -> int:
        if self.free_rows:
            row = min(self.free_rows)
            self.free_rows.discard(row)
            self.vocab.reassign(row, item)
            self.recycled_since_teacher.add(row)
            self.stats.forget(row)
            catalogue.reset_optimiser_row(self.optimiser, self.model.encoder.items.weight, row)
            self.last_seen[row] = NEVER
            return row
        if len(self.vocab) >= self.model.num_items:
            self._grow(
                catalogue.grown_capacity(self.model.num_items, len(self.vocab) + 1, self.settings.item_capacity_spare)
            )
        return self.vocab.add(item)

    def _grow(self, capacity: int) -> None:
        old = self.model
        self.model = self._with_frozen_parts(catalogue.grow_model(old, capacity))
        self.optimiser = catalogue.grow_optimiser_state(self.optimiser, old, self.model)
        self.stats.grow(capacity)
        self.last_seen = np.concatenate([self.last_seen, np.full(capacity - self.last_seen.size, NEVER)])

    def _with_frozen_parts(self, model: SessionRecommender) -> SessionRecommender:
        """`model` with the parts the settings keep fixed taken out of training (no gradient, so Adam skips them)."""
        if not self.settings.learn_head and model.head is not None:
            for parameter in model.head.parameters():
                parameter.requires_grad_(False)
        return model

    def _take_pending(self, n: int) -> tuple[list[StreamExample], list[StreamExample]]:
        """The `n` oldest waiting examples, and those of them not counted yet (the last ones: counting is FIFO)."""
        counted = len(self.pending) - self.uncounted
        taken = [self.pending.popleft() for _ in range(n)]
        uncounted = max(0, n - counted)
        self.uncounted -= uncounted
        return taken, taken[n - uncounted :]

    def _count(self, examples: Sequence[StreamExample]) -> None:
        """Count the examples' clicks into the co-occurrence statistics (their rows were given by `add`)."""
        for example in examples:
            target = self.vocab.index(example.target)
            if target != PAD_INDEX:
                self.stats.observe([r for r in map(self.vocab.index, example.session_items) if r != PAD_INDEX], target)

    def _expire(self) -> None:
        """Items unseen for item_ttl_s (event time) leave the candidate set; their rows become free."""
        ttl = self.settings.item_ttl_s
        if ttl <= 0:
            return
        rankable = self.model.rankable.cpu().numpy()
        stale = np.flatnonzero(rankable & (self.last_seen < self.trained_through_ts - ttl))
        stale = stale[(stale != PAD_INDEX) & (stale < len(self.vocab))]
        if stale.size:
            self.model.rankable[torch.from_numpy(stale).to(self.device)] = False
            self.free_rows.update(stale.tolist())

    def _encode(self, examples: Sequence[StreamExample]) -> tuple[list[Context], list[int]]:
        """Contexts and target rows of the examples whose target and some click are still in the catalogue."""
        contexts: list[Context] = []
        targets: list[int] = []
        for example in examples:
            session = self.vocab.encode_known(example.session_items)
            target = self.vocab.index(example.target)
            if session and target != PAD_INDEX:
                contexts.append((session, self.vocab.encode_known(example.history_items)))
                targets.append(target)
        return contexts, targets

    def _logits(self, model: SessionRecommender, contexts: list[Context]) -> Tensor:
        logits = model(model.encode(contexts).to(self.device))
        mask = ~model.rankable.clone()
        mask[PAD_INDEX] = True
        return logits.masked_fill(mask, MASKED_LOGIT)

    def _distillation(self, student: Tensor, contexts: list[Context]) -> Tensor:
        """T^2 KL(teacher || student) over the rows both may rank (Hinton et al. 2015).

        Items added after the teacher was taken (appended, even within its spare capacity, or given a
        recycled row) are unknown clicks to it (left out of its contexts, as serving leaves out unknown
        clicks) and get no target mass from it; exemplars it knows nothing of are skipped.
        """
        assert self.teacher is not None
        temperature = self.settings.distillation_temperature
        rows, recycled = self.teacher_rows, self.recycled_since_teacher

        def knows(i: int) -> bool:
            return i < rows and i not in recycled

        known = [([i for i in s if knows(i)], [i for i in h if knows(i)]) for s, h in contexts]
        keep = [n for n, (session, _) in enumerate(known) if session]
        if not keep:
            return student.new_zeros(())
        student = student[keep]
        with torch.no_grad():
            teacher = self._logits(self.teacher, [known[n] for n in keep])
        if teacher.size(1) < student.size(1):
            teacher = F.pad(teacher, (0, student.size(1) - teacher.size(1)), value=MASKED_LOGIT)
        teacher = teacher.masked_fill(student <= MASKED_LOGIT, MASKED_LOGIT)
        teacher[:, rows:] = MASKED_LOGIT
        if recycled:
            teacher[:, sorted(recycled)] = MASKED_LOGIT
        log_p = F.log_softmax(teacher / temperature, dim=1)
        log_q = F.log_softmax(student / temperature, dim=1)
        return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean") * temperature**2

    def _frozen_copy(self) -> SessionRecommender:
        return _frozen(copy.deepcopy(self.model))

    def _update_clusters(self, new: Sequence[StreamExample]) -> None:
        """GLAD presets with clusters: mini-batch k-means on the history chunks seen since the last update."""
        memory = self.model.memory
        if memory is None or memory.clusters is None:
            return
        from streamrec.models.memory import Chunks, history_chunks

        for example in new:
            self.cluster_chunks += history_chunks(
                self.vocab.encode_known(example.history_items), self.model.config.chunk_size
            )
        if self.steps % self.settings.cluster_refresh_every_steps == 0 and self.cluster_chunks:
            unique = list(dict.fromkeys(tuple(c) for c in self.cluster_chunks if c))
            memory.clusters.partial_fit(Chunks.from_lists(unique), self.model.encoder.item_table().detach())
            self.cluster_chunks = []


def _built(checkpoint: Checkpoint, device: torch.device) -> SessionRecommender:
    """The checkpoint's model; its spare rows (capacity beyond the vocabulary) are not rankable."""
    model = checkpoint.build_model(device)
    model.rankable[len(checkpoint.vocab) :] = False
    return model


def _frozen(model: SessionRecommender) -> SessionRecommender:
    """`model` as a teacher: evaluation mode, no gradients."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model
