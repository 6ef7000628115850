"""Continual learning on the click stream: pure compute (torch), no Kafka.

The interface a streaming trainer builds on::

    learner = ContinualLearner(checkpoint, OnlineSettings(...), device="cpu", seed=0)
    # or ContinualLearner.resume(published_snapshot, settings): continues from a snapshot's learner_state
    learner.add([StreamExample(session_items=("a", "b"), target="c", ts=1.7e9), ...])
        # every click: grows the catalogue for unseen items, updates the streaming co-occurrence
        # counts and item last-seen times now, queues the example (empty prefix: counted, not trained)
    while (report := learner.step()) is not None: ...
        # one Adam step per micro-batch: new examples + replayed ones (+ distillation); StepReport
    checkpoint = learner.snapshot({"trained_through": {...}})
        # a servable Checkpoint (weights, grown vocabulary, fresh ContextGNN tables, GLAD
        # centroids) with the given metrics and a learner_state to resume from; Checkpoint.save it
    learner.recommend([["a", "b"]], k=20)   # the live model's top-k (evaluation)

A snapshot's tables may have spare rows beyond the vocabulary (`Checkpoint.num_rows`); the
model's `rankable` buffer masks them and expired items, so `NeuralScorer` serves it unchanged.
Modules: settings.py (OnlineSettings, StreamExample, StepReport), learner.py, catalogue.py
(growth, TTL, row recycling), cooccurrence.py (streaming tables), reservoir.py (experience replay buffer).
"""

from streamrec.models.online.learner import ContinualLearner
from streamrec.models.online.settings import OnlineSettings, StepReport, StreamExample

__all__ = ["ContinualLearner", "OnlineSettings", "StepReport", "StreamExample"]
