"""CandidateIndex: an HNSW index over a model's item vectors and GRAINRec's item neighbour matrix.

Logits are scale * cos(session, item) (models/recommender.py), so the index holds the
L2-normalised item table in hnswlib's inner-product space: the nearest items of a session
vector are its highest two-tower scores. The neighbour matrix [V, k] (GRAINRec's nearest-neighbour
matrix, a precomputed top-k of similar items from the learned embeddings) is read from the same
index once it is complete. GRAINRec: "GRAINRec: Graph and Attention Integrated Approach for
Real-Time Session-Based Item Recommendations", https://arxiv.org/abs/2411.09152.

An index is immutable once built: `build` creates a fresh hnswlib index, adds every item,
and only then queries it (the neighbour matrix) or hands it out. A new model version gets a
new CandidateIndex and the scorer swaps its reference (hnswlib must never be queried while
items are being added to it).

Sidecar file (one file next to the checkpoint, `sidecar_path`): a magic line, one JSON
header line (format version, parameters, model version, sizes, sha256 of the body), then the
body: hnswlib's own serialisation followed by the neighbour matrix (int32). `load` refuses a
file whose body does not match its checksum or that was built for another model version.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hnswlib
import numpy as np
import torch
from torch import Tensor

from streamrec.models.candidates.config import CandidateConfig
from streamrec.state.vocab import PAD_INDEX

if TYPE_CHECKING:
    from streamrec.models.recommender import SessionRecommender

MAGIC = b"streamrec-hnsw\n"
FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".hnsw"


def sidecar_path(checkpoint_path: Path) -> Path:
    """Where the index of the checkpoint at `checkpoint_path` lives: `<checkpoint>.hnsw`."""
    checkpoint_path = Path(checkpoint_path)
    return checkpoint_path.with_name(checkpoint_path.name + SIDECAR_SUFFIX)


class CandidateIndexError(ValueError):
    """A sidecar that cannot be used: missing pieces, corrupt, or built for another model."""


class CandidateIndex:
    """HNSW top-M over item vectors plus the item neighbour matrix; build with `build`, never mutated after."""

    def __init__(
        self, index: hnswlib.Index, neighbours: Tensor, config: CandidateConfig, model_version: str | None,
        build_seconds: float,
    ) -> None:
        self._index = index
        self.neighbours = neighbours
        """GRAINRec's item neighbour matrix [V, k] long: row v holds v's k most similar items (PAD-padded; row 0 is
        PAD)."""
        self.config = config
        self.model_version = model_version
        """Version stamp of the checkpoint whose item vectors were indexed (None when built from bare vectors)."""
        self.build_seconds = build_seconds
        self._ef = max(config.hnsw_ef_search, config.hnsw_top_m)
        self._index.set_ef(self._ef)

    @property
    def num_items(self) -> int:
        """Rows of the item table indexed (padding row included, never returned)."""
        return self.neighbours.size(0)

    @property
    def dim(self) -> int:
        return self._index.dim

    @classmethod
    def build(
        cls, model: SessionRecommender, config: CandidateConfig = CandidateConfig(), model_version: str | None = None,
        threads: int = 2,
    ) -> CandidateIndex:
        """Index `model`'s item table (encoder.item_table()); `model_version` is the checkpoint's version stamp."""
        with torch.no_grad():
            vectors = model.encoder.item_table().detach().float().cpu()
        return cls.from_vectors(vectors, config, model_version, threads)

    @classmethod
    def from_vectors(
        cls, vectors: Tensor, config: CandidateConfig = CandidateConfig(), model_version: str | None = None,
        threads: int = 2,
    ) -> CandidateIndex:
        """Index item vectors [V, d] (row 0 is padding and is not indexed); they are L2-normalised here."""
        started = time.perf_counter()
        data = np.ascontiguousarray(torch.nn.functional.normalize(vectors.float(), dim=-1).numpy()[1:])
        count, dim = data.shape
        labels = np.arange(1, count + 1)
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(
            max_elements=max(count, 1), ef_construction=config.hnsw_ef_construction, M=config.hnsw_m, random_seed=0
        )
        if count:
            index.add_items(data, labels, num_threads=threads)
        # every item is in: from here on the index is only read
        neighbours = _neighbour_matrix(index, data, labels, config, threads)
        return cls(index, neighbours, config, model_version, time.perf_counter() - started)  # sets the query ef

    def set_ef_search(self, ef_search: int) -> None:
        """Change the query-time ef (a search parameter only: the graph is not touched, so no query races an add)."""
        self.config = replace(self.config, hnsw_ef_search=ef_search)
        self._ef = max(ef_search, self.config.hnsw_top_m)
        self._index.set_ef(self._ef)

    def query(self, sessions: Tensor, top_m: int | None = None, threads: int = 1) -> Tensor:
        """The `top_m` (default config.hnsw_top_m) items of highest cosine for each session vector [B, d] -> [B, top_m]
        long, PAD-padded."""
        top_m = self.config.hnsw_top_m if top_m is None else top_m
        count = self._index.get_current_count()
        k = min(top_m, count)
        result = torch.full((sessions.size(0), top_m), PAD_INDEX, dtype=torch.long)
        if k == 0 or sessions.size(0) == 0:
            return result
        if k > self._ef:  # hnswlib needs ef >= k (a top_m above the configured one)
            self._ef = k
            self._index.set_ef(k)
        query = torch.nn.functional.normalize(sessions.detach().float().cpu(), dim=-1).numpy()
        labels, _ = self._index.knn_query(query, k=k, num_threads=threads)
        result[:, :k] = torch.from_numpy(labels.astype(np.int64))
        return result

    def save(self, path: Path) -> Path:
        """Write the sidecar atomically (a reader never sees half a file); returns `path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            native = Path(scratch) / "index.bin"
            self._index.save_index(str(native))
            index_bytes = native.read_bytes()
        matrix = self.neighbours.to(torch.int32).numpy().tobytes()
        header = {
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "model_version": self.model_version,
            "num_items": self.num_items,
            "dim": self.dim,
            "index_bytes": len(index_bytes),
            "neighbour_matrix_shape": list(self.neighbours.shape),
            "build_seconds": self.build_seconds,
            "sha256": hashlib.sha256(index_bytes + matrix).hexdigest(),
        }
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as out:
            out.write(MAGIC + json.dumps(header).encode() + b"\n")
            out.write(index_bytes)
            out.write(matrix)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path, model_version: str | None = None) -> CandidateIndex:
        """Read a sidecar; refuses (CandidateIndexError) a corrupt file or, when `model_version` is given, another
        model's index."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                if f.readline() != MAGIC:
                    raise CandidateIndexError(f"{path}: not a streamrec HNSW sidecar")
                header: dict[str, Any] = json.loads(f.readline())
                body = f.read()
        except OSError as exc:
            raise CandidateIndexError(f"{path}: cannot read the candidate index ({exc.strerror})") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CandidateIndexError(f"{path}: unreadable candidate index header") from exc
        if header.get("format_version") != FORMAT_VERSION:
            raise CandidateIndexError(f"{path}: candidate index format {header.get('format_version')}, expected "
                                      f"{FORMAT_VERSION}")
        if hashlib.sha256(body).hexdigest() != header["sha256"]:
            raise CandidateIndexError(f"{path}: checksum mismatch (corrupt or partly written); rebuild it with "
                                      "CandidateIndex.build")
        if model_version is not None and header["model_version"] != model_version:
            raise CandidateIndexError(f"{path}: built for model {header['model_version']}, not {model_version}; "
                                      "rebuild it")
        split = header["index_bytes"]
        rows, k = header["neighbour_matrix_shape"]
        neighbours = torch.from_numpy(np.frombuffer(body[split:], dtype=np.int32).reshape(rows, k).astype(np.int64))
        index = hnswlib.Index(space="ip", dim=header["dim"])
        with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
            native = Path(scratch) / "index.bin"
            native.write_bytes(body[:split])
            index.load_index(str(native))
        return cls(
            index, neighbours, CandidateConfig.from_dict(header["config"]), header["model_version"],
            header["build_seconds"],
        )


def _neighbour_matrix(
    index: hnswlib.Index, data: np.ndarray, labels: np.ndarray, config: CandidateConfig, threads: int
) -> Tensor:
    """Row v: the k items of highest cosine with v other than v itself (GRAINRec's neighbour matrix)."""
    k = config.neighbour_matrix_k
    matrix = torch.full((labels.size + 1, k), PAD_INDEX, dtype=torch.long)
    asked = min(k + 1, labels.size)
    if asked <= 1 or k == 0:
        return matrix
    # Each item queries its own neighbourhood, which the build already searched with ef_construction:
    # a short list (twice the neighbours asked) suffices, and keeps this pass at a fraction of the build.
    index.set_ef(2 * asked)
    found, _ = index.knn_query(data, k=asked, num_threads=threads)
    found = found.astype(np.int64)
    not_self = found != labels[:, None]
    order = np.argsort(~not_self, axis=1, kind="stable")  # other items first, in similarity order
    found = np.take_along_axis(np.where(not_self, found, PAD_INDEX), order, axis=1)[:, :k]
    matrix[1:, : found.shape[1]] = torch.from_numpy(found)
    return matrix
