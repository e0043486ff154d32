"""Prometheus metrics of the analytics service (all named `tweetpipe_analytics_*`)."""

from prometheus_client import Counter, Gauge, Histogram

ROWS_UPSERTED = Counter(
    "tweetpipe_analytics_rows_upserted_total",
    "Rows sent to the database in batch upserts (after de-duplication within the batch)",
)
ROWS_CHANGED = Counter(
    "tweetpipe_analytics_rows_changed_total",
    "Upserted rows that were new or whose count grew (a replay changes none)",
)
RECORDS = Counter("tweetpipe_analytics_records_total", "Records consumed from the analytics topic")
BATCHES = Counter("tweetpipe_analytics_batches_total", "Batches stored and committed")
BATCH_SECONDS = Histogram(
    "tweetpipe_analytics_batch_seconds",
    "Time to decode, upsert, dead-letter and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DEAD_LETTERS = Counter(
    "tweetpipe_analytics_dead_letters_total",
    "Records sent to the dead-letter topic, by error",
    ["error"],
)
RETRIES = Counter(
    "tweetpipe_analytics_retries_total", "Batch upserts retried after a transient database error"
)
ASSIGNED = Gauge(
    "tweetpipe_analytics_assigned_partitions",
    "Partitions this instance owns; 0 until it has joined the group",
)
