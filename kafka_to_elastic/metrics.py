from prometheus_client import Counter, Gauge, Histogram

INDEXED = Counter("tweetpipe_tweets_indexed_total", "Tweets written to the search store")
RETRIES = Counter("tweetpipe_sink_retries_total", "Batches retried after a transient store error")
BATCH_SIZE = Histogram(
    "tweetpipe_sink_batch_size",
    "Records per indexed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
BATCH_SECONDS = Histogram(
    "tweetpipe_sink_batch_seconds",
    "Time to decode, index, dead-letter and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ASSIGNED = Gauge(
    "tweetpipe_sink_assigned_partitions",
    "Partitions this instance owns; 0 until it has joined the group",
)
