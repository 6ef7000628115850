"""Named model presets: the ablation ladder (docs/models.md, "Ablation") and the default served model.

Every model hyper-parameter and training knob lives in `ModelConfig` and nowhere else;
a preset is a ModelConfig with some flags turned on. The ladder is cumulative:

    srgnn          SR-GNN: bidirectional GGNN + local/global readout
    grainrec       + GRAINRec attention layers alternating with the GGNN
    glad           + GLAD long-term graph memory (streamrec.models.memory), gated
    glad-clusters  + clustered chunk representations
    glad-attentive + target-attentive memory read
    contextgnn     + ContextGNN fusion of pair-wise (familiar) and two-tower (exploratory) scores
    grainrec-contextgnn  grainrec + ContextGNN fusion, no memory (runs without the memory module)

"default" is the best combination on validation: the highest validation NDCG@20 (the selection
metric) of the ladder on YooChoose and on Beauty. The ablation tables, the test figures against
the baselines and every command are in docs/models.md and docs/benchmarks.md.

Without the ContextGNN head the graph encoders stay below the kNN baseline on both data sets;
the head (the kNN score, repeat/recency and node pair evidence fused per session, trained on
out-of-fold co-occurrence tables) is what lifts the model above it. The GLAD memory costs more
time per batch and did not improve validation within the same training budget, so the default
has no memory (anonymous YooChoose sessions give it nothing to read; see docs/models.md).

Papers:
    SR-GNN      "Session-based Recommendation with Graph Neural Networks", Wu et al., AAAI 2019,
                https://arxiv.org/abs/1811.00855
    GRAINRec    "GRAINRec: Graph and Attention Integrated Approach for Real-Time Session-Based Item
                Recommendations", https://arxiv.org/abs/2411.09152
    GLAD        "GLAD: Graph-based Long-term Attentive Dynamic Memory for Sequential Recommendation",
                Pandey, Sarkar and Comar (Amazon), 2024
    ContextGNN  "ContextGNN: Beyond Two-Tower Recommendation Systems", https://arxiv.org/abs/2411.19513
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from streamrec.state.knn_params import KnnParams


@dataclass(frozen=True)
class ModelConfig:
    """Architecture flags and training recipe of one model (stored in every checkpoint)."""

    # --- session encoder (SR-GNN, GRAINRec; SASRec: models/sequence_encoder.py) ---
    encoder: str = "graph"
    """"graph": SR-GNN/GRAINRec over the session graph (models/session_encoder.py); "attention": a
    self-attentive encoder over the clicks in order (SASRec family, models/sequence_encoder.py)."""
    dim: int = 64
    layers: int = 1
    """GGNN blocks; with `attention` each block is followed by a self-attention layer."""
    gnn_steps: int = 1
    attention: bool = False
    heads: int = 2
    embedding_dropout: float = 0.25
    """Dropout on item embeddings fed to the GNN (without it the embedding table memorises the tail)."""
    hidden_dropout: float = 0.2
    """Dropout inside the attention encoder's blocks (attention weights, feed-forward, residuals); unused by "graph"."""
    lowpass_mix: float = 0.0
    """Attention encoder only: weight alpha of the causal low-pass/high-pass filter mixed into every block's
    attention output, alpha * filter + (1 - alpha) * attention (BSARec's "beyond self-attention"; 0: none)."""
    lowpass_clicks: int = 10
    """Width of that filter's low-pass: the mean of the latest this-many clicks' states (causal moving average)."""
    scale: float = 12.0
    """Logits are scale * cos(session, item): L2-normalised vectors keep popular items from dominating."""
    window: int = 20
    """Most recent clicks encoded as the session graph; older context is long-term history
    (attention costs n^2 per graph, and Beauty's median context is ~6 items)."""
    # --- long-term memory (GLAD, streamrec.models.memory) ---
    memory: bool = False
    chunk_size: int = 10
    """Items per long-term memory chunk (GLAD's c; the same default as settings.history.chunk_size)."""
    clusters: bool = False
    target_attentive: bool = False
    # --- ContextGNN fusion head ---
    contextgnn: bool = False
    knn: KnnParams | None = None
    """The kNN parameters (state/knn_params.py) the head's kNN feature (recency decay, idf, repeat)
    and both its co-occurrence tables (window, backward weight, neighbours per item) are built
    with. The ContextGNN presets set `CONTEXTGNN_KNN`, chosen on the neural model's validation;
    None: training fills it from `scoring.sknn_*`, the kNN baseline's (`train_checkpoint`).
    Every checkpoint saves the value it was trained with, and serving uses that value."""
    session_cooccurrence: bool = False
    """A third table for the head: items clicked in the same session at any distance (cosine over
    sessions, contextgnn.session_neighbours) and its feature; its neighbours join the local set.
    False in checkpoints written before it existed (they load unchanged)."""
    cooccurrence_folds: int = 5
    """Training examples of fold f (sequence index mod folds) read co-occurrence tables built
    without fold f (stacking); <= 1 uses the full table, which leaks each target's own transition."""
    recency_decay: float = 0.7
    """Weight of the i-th most recent click in the head's COSINE co-occurrence and repeat evidence:
    decay**i. A parameter of the network's own features, distinct from the kNN score's
    `knn.recency_decay` (which decays distinct items, as the baseline does)."""
    # --- training (after SR-GNN's: Adam, step learning-rate decay, early stopping) ---
    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    max_epochs: int = 30
    patience: int = 3
    lr_decay_every: int = 3
    lr_decay: float = 0.5
    sampled_negatives: int = 0
    """0: full-softmax cross-entropy; > 0: sampled softmax with logQ correction (big catalogues)."""
    max_train_seconds: float = 600.0
    """Training stops (keeping the best epoch) once this much wall-clock time has passed (checked
    per batch; the interrupted epoch is still validated). 600 s keeps `streamrec train` on Beauty,
    loading and the final test ranking included, within a 15-minute budget on the shared 2-core CPU
    (docs/benchmarks.md, "Offline model evaluation", training time of the default)."""
    sequence_epochs: int = 0
    """Attention encoder only: epochs of all-positions training (models/sequence_training.py: one pass per
    sequence trains all its prefixes) before the prefix loop; 0: none. With a ContextGNN head the prefix
    loop then trains the head from the best of these epochs; without one the model is done."""
    sequence_train_seconds: float = 0.0
    """Wall-clock cap of the all-positions stage (the prefix loop keeps its own `max_train_seconds`)."""
    head_stage_encoder_lr: float = 1.0
    """Attention encoder with a ContextGNN head only: the encoder's learning rate in the head stage (the prefix
    loop after the all-positions stage), as a multiple of `lr`; the head always learns at `lr`. 0 freezes the
    encoder there, 1 fine-tunes everything alike."""
    select_metric: str = "NDCG@20"
    """Validation metric for early stopping and model selection (a key of state/ranking_metrics.py `METRIC_NAMES`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; known: {', '.join(ENCODERS)}")

    def identity(self) -> list[tuple[str, Any]]:
        """The config as checkpoint content hashes see it (models/checkpoint.py): a field added after
        checkpoint format v2 is left out while it holds the value its absence means (`LATER_FIELDS`), so a
        checkpoint written before the field existed keeps its version stamp when read by newer code."""
        return sorted((k, v) for k, v in self.to_dict().items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k]))

    @property
    def digest(self) -> str:
        """10 hex digits naming this config as checkpoints see it (`identity`): equal settings, equal digest."""
        return hashlib.sha256(repr(self.identity()).encode()).hexdigest()[:10]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of to_dict; unknown keys (from a newer version) are an error, missing ones default."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        knn = d.get("knn")
        return cls(**{**d, "knn": KnnParams.from_dict(knn) if isinstance(knn, dict) else knn})


ENCODERS: tuple[str, ...] = ("graph", "attention")
"""Values of `ModelConfig.encoder`."""

RECIPE_FIELDS: frozenset[str] = frozenset({
    "lr", "weight_decay", "batch_size", "max_epochs", "patience", "lr_decay_every", "lr_decay", "sampled_negatives",
    "max_train_seconds", "select_metric", "embedding_dropout", "hidden_dropout", "sequence_epochs",
    "sequence_train_seconds", "head_stage_encoder_lr",
})
"""ModelConfig fields of the training recipe: they may differ between versions of one model (a hot swap
checks only the others, stream/updates/verify.py); every other field is architecture."""
if not_fields := RECIPE_FIELDS - {f.name for f in fields(ModelConfig)}:
    raise AssertionError(f"RECIPE_FIELDS names no ModelConfig field: {sorted(not_fields)}")

LATER_FIELDS: dict[str, Any] = {"session_cooccurrence": False, "encoder": "graph", "hidden_dropout": 0.2,
                                "sequence_epochs": 0, "sequence_train_seconds": 0.0,
                                "lowpass_mix": 0.0, "lowpass_clicks": 10, "head_stage_encoder_lr": 1.0}
"""ModelConfig fields added after checkpoint format v2, with the value a checkpoint without them was trained with."""

CONTEXTGNN_KNN = KnnParams(window=3, backward_weight=0.5, max_neighbours=100, half_life_clicks=0.0,
                           recency_decay=0.5, idf=0.1, repeat=0.3)
"""The ContextGNN head's kNN parameters: a model hyper-parameter, chosen on the neural model's own
validation (bench/continual_offline.py --phase valid --head-knn, docs/models.md "The head's kNN
parameters"), not the kNN baseline's `scoring.sknn_*`, which are chosen on the baseline's."""

_SRGNN = ModelConfig()
_GRAINREC = replace(_SRGNN, layers=2, attention=True)
_GLAD = replace(_GRAINREC, memory=True)
_GLAD_CLUSTERS = replace(_GLAD, clusters=True)
_GLAD_ATTENTIVE = replace(_GLAD_CLUSTERS, target_attentive=True)

_SASREC = replace(_SRGNN, encoder="attention", dim=128, layers=2, heads=2, window=50, embedding_dropout=0.3,
                  hidden_dropout=0.3, lowpass_mix=0.7, lowpass_clicks=10, lr=2e-3, lr_decay=1.0, max_epochs=200,
                  patience=5, sequence_epochs=300, sequence_train_seconds=2400.0, max_train_seconds=1200.0)
"""The self-attentive presets learn in two stages: all-positions epochs of the encoder (cheap: one pass per
sequence, up to 40 minutes on the 2-core CPU, as SASRec needs many epochs), then, with the ContextGNN head,
the prefix loop trains the head from the best of them (up to 20 minutes); docs/models.md "Self-attentive
encoder" says how the budgets and settings were chosen."""

PRESETS: dict[str, ModelConfig] = {
    "srgnn": _SRGNN,
    "grainrec": _GRAINREC,
    "glad": _GLAD,
    "glad-clusters": _GLAD_CLUSTERS,
    "glad-attentive": _GLAD_ATTENTIVE,
    "contextgnn": replace(_GLAD_ATTENTIVE, contextgnn=True, knn=CONTEXTGNN_KNN, session_cooccurrence=True),
    "grainrec-contextgnn": replace(_GRAINREC, contextgnn=True, knn=CONTEXTGNN_KNN, session_cooccurrence=True),
    "sasrec": _SASREC,
    "sasrec-contextgnn": replace(_SASREC, contextgnn=True, knn=CONTEXTGNN_KNN, session_cooccurrence=True),
}
PRESETS["default"] = PRESETS["grainrec-contextgnn"]


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The named preset, optionally with some fields replaced (quick experiments, tests)."""
    try:
        config = PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
    return replace(config, **overrides)
