"""ClusterIndex: seeded k-means over chunk embeddings, consistent fit/assign, small corpora, new items."""

from __future__ import annotations

import torch

from streamrec.models.memory import Chunks, ClusterIndex

D = 8


def grouped_table(groups: int = 3, per_group: int = 10) -> torch.Tensor:
    """Item table whose rows 1.. form `groups` tight bundles around orthogonal directions (row 0 = padding)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(D)[:groups] * 3
    rows = [centres[i] + 0.05 * torch.randn(D, generator=g) for i in range(groups) for _ in range(per_group)]
    return torch.stack([torch.zeros(D), *rows])


def group_chunks(per_group: int = 10) -> tuple[Chunks, list[int]]:
    """Chunks drawn from a single group each, and that group."""
    lists, groups = [], []
    for group in range(3):
        first = 1 + group * per_group
        for start in range(0, per_group - 3):
            lists.append(list(range(first + start, first + start + 3)))
            groups.append(group)
    return Chunks.from_lists(lists), groups


def test_kmeans_recovers_well_separated_chunk_groups() -> None:
    chunks, groups = group_chunks()
    index = ClusterIndex(3, seed=0)
    assert index.fit(chunks, grouped_table()) == 3
    assignment = index.assign(chunks).tolist()
    by_group = {g: {a for a, gg in zip(assignment, groups, strict=True) if gg == g} for g in range(3)}
    assert all(len(ids) == 1 for ids in by_group.values())  # each group is one cluster
    assert len(set.union(*by_group.values())) == 3  # and the groups are different clusters


def test_fit_is_deterministic_for_a_seed() -> None:
    chunks, _ = group_chunks()
    table = torch.randn(31, D, generator=torch.Generator().manual_seed(3))
    first, second = ClusterIndex(5, seed=7), ClusterIndex(5, seed=7)
    first.fit(chunks, table)
    second.fit(chunks, table)
    assert first.centroids is not None and second.centroids is not None
    assert torch.equal(first.centroids, second.centroids)
    assert torch.equal(first.assign(chunks), second.assign(chunks))


def test_fewer_distinct_chunks_than_clusters() -> None:
    chunks = Chunks.from_lists([[1, 2], [1, 2], [3]])
    index = ClusterIndex(10)
    found = index.fit(chunks, grouped_table())
    assert found == 2
    assert index.assign(chunks).tolist()[0] == index.assign(chunks).tolist()[1]


def test_fit_on_a_sample_still_assigns_every_chunk() -> None:
    chunks, groups = group_chunks()
    index = ClusterIndex(3, seed=0, max_fit_chunks=9)
    index.fit(chunks, grouped_table())
    assignment = index.assign(chunks)
    assert assignment.shape == (chunks.num_chunks,)
    assert len(set(assignment.tolist())) == 3


def test_items_added_after_the_snapshot_do_not_break_assignment() -> None:
    index = ClusterIndex(3)
    index.fit(group_chunks()[0], grouped_table())
    assignment = index.assign(Chunks.from_lists([[1, 2, 999], [999]]))  # 999: a newer vocabulary row
    assert assignment.shape == (2,)
    assert assignment[0] == index.assign(Chunks.from_lists([[1, 2]]))[0]
