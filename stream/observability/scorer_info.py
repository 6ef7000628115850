"""What the scoring stage serves and how long a click waits for its answer, as metrics."""

from __future__ import annotations

from collections.abc import Sequence

from streamrec.config import Settings
from streamrec.models.scorer import RunsOnDevice, Scorer
from streamrec.stream import metrics
from streamrec.stream.topics import ScoringRequest


def describe_scorer(scorer: Scorer, settings: Settings) -> dict[str, str]:
    """scorer name, model version, device and checkpoint: logged at start and exported as `streamrec_scorer_info`."""
    info = {
        "scorer": scorer.name,
        "model_version": scorer.version,
        "device": str(scorer.device) if isinstance(scorer, RunsOnDevice) else "cpu",
        "checkpoint": str(settings.scoring.checkpoint_path or "") or "none",
    }
    metrics.SCORER_INFO.info(info)
    return info


def observe_latencies(requests: Sequence[ScoringRequest], emitted_at: float) -> None:
    """Click produce time (its Kafka timestamp) -> recommendation emitted, for every request that carries it."""
    for request in requests:
        if request.ts_produced is not None:
            metrics.CLICK_TO_RECOMMENDATION.observe(max(0.0, emitted_at - request.ts_produced))
