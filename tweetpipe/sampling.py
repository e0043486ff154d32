"""Which traces to record: those that start where work enters a service, at the configured ratio.

A client or producer span with no parent is background bookkeeping (registry heartbeats, the
word count's changelog and repartition writes, periodic SQL), not the path of a request or a
tweet; recording each as its own trace would bury the traces people look for. Spans inside a
trace follow their parent's decision, so a sampled tweet is traced through every stage.
Imported only when tracing is on (it needs the SDK).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

NOT_ENTRY_POINTS = (SpanKind.CLIENT, SpanKind.PRODUCER)


class EntryPointSampler(Sampler):
    """For root spans: drop client and producer spans, sample the rest by trace id ratio."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind in NOT_ENTRY_POINTS:
            return SamplingResult(Decision.DROP, None, trace_state)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"EntryPoint{{{self._ratio.get_description()}}}"


def sampler(ratio: float) -> Sampler:
    return ParentBased(root=EntryPointSampler(ratio))
