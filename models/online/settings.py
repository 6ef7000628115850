"""The continual learner's knobs, its input record and its per-step report (plain, frozen types).

`OnlineSettings` is the one place the online-training parameters are defined; a deployment
reads them from its settings group and builds this dataclass (the defaults are the values
chosen on the YooChoose validation split with `bench/continual_offline.py --phase valid`: docs/benchmarks.md,
"Continual learning offline").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class OnlineSettings:
    """How the learner fine-tunes on the stream (units in the names)."""

    micro_batch_size: int = 32
    """New examples per optimiser step."""
    learn_weights: bool = True
    """False: the "tables-only" ablation. The weights stay the warm-up checkpoint's; the streamed
    co-occurrence tables, item counts and new items' rows are learned exactly as with True, so the
    difference between the two is what the gradient steps add beyond counting."""
    learn_head: bool = True
    """False: the ContextGNN head's fusion weights (how pair-wise evidence and the two-tower score mix) stay
    the warm-up checkpoint's while the encoder and item rows fine-tune; its tables learn either way."""
    replay_buffer_size: int = 20_000
    """Past examples kept in the reservoir (Vitter's algorithm R: a uniform sample of the stream so far)."""
    replay_mix: float = 0.5
    """Share of replayed examples in a step's batch (0: new examples only; 0.5: as many replayed as new)."""
    lr: float = 1e-3
    """Adam learning rate of the fine-tuning (batch training uses ModelConfig.lr)."""
    weight_decay: float = 0.0
    distillation_weight: float = 1.0
    """Weight of the distillation loss on the replayed exemplars, KL(previous version || current)
    (ADER, Mi et al. 2020: CE on new data + KD on exemplars); 0 turns it off (no teacher kept)."""
    distillation_temperature: float = 1.0
    distill_from: str = "start"
    """The teacher: "start", the checkpoint the learner started from (the batch-trained model, or the version a
    restarted trainer resumed from), kept as an anchor; "latest", every snapshot in turn (each published
    version). Chosen on validation: anchoring kept more ranking quality on YooChoose and on DIGINETICA
    (docs/benchmarks.md, "DIGINETICA periods")."""
    max_pending_examples: int = 2_048
    """When the optimiser falls behind, older pending examples beyond this many skip the gradient
    step (they still update the co-occurrence statistics and enter the replay reservoir)."""
    item_capacity_spare: float = 1.0
    """When the item table is full it grows by this factor of its size (1.0: capacity doubles)."""
    item_ttl_s: float = 0.0
    """Items not clicked for this long (event time) leave the candidate set and their rows may be
    recycled for new items (0: items never expire)."""
    table_refresh_every_steps: int = 1
    """The ContextGNN head's co-occurrence tables are rewritten from the streaming counts every this many steps."""
    row_entries_cap: int = 300
    """Co-occurrence entries kept per item in the streaming counts (trimmed to the heaviest; the row
    mass keeps the trimmed weight, so normalisation stays that of the full row)."""
    cluster_refresh_every_steps: int = 50
    """GLAD memory presets: mini-batch k-means update of the chunk clusters every this many steps."""

    def __post_init__(self) -> None:
        if self.micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1, got {self.micro_batch_size}")
        if not 0.0 <= self.replay_mix < 1.0:
            raise ValueError(f"replay_mix must be in [0, 1), got {self.replay_mix}")
        if self.item_capacity_spare <= 0:
            raise ValueError(f"item_capacity_spare must be > 0, got {self.item_capacity_spare}")
        if self.distill_from not in ("start", "latest"):
            raise ValueError(f"distill_from must be 'start' or 'latest', got {self.distill_from!r}")
        if self.table_refresh_every_steps < 1 or self.cluster_refresh_every_steps < 1:
            raise ValueError("refresh intervals must be >= 1 step")

    @property
    def distils(self) -> bool:
        """Whether a teacher is kept: distillation on, and weights learning (tables-only has nothing to anchor)."""
        return self.distillation_weight > 0 and self.learn_weights

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StreamExample:
    """One click of the stream as a training example.

    `session_items` are the session's earlier clicks (oldest first) and `target` the click; an
    empty prefix (a session's first click) only counts the click (popularity, item last-seen
    time), it trains nothing. `ts` is the click's event time (unix seconds).
    """

    session_items: tuple[str, ...]
    target: str
    ts: float
    history_items: tuple[str, ...] = ()
    """The user's earlier items (GLAD memory presets); empty for anonymous sessions."""


@dataclass(frozen=True)
class StepReport:
    """What one optimiser step did."""

    step: int
    new_examples: int
    replayed_examples: int
    loss: float
    """Cross-entropy (+ weighted distillation) of the step's batch."""
    distillation: float
    items: int
    """Items in the vocabulary (including expired ones not yet recycled)."""
    capacity: int
    """Rows of the item tables."""
    trained_through_ts: float
    """Event time of the newest example learned so far."""
    skipped_examples: int
    """Examples so far that skipped the gradient step because the learner was behind."""
