"""Counters and gauges of a stage's own process, carried into its service's `/metrics`.

A stage that runs in a process of its own (`tweetpipe.stage_process`) still reports on its
service's one metrics port, under the same names. prometheus-client's multiprocess mode would
do it with files, but it must be chosen before the library is imported and it changes how every
gauge of the service is exported (a series per process unless each gauge names a mode). Here the
child sends the values of the few metrics it owns and the parent adds each counter's increase
to its own counter and sets each gauge, so the exposition reads as one process's: a counter
both processes count in (records consumed, by consumer group) is their sum.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge

Key = tuple[int, tuple[tuple[str, str], ...]]
"""(index of the metric in the relay's list, its labels)"""
Snapshot = dict[Key, float]
"""What a child sends: every labelled value of the relayed metrics, counters as totals."""


class MetricRelay:
    """The same list of metrics on both sides: `snapshot()` in the child, `apply()` in the
    parent. Each process builds its own relay from the module-level metrics it imports."""

    def __init__(self, metrics: Sequence[Counter | Gauge]) -> None:
        self._metrics = list(metrics)
        self._applied: Snapshot = {}
        """Counter totals already added to the parent's counters."""

    def snapshot(self) -> Snapshot:
        values: Snapshot = {}
        for index, metric in enumerate(self._metrics):
            wanted = "_total" if isinstance(metric, Counter) else ""
            for family in metric.collect():
                for sample in family.samples:
                    if sample.name == family.name + wanted:
                        values[(index, tuple(sorted(sample.labels.items())))] = sample.value
        return values

    def apply(self, snapshot: Snapshot) -> None:
        """A counter goes up by what the child counted since the last snapshot (never down:
        a child's totals only grow); a gauge takes the child's value."""
        for key, value in snapshot.items():
            index, labels = key
            metric = self._metrics[index]
            target = metric.labels(**dict(labels)) if labels else metric
            if isinstance(metric, Counter):
                increase = value - self._applied.get(key, 0.0)
                if increase > 0:
                    target.inc(increase)
                    self._applied[key] = value
            else:
                target.set(value)  # type: ignore[union-attr]
