"""schemathesis hooks (`SCHEMATHESIS_HOOKS`) for the two rules of our APIs a schema cannot state.

Both touch only *positive* cases (those schemathesis sends as valid, expecting them accepted),
and only the parameters named; negative cases go out as generated, so the service's 4xx for
them is still checked.

- `cursor` is opaque: the schema gives its alphabet (URL-safe base64) and documents the 400 for
  one that was not issued for the same query and sort, but no schema can say which strings a
  server issued. A positive case asks for the first page instead; real cursors are followed by
  the tests that page through results (`test_search_pages_filters_highlights_and_aggregations`).
- `from` and `to` bound one range: JSON Schema cannot compare two parameters. An inverted range
  is answered 422, as documented; a positive case does not send one.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any

import schemathesis
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

from tweetpipe.utc import as_utc

# How `from` must relate to `to`, per operation: the search's range is half-open, a series'
# bounds are both inclusive.
RANGES: dict[str, Callable[[datetime, datetime], bool]] = {
    "GET /documents/search": operator.lt,
    "GET /analytics/words/{word}/series": operator.le,
}


def _moment(value: Any) -> datetime | None:
    try:
        return as_utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


@schemathesis.hook
def map_case(context: HookContext, case: Case) -> Case:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not case.query:
        return case
    query: dict[str, Any] = dict(case.query)
    query.pop("cursor", None)
    in_order = RANGES.get(f"{case.method.upper()} {case.operation.path}")
    if in_order is not None and "from" in query and "to" in query:
        start, end = _moment(query["from"]), _moment(query["to"])
        if start is not None and end is not None and not in_order(start, end):
            del query["to"]
    case.query = query
    return case
