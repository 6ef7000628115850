"""Scoring-stage side of continual learning: follow `model-updates`, verify each version, hot-swap it in."""
