"""A bounded reservoir of past examples (Vitter 1985, algorithm R).

After n offers every offered example is in the buffer with probability capacity / n, so the
replayed part of a micro-batch is a uniform sample of the whole stream so far: fine-tuning on
it keeps old transitions from being forgotten (experience replay; ADER's exemplars).
"""

from __future__ import annotations

import random
from typing import Generic, TypeVar

T = TypeVar("T")


class Reservoir(Generic[T]):
    """Uniform sample of at most `capacity` of the items offered so far."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.items: list[T] = []
        self.offered = 0
        self._random = random.Random(seed)

    def offer(self, item: T) -> None:
        self.offered += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
            return
        slot = self._random.randrange(self.offered)
        if slot < self.capacity:
            self.items[slot] = item

    def sample(self, count: int) -> list[T]:
        """`count` distinct buffered items (fewer when the buffer holds fewer)."""
        return self._random.sample(self.items, min(count, len(self.items)))

    def __len__(self) -> int:
        return len(self.items)
