"""The faust engine's own offset bookkeeping (`_Checkpoints`) and its reader of records faust skipped."""

from __future__ import annotations

import asyncio

from confluent_kafka import Producer
from faust.types import TP

from streamrec.config import Settings
from streamrec.stream.stages.engines.faust import _Checkpoints, _read_skipped
from streamrec.stream.topics import Topics


def test_commits_only_processed_offsets_whose_records_are_acknowledged() -> None:
    async def scenario() -> list[dict[TP, int]]:
        tp = TP("clicks", 0)
        checkpoints = _Checkpoints(lambda _: 95)
        commits: list[dict[TP, int]] = []

        async def commit(offsets: object) -> bool:
            commits.append(dict(offsets))  # type: ignore[call-overload]
            return True

        assert checkpoints.expected(tp, 97) == 95  # starts from the committed offset, not the first record read
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        checkpoints.processed(tp, 95, checkpoints.epoch, [delivered])
        checkpoint = asyncio.create_task(checkpoints.checkpoint(commit))
        await asyncio.sleep(0.05)
        assert commits == []  # the record 95 produced is not acknowledged yet
        delivered.set_result(None)
        await checkpoint
        checkpoints.processed(tp, 99, checkpoints.epoch, [])  # 96..98 read directly, absent from the log
        assert checkpoints.expected(tp, 101) == 100
        epoch = checkpoints.epoch
        checkpoints.forget({tp})
        checkpoints.processed(tp, 100, epoch, [])  # finished after its partition was revoked: not counted
        await checkpoints.checkpoint(commit)
        return commits

    assert asyncio.run(scenario()) == [{TP("clicks", 0): 96}]


def test_read_skipped_returns_the_records_in_range(stream_settings: Settings) -> None:
    topic = Topics(stream_settings.kafka.topic_prefix).clicks
    producer = Producer({"bootstrap.servers": stream_settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    for n in range(10):
        producer.produce(topic, key=b"k", value=str(n).encode(), partition=1)
    assert producer.flush(30) == 0
    records = asyncio.run(_read_skipped(stream_settings.kafka.bootstrap_servers, TP(topic, 1), 3, 7))
    assert [(offset, value) for offset, _, value in records] == [(3, b"3"), (4, b"4"), (5, b"5"), (6, b"6")]
