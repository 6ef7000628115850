"""The local state directory (`state.dir`): what `streamrec state clear` removes.

Everything in it is a cache of the changelog topics on the broker (RocksDB stores, the
scoring stage's persisted statistics), so deleting it loses nothing the cluster holds; it
must be deleted when it was built against another cluster, whose changelog offsets the
current broker does not have. So it records what it belongs to (`StateIdentity`, in
`IDENTITY_FILE`), which the worker checks at start (stream/stages/state_identity.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


def clear_state_dir(directory: Path) -> None:
    """Delete `directory` and everything under it; refuses paths that cannot be a state directory."""
    resolved = directory.resolve()
    if resolved in (Path("/"), Path.home().resolve(), Path.cwd().resolve()) or not resolved.is_dir():
        raise ValueError(f"refusing to delete {directory}: not a state directory")
    shutil.rmtree(resolved)


IDENTITY_FILE = "streamrec-state.json"
"""What a state directory belongs to, written beside its stores (`StateIdentity`)."""

_LOCK_FILE = ".streamrec-state.lock"
_PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class StateIdentity:
    """The deployment a state directory was built against: a cluster's deployment id (the first record of its
    deployment topic, stream/stages/state_identity.py), the broker's cluster id where it reports one, the topic
    prefix."""

    deployment_id: str
    cluster_id: str | None
    topic_prefix: str


def has_state(directory: Path) -> bool:
    """Whether `directory` holds anything besides its identity bookkeeping (stores, statistics)."""
    return directory.is_dir() and any(not _is_identity_bookkeeping(entry.name) for entry in directory.iterdir())


def _is_identity_bookkeeping(name: str) -> bool:
    return name in (IDENTITY_FILE, _LOCK_FILE) or (name.startswith(IDENTITY_FILE) and name.endswith(_PARTIAL_SUFFIX))


@contextmanager
def identity_lock(directory: Path) -> Iterator[None]:
    """Hold `directory`'s identity lock: one process at a time checks and records what the folder belongs to.

    Processes sharing a state folder (a worker and its shadow scoring stages) start together; without it the
    second could look while the first has created stores but not yet recorded the identity, and refuse a
    folder that is in fact this cluster's (an advisory `flock`, released when the holder exits or dies)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / _LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_identity(directory: Path) -> StateIdentity | None:
    """The identity recorded in `directory`, or None (none recorded, or unreadable: treated as none)."""
    try:
        raw = json.loads((directory / IDENTITY_FILE).read_text())
        return StateIdentity(deployment_id=str(raw["deployment_id"]), cluster_id=raw.get("cluster_id"),
                             topic_prefix=str(raw.get("topic_prefix", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_identity(directory: Path, identity: StateIdentity) -> None:
    """Record `identity` in `directory` (written whole, then renamed: never half a file).

    Processes sharing a state folder (a worker and its shadow scoring stages) may record it at the same
    moment: each writes its own partial file, so one's rename never takes the other's away."""
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"{IDENTITY_FILE}.{os.getpid()}-{uuid.uuid4().hex[:8]}{_PARTIAL_SUFFIX}"
    partial.write_text(json.dumps(asdict(identity), indent=1))
    os.replace(partial, directory / IDENTITY_FILE)
