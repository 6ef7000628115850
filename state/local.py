"""The local state directory (`state.dir`): what `streamrec state clear` removes.

Everything in it is a cache of the changelog topics on the broker (RocksDB stores, the
scoring stage's persisted statistics), so deleting it loses nothing the cluster holds; it
must be deleted when it was built against another cluster, whose changelog offsets the
current broker does not have.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def clear_state_dir(directory: Path) -> None:
    """Delete `directory` and everything under it; refuses paths that cannot be a state directory."""
    resolved = directory.resolve()
    if resolved in (Path("/"), Path.home().resolve(), Path.cwd().resolve()) or not resolved.is_dir():
        raise ValueError(f"refusing to delete {directory}: not a state directory")
    shutil.rmtree(resolved)
