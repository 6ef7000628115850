"""Everything Kafka-facing: topics and schemas, validation, engines, stages, producer, replay."""
