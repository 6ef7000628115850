"""ContinualLearner: growing catalogue, TTL, snapshots that serve and resume, replay, distillation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online import ContinualLearner, OnlineSettings, StreamExample
from streamrec.models.scorer import Query
from streamrec.models.serving import NeuralScorer

T0 = 1_700_000_000.0


def _walk(items: list[str], ts: float) -> list[StreamExample]:
    """Every click of one session as a stream example (the first with an empty prefix)."""
    return [StreamExample(tuple(items[:t]), items[t], ts + t) for t in range(len(items))]


def _drain(learner: ContinualLearner) -> int:
    steps = 0
    while learner.step() is not None:
        steps += 1
    return steps


def test_new_items_get_rows_without_a_restart_and_tables_grow(tiny_checkpoint: Checkpoint) -> None:
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=4))
    rows = learner.model.num_items
    assert rows == len(tiny_checkpoint.vocab)
    table = learner.model.encoder.items.weight
    expected = table[[learner.vocab.index("a"), learner.vocab.index("b")]].mean(0).detach().clone()
    learner.add(_walk(["a", "b", "new1"], T0))
    assert learner.model.num_items == 2 * rows  # capacity doubled once
    row = learner.vocab.index("new1")
    assert torch.allclose(learner.model.encoder.items.weight[row], expected)  # mean of its co-clicked items
    assert bool(learner.model.rankable[row]) and not learner.model.rankable[len(learner.vocab) :].any()
    for n in range(6):
        learner.add(_walk(["a", "b", "new1", f"next{n % 2}"], T0 + 10 * n))
    assert _drain(learner) > 0
    assert "new1" in learner.recommend([["a", "b"]], 5)[0]  # learned online, served by the live model


def test_with_learn_head_off_the_fusion_weights_stay_while_the_encoder_learns(tiny_checkpoint: Checkpoint) -> None:
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=4, learn_head=False))
    assert learner.model.head is not None
    head_before = [p.detach().clone() for p in learner.model.head.parameters()]
    encoder_before = [p.detach().clone() for p in learner.model.encoder.parameters()]
    for n in range(6):  # a new item on the way: the catalogue grows (a new model) mid-run
        learner.add(_walk(["a", "b", "new1", "c"], T0 + 10 * n))
    assert _drain(learner) > 0 and learner.model.num_items > len(tiny_checkpoint.vocab)
    assert all(torch.equal(a, b) for a, b in zip(head_before, learner.model.head.parameters()))
    encoder_after = list(learner.model.encoder.parameters())
    assert any(not torch.equal(a, b[: a.size(0)]) for a, b in zip(encoder_before, encoder_after))


def test_a_grown_snapshot_saves_loads_and_serves_only_real_items(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=8))
    for n in range(5):
        learner.add(_walk(["k", "l", "fresh", "m"], T0 + n))
    _drain(learner)
    snapshot = learner.snapshot({"trained_through": {"clicks": 20}})
    loaded = Checkpoint.load(snapshot.save(tmp_path / "v2.pt"))
    assert loaded.version == snapshot.version and loaded.num_rows > len(loaded.vocab)
    assert loaded.metrics == {"trained_through": {"clicks": 20}}
    scorer = NeuralScorer(loaded, device="cpu")
    ranked = scorer.recommend([Query(("k", "l"))], k=50)[0]
    assert {item for item, _ in ranked} <= set(loaded.vocab.items) and "fresh" in {item for item, _ in ranked}
    assert len(ranked) == len(loaded.vocab) - 1  # every item once, no spare row


def test_resume_continues_counters_and_item_times(tiny_checkpoint: Checkpoint) -> None:
    settings = OnlineSettings(micro_batch_size=4, item_ttl_s=100.0)
    learner = ContinualLearner(tiny_checkpoint, settings)
    learner.add(_walk(["a", "b", "c", "brand-new"], T0))
    _drain(learner)
    resumed = ContinualLearner.resume(learner.snapshot({}), settings)
    assert resumed.steps == learner.steps and resumed.examples == learner.examples == 4
    assert resumed.trained_through_ts == T0 + 3
    row = resumed.vocab.index("brand-new")
    assert resumed.last_seen[row] == learner.last_seen[row] == T0 + 3
    assert resumed.stats.freq[row] == 1.0  # rebuilt from the snapshot's item counts


def test_items_unseen_for_the_ttl_leave_the_ranking_and_their_rows_are_recycled(tiny_checkpoint: Checkpoint) -> None:
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=2, item_ttl_s=100.0))
    learner.add(_walk(["a", "b", "c"], T0))
    learner.add(_walk(["f", "g"], T0 + 500))  # a, b, c (and every item not clicked since start) expire
    _drain(learner)
    ranked = learner.recommend([["f"]], 20)[0]
    assert set(ranked) <= {"f", "g"}
    capacity = learner.model.num_items
    learner.add(_walk(["g", "newcomer"], T0 + 510))
    assert learner.model.num_items == capacity  # a free row was recycled, nothing grew
    row = learner.vocab.index("newcomer")
    assert row != 0 and row not in (learner.vocab.index("f"), learner.vocab.index("g"))
    assert sum(item not in learner.vocab for item in "abcdehijklmno") == 1  # the recycled row's old item is gone
    learner.add(_walk(["a", "b"], T0 + 520))  # an expired item clicked again comes back
    assert "a" in learner.vocab and bool(learner.model.rankable[learner.vocab.index("a")])


def test_replay_and_distillation_take_part_in_steps(tiny_checkpoint: Checkpoint) -> None:
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=4, replay_mix=0.5,
                                                               distillation_weight=1.0, distill_from="latest"))
    learner.add(_walk(["a", "b", "c", "d", "e"], T0))
    first = learner.step()
    assert first is not None and first.replayed_examples == 0  # nothing to replay yet
    learner.snapshot({})  # the published version becomes the teacher
    learner.add(_walk(["f", "g", "h", "i", "j", "unseen1", "unseen2"], T0 + 10))  # grows past the teacher's rows
    learner.add(_walk(["unseen1", "unseen2", "a"], T0 + 20))
    reports = [r for r in iter(learner.step, None)]
    assert any(r.replayed_examples > 0 for r in reports)
    assert all(torch.isfinite(torch.tensor(r.loss)) for r in reports)
    assert any(r.distillation >= 0 and r.replayed_examples for r in reports)


def test_the_teacher_is_the_starting_checkpoint_unless_it_follows_every_snapshot(tiny_checkpoint: Checkpoint) -> None:
    anchored = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=4))
    following = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=4, distill_from="latest"))
    for learner in (anchored, following):
        learner.add(_walk(["a", "b", "c", "d", "e"], T0))
        _drain(learner)
        learner.snapshot({})
    start = tiny_checkpoint.build_model().state_dict()
    assert anchored.teacher is not None and following.teacher is not None
    assert all(torch.equal(start[k], v) for k, v in anchored.teacher.state_dict().items() if k in start)
    assert all(torch.equal(following.model.state_dict()[k], v) for k, v in following.teacher.state_dict().items())
    with pytest.raises(ValueError, match="distill_from"):
        OnlineSettings(distill_from="newest")


def test_a_row_recycled_since_the_teacher_gets_no_target_mass_from_it(tiny_checkpoint: Checkpoint) -> None:
    """The teacher knows a recycled row as its old item: that row must not be distilled towards it."""
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=2, item_ttl_s=100.0))
    learner.add(_walk(["a", "b", "c"], T0))
    learner.add(_walk(["f", "g"], T0 + 500))  # everything but f, g expires
    _drain(learner)
    learner.add(_walk(["g", "newcomer"], T0 + 510))
    row = learner.vocab.index("newcomer")
    assert row < learner.teacher.num_items and learner.recycled_since_teacher == {row}  # type: ignore[union-attr]
    f, g = learner.vocab.index("f"), learner.vocab.index("g")
    student = torch.zeros(1, learner.model.num_items)
    student[0, row] = 5.0  # the student puts its mass on the recycled row; the teacher may not pull it away
    with_row = learner._distillation(student, [([f, g], [])])
    student[0, row] = -5.0
    without_row = learner._distillation(student, [([f, g], [])])
    assert torch.isfinite(with_row) and torch.isfinite(without_row)
    learner.recycled_since_teacher.clear()  # as if the teacher knew the row: now its old item's logit counts
    assert not torch.allclose(learner._distillation(student, [([f, g], [])]), without_row)


def test_an_item_added_in_the_teachers_spare_capacity_is_unknown_to_it(tiny_checkpoint: Checkpoint) -> None:
    """Capacity beyond the vocabulary holds no item the teacher knows: a click there is no context for it."""
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=2, distill_from="latest"))
    learner.add(_walk(["a", "first"], T0))  # grows the capacity
    learner.snapshot({})  # the teacher now has spare rows
    learner.add(_walk(["b", "late"], T0 + 10))  # appended within the teacher's capacity
    assert learner.teacher is not None
    late, a = learner.vocab.index("late"), learner.vocab.index("a")
    assert learner.teacher_rows <= late < learner.teacher.num_items
    student = torch.randn(1, learner.model.num_items)
    assert float(learner._distillation(student, [([late], [])])) == 0.0  # nothing it knows: skipped
    with_late = learner._distillation(student, [([a, late], [])])
    assert torch.allclose(with_late, learner._distillation(student, [([a], [])]))  # the click it cannot read drops
    student[0, late] = 50.0  # the student ranks the new row first; the teacher puts no mass there to pull it
    assert torch.isfinite(learner._distillation(student, [([a], [])]))


def test_a_learner_behind_skips_gradient_steps_but_keeps_the_statistics(tiny_checkpoint: Checkpoint) -> None:
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=2, max_pending_examples=3))
    learner.add(_walk(["a", "b", "n1", "n2", "n3", "x1", "x2"], T0))
    assert len(learner.pending) == 3 and learner.skipped == 3
    assert learner.stats.freq[learner.vocab.index("n1")] == 1.0  # a skipped example is counted at once
    assert learner.stats.freq[learner.vocab.index("x2")] == 0.0  # a waiting one when a step trains on it
    assert len(learner.replay) == 3  # skipped examples still enter the replay buffer
    learner.snapshot({})
    assert learner.stats.freq[learner.vocab.index("x2")] == 1.0  # a snapshot counts the waiting ones


def test_a_step_never_reads_counts_of_the_examples_it_trains_on_however_far_behind(
    tiny_checkpoint: Checkpoint,
) -> None:
    """A backlog (a trainer catching up) is learned as a stream is: each micro-batch before its clicks reach
    the tables. Counting the backlog first taught the model to trust tables that held its targets."""
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=2))
    learner.add(_walk(["a", "b", "fresh1", "fresh2", "fresh3"], T0))  # 4 waiting examples: 2 steps
    fresh = [learner.vocab.index(f"fresh{n}") for n in (1, 2, 3)]
    assert all(learner.stats.freq[row] == 0.0 for row in fresh)
    learner.step()
    assert learner.stats.freq[fresh[0]] == 1.0 and learner.stats.freq[fresh[1]] == 0.0  # b -> fresh1 counted
    learner.step()
    assert [learner.stats.freq[row] for row in fresh] == [1.0, 1.0, 1.0]
    assert learner.step() is None and learner.uncounted == 0
    learner.snapshot({})
    assert [learner.stats.freq[row] for row in fresh] == [1.0, 1.0, 1.0]  # nothing counted twice


def test_checkpoints_from_before_the_rankable_mask_still_load(tiny_checkpoint: Checkpoint) -> None:
    state = {k: v for k, v in tiny_checkpoint.state_dict.items() if k != "rankable"}
    old = Checkpoint(tiny_checkpoint.preset, tiny_checkpoint.config, tiny_checkpoint.vocab, state)
    assert old.build_model().rankable.all() and old.num_rows == len(old.vocab)


def test_a_recycled_vocabulary_row_names_only_its_new_item() -> None:
    from streamrec.state.vocab import ItemVocabulary

    vocab = ItemVocabulary(["x", "y"])
    vocab.reassign(1, "z")
    assert vocab.index("x") == 0 and vocab.index("z") == 1 and vocab.to_list() == ["z", "y"]
    assert ItemVocabulary.from_list(vocab.to_list()).index("z") == 1


def test_the_ttl_of_checkpoint_items_starts_at_the_first_click(tiny_checkpoint: Checkpoint) -> None:
    learner = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=2, item_ttl_s=100.0))
    learner.add(_walk(["a", "b"], T0))
    learner.add(_walk(["a", "b"], T0 + 50))
    _drain(learner)
    assert set(learner.recommend([["a"]], 20)[0]) == set(tiny_checkpoint.vocab.items)  # nothing expired yet


def test_prequential_publishing_and_restarting_keeps_learning(tiny_checkpoint: Checkpoint) -> None:
    from streamrec.models.online.prequential import Continual, prequential
    from streamrec.state.clicklog.types import LoggedClick

    clicks = [LoggedClick(f"s{n}", None, item, T0 + 10 * n + t)
              for n in range(12) for t, item in enumerate(["a", "b", "z1", "z2"])]
    restarted = Continual(ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=4)),
                          publish_every_steps=2, resume_on_publish=True)
    result = prequential(clicks, {"continual": restarted}, chunk=4)
    assert restarted.snapshots == restarted.steps // 2 > 0 and restarted.learner.steps == restarted.steps
    assert result.metrics["continual"].count == 36
    assert restarted.learner.recommend([["a", "b"]], 3)[0][0] == "z1"  # learned across restarts


def test_tables_only_learns_the_counts_and_new_items_but_never_moves_a_weight(tiny_checkpoint: Checkpoint) -> None:
    """The ablation that separates counting from gradient steps: same tables and rows, frozen weights."""
    tables_only = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=4, learn_weights=False))
    trained = ContinualLearner(tiny_checkpoint, OnlineSettings(micro_batch_size=4))
    before = {k: v.clone() for k, v in tables_only.model.named_parameters()}
    for learner in (tables_only, trained):
        for n in range(4):
            learner.add(_walk(["a", "b", "newbie", f"next{n % 2}"], T0 + 10 * n))
        assert _drain(learner) > 0
    for name, value in tables_only.model.named_parameters():
        rows = before[name].shape[0]
        assert torch.equal(value[:rows], before[name]), name  # no weight moved (grown rows are new)
    assert any(not torch.equal(v[: before[k].shape[0]], before[k]) for k, v in trained.model.named_parameters())
    assert tables_only.teacher is None
    for learner in (tables_only, trained):
        assert learner.stats.freq[learner.vocab.index("newbie")] == 4.0  # the same counts either way
    for mine, theirs in zip(tables_only.model.head.tables(), trained.model.head.tables()):
        assert torch.equal(mine, theirs)  # the head reads the same streamed tables
    assert tables_only.vocab.to_list() == trained.vocab.to_list()  # and the same grown catalogue


def test_a_resumed_learner_keeps_distilling_towards_the_checkpoint_it_started_from(
    tiny_checkpoint: Checkpoint,
) -> None:
    """A trainer restart must not move the anchor: with `start`, the teacher is the start, not the snapshot."""
    settings = OnlineSettings(micro_batch_size=2, item_ttl_s=100.0)
    learner = ContinualLearner(tiny_checkpoint, settings)
    learner.add(_walk(["a", "b", "c"], T0))
    learner.add(_walk(["f", "g"], T0 + 500))  # everything but f, g expires
    learner.add(_walk(["g", "newcomer"], T0 + 510))  # ... and newcomer takes a recycled row
    _drain(learner)
    snapshot = learner.snapshot({})
    anchored = ContinualLearner.resume(snapshot, settings, start=tiny_checkpoint)
    unanchored = ContinualLearner.resume(snapshot, settings)
    start, moved = tiny_checkpoint.build_model().state_dict(), snapshot.build_model().state_dict()
    assert anchored.teacher is not None and unanchored.teacher is not None
    assert all(torch.equal(start[k], v) for k, v in anchored.teacher.state_dict().items() if k in start)
    assert not all(torch.equal(moved[k], v) for k, v in anchored.teacher.state_dict().items() if k in moved)
    assert all(torch.equal(moved[k], v) for k, v in unanchored.teacher.state_dict().items() if k in moved)
    unknown_to_start = {anchored.vocab.index(i) for i in anchored.vocab.to_list() if i not in tiny_checkpoint.vocab}
    assert anchored.vocab.index("newcomer") in unknown_to_start
    assert all(r >= anchored.teacher_rows or r in anchored.recycled_since_teacher for r in unknown_to_start)
    assert all(r in unknown_to_start or tiny_checkpoint.vocab.item(r) != anchored.vocab.item(r)
               for r in anchored.recycled_since_teacher)  # nothing the start knows as the same item
    assert unanchored.recycled_since_teacher == set()
    following = ContinualLearner.resume(snapshot, OnlineSettings(distill_from="latest"), start=tiny_checkpoint)
    assert following.teacher is not None
    assert all(torch.equal(moved[k], v) for k, v in following.teacher.state_dict().items() if k in moved)
