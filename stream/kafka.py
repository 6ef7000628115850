"""The one place streamrec makes Kafka clients: their settings, the builders, and the group and topic names.

Why one module: every client of a deployment talks to the same cluster, so what it takes to reach a
secured one (`kafka.client_config`: `security.protocol`, `sasl.*`, `ssl.*`) must reach all of them,
the clients the engines' libraries make included (Quix's librdkafka clients, faust's and aiokafka's).
When each call site wrote its own `{"bootstrap.servers": ...}`, one that forgot a key would only
fail against a real cluster. tests/stream/test_kafka_clients.py keeps every construction of a
client here; the engines keep only engine concerns (stream/stages/engines/).

The builders take the deployment's `KafkaSettings`, or bare bootstrap servers where there are no
settings (the embedded broker, a web app's plain client): those get no security keys.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from streamrec.config import Settings
from streamrec.config.settings import KafkaSettings
from streamrec.stream.observability.stage_errors import ConfigurationError
from streamrec.stream.topics import DeadLetterLimits, Topics

if TYPE_CHECKING:
    import aiokafka
    from faust.types.auth import CredentialsT

Cluster = KafkaSettings | str
"""The deployment's Kafka settings, or bare bootstrap servers (a plain cluster: no security keys)."""
ClientConfig = dict[str, Any]
"""librdkafka settings: strings and numbers, and callbacks such as `stats_cb`."""


class ClientConfigError(ConfigurationError):
    """`kafka.client_config` asks for something a client library cannot do; the message is the line to show."""


# --- settings -------------------------------------------------------------------------------------

def connection_config(cluster: Cluster) -> dict[str, str]:
    """What every client needs to reach the cluster: `bootstrap.servers` and the security pass-through."""
    if isinstance(cluster, str):
        return {"bootstrap.servers": cluster}
    return {"bootstrap.servers": cluster.bootstrap_servers, **cluster.client_config}


def consumer_config(settings: Settings) -> dict[str, str | int]:
    """librdkafka consumer settings: the session timeout, heartbeats well inside it, the fetch wait and size."""
    timeout_ms = settings.kafka.session_timeout_ms
    fetch_max_bytes = max(settings.kafka.max_message_bytes, settings.kafka.consumer_buffer_kbytes * 1024)
    return {
        "session.timeout.ms": timeout_ms,
        "heartbeat.interval.ms": max(100, timeout_ms // 3),
        "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms,
        "max.partition.fetch.bytes": settings.kafka.max_message_bytes,
        "queued.max.messages.kbytes": settings.kafka.consumer_buffer_kbytes,
        # one fetch response is buffered whole before it joins the queue: no larger than the queue (librdkafka: 50 MiB)
        "fetch.max.bytes": fetch_max_bytes,
        "receive.message.max.bytes": max(100_000_000, fetch_max_bytes + 512),  # librdkafka refuses less
    }


def producer_config(settings: Settings) -> dict[str, str | int]:
    """librdkafka producer settings: the record size limit; one record per batch where the broker's watermarks need
    it."""
    config: dict[str, str | int] = {
        "linger.ms": settings.kafka.linger_ms,
        "message.max.bytes": settings.kafka.max_message_bytes,
        "queue.buffering.max.kbytes": settings.kafka.producer_buffer_kbytes,
    }
    if settings.kafka.single_record_batches:
        config["batch.num.messages"] = 1
    return config


def dead_letter_limits(settings: Settings) -> DeadLetterLimits:
    """How much of a rejected record its dead letter keeps, and the record size it must fit (the producer's limit)."""
    return DeadLetterLimits.within(settings.kafka.dlq_max_original_bytes, settings.kafka.max_message_bytes)


# --- builders -------------------------------------------------------------------------------------

CLIENT_LOG_LEVEL = 4
"""librdkafka's own stderr lines at warning and above (syslog levels; its default 6 adds info lines such as
"Purging 1 unserved events from background queue" at close, which would land in a command's one-line errors).
A client's `config` may set another `log_level`."""

def consumer_settings(cluster: Cluster, group_id: str, config: Mapping[str, Any] | None = None) -> ClientConfig:
    """The whole config `build_consumer` hands librdkafka (`config` wins over the connection keys)."""
    return {**connection_config(cluster), "log_level": CLIENT_LOG_LEVEL, "group.id": group_id, **(config or {})}


def producer_settings(cluster: Cluster, config: Mapping[str, Any] | None = None) -> ClientConfig:
    """The whole config `build_producer` hands librdkafka: acks=all unless `config` says otherwise."""
    return {**connection_config(cluster), "log_level": CLIENT_LOG_LEVEL, "acks": "all", **(config or {})}


def build_consumer(cluster: Cluster, group_id: str, config: Mapping[str, Any] | None = None) -> Consumer:
    """A librdkafka consumer in `group_id` (one of the group names below) with `config` on top of the connection."""
    return Consumer(consumer_settings(cluster, group_id, config))


def build_producer(cluster: Cluster, config: Mapping[str, Any] | None = None) -> Producer:
    """A librdkafka producer (acks=all: a record counts as sent once every in-sync replica has it)."""
    return Producer(producer_settings(cluster, config))


def build_admin(cluster: Cluster, config: Mapping[str, Any] | None = None) -> AdminClient:
    """A librdkafka admin client (topics, configs, consumer groups)."""
    return AdminClient({**connection_config(cluster), "log_level": CLIENT_LOG_LEVEL, **(config or {})})


# --- group and topic names ------------------------------------------------------------------------
# Groups that commit offsets are named after `kafka.consumer_group`, so several deployments share a
# cluster; readers that only assign partitions still need a group.id (librdkafka) and get a unique one.

def topics(settings: Settings) -> Topics:
    """The deployment's topic names (`kafka.topic_prefix` applied)."""
    return Topics(settings.kafka.topic_prefix)


def stateful_group(settings: Settings) -> str:
    """Consumer group of the stateful stage (its changelog topics are named after it too)."""
    return f"{settings.kafka.consumer_group}-stateful"


def scoring_group(settings: Settings) -> str:
    """Consumer group of the scoring stage."""
    return f"{settings.kafka.consumer_group}-scoring"


def trainer_group(settings: Settings) -> str:
    """Consumer group of the trainer (its commits only serve lag monitoring: it resumes from its store)."""
    return f"{settings.kafka.consumer_group}-trainer"


def reader_group(settings: Settings, reader: str, unique_chars: int = 8) -> str:
    """A unique group.id for a reader that assigns partitions itself and never commits (`reader`: what it reads for)."""
    return f"{settings.kafka.consumer_group}-{reader}-{uuid.uuid4().hex[:unique_chars]}"


def relearn_group(group_id: str) -> str:
    """A unique group.id for re-reading what `group_id` answered (never commits)."""
    return f"{group_id}-relearn-{uuid.uuid4().hex[:8]}"


def identity_group() -> str:
    """A unique group.id for reading the cluster's deployment id (stream/stages/state_identity.py)."""
    return f"identity-{uuid.uuid4().hex[:8]}"


def shadow_consumer_group(settings: Settings, name: str) -> str:
    """The `kafka.consumer_group` of a shadow deployment (`name`: its scorer) that answers every request again."""
    return f"{settings.kafka.consumer_group}-shadow-{name}"


# --- the engines' libraries -----------------------------------------------------------------------

def quix_clients(settings: Settings, consumer_extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Quix `Application` keyword arguments for its clients: the broker address and librdkafka extra configs.

    The security keys go into both extra configs: Quix builds its admin client from the producer's.
    """
    security = dict(settings.kafka.client_config)
    return {
        "broker_address": settings.kafka.bootstrap_servers,
        "consumer_extra_config": {**security, **consumer_config(settings), **(consumer_extra or {})},
        "producer_extra_config": {**security, **producer_config(settings)},
    }


AIOKAFKA_KEYS = frozenset({
    "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password",
    "sasl.kerberos.service.name", "ssl.ca.location", "ssl.certificate.location", "ssl.key.location",
    "ssl.key.password", "ssl.endpoint.identification.algorithm",
})
"""The `kafka.client_config` keys aiokafka (the faust engine's client) has an equivalent of."""
AIOKAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI")
"""SASL mechanisms aiokafka can be given from settings alone (OAUTHBEARER needs a token provider object)."""


def aiokafka_security(cluster: Cluster) -> dict[str, Any]:
    """aiokafka keyword arguments equivalent to `kafka.client_config` (empty when it is empty).

    Raises ClientConfigError for a key aiokafka has no equivalent of, or a certificate file it cannot read.
    """
    config = {} if isinstance(cluster, str) else dict(cluster.client_config)
    if not config:
        return {}
    unsupported = sorted(set(config) - AIOKAFKA_KEYS)
    if unsupported:
        raise ClientConfigError(f"kafka.client_config: the faust engine's aiokafka clients have no equivalent of "
                                f"{', '.join(unsupported)} (they take {', '.join(sorted(AIOKAFKA_KEYS))}); "
                                "use the quix engine for those")
    protocol = config.get("security.protocol", "PLAINTEXT").upper()
    security: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        security["ssl_context"] = _ssl_context(config)
    if protocol.startswith("SASL"):
        # GSSAPI: librdkafka's default
        mechanism = (config.get("sasl.mechanism") or config.get("sasl.mechanisms") or "GSSAPI").upper()
        if mechanism not in AIOKAFKA_SASL_MECHANISMS:
            raise ClientConfigError("kafka.client_config: the faust engine's aiokafka clients cannot use "
                                    f"sasl.mechanism {mechanism} from settings (they take "
                                    f"{', '.join(AIOKAFKA_SASL_MECHANISMS)}); use the quix engine for it")
        security["sasl_mechanism"] = mechanism
        if mechanism == "GSSAPI":
            security["sasl_kerberos_service_name"] = config.get("sasl.kerberos.service.name", "kafka")
        else:
            security["sasl_plain_username"] = config.get("sasl.username")
            security["sasl_plain_password"] = config.get("sasl.password")
    return security


def _ssl_context(config: Mapping[str, str]) -> ssl.SSLContext:
    """The TLS context librdkafka would make from the `ssl.*` keys: the CA (else the system's), a client certificate."""
    try:
        context = ssl.create_default_context(cafile=config.get("ssl.ca.location"))
        if "ssl.certificate.location" in config:
            context.load_cert_chain(config["ssl.certificate.location"], config.get("ssl.key.location"),
                                    config.get("ssl.key.password"))
    except OSError as exc:
        raise ClientConfigError(f"kafka.client_config: cannot read a certificate or key file: {exc}") from None
    if config.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
        context.check_hostname = False
    return context


def faust_credentials(cluster: Cluster) -> CredentialsT | None:
    """faust's `broker_credentials` for `kafka.client_config` (None: a plain cluster); the same mapping as
    aiokafka's."""
    from faust.auth import GSSAPICredentials, SASLCredentials, SSLCredentials

    security = aiokafka_security(cluster)
    protocol = security.get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(security["ssl_context"])
    if security["sasl_mechanism"] == "GSSAPI":
        return GSSAPICredentials(kerberos_service_name=security["sasl_kerberos_service_name"],
                                 ssl_context=security.get("ssl_context"))
    return SASLCredentials(username=security["sasl_plain_username"], password=security["sasl_plain_password"],
                           ssl_context=security.get("ssl_context"), mechanism=security["sasl_mechanism"])


def faust_broker(settings: Settings) -> dict[str, Any]:
    """faust `App` keyword arguments for its clients: broker URLs, credentials, the session and the record sizes."""
    kafka = settings.kafka
    session_timeout_s = kafka.session_timeout_ms / 1000
    return {
        "broker": ";".join(f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")),
        "broker_credentials": faust_credentials(kafka),
        "broker_session_timeout": session_timeout_s,
        "broker_heartbeat_interval": session_timeout_s / 3,
        "producer_linger": kafka.linger_ms / 1000,
        # aiokafka closes a batch once it is full but always takes a first record: size 1 = one record per batch.
        "producer_max_batch_size": 1 if kafka.single_record_batches else 16384,
        "producer_max_request_size": kafka.max_message_bytes,
        "consumer_max_fetch_size": kafka.max_message_bytes,
    }


def build_aiokafka_consumer(cluster: Cluster, **kwargs: Any) -> aiokafka.AIOKafkaConsumer:
    """An aiokafka consumer (faust's client library) with `kafka.client_config` mapped onto it; `kwargs` as
    aiokafka's."""
    import aiokafka

    bootstrap = cluster if isinstance(cluster, str) else cluster.bootstrap_servers
    servers = [server.strip() for server in bootstrap.split(",")]
    return aiokafka.AIOKafkaConsumer(bootstrap_servers=servers, **aiokafka_security(cluster), **kwargs)
