"""GLAD long-term memory: dynamic memory size, exact short-term fallback, uneven batching,
eq. 5-6 algebra against a naive reference, gradients, clustered memory, CUDA."""

from __future__ import annotations

import math

import pytest
import torch

from streamrec.models.memory import LongTermMemory, MemoryBatch, build_memory_batch, history_chunks, short_term_scores

V, D, C = 80, 16, 4
FLAGS = [(False, False), (False, True), (True, False), (True, True)]  # (use_clusters, target_attentive)


@pytest.fixture
def item_table() -> torch.Tensor:
    return torch.randn(V, D, generator=torch.Generator().manual_seed(1)) * D**-0.5


def make_memory(use_clusters: bool, target_attentive: bool, item_table: torch.Tensor, histories: list[list[int]],
                **kw: object) -> LongTermMemory:
    torch.manual_seed(0)
    memory = LongTermMemory(D, C, use_clusters=use_clusters, target_attentive=target_attentive, num_clusters=3, **kw)  # type: ignore[arg-type]
    if use_clusters:
        memory.refresh_clusters([c for h in histories for c in history_chunks(h, C)], item_table)
    return memory


def batch_for(memory: LongTermMemory, histories: list[list[int]]) -> MemoryBatch:
    return build_memory_batch(histories, C, memory.clusters, "cpu")


# Uneven: 0, 1 (short tail), 3, 10 chunks; user 1 and user 3 are anonymous-like (empty).
HISTORIES = [list(range(1, 13)), [], list(range(20, 60)), [], [61, 62]]


def test_memory_size_grows_with_history_length(item_table: torch.Tensor) -> None:
    lengths = [0, 1, 4, 5, 9, 17, 40]
    histories = [list(range(1, n + 1)) for n in lengths]
    batch = build_memory_batch(histories, C, None, "cpu")
    expected = [math.ceil(n / C) for n in lengths]
    assert batch.chunks_per_user().tolist() == expected
    memory = make_memory(False, True, item_table, histories).eval()
    _, mask = memory.memory_nodes(batch, torch.zeros(len(histories), D), item_table)
    assert mask.sum(1).tolist() == expected  # the read sees exactly ceil(N_i / c) nodes per user
    assert mask.shape[1] == max(expected)  # padded only to the longest memory in the batch


def test_identical_chunks_are_one_shared_node() -> None:
    batch = build_memory_batch([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4, 1, 2, 3, 4]], C, None, "cpu")
    assert batch.chunks.num_chunks == 2  # (1,2,3,4) and (5,)
    assert batch.chunks_per_user().tolist() == [2, 2, 1]  # a repeated chunk links its user once
    assert batch.chunks.sizes().tolist() == [4, 1]  # no padding stored: the tail chunk is short


def test_padding_items_are_dropped_and_negative_indices_rejected() -> None:
    batch = build_memory_batch([[0, 0], [0, 7, 0, 8]], C, None, "cpu")
    assert batch.has_memory().tolist() == [False, True]
    assert batch.chunks.items.tolist() == [7, 8]
    with pytest.raises(ValueError, match="negative"):
        build_memory_batch([[1, -3]], C, None, "cpu")


@pytest.mark.parametrize("use_clusters,target_attentive", FLAGS)
@pytest.mark.parametrize("with_candidates", [False, True])
def test_users_without_history_get_exactly_the_short_term_scores(
    item_table: torch.Tensor, use_clusters: bool, target_attentive: bool, with_candidates: bool
) -> None:
    memory = make_memory(use_clusters, target_attentive, item_table, HISTORIES)
    short = torch.randn(len(HISTORIES), D)
    candidates = torch.randint(1, V, (len(HISTORIES), 7)) if with_candidates else None
    logits = memory(batch_for(memory, HISTORIES), short, item_table, candidates)
    expected = (short @ item_table.T if candidates is None
                else (item_table[candidates] @ short.unsqueeze(-1)).squeeze(-1))
    assert logits.shape == expected.shape
    assert torch.equal(logits[[1, 3]], expected[[1, 3]])
    assert not torch.allclose(logits[[0, 2, 4]], expected[[0, 2, 4]])  # the memory does change the others


def test_a_batch_without_any_history_is_the_short_term_model(item_table: torch.Tensor) -> None:
    memory = make_memory(False, True, item_table, HISTORIES)
    short = torch.randn(3, D)
    logits = memory(build_memory_batch([[], [0], []], C, None, "cpu"), short, item_table)
    assert torch.equal(logits, short_term_scores(short, item_table))


@pytest.mark.parametrize("target_attentive", [False, True])
def test_uneven_histories_batch_exactly_like_one_user_at_a_time(item_table: torch.Tensor,
                                                                target_attentive: bool) -> None:
    """Padding of short memories to the longest one must not leak into any score."""
    memory = make_memory(False, target_attentive, item_table, HISTORIES).eval()
    short = torch.randn(len(HISTORIES), D)
    together = memory(batch_for(memory, HISTORIES), short, item_table)
    for user, history in enumerate(HISTORIES):
        alone = memory(batch_for(memory, [history]), short[user : user + 1], item_table)
        torch.testing.assert_close(together[user : user + 1], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("read_softmax", [True, False])
def test_target_attentive_scores_follow_eq_5_and_6(item_table: torch.Tensor, read_softmax: bool) -> None:
    """The blocked algebraic scoring equals eq. 5-6 written out per user and target."""
    memory = make_memory(False, True, item_table, HISTORIES, read_softmax=read_softmax,
                         block_elements=40).double().eval()
    table, short = item_table.double(), torch.randn(len(HISTORIES), D, dtype=torch.float64)
    batch = batch_for(memory, HISTORIES)
    logits = memory(batch, short, table)
    nodes, mask = memory.memory_nodes(batch, short, table)
    for user in (0, 2, 4):
        h = nodes[user][mask[user]]  # h_SE^{L-1} of this user's memory  [M, d]
        alpha = table @ h.T  # eq. 5 weights, one row per target  [V, M]
        weights = alpha.softmax(-1) if read_softmax else alpha
        read = weights @ h  # h_{U T_k}^L  [V, d]
        g = torch.sigmoid(memory.gate.w_short(short[user]) + memory.gate.w_long(read))  # eq. 3
        fused = g * short[user] + (1 - g) * read  # eq. 6
        torch.testing.assert_close(logits[user], (fused * table).sum(-1))


@pytest.mark.parametrize("use_clusters,target_attentive", FLAGS)
def test_candidate_scores_equal_the_full_catalogue_scores(item_table: torch.Tensor, use_clusters: bool,
                                                          target_attentive: bool) -> None:
    memory = make_memory(use_clusters, target_attentive, item_table, HISTORIES, block_elements=50).eval()
    short, batch = torch.randn(len(HISTORIES), D), batch_for(memory, HISTORIES)
    candidates = torch.randint(1, V, (len(HISTORIES), 9))
    torch.testing.assert_close(memory(batch, short, item_table, candidates),
                               memory(batch, short, item_table).gather(1, candidates))


@pytest.mark.parametrize("use_clusters,target_attentive", FLAGS)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_gradients_reach_every_parameter_the_table_and_the_session_vector(
    item_table: torch.Tensor, use_clusters: bool, target_attentive: bool, layers: int
) -> None:
    memory = make_memory(use_clusters, target_attentive, item_table, HISTORIES, layers=layers)
    table = item_table.clone().requires_grad_()
    short = torch.randn(len(HISTORIES), D, requires_grad=True)
    logits = memory(batch_for(memory, HISTORIES), short, table)
    torch.nn.functional.cross_entropy(logits, torch.tensor([13, 5, 60, 2, 63])).backward()
    for name, parameter in memory.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name
    assert short.grad is not None and (short.grad.abs().sum(1) > 0).all()
    # history items get gradient via the chunk encoder
    assert table.grad is not None and table.grad[1:13].abs().sum() > 0


def test_clustered_memory_links_users_through_shared_cluster_nodes(item_table: torch.Tensor) -> None:
    histories = [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12], []]
    memory = make_memory(True, True, item_table, histories)
    memory.clusters.num_clusters = 1  # type: ignore[union-attr]  # everything in one cluster
    memory.refresh_clusters([c for h in histories for c in history_chunks(h, C)], item_table)
    batch = batch_for(memory, histories)
    graph = memory.memory_graph(batch, item_table)
    assert graph.nodes.shape == (1, D)  # three chunks pooled into one cluster node
    assert graph.nodes_per_user().tolist() == [1, 1, 0]  # both users are 2-hop neighbours via it
    chunk_embeddings = memory.encoder(batch.chunks, item_table)
    torch.testing.assert_close(graph.nodes[0], chunk_embeddings.mean(0))  # cluster node = mean of its chunks


def test_clusters_are_checkpointed_with_the_weights(item_table: torch.Tensor) -> None:
    memory = make_memory(True, True, item_table, HISTORIES).eval()
    restored = LongTermMemory(D, C, use_clusters=True, target_attentive=True, num_clusters=3).eval()
    restored.load_state_dict(memory.state_dict())
    original, reloaded = batch_for(memory, HISTORIES), batch_for(restored, HISTORIES)
    assert reloaded.chunk_cluster is not None and torch.equal(original.chunk_cluster, reloaded.chunk_cluster)  # type: ignore[arg-type]
    short = torch.randn(len(HISTORIES), D)
    assert torch.equal(memory(original, short, item_table), restored(reloaded, short, item_table))


def test_cluster_flag_mismatches_fail_loudly(item_table: torch.Tensor) -> None:
    clustered = LongTermMemory(D, C, use_clusters=True)
    with pytest.raises(ValueError, match="without a ClusterIndex"):
        clustered(build_memory_batch(HISTORIES, C, None, "cpu"), torch.randn(len(HISTORIES), D), item_table)
    with pytest.raises(RuntimeError, match="not fitted"):
        build_memory_batch(HISTORIES, C, clustered.clusters, "cpu")
    with pytest.raises(RuntimeError, match="use_clusters=False"):
        LongTermMemory(D, C).refresh_clusters([[1, 2]], item_table)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("use_clusters,target_attentive", FLAGS)
def test_forward_backward_on_cuda(item_table: torch.Tensor, use_clusters: bool, target_attentive: bool) -> None:
    device = torch.device("cuda")
    memory = make_memory(use_clusters, target_attentive, item_table, HISTORIES).to(device)
    table = item_table.to(device).requires_grad_()
    short = torch.randn(len(HISTORIES), D, device=device, requires_grad=True)
    batch = build_memory_batch(HISTORIES, C, memory.clusters, device)
    logits = memory(batch, short, table)
    assert logits.device.type == "cuda"
    assert torch.equal(logits[[1, 3]], (short @ table.T)[[1, 3]])
    logits.logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in memory.parameters())
