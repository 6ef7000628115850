"""Item vocabulary: the one mapping between catalogue item ids (str) and embedding rows (int).

Index 0 is reserved for padding and for every item the model has never seen, so an
unknown click in a live session maps to a row that carries no learned preference
instead of raising. The vocabulary is saved as a plain list of ids (JSON-friendly),
so a checkpoint can be inspected and loaded without pickling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

PAD_INDEX = 0
"""Row 0: padding and unknown items."""


class ItemVocabulary:
    """Bidirectional str <-> int map with index 0 reserved for padding/unknown."""

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._ids: list[str] = [""]
        self._index: dict[str, int] = {}
        for item in items:
            self.add(item)

    def add(self, item: str) -> int:
        """Index of `item`, appending it if new."""
        index = self._index.get(item)
        if index is None:
            index = len(self._ids)
            self._ids.append(item)
            self._index[item] = index
        return index

    def reassign(self, index: int, item: str) -> None:
        """Give row `index` (an existing row) to the new `item`; its previous item becomes unknown.

        Lets a continually trained model recycle the row of an item that left the catalogue,
        so the table stays bounded on an endless stream of new items.
        """
        if item in self._index:
            raise ValueError(f"item {item!r} already has row {self._index[item]}")
        if not 0 < index < len(self._ids):
            raise KeyError(f"no item at index {index}")
        del self._index[self._ids[index]]
        self._ids[index] = item
        self._index[item] = index

    def index(self, item: str) -> int:
        """Row of `item`, or PAD_INDEX when it is unknown."""
        return self._index.get(item, PAD_INDEX)

    def encode(self, items: Sequence[str]) -> list[int]:
        """Rows of `items` in order; unknown items map to PAD_INDEX."""
        get = self._index.get
        return [get(item, PAD_INDEX) for item in items]

    def encode_known(self, items: Sequence[str]) -> list[int]:
        """Rows of the known `items` only (unknown clicks are left out, order kept)."""
        get = self._index.get
        return [i for i in (get(item, PAD_INDEX) for item in items) if i != PAD_INDEX]

    def item(self, index: int) -> str:
        """Item id of row `index` (index 0 has none)."""
        if index == PAD_INDEX or not 0 < index < len(self._ids):
            raise KeyError(f"no item at index {index}")
        return self._ids[index]

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __len__(self) -> int:
        """Rows including the padding row (the size of an embedding table over it)."""
        return len(self._ids)

    @property
    def items(self) -> list[str]:
        """Known item ids in index order (row 1 first)."""
        return self._ids[1:]

    def to_list(self) -> list[str]:
        """Plain, JSON-friendly form: item ids in index order, without the padding row."""
        return list(self._ids[1:])

    @classmethod
    def from_list(cls, items: Sequence[str]) -> ItemVocabulary:
        """Inverse of `to_list`; duplicate ids are a corrupt vocabulary."""
        vocab = cls(items)
        if len(vocab) != len(items) + 1:
            raise ValueError("vocabulary list holds duplicate item ids")
        return vocab
