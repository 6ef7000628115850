"""Everything torch, and every scorer: baselines, graph session encoders, GLAD memory, ContextGNN fusion."""

from streamrec.models.scorer import Query, Ranked, Scorer

__all__ = ["Query", "Ranked", "Scorer"]
