"""The checkpoint store: a folder of numbered model versions, each written atomically with its manifest.

The trainer publishes here and every scoring stage loads from here, so a version must never be
seen half written, and a crash at any point must leave the previous versions intact:

- `v000012.ckpt` is written as `v000012.ckpt.partial`, fsynced, renamed, and the folder fsynced;
- then its manifest `v000012.json` (sha256 of the checkpoint bytes, the trained-through offsets,
  the trainer's waiting examples, whatever the caller adds) the same way. A version exists only
  once its manifest does, so a crash between the two leaves an orphan file that the next publish
  overwrites, never a version without its offsets.

Only the newest `keep` versions are kept. The store holds bytes and JSON only (it never imports
torch): what a file contains is the caller's business (models/checkpoint.py's format).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^v(\d{6,})\.json$")
CHECKPOINT_SUFFIX = ".ckpt"
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as f:
        os.fsync(f.fileno())


@dataclass(frozen=True)
class StoredVersion:
    """One published version: its number, checkpoint file, checksum and manifest."""

    sequence: int
    path: Path
    sha256: str
    manifest: dict[str, Any]


class CheckpointStore:
    """Numbered versions in `folder`; `publish` adds one atomically, `latest` finds the newest intact one."""

    def __init__(self, folder: Path, keep: int) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.folder = Path(folder)
        self.keep = keep
        self.folder.mkdir(parents=True, exist_ok=True)

    def path_of(self, sequence: int) -> Path:
        return self.folder / f"v{sequence:06d}{CHECKPOINT_SUFFIX}"

    def _manifest_of(self, sequence: int) -> Path:
        return self.folder / f"v{sequence:06d}.json"

    def sequences(self) -> list[int]:
        """Numbers of the versions with a manifest, oldest first."""
        found = (_NAME.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def read(self, sequence: int) -> StoredVersion:
        manifest = json.loads(self._manifest_of(sequence).read_text())
        return StoredVersion(sequence, self.path_of(sequence), manifest["sha256"], manifest)

    def latest(self) -> StoredVersion | None:
        """The newest version whose file still matches its checksum (a damaged one is skipped), else None."""
        for sequence in reversed(self.sequences()):
            try:
                version = self.read(sequence)
                if version.path.is_file() and sha256_of(version.path) == version.sha256:
                    return version
            except (OSError, ValueError, KeyError):
                continue
        return None

    def publish(self, write: Callable[[Path], object], manifest: dict[str, Any]) -> StoredVersion:
        """Write the next version: `write(path)` fills the checkpoint file, `manifest` is stored next to it.

        Returns the version with its sha256; older versions beyond `keep` are deleted afterwards.
        """
        existing = self.sequences()
        sequence = (existing[-1] + 1) if existing else 1
        final = self.path_of(sequence)
        partial = final.with_name(final.name + ".partial")
        write(partial)
        _fsync_file(partial)
        partial.replace(final)
        sha = sha256_of(final)
        document = {**manifest, "sequence": sequence, "sha256": sha, "file": final.name}
        manifest_path = self._manifest_of(sequence)
        manifest_partial = manifest_path.with_name(manifest_path.name + ".partial")
        manifest_partial.write_text(json.dumps(document, sort_keys=True))
        _fsync_file(manifest_partial)
        manifest_partial.replace(manifest_path)
        _fsync_dir(self.folder)
        self._prune()
        return StoredVersion(sequence, final, sha, document)

    def _prune(self) -> None:
        """Delete versions older than the newest `keep` (manifest first, so no manifest points at nothing)."""
        for sequence in self.sequences()[: -self.keep]:
            self._manifest_of(sequence).unlink(missing_ok=True)
            # the file and its sidecars (an index)
            for path in self.folder.glob(f"v{sequence:06d}{CHECKPOINT_SUFFIX}*"):
                path.unlink(missing_ok=True)
        for stray in self.folder.glob("*.partial"):
            stray.unlink(missing_ok=True)
