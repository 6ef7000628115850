"""Typed, frozen settings with units in their names.

Resolution order (later wins): the defaults below, a TOML file named by
``STREAMREC_CONFIG`` (same nesting as these classes, e.g. ``[kafka]``), then
environment variables ``STREAMREC_<GROUP>__<FIELD>`` such as
``STREAMREC_KAFKA__BOOTSTRAP_SERVERS=broker:9092``. ``streamrec settings``
prints the resolved values; docs/configuration.md lists them all.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS = 500
"""librdkafka's default fetch wait; see `KafkaSettings.fetch_wait_max_ms`."""

CLIENT_CONFIG_KEYS = ("security.protocol",)
CLIENT_CONFIG_PREFIXES = ("sasl.", "ssl.")
"""librdkafka keys `kafka.client_config` passes to every client: how to reach a secured cluster, nothing else.
Every other client setting has its own typed setting here, so a pass-through cannot silently override one
(a `group.id`, an `acks`) that the stages rely on."""
_SHOWN_CLIENT_CONFIG = ("security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username",
                        "sasl.kerberos.service.name", "ssl.endpoint.identification.algorithm")
"""`kafka.client_config` values `streamrec settings` prints (and file locations, `*.location`); every other
value (passwords, PEM keys, OAuth secrets) is printed masked, as SecretStr settings are."""
_MASK = "**********"


class KafkaSettings(_Group):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated.")
    consumer_group: str = Field("streamrec",
                                description="Prefix of every consumer group (stateful stage, scoring stage).")
    topic_prefix: str = Field("", description="Prepended to every topic name, so several deployments (or tests) share "
                              "one cluster.")
    partitions: int = Field(
        2, ge=1, description="Partitions for topics streamrec creates: the most processes one stage can spread over. "
        "Every partition splits each request into smaller batches, which costs a small broker CPU: on the "
        "embedded broker (2 cores) 2 partitions gave a lower p99 than 4 (the partitions and linger sweep: "
        "docs/benchmarks.md, \"End-to-end throughput and latency\"). On a cluster, set it to the worker processes "
        "you plan to run."
    )
    replication_factor: int = Field(1, ge=1, description="Replication factor for topics streamrec creates.")
    retention_ms: int = Field(7 * 24 * 3600 * 1000, description="retention.ms for topics streamrec creates.")
    retention_bytes: int = Field(-1, description="retention.bytes for topics streamrec creates (-1: unbounded).")
    session_timeout_ms: int = Field(6000, ge=1000,
                                    description="Consumer group session timeout; a rebalance takes about half of it.")
    single_record_batches: bool = Field(
        False,
        description="Produce one record per batch. Needed on brokers whose high watermark is the last batch's "
        "base offset + 1 (the embedded Tansu broker), so changelog recovery and lag read true offsets.",
    )
    linger_ms: int = Field(
        10, ge=0, description="Producer linger: how long a record waits for others to share its produce request. "
        "Fuller requests cost the broker less, the wait adds latency at every producing hop: on the embedded broker "
        "a 5 ms linger saturated the broker and with 2 partitions 10 ms gave the lowest p99 of the values tried (the "
        "partitions and linger sweep: docs/benchmarks.md, \"End-to-end throughput and latency\")."
    )
    fetch_wait_max_ms: int = Field(
        10,
        ge=0,
        description="Consumer fetch.wait.max.ms. The embedded Tansu broker holds every fetch about this long even "
        "when records are waiting (at the 500 ms librdkafka default every hop waits for it); Kafka answers as soon as "
        "data arrives, so a low value only adds idle fetch requests there. With single_record_batches it must be "
        f">= {SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS}: Tansu then skips a record now and then under short "
        "fetch waits (bench/tansu_fetch_skips.py reproduces it; its figures: docs/deployment.md, \"Settings that "
        "differ between the embedded broker and Kafka\").",
    )

    max_message_bytes: int = Field(
        1_000_000, ge=262_144, description="Largest record streamrec produces (producer message.max.bytes, faust's "
        "max request size) and the per-partition fetch size of its consumers. Keep it at or below the broker's "
        "message.max.bytes (Kafka: 1,048,588; the embedded Tansu accepted 10 MB). Dead letters and scoring requests "
        "are cut to fit it, so no record a click causes can be refused for its size.",
    )
    dlq_max_original_bytes: int = Field(
        65_536, ge=0, description="Bytes of a rejected record's value (and of its key) a dead letter keeps, base64; "
        "the rest is cut and the dead letter says `truncated`, with the original size and sha256.",
    )
    producer_buffer_kbytes: int = Field(
        32768, ge=1024, description="Most kilobytes a producer holds unsent (librdkafka queue.buffering.max.kbytes; "
        "its default is 1 GiB). Under a backlog the stateful stage's changelog and scoring-request records queue "
        "here; when it is full produce waits, so it bounds memory without losing records (docs/deployment.md, memory)."
    )
    consumer_buffer_kbytes: int = Field(
        16384, ge=1024, description="Most kilobytes a consumer prefetches (librdkafka queued.max.messages.kbytes; "
        "its default is 64 MiB). A burst waiting on the topic is read ahead up to this much."
    )
    client_config: dict[str, str] = Field(
        {}, description="librdkafka settings for a secured cluster, given to every client streamrec makes (stages, "
        "API, trainer, admin) and mapped onto the faust engine's aiokafka clients: `security.protocol` and `sasl.*` / "
        "`ssl.*` keys only, e.g. {\"security.protocol\": \"SASL_SSL\", \"sasl.mechanism\": \"SCRAM-SHA-512\", "
        "\"sasl.username\": \"streamrec\", \"sasl.password\": \"...\"} (docs/deployment.md, secured clusters). "
        "`streamrec settings` prints secrets masked."
    )

    @field_validator("client_config")
    @classmethod
    def _only_connection_keys(cls, config: dict[str, str]) -> dict[str, str]:
        wrong = sorted(key for key in config
                       if key not in CLIENT_CONFIG_KEYS and not key.startswith(CLIENT_CONFIG_PREFIXES))
        if wrong:
            raise ValueError(f"unknown key(s) {', '.join(map(repr, wrong))}: client_config takes only "
                             f"{', '.join(CLIENT_CONFIG_KEYS)} and "
                             f"{', '.join(p + '*' for p in CLIENT_CONFIG_PREFIXES)} "
                             "librdkafka keys (e.g. sasl.username); other client settings have their own kafka.* "
                             "setting")
        return config

    @field_serializer("client_config", when_used="json")
    def _mask_secrets(self, config: dict[str, str]) -> dict[str, str]:
        return {key: value if key in _SHOWN_CLIENT_CONFIG or key.endswith(".location") else _MASK
                for key, value in config.items()}

    @model_validator(mode="after")
    def _single_record_batches_need_long_fetch_waits(self) -> KafkaSettings:
        if self.single_record_batches and self.fetch_wait_max_ms < SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS:
            raise ValueError(
                f"single_record_batches needs fetch_wait_max_ms >= {SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS} "
                f"(got {self.fetch_wait_max_ms}): on the embedded Tansu broker consumers skip records otherwise"
            )
        return self


class ValidationSettings(_Group):
    max_payload_bytes: int = Field(4096, description="Click payloads larger than this go to the DLQ.")
    max_id_chars: int = Field(128,
                              description="session_id / user_id / item_id / event_id longer than this go to the DLQ.")
    min_ts_s: float = Field(946684800.0, description="Earliest accepted click time (unix seconds; 2000-01-01).")
    max_future_s: float = Field(86400.0, description="How far past the wall clock a click time may lie.")


class SessionSettings(_Group):
    max_length: int = Field(50, ge=2, description="Clicks kept per session graph (oldest dropped first).")
    inactivity_gap_s: float = Field(1800.0, gt=0,
                                    description="A session idle this long is closed and handed to the user's history.")
    max_open_per_visitor: int = Field(8, ge=1,
                                      description="Open sessions kept per user; the stalest is closed beyond this.")


class HistorySettings(_Group):
    chunk_size: int = Field(10, ge=2, description="Items per long-term memory chunk (GLAD's c).")
    max_items: int = Field(500, ge=10, description="Items of closed sessions kept per user (oldest dropped first).")
    max_request_items: int = Field(
        0, ge=0, description="History items sent with each scoring request, newest last. Only scorers with long-term "
        "memory (the GLAD presets) read them; the baselines and the default graph model do not, and unread history "
        "only makes every request larger (docs/benchmarks.md, \"End-to-end throughput and latency\"). Set it (e.g. "
        "200) when serving a memory preset: its scoring stage warns otherwise."
    )


class ScoringSettings(_Group):
    scorer: str = Field("sknn", description="Scorer name (see `streamrec scorers`) or a checkpoint path.")
    checkpoint_path: Path | None = Field(None, description="Model checkpoint loaded by neural scorers.")
    device: str = Field("auto", description="torch device for neural scorers: auto, cpu, cuda, cuda:N.")
    top_k: int = Field(20, ge=1, le=200, description="Recommendations per click.")
    batch_max_size: int = Field(512, ge=1, description="Scoring requests per model call.")
    batch_max_wait_ms: int = Field(
        0, ge=0, description="Extra wait to fill a batch once its first request arrived. 0: take what is already "
        "fetched; under load batches fill by themselves while the previous one is scored. Raise it for a model that "
        "needs full batches (a GPU)."
    )
    commit_interval_ms: int = Field(
        1000, ge=0, description="Offsets of answered batches are committed this often (0: after every batch); a crash "
        "re-answers at most this much."
    )
    # The sknn_* defaults were chosen on validation splits (bench/knn_tuning.py; docs/models.md says how).
    sknn_neighbours: int = Field(50, ge=1, description="Co-occurring items kept per item for the kNN scorer (chosen on "
                                 "validation: docs/models.md).")
    sknn_recency_decay: float = Field(0.5, ge=0, le=1,
                                      description="Weight of the i-th most recent session item: decay**i.")
    sknn_window: int = Field(5, ge=0, description="A click co-occurs with up to this many earlier clicks of its "
                             "session (weight 1/distance).")
    sknn_backward_weight: float = Field(0.25, ge=0, description="Weight of a backward pair (b then a counted for a -> "
                                        "b) relative to a forward one.")
    sknn_idf: float = Field(0.0, ge=0, description="Candidate scores are divided by popularity**idf (damps items that "
                            "co-occur with everything).")
    sknn_repeat: float = Field(0.3, ge=0, description="Extra score of the session's own items (re-clicks), per unit of "
                               "recency weight.")
    sknn_half_life_clicks: float = Field(0.0, ge=0, description="Co-occurrence and popularity decay: an observation "
                                         "counts half after this many further clicks (0: no decay).")
    candidates_min_catalogue_items: int = Field(
        200_000, ge=1, description="Neural scorers re-rank candidates (HNSW top-M + neighbour matrix + familiar items) "
        "for catalogues of at least this many items and score every item below it (models/candidates/; how the two "
        "paths compare by catalogue size: bench/hnsw_candidates.py, docs/benchmarks.md, \"Candidate path vs "
        "full-catalogue scoring\")."
    )
    hnsw_top_m: int = Field(200, ge=1,
                            description="Items the HNSW index returns per session vector on the candidate path.")
    hnsw_ef_search: int = Field(
        4096, ge=1, description="hnswlib ef at query time (at least hnsw_top_m is used): larger is more exact, slower. "
        "4096: the smallest tried reaching recall@20 >= 0.98 on bench/hnsw_candidates.py's hardest case "
        "(docs/benchmarks.md, \"Candidate path vs full-catalogue scoring\")."
    )
    hnsw_m: int = Field(16, ge=2, description="hnswlib M: graph links per item of the candidate index.")
    hnsw_ef_construction: int = Field(100, ge=1, description="hnswlib ef_construction: build-time candidate list size "
                                      "of the candidate index.")
    neighbour_matrix_k: int = Field(20, ge=0, description="Most similar items (embedding cosine) kept per item in "
                                    "GRAINRec's neighbour matrix.")
    learn_whole_stream: bool = Field(
        True, description="Every scoring process learns every partition of the scoring requests (a learning reader "
        "outside the group reads those other processes answer), so N processes each hold the whole model's statistics "
        "(docs/deployment.md, sizing). false: each learns only the partitions it answers (about 1/N of the evidence)."
    )
    learned_event_ids_kept: int = Field(
        100_000, ge=1, description="event_ids of learned clicks the persisted statistics remember, so a scoring "
        "request the stateful stage re-emits after a crash is not learned twice (state/learned.py). Re-emissions "
        "follow the original within seconds; ~60 bytes each on disk and in memory."
    )


class StateSettings(_Group):
    dir: Path = Field(Path(".streamrec/state"),
                      description="Local RocksDB directory (rebuilt from changelogs when lost).")
    engine: str = Field("quix", description="Stream engine for the stateful stage: one of the engines registered in "
                        "stream/stages/engines/registry.py (`streamrec worker --help` lists them).")
    commit_every_clicks: int = Field(
        10000, ge=0, description="Quix: a checkpoint (state flushed to RocksDB and its changelog, offsets committed) "
        "after this many clicks, besides the engine's 5 s interval (0: the interval only). Every state a checkpoint "
        "changes waits in memory until it commits, so under a burst over many keys this bounds memory "
        "(docs/deployment.md, memory); fewer clicks per checkpoint cost more commits."
    )
    rocksdb_block_cache_mb: int = Field(
        64, ge=1, description="RocksDB block cache (state read back from disk): one per process on quix, shared by its "
        "partitions; one per partition on faust. The engines' defaults (1 GiB quix, 2 GiB faust) fill up under a large "
        "key space (docs/deployment.md, memory)."
    )
    rocksdb_write_buffer_mb: int = Field(
        16, ge=1, description="RocksDB memtable size: writes collect here before they are flushed to disk, per column "
        "family of each partition's database (the engines' default is 64)."
    )
    rocksdb_max_write_buffers: int = Field(
        2, ge=2, description="RocksDB memtables per column family (one filling while the others flush; engines' "
        "default 3)."
    )
    heap_trim_interval_ms: int = Field(
        1000, ge=0, description="The stateful stage hands the C allocator's free pages back to the OS (glibc "
        "malloc_trim) this often (0: never). Without it, memory RocksDB and the checkpoints free stays resident and "
        "the stage grows past its memory bound under a long burst (docs/deployment.md, memory); each trim takes "
        "milliseconds."
    )
    heap_mmap_threshold_kb: int = Field(
        128, ge=0, description="The stateful stage's allocations of at least this many KiB get their own memory "
        "mappings, returned to the OS when freed (glibc mallopt M_MMAP_THRESHOLD; 0: glibc's own threshold, which "
        "rises to 32 MiB and lets RocksDB's memtable blocks fragment the heap; docs/deployment.md, memory)."
    )

    @field_validator("engine")
    @classmethod
    def _registered_engine(cls, engine: str) -> str:
        # The engine registry is the one list of engines (the CLI, the worker, benches and tests read it too).
        # Imported here, not at the top: config is imported by everything, and the registry module imports
        # nothing of the engines themselves (faust alone takes seconds), so this stays cheap.
        from streamrec.stream.stages.engines.registry import engine_names

        if engine not in engine_names():
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(engine_names())}")
        return engine


class TrainingSettings(_Group):
    """The trainer role (`streamrec worker --role trainer`): continual fine-tuning on the click stream."""

    checkpoint_dir: Path = Field(Path(".streamrec/checkpoints"), description="Checkpoint store: one folder of "
                                 "versioned checkpoints (written tmp + fsync + rename), shared by the trainer and "
                                 "every scoring stage.")
    base_checkpoint: Path | None = Field(None, description="Checkpoint the trainer starts from when the store is empty "
                                         "(default: scoring.checkpoint_path).")
    device: str = Field("auto", description="torch device of the trainer: auto, cpu, cuda, cuda:N.")
    publish_every_steps: int = Field(200, ge=1, description="Publish a version after this many fine-tune steps ...")
    publish_every_s: float = Field(30.0, gt=0, description="... or this many seconds after the last publish, whichever "
                                   "comes first (only when at least one step was made since).")
    keep_versions: int = Field(5, ge=2, description="Versions kept in the store (older files are deleted); the "
                               "model-updates topic keeps as many announcements.")
    learner: dict[str, bool | int | float | str] = Field(default_factory=dict, description="Overrides of the "
                                      "continual learner's OnlineSettings (models/online/settings.py holds the "
                                      "defaults and their "
                                      "meaning), e.g. {\"lr\": 1e-4, \"max_pending_examples\": 2048}. When the stream "
                                      "is faster than training, examples beyond max_pending_examples skip the gradient "
                                      "step (counted), so the trainer never falls unboundedly behind.")
    cpu_nice: int = Field(10, ge=0, le=19, description="The trainer process lowers its CPU priority by this much (Unix "
                          "nice), so on shared cores serving stages run first and learning takes what is left (it "
                          "skips examples, counted, when it falls behind); 0 keeps the normal priority.")
    poll_max_records: int = Field(2000, ge=1, description="Scoring requests read per consume call; the trainer reads "
                                  "everything waiting (call after call) before each training step, so its Kafka lag "
                                  "stays small.")
    start_from: Literal["earliest", "latest"] = Field("latest", description="Where a trainer with an empty store "
                                                      "starts reading scoring requests; once a version is published it "
                                                      "resumes exactly after the offsets stored with it.")


class UpdatesSettings(_Group):
    """Scoring stages following the model-updates topic (hot swap of published versions)."""

    follow: bool = Field(True, description="A scoring stage serving a checkpoint installs every newer published "
                         "version between two batches; off: it serves its checkpoint frozen (a frozen twin).")
    prequential_guard: bool = Field(True, description="Install a version only once this stage has answered past its "
                                    "trained-through offsets on every partition, so no answer comes from a version "
                                    "that trained on a later click. Off only to show what the guard prevents (tests).")
    smoke_queries: int = Field(8, ge=1, description="Queries of the smoke batch a new version must answer before it is "
                               "installed.")
    learn_tables: bool = Field(True, description="A following stage counts every click it answers into its model's "
                               "co-occurrence tables between two versions (as fresh as the online kNN) and re-counts, "
                               "after a swap, the clicks the new version had not trained on. A frozen twin (follow "
                               "off) never does.")
    frozen_learn_tables: bool = Field(False, description="With follow off: still count every answered click into the "
                                      "checkpoint's co-occurrence tables (the tables-only ablation: the warm-up "
                                      "weights with the stream's counts, served as <preset>+tables). Off: a frozen "
                                      "twin.")
    table_buffer_clicks: int = Field(50_000, ge=0, description="Latest answered clicks a following stage keeps (with "
                                     "partition/offset) to re-count into a newly installed version's tables.")


_API_KEY = re.compile(r"[\x21-\x7e]{16,}")
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+")


class ApiSettings(_Group):
    host: str = Field("127.0.0.1", description="Address `streamrec serve` listens on (0.0.0.0: every interface).")
    port: int = Field(8000, ge=0, le=65535, description="Port of `streamrec serve` (HTTP API, dashboard, /metrics).")
    scorer: str | None = Field(
        None, description="Scorer whose answers GET .../recommendations returns when no ?scorer= is given "
        "(None: `scoring.scorer`). Shadow scorers write to the same topic; their answers are kept apart, by scorer.")
    stats_window_s: float = Field(30.0, gt=0,
                                  description="Sliding window of the dashboard's rates and latency quantiles.")
    hit_rate_k: int = Field(20, ge=1, description="Cut-off of the dashboard's prequential hit rate (HR@k).")
    hit_rate_window: int = Field(1000, ge=1,
                                 description="Judged clicks per scorer in the dashboard's sliding-window hit rate.")
    history_interval_s: float = Field(2.0, gt=0, description="The dashboard's charts take one point this often (rates, "
                                      "latency, lag, HR/MRR, trainer figures).")
    history_points: int = Field(900, ge=10,
                                description="Points each dashboard chart keeps (900 at 2 s: the last 30 minutes).")
    worker_metrics: dict[str, str] = Field({}, description="Prometheus /metrics URLs of the deployment's "
                                           "workers, by a name the dashboard shows (e.g. {\"trainer\": "
                                           "\"http://10.0.0.5:9101/metrics\"}): their consumer lag per stage, fallback "
                                           "share and the trainer's examples/s, loss and skipped examples are read "
                                           "every history_interval_s. `streamrec demo` fills it; empty: those panels "
                                           "say so.")
    write_api_key: SecretStr | None = Field(
        None, description="Key POST /clicks requires in its `X-API-Key` header (401 without it or with another key, "
        "compared in constant time); at least 16 printable ASCII characters, no spaces. None: POST /clicks is open. "
        "Read routes (recommendations, /healthz, /metrics, /stats, /dashboard) stay open either way (docs/webapp.md). "
        "`streamrec settings` prints it masked.")
    cors_allow_origins: list[str] = Field([], description="Browser origins (`scheme://host[:port]`, no path; `*`: "
                                          "any) allowed to call the API from a page's JavaScript: their requests get "
                                          "CORS headers and preflights for POST /clicks (Content-Type, X-API-Key) are "
                                          "answered. Empty: no CORS headers, so browsers keep other sites' pages "
                                          "from reading the API's answers. CORS does not stop a page from sending a "
                                          "plain POST: write_api_key does (docs/webapp.md).")

    @field_validator("write_api_key")
    @classmethod
    def _key_fits_a_header(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and not _API_KEY.fullmatch(key.get_secret_value()):
            raise ValueError("the key must be at least 16 printable ASCII characters without spaces (it is sent in the "
                             "X-API-Key header)")
        return key

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        wrong = [origin for origin in origins if origin != "*" and not _ORIGIN.fullmatch(origin)]
        if wrong:
            raise ValueError(f"not an origin: {', '.join(map(repr, wrong))}; an origin is scheme://host[:port] with no "
                             "path or trailing slash, as browsers send it (e.g. https://shop.example.com)")
        return origins


class DemoSettings(_Group):
    """`streamrec demo` (`make demo`): broker, workers, trainer, shadows and the dashboard on one machine."""

    rate_eps: float = Field(15.0, gt=0, description="Clicks per second the judged part of the log is sent at (a "
                            "realistic rate, not flat out): on the 2-core development VM, shared with other jobs, "
                            "every scorer keeps up at it (the frozen twin is the slowest), so the report's latency is "
                            "service latency (README, docs/operations.md).")
    warm_share: float = Field(0.5, gt=0, lt=1, description="Without --warm: the earliest share of the log's clicks "
                              "trains the starting model and is replayed unjudged first; the rest is judged.")
    judged_clicks_max: int = Field(2400, ge=0, description="Judged clicks at most, the earliest after the warm part "
                                   "(0: all of them); at rate_eps this sets the replay's length.")
    train_budget_s: float = Field(60.0, gt=0, description="Most seconds spent training the starting model (the "
                                  "default preset, on the warm part; early stopping on its latest sessions).")
    checkpoint_cache_dir: str = Field("~/.cache/streamrec/demo", description="Where the starting model is cached, "
                                      "outside the repository, keyed by the warm clicks, the preset and the budget: "
                                      "a later demo on the same log starts from it without training.")
    loop: bool = Field(True, description="After the report the judged clicks are sent again (as new anonymous "
                       "sessions) at rate_eps until Ctrl-C, so the dashboard stays live; off: the pipeline idles.")


class HealthSettings(_Group):
    broker_wait_max_s: float = Field(
        0.0, ge=0, description="How long a starting worker retries an unreachable broker before it exits with status 1 "
        "(0: forever). Each attempt logs one line."
    )
    broker_retry_initial_ms: int = Field(500, ge=10, description="Wait after the first failed connection attempt; "
                                         "doubles per attempt.")
    broker_retry_max_ms: int = Field(10_000, ge=10, description="Longest wait between two connection attempts.")
    probe_interval_ms: int = Field(
        2000, ge=100, description="How often a running worker checks that the broker answers and its topics exist "
        "(the `streamrec_healthy` metric)."
    )
    broker_lost_exit_s: float = Field(
        60.0, ge=0, description="A worker that has been unhealthy (broker unreachable or its topics gone) this long "
        "exits with status 3, for its supervisor to restart it (0: never; it stays up and reports unhealthy)."
    )
    lag_interval_ms: int = Field(
        5000, ge=0, description="How often each stage's consumer reports its lag per partition "
        "(`streamrec_consumer_lag`; 0: off)."
    )
    shutdown_timeout_s: float = Field(
        20.0, gt=0, description="Longest a stopping process waits for its stages to commit and close (an unreachable "
        "broker can block them); past it, it exits with status 4 and the uncommitted work is re-read on restart."
    )


class Settings(BaseSettings):
    """Everything a worker reads; immutable once loaded."""

    model_config = SettingsConfigDict(env_prefix="STREAMREC_", env_nested_delimiter="__", frozen=True, extra="forbid")

    kafka: KafkaSettings = KafkaSettings()
    validation: ValidationSettings = ValidationSettings()
    session: SessionSettings = SessionSettings()
    history: HistorySettings = HistorySettings()
    scoring: ScoringSettings = ScoringSettings()
    state: StateSettings = StateSettings()
    training: TrainingSettings = TrainingSettings()
    updates: UpdatesSettings = UpdatesSettings()
    api: ApiSettings = ApiSettings()
    demo: DemoSettings = DemoSettings()
    health: HealthSettings = HealthSettings()
    metrics_port: int = Field(0, ge=0, description="Prometheus /metrics port (0: off).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("STREAMREC_CONFIG")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


def load_settings(**overrides: object) -> Settings:
    """Defaults < $STREAMREC_CONFIG TOML < STREAMREC_* env < explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
