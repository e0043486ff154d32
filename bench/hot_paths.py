"""Per-record CPU of the stages' own Python hot paths, no broker; one JSON object last.

    .venv/bin/python bench/hot_paths.py [--tweets 20000] [--repeat 5]

Each figure is the best of `--repeat` passes over the same input, in microseconds per tweet
(the whole-process benches, bench/ingest.py and bench/wordcount.py, swing with a shared
machine's load; the best pass of a pure-CPU loop is the stable figure for before/after):

- generate_us: the generator making one tweet (draft, keyword filter, model)
- to_json_us: serialising it for `twitter-topic`
- generate_record_us: the generator service's path, both in one (`TweetGenerator.next_record`:
  the same bytes, no model)
- decode_us: a consumer turning a record back into a tweet (`tweetpipe.records.decode`, the
  pydantic model: the sink)
- decode_fields_us: the same check into the split stage's struct (`records.decode_fields`)
- decode_documents_us: the same check into the sink's struct (`records.decode_documents`)
- count_us: the word count's split stage counting it into its windows (`count_batch`)
- encode_deltas_us: the split stage writing its per-word deltas (`encode_delta`)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka.consumer.fetcher import ConsumerRecord

from kafka_streams.settings import StreamsOptions
from kafka_streams.splitter import Source, encode_delta
from kafka_streams.tokenize import count_batch
from tweetpipe.records import decode, decode_documents, decode_fields
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions

BATCH = 500
"""Records per poll, as the stages see them."""


def best_us(work: Callable[[], object], tweets: int, repeat: int) -> float:
    passes = []
    for _ in range(repeat):
        started = time.process_time()
        work()
        passes.append(time.process_time() - started)
    return round(min(passes) / tweets * 1e6, 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--tweets", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, repeat = args.tweets, args.repeat

    generator = TweetGenerator(GeneratorOptions(seed=7))
    tweets = [generator.next_tweet() for _ in range(n)]
    values = [t.to_json() for t in tweets]
    records = [
        ConsumerRecord("twitter-topic", 0, 0, i, 0, 0, t.key, v, [], None, len(t.key), len(v), 0)
        for i, (t, v) in enumerate(zip(tweets, values, strict=True))
    ]
    batches = [records[i : i + BATCH] for i in range(0, n, BATCH)]
    decoded = [[t for t, _ in decode(b).tweets.values()] for b in batches]
    windows = StreamsOptions().windows
    counted = [count_batch(b, windows) for b in decoded]

    figures = {
        "generate_us": best_us(lambda: [generator.next_tweet() for _ in range(n)], n, repeat),
        "to_json_us": best_us(lambda: [t.to_json() for t in tweets], n, repeat),
        "generate_record_us": best_us(
            lambda: [generator.next_record() for _ in range(n)], n, repeat
        ),
        "decode_us": best_us(lambda: [decode(b) for b in batches], n, repeat),
        "decode_fields_us": best_us(lambda: [decode_fields(b) for b in batches], n, repeat),
        "decode_documents_us": best_us(lambda: [decode_documents(b) for b in batches], n, repeat),
        "count_us": best_us(lambda: [count_batch(b, windows) for b in decoded], n, repeat),
        "encode_deltas_us": best_us(
            lambda: [encode_delta(Source(0, 0, 0, 0), c.counts, c.stream_time) for c in counted],
            n,
            repeat,
        ),
        "tweets": n,
    }
    for name, value in figures.items():
        print(f"{name:>19}: {value}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
