"""LearnedLedger: which clicks statistics contain, persisted atomically with them, bounded."""

from __future__ import annotations

from pathlib import Path

from streamrec.state.cooccurrence import CooccurrencePolicy, CooccurrenceStats
from streamrec.state.learned import LearnedLedger


def test_a_re_read_offset_or_a_re_emitted_event_id_is_recognised() -> None:
    ledger = LearnedLedger(capacity=10)
    ledger.mark("e1", "requests:0", 5)
    assert ledger.seen("e1", "requests:1", 0)  # re-emitted elsewhere: same event_id
    assert ledger.seen("other", "requests:0", 3)  # re-read below the watermark
    assert not ledger.seen("other", "requests:0", 6) and not ledger.seen("other", "requests:1", 5)
    assert ledger.watermark("requests:0") == 6 and ledger.watermark("requests:1") is None


def test_only_the_newest_ids_are_kept() -> None:
    ledger = LearnedLedger(capacity=3)
    for n in range(5):
        ledger.mark(f"e{n}")
    assert len(ledger) == 3 and not ledger.seen("e1") and ledger.seen("e4")
    assert not ledger._new_ids and not ledger._forgotten  # in memory: no pending writes pile up


def test_the_ledger_is_flushed_and_reloaded_with_the_statistics(tmp_path: Path) -> None:
    stats = CooccurrenceStats(CooccurrencePolicy(window=2), path=tmp_path / "s", learned_ids_kept=2)
    for n, items in enumerate((["a"], ["a", "b"], ["a", "b", "c"])):
        stats.observe_click(items)
        stats.learned.mark(f"e{n}", "requests:0", n)
    stats.close()
    again = CooccurrenceStats(CooccurrencePolicy(window=2), path=tmp_path / "s", learned_ids_kept=2)
    assert again.clicks == 3 and again.learned.durable
    assert again.learned.watermark("requests:0") == 3
    assert again.learned.seen("e2") and not again.learned.seen("e0")  # the oldest was forgotten, also on disk
    again.close()


def test_what_was_not_flushed_is_neither_counted_nor_marked(tmp_path: Path) -> None:
    """A crash between flushes: the counts and the ledger come back as of the last flush, together."""
    stats = CooccurrenceStats(CooccurrencePolicy(window=2), path=tmp_path / "s")
    stats.observe_click(["a"])
    stats.learned.mark("e0", "requests:0", 0)
    stats.flush()
    stats.observe_click(["a", "b"])
    stats.learned.mark("e1", "requests:0", 1)
    stats._db.close()  # type: ignore[union-attr]  # no flush: what a SIGKILL leaves
    again = CooccurrenceStats(CooccurrencePolicy(window=2), path=tmp_path / "s")
    assert again.clicks == 1 and again.learned.seen("e0") and not again.learned.seen("e1")
    assert again.learned.watermark("requests:0") == 1
    again.close()
