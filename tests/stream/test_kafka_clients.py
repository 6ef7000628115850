"""Every Kafka client is made by stream/kafka.py, and a secured cluster's settings reach all of them.

No broker: the checks read the package's source and the configs the module builds.
"""

from __future__ import annotations

import ast
import json
import ssl
from pathlib import Path

import pydantic
import pytest

from streamrec.config import load_settings
from streamrec.config.settings import KafkaSettings
from streamrec.errors import settings_error_line
from streamrec.stream import kafka
from streamrec.stream.harness.demo import settings_env
from streamrec.stream.kafka import ClientConfigError

REPO = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("stream", "models", "state", "config", "streamrec")
CLIENT_MODULE = REPO / "stream" / "kafka.py"
CLIENT_CLASSES = frozenset({
    "Consumer", "Producer", "AdminClient", "DeserializingConsumer", "SerializingProducer",  # confluent_kafka
    "AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaClient", "AIOKafkaAdminClient",  # aiokafka (faust's clients)
})
SASL_SSL = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "streamrec",
    "sasl.password": "s3cret-password",
}


def client_constructions(path: Path) -> list[str]:
    """`file:line Class` for every call of a Kafka client class in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in CLIENT_CLASSES:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    return found


def test_no_module_outside_the_client_module_constructs_a_kafka_client() -> None:
    sources = [path for folder in PACKAGE_FOLDERS for path in sorted((REPO / folder).rglob("*.py"))]
    assert len(sources) > 50, "the package's source was not found"
    outside = [hit for path in sources if path != CLIENT_MODULE for hit in client_constructions(path)]
    assert not outside, "build Kafka clients with streamrec.stream.kafka (build_consumer, ...): " + "; ".join(outside)
    assert {hit.split()[-1] for hit in client_constructions(CLIENT_MODULE)} >= {"Consumer", "Producer", "AdminClient",
                                                                                  "AIOKafkaConsumer"}


def test_security_settings_reach_every_client_config() -> None:
    settings = load_settings(kafka={"bootstrap_servers": "kafka-1:9093,kafka-2:9093", "client_config": SASL_SSL})
    expected = {"bootstrap.servers": "kafka-1:9093,kafka-2:9093", **SASL_SSL}
    assert kafka.connection_config(settings.kafka) == expected
    consumer = kafka.consumer_settings(settings.kafka, kafka.scoring_group(settings), kafka.consumer_config(settings))
    assert consumer.items() >= {**expected, "group.id": "streamrec-scoring"}.items()
    producer = kafka.producer_settings(settings.kafka, kafka.producer_config(settings))
    assert producer.items() >= {**expected, "acks": "all"}.items()
    quix = kafka.quix_clients(settings)  # Quix builds its admin client from the producer's extra config
    assert quix["consumer_extra_config"].items() >= SASL_SSL.items()
    assert quix["producer_extra_config"].items() >= SASL_SSL.items()
    # bare bootstrap servers (the embedded broker, a web app's plain client) get no security keys
    assert kafka.connection_config("127.0.0.1:9092") == {"bootstrap.servers": "127.0.0.1:9092"}
    assert kafka.connection_config(load_settings().kafka) == {"bootstrap.servers": "127.0.0.1:9092"}


def test_librdkafka_accepts_the_built_configs() -> None:
    """librdkafka refuses a key it does not know when the client is made (no connection is needed for that)."""
    cluster = KafkaSettings(bootstrap_servers="127.0.0.1:1", client_config=SASL_SSL)
    quiet = {"log_level": 0}
    kafka.build_producer(cluster, quiet).flush(0)
    kafka.build_consumer(cluster, "g", quiet).close()
    kafka.build_admin(cluster, quiet)


def test_faust_and_aiokafka_get_the_same_security_settings() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    cluster = KafkaSettings(client_config=SASL_SSL)
    security = kafka.aiokafka_security(cluster)
    assert (security["security_protocol"], security["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (security["sasl_plain_username"], security["sasl_plain_password"]) == ("streamrec", "s3cret-password")
    assert isinstance(security["ssl_context"], ssl.SSLContext) and security["ssl_context"].check_hostname
    faust_auth = credentials_to_aiokafka_auth(kafka.faust_credentials(cluster))  # what faust hands aiokafka
    assert ({k: v for k, v in faust_auth.items() if k != "ssl_context"}
            == {k: v for k, v in security.items() if k != "ssl_context"})
    assert isinstance(faust_auth["ssl_context"], ssl.SSLContext)
    settings = load_settings(kafka={"client_config": SASL_SSL})
    assert kafka.faust_broker(settings)["broker_credentials"] is not None
    # a plain cluster: nothing set, as before the pass-through existed
    assert kafka.aiokafka_security(KafkaSettings()) == {} and kafka.faust_credentials(KafkaSettings()) is None
    unverified = kafka.aiokafka_security(KafkaSettings(client_config={"security.protocol": "SSL",
                                                                      "ssl.endpoint.identification.algorithm": "none"}))
    assert unverified["security_protocol"] == "SSL" and not unverified["ssl_context"].check_hostname


def test_unknown_client_config_keys_are_refused_in_one_clear_line() -> None:
    for wrong in ({"group.id": "mine"}, {"bootstrap.servers": "elsewhere:9092"}, {"sasl_username": "typo"}):
        with pytest.raises(pydantic.ValidationError) as refused:
            load_settings(kafka={"client_config": wrong})
        line = settings_error_line(refused.value)
        assert "STREAMREC_KAFKA__CLIENT_CONFIG" in line and repr(next(iter(wrong))) in line, line
        assert "security.protocol" in line and "sasl.*" in line and "ssl.*" in line and "\n" not in line, line


def test_keys_aiokafka_cannot_honour_are_refused_for_the_faust_engine() -> None:
    oauth_config = KafkaSettings(client_config={**SASL_SSL, "sasl.oauthbearer.config": "scope=x"})
    with pytest.raises(ClientConfigError, match="sasl.oauthbearer.config.*quix engine"):
        kafka.aiokafka_security(oauth_config)
    kafka.quix_clients(load_settings(kafka={"client_config": oauth_config.client_config}))  # librdkafka takes every key
    with pytest.raises(ClientConfigError, match="OAUTHBEARER"):
        kafka.aiokafka_security(KafkaSettings(client_config={"security.protocol": "SASL_SSL",
                                                             "sasl.mechanism": "OAUTHBEARER"}))
    with pytest.raises(ClientConfigError, match="cannot read a certificate"):
        kafka.aiokafka_security(KafkaSettings(client_config={"security.protocol": "SSL",
                                                             "ssl.ca.location": "/no/such/ca.pem"}))


def test_secrets_are_printed_masked_and_still_reach_child_processes() -> None:
    settings = load_settings(kafka={"client_config": {**SASL_SSL, "ssl.ca.location": "/etc/kafka/ca.pem"}})
    printed = json.loads(settings.model_dump_json())["kafka"]["client_config"]  # what `streamrec settings` prints
    assert "s3cret-password" not in json.dumps(printed)
    assert printed["sasl.username"] == "streamrec" and printed["ssl.ca.location"] == "/etc/kafka/ca.pem"
    passed = json.loads(settings_env(settings)["STREAMREC_KAFKA__CLIENT_CONFIG"])  # workers the demo and tests start
    assert passed["sasl.password"] == "s3cret-password"


def test_librdkafka_info_lines_stay_off_a_commands_stderr_unless_a_client_asks() -> None:
    """`streamrec produce` prints its one-line errors on stderr; librdkafka's info lines (e.g. at close) must not
    join them (a CI run caught "Purging 1 unserved events" between them)."""
    assert kafka.producer_settings("127.0.0.1:9092")["log_level"] == kafka.CLIENT_LOG_LEVEL == 4
    assert kafka.consumer_settings("127.0.0.1:9092", "g")["log_level"] == 4
    assert kafka.consumer_settings("127.0.0.1:9092", "g", {"log_level": 7})["log_level"] == 7
