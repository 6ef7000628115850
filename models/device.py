"""Where torch computes: the device a setting names, and how many CPU threads training uses.

Its own module so that serving (models/serving.py), training (models/train.py) and continual
learning (models/online/learner.py) import it without importing one another.
"""

from __future__ import annotations

import torch

MAX_TORCH_THREADS = 1
"""CPU threads for training: on a shared 2-core box a second OpenMP thread spins against other
processes and made small scatter ops many times slower, so one thread is faster (docs/benchmarks.md,
"Smaller measurements behind code choices")."""


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as torch spells it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
