"""Topic administration: create the deployment's topics, idempotently, with explicit retention.

Explicit `retention.ms` / `retention.bytes` are set on every topic because some
brokers (the embedded Tansu) report no defaults, and Quix Streams refuses topics
whose retention it cannot read.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streamrec.config import Settings
from streamrec.stream.topics import COMPACTED_TOPICS, Topics

_TIMEOUT_S = 30.0


def topic_config(settings: Settings) -> dict[str, str]:
    """The topic-level config streamrec sets on every topic it creates."""
    return {"retention.ms": str(settings.kafka.retention_ms), "retention.bytes": str(settings.kafka.retention_bytes)}


def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics of `Topics(kafka.topic_prefix)`; return the names created (existing ones are kept)."""
    kafka = settings.kafka
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    existing = set(admin.list_topics(timeout=_TIMEOUT_S).topics)
    compacted = {kafka.topic_prefix + name for name in COMPACTED_TOPICS}
    wanted = [
        NewTopic(name, num_partitions=1 if name in compacted else kafka.partitions,
                 replication_factor=kafka.replication_factor,
                 config={**topic_config(settings), **({"cleanup.policy": "compact"} if name in compacted else {})})
        for name in Topics(kafka.topic_prefix).all
        if name not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=_TIMEOUT_S).items():
        try:
            future.result(timeout=_TIMEOUT_S)
            created.append(name)
        except KafkaException as exc:  # another worker created it meanwhile: fine
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created
