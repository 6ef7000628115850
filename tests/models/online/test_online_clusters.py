"""GLAD chunk clusters follow the stream by mini-batch k-means, and the centroids ship in snapshots."""

from __future__ import annotations

import torch
from conftest import chain_split

from streamrec.models.memory import Chunks, ClusterIndex
from streamrec.models.online import ContinualLearner, OnlineSettings, StreamExample
from streamrec.models.train import train_checkpoint


def test_a_mini_batch_update_moves_only_the_centroids_that_receive_chunks() -> None:
    table = torch.eye(6)  # items 1..5 on orthogonal axes
    index = ClusterIndex(2, seed=0)
    index.fit(Chunks.from_lists([[1], [1], [2], [2]]), table)
    before = index.centroids.clone()
    assert index.counts is not None and index.counts.tolist() == [2.0, 2.0]
    index.partial_fit(Chunks.from_lists([[1, 3]]), table)  # nearest to the [1] centroid
    moved = (index.centroids - before).norm(dim=1)
    assert (moved > 0).sum() == 1 and sorted(index.counts.tolist()) == [2.0, 3.0]
    target = int(moved.argmax())
    mean = torch.nn.functional.normalize(table[1] + table[3], dim=0)
    assert torch.allclose(index.centroids[target], before[target] + (mean - before[target]) / 3)


def test_items_added_after_the_fit_enter_the_clustering_space() -> None:
    index = ClusterIndex(2, seed=0)
    index.fit(Chunks.from_lists([[1], [2]]), torch.eye(5)[:3])
    index.partial_fit(Chunks.from_lists([[4]]), torch.eye(5))  # item 4 is new: the snapshot grows
    assert index.item_table is not None and index.item_table.size(0) == 5
    restored = ClusterIndex(2)
    restored.load_state_dict(index.state_dict())
    assert torch.equal(restored.counts, index.counts)


def test_the_learner_updates_clusters_of_a_memory_preset_and_snapshots_them() -> None:
    checkpoint = train_checkpoint("glad-clusters", chain_split(), device="cpu", dim=16, max_epochs=1)
    learner = ContinualLearner(checkpoint, OnlineSettings(micro_batch_size=4, cluster_refresh_every_steps=1))
    clusters = learner.model.memory.clusters
    before = clusters.centroids.clone()
    history = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")
    learner.add([StreamExample(("m",), "n", 1.0, history), StreamExample(("m", "n"), "o", 2.0, history)])
    assert learner.step() is not None
    assert not torch.equal(clusters.centroids, before)
    snapshot = learner.snapshot({})
    shipped = snapshot.build_model().memory.clusters
    assert torch.equal(shipped.centroids, clusters.centroids)
    assert learner.recommend([["m"]], 5, histories=[history])[0]
