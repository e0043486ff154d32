"""The cyclic garbage collector paced for stages that handle records in batches.

A stage's batch allocates hundreds of thousands of short-lived objects (consumer records,
decoded tweets, per-word dicts) and holds them until the batch is committed. At CPython's
default thresholds (a young collection every 700 net allocations, an older one every ten of
those) the collector runs hundreds of times per batch, and each older collection walks every
object the batch still holds, none of which is garbage: reference counting frees them when the
batch ends. Collecting a hundred times less often keeps reference cycles bounded (they are
still found, a batch or so later) at a fraction of the cost: the word count's CPU per tweet
fell by a fifth (bench/wordcount.py, README "Performance").
"""

from __future__ import annotations

import gc

BATCH_THRESHOLDS = (100_000, 50, 100)
"""`gc.set_threshold` for a batch stage: young collections after 100,000 net allocations (a
batch's worth), older ones after 50 of those, the oldest after 100 of the older."""


def pace_for_batches() -> None:
    """Collect cycles at the pace of batches, not of single allocations (the module docstring)."""
    gc.set_threshold(*BATCH_THRESHOLDS)
