"""The state folder's identity file: written whole, and by several processes at once without losing a rename."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from streamrec.state.local import IDENTITY_FILE, StateIdentity, has_state, identity_lock, read_identity, write_identity


def _write_many(directory: str, times: int) -> None:
    for _ in range(times):
        write_identity(Path(directory), StateIdentity("deployment-a", None, "shop."))


def test_processes_sharing_a_folder_record_its_identity_at_once_without_error(tmp_path: Path) -> None:
    """A worker and its shadow stages start on one folder (the replay and the demo do): no rename may take
    another writer's partial file away (it raised FileNotFoundError and the shadow died)."""
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(tmp_path), 200)) for _ in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0, 0]
    assert read_identity(tmp_path) == StateIdentity("deployment-a", None, "shop.")
    assert sorted(p.name for p in tmp_path.iterdir()) == [IDENTITY_FILE]  # no partial file left behind


def test_identity_bookkeeping_is_not_state(tmp_path: Path) -> None:
    """The identity file, a writer's partial file and the lock say nothing about stores: a folder holding only
    them is new (a second process seeing another's partial file took it for state from elsewhere)."""
    with identity_lock(tmp_path):
        (tmp_path / f"{IDENTITY_FILE}.123-abcd1234.partial").write_text("{}")
        write_identity(tmp_path, StateIdentity("deployment-a", None, ""))
        assert not has_state(tmp_path)
    (tmp_path / "stores").mkdir()
    assert has_state(tmp_path)
