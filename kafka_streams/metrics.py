from prometheus_client import Counter, Gauge

TWEETS = Counter("tweetpipe_streams_tweets_processed_total", "Tweets counted (exactly once)")
DELTAS = Counter(
    "tweetpipe_streams_repartition_records_total",
    "Pre-aggregated per-word records written to the repartition topic",
)
EMITTED = Counter(
    "tweetpipe_streams_words_emitted_total", "Word-count updates sent to the analytics topic"
)
UNPUBLISHED = Gauge(
    "tweetpipe_streams_stores_unpublished",
    "Owned stores with counts applied but not yet published to the changelog and the "
    "analytics topics (published every streams.emit_interval_s, less often while input "
    "keeps coming)",
)
CAUGHT_UP = Gauge(
    "tweetpipe_streams_caught_up",
    "1 while the split stage had read all its input (by the newest delta from each input "
    "partition) and the counter has applied every delta; then counts go out one quiet "
    "emit interval later",
)
RESTORED = Counter(
    "tweetpipe_streams_restored_records_total", "Changelog records read while restoring state"
)
STATE_ROWS = Gauge(
    "tweetpipe_streams_state_rows", "(word, window) rows in the local store", ["partition"]
)
OWNED = Gauge("tweetpipe_streams_owned_partitions", "Repartition partitions this instance owns")
REBASED = Counter(
    "tweetpipe_streams_stores_rebased_total",
    "Local stores found newer than the broker's topics (broker restarted empty, topics "
    "recreated): counts kept and republished, counting restarted at the topics' beginning",
)
DUPLICATES = Counter(
    "tweetpipe_streams_duplicate_deltas_total",
    "Repartition records skipped because their source was already applied (replayed ranges)",
)
LATE_TWEETS = Counter(
    "tweetpipe_streams_late_tweets_total",
    "Tweets that arrived after one of their windows was final (grace passed): left out of "
    "those windows, still counted in the all-time totals",
)
WINDOWS_FINALISED = Counter(
    "tweetpipe_streams_windows_finalised_total",
    "(word, window) counts published as final, once stream time passed window end + grace",
)
TRENDING = Gauge(
    "tweetpipe_streams_trending_terms",
    "Terms rising in the latest hopping window at the last trending query",
)
