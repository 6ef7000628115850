"""Topic administration: create the deployment's topics, idempotently, with explicit retention.

Explicit `retention.ms` / `retention.bytes` are set on every topic because some
brokers (the embedded Tansu) report no defaults, and Quix Streams refuses topics
whose retention it cannot read (`KeyError: 'retention.ms'`). Every command that produces
(`worker`, `produce`, `replay`, `demo`) calls `ensure_topics` first; a topic that exists
without them (auto-created by a broker when a client produced to it first) gets them set.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from streamrec.config import Settings
from streamrec.stream.kafka import build_admin, topics
from streamrec.stream.topics import COMPACTED_TOPICS

log = logging.getLogger(__name__)

_TIMEOUT_S = 30.0


def topic_config(settings: Settings) -> dict[str, str]:
    """The topic-level config streamrec sets on every topic it creates."""
    return {"retention.ms": str(settings.kafka.retention_ms), "retention.bytes": str(settings.kafka.retention_bytes)}


def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics of `Topics(kafka.topic_prefix)` and give existing ones the retention config
    they lack; return the names created (existing ones keep their partitions and any retention they have)."""
    kafka = settings.kafka
    admin = build_admin(kafka)
    listed = admin.list_topics(timeout=_TIMEOUT_S).topics
    names = topics(settings).all
    existing = [name for name in names if name in listed]
    compacted = {kafka.topic_prefix + name for name in COMPACTED_TOPICS}
    for name in existing:
        if len(listed[name].partitions) != (1 if name in compacted else kafka.partitions):
            log.warning("topic %s has %d partitions, not kafka.partitions=%d (created by someone else?)",
                        name, len(listed[name].partitions), kafka.partitions)
    repair_topic_configs(admin, existing, topic_config(settings))
    wanted = [
        NewTopic(name, num_partitions=1 if name in compacted else kafka.partitions,
                 replication_factor=kafka.replication_factor,
                 config={**topic_config(settings), **({"cleanup.policy": "compact"} if name in compacted else {})})
        for name in names
        if name not in listed
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


def repair_topic_configs(admin: AdminClient, names: list[str], config: dict[str, str]) -> list[str]:
    """Set the entries of `config` that each topic in `names` lacks (values it has are kept); return those changed.

    A broker that auto-creates a topic on first produce (Tansu does; Kafka with
    auto.create.topics.enable) leaves it without them. Kafka always reports its defaults, so
    there this changes nothing.
    """
    if not names:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    missing: dict[str, list[str]] = {}
    for resource, future in admin.describe_configs(resources).items():
        present = future.result(timeout=_TIMEOUT_S)
        lacking = [key for key in config if key not in present or present[key].value is None]
        if lacking:
            missing[resource.name] = lacking
    if not missing:
        return []
    changes = [
        ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
            ConfigEntry(key, config[key], incremental_operation=AlterConfigOpType.SET) for key in keys
        ])
        for name, keys in missing.items()
    ]
    for resource, future in admin.incremental_alter_configs(changes).items():
        future.result(timeout=_TIMEOUT_S)
        log.warning("topic %s existed without %s (auto-created by the broker?); set them to %s", resource.name,
                    ", ".join(missing[resource.name]), ", ".join(f"{k}={config[k]}" for k in missing[resource.name]))
    return list(missing)
