"""The checkpoint store: atomic numbered versions with manifests, the newest intact one found, the last K kept."""

from __future__ import annotations

from pathlib import Path

from streamrec.state.checkpoint_store import CheckpointStore, sha256_of


def _writer(payload: bytes):
    return lambda path: Path(path).write_bytes(payload)


def test_versions_are_numbered_checksummed_and_pruned(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "store", keep=2)
    for n in range(1, 4):
        stored = store.publish(_writer(f"weights {n}".encode()), {"trained_through": {"0": n * 10}})
        assert stored.sequence == n and stored.sha256 == sha256_of(stored.path)
    assert store.sequences() == [2, 3]
    assert not store.path_of(1).exists()
    latest = store.latest()
    assert latest is not None and latest.sequence == 3 and latest.manifest["trained_through"] == {"0": 30}
    assert not list((tmp_path / "store").glob("*.partial"))


def test_a_damaged_newest_version_is_skipped_for_the_previous_one(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    store.publish(_writer(b"good"), {})
    damaged = store.publish(_writer(b"good too"), {})
    damaged.path.write_bytes(b"go")  # truncated after the fact
    latest = store.latest()
    assert latest is not None and latest.sequence == 1


def test_a_file_without_manifest_is_not_a_version(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    store.path_of(1).write_bytes(b"crashed before its manifest")
    assert store.latest() is None and store.sequences() == []
    assert store.publish(_writer(b"next"), {}).sequence == 1  # the orphan is overwritten
