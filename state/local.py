"""The local state directory (`state.dir`): what `streamrec state clear` removes.

Everything in it is a cache of the changelog topics on the broker (RocksDB stores, the
scoring stage's persisted statistics), so deleting it loses nothing the cluster holds; it
must be deleted when it was built against another cluster, whose changelog offsets the
current broker does not have. So it records what it belongs to (`StateIdentity`, in
`IDENTITY_FILE`), which the worker checks at start (stream/stages/state_identity.py).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
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


@dataclass(frozen=True)
class StateIdentity:
    """The deployment a state directory was built against: a cluster's deployment id (the first record of its
    deployment topic, stream/stages/state_identity.py), the broker's cluster id where it reports one, the topic
    prefix."""

    deployment_id: str
    cluster_id: str | None
    topic_prefix: str


def has_state(directory: Path) -> bool:
    """Whether `directory` holds anything besides its identity file (stores, statistics)."""
    return directory.is_dir() and any(entry.name != IDENTITY_FILE for entry in directory.iterdir())


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
    partial = directory / f"{IDENTITY_FILE}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
    partial.write_text(json.dumps(asdict(identity), indent=1))
    os.replace(partial, directory / IDENTITY_FILE)
