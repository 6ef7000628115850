"""Scans of raw-mode RocksDB stores (`Options(raw_mode=True)`), typed: keys and values are bytes.

rocksdict types every key as any of the key types it accepts (str, int, float, bytes, bool); a
raw-mode store only ever holds bytes, which these say once instead of at every loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from rocksdict import Rdict


def raw_items(db: Rdict, from_key: bytes) -> Iterator[tuple[bytes, bytes]]:
    """`db.items(from_key=from_key)`: (key, value) pairs in key order from `from_key` on."""
    return cast(Iterator[tuple[bytes, bytes]], iter(db.items(from_key=from_key)))


def raw_keys(db: Rdict, from_key: bytes) -> Iterator[bytes]:
    """`db.keys(from_key=from_key)`: keys in key order from `from_key` on."""
    return cast(Iterator[bytes], iter(db.keys(from_key=from_key)))
