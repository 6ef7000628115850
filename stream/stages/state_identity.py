"""Local state is never reused against another cluster: the worker checks what its state folder belongs to.

A state folder (`state.dir`: the stateful stage's RocksDB stores with the changelog offsets they applied,
the scoring statistics with their per-partition learned offsets, the API's store of the latest answers
with its consumed offsets) is a cache of one cluster's topics. Pointed
at another cluster with the same topic names (a new broker, an emptied one, a restored backup), those offsets
name other records. Quix noticed only when the stored offset was past the new changelog's end
(`InvalidStoreChangelogOffset`); when the new changelog was longer it resumed from the old state silently
(tests/stream/stages/test_stale_state.py reproduces it: a session on the new cluster came out with the old
one's clicks).

So every cluster carries a *deployment id*: the first record of the compacted topic `<prefix>streamrec.deployment`
(a random id the first worker writes; concurrent first starts all adopt the first record), and every state
folder records the id it was built against (state/local.py, `streamrec-state.json`). At start the worker
compares them (`check_local_state`; `streamrec serve` does too, as it keeps its store in the same folder):

- folder empty: it records the cluster's id (claiming one if the cluster has none) and starts;
- folder and cluster agree: starts;
- they differ, or the folder names a deployment while the cluster has none (a new or emptied cluster): the
  worker refuses with one line naming `streamrec state clear`, which deletes the folder; the next start
  rebuilds it from the changelogs and the scoring-requests topic. Never reused silently.
- a folder with stores but no identity (written by a version before this check): adopted, with a warning,
  when the cluster has no id yet (an upgrade in place); refused when the cluster has one (it cannot be told
  apart from a folder copied from elsewhere).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from streamrec.config import Settings
from streamrec.state.local import StateIdentity, has_state, identity_lock, read_identity, write_identity
from streamrec.stream.kafka import build_admin, build_consumer, build_producer, identity_group

log = logging.getLogger(__name__)

DEPLOYMENT_TOPIC = "streamrec.deployment"
_TIMEOUT_S = 15.0


class StaleStateError(Exception):
    """The local state folder belongs to another cluster; the message is the one line to show."""


def deployment_topic(settings: Settings) -> str:
    return settings.kafka.topic_prefix + DEPLOYMENT_TOPIC


def _ensure_topic(settings: Settings) -> None:
    admin = build_admin(settings.kafka)
    topic = NewTopic(deployment_topic(settings), num_partitions=1, replication_factor=settings.kafka.replication_factor,
                     config={"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"})
    for future in admin.create_topics([topic], operation_timeout=_TIMEOUT_S).values():
        try:
            future.result(timeout=_TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def read_deployment(settings: Settings) -> tuple[str | None, str | None]:
    """(the cluster's deployment id, or None when it has none yet; the broker's cluster id where reported)."""
    topic = deployment_topic(settings)
    consumer = build_consumer(settings.kafka, identity_group(),
                              {"enable.auto.commit": False, "enable.partition.eof": True})
    try:
        metadata = consumer.list_topics(topic, timeout=_TIMEOUT_S)
        cluster_id = metadata.cluster_id or None
        described = metadata.topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            return None, cluster_id
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=_TIMEOUT_S, cached=False)
        if high <= low:
            return None, cluster_id
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + _TIMEOUT_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            return json.loads(message.value())["deployment_id"], cluster_id
        raise StaleStateError(f"could not read {topic} within {_TIMEOUT_S:.0f} s; is the broker healthy?")
    finally:
        consumer.close()


def claim_deployment(settings: Settings) -> str:
    """The cluster's deployment id, written first if it has none (the first record wins a race)."""
    _ensure_topic(settings)
    found, _ = read_deployment(settings)
    if found is not None:
        return found
    new_id = uuid.uuid4().hex
    producer = build_producer(settings.kafka, {"batch.num.messages": 1})
    producer.produce(deployment_topic(settings), key=new_id.encode(),
                     value=json.dumps({"deployment_id": new_id, "created_at": time.time()}).encode())
    producer.flush(_TIMEOUT_S)
    found, _ = read_deployment(settings)
    if found is None:
        raise StaleStateError(f"could not record a deployment id in {deployment_topic(settings)}; is the broker "
                              "healthy?")
    return found


def check_local_state(settings: Settings) -> None:
    """Refuse (StaleStateError) a state folder built against another cluster; record the identity of a new one.

    Under the folder's identity lock, so processes sharing it check one after another."""
    with identity_lock(settings.state.dir):
        _check_locked(settings)


def _check_locked(settings: Settings) -> None:
    directory = settings.state.dir
    local = read_identity(directory) if has_state(directory) else None
    cluster, cluster_id = read_deployment(settings)
    clear = (f"run `streamrec state clear` (deletes {directory}; the next start rebuilds it from the changelogs "
             "and the scoring-requests topic)")
    if local is None:
        if has_state(directory):
            if cluster is not None:
                raise StaleStateError(f"local state in {directory} records no cluster and this cluster already has "
                                      f"deployment {cluster}, so it may come from elsewhere: {clear}")
            log.warning("local state in %s records no cluster (written before this check); "
                        "adopting it for this cluster", directory)
        deployment = cluster or claim_deployment(settings)
        write_identity(directory, StateIdentity(deployment, cluster_id, settings.kafka.topic_prefix))
        return
    if cluster is None:
        raise StaleStateError(f"local state in {directory} was built against deployment {local.deployment_id}, but the "
                              f"cluster at {settings.kafka.bootstrap_servers} has none (a new or emptied cluster): "
                              f"{clear}")
    if cluster != local.deployment_id:
        raise StaleStateError(f"local state in {directory} was built against deployment {local.deployment_id}, not "
                              f"this cluster's {cluster}: {clear}")
