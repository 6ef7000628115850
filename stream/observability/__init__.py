"""What an operator or a supervisor sees of a running worker: broker health, lag, the one /metrics endpoint.

- `health`: wait for the broker at start (one log line per attempt), probe it while running
  (the `streamrec_healthy` gauge, a non-zero exit after `health.broker_lost_exit_s`), bound shutdown.
- `lag`: consumer lag per partition of each stage, from librdkafka's statistics.
- `exposition`: one /metrics port per worker; in `--role all` it merges the stateful child's values in.
"""
