"""The one rule for moments at the APIs' edges: a date-time without an offset means UTC.

`IsoDateTime` is the type of every date-time an API takes: ISO-8601 only. pydantic alone would
also take a number (`?to=0.5`) as seconds since 1970, which is neither what the OpenAPI schema
(`format: date-time`) promises nor what a caller who sent it meant.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator

_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC: taken as UTC when it has no offset, converted when it has one."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _iso_8601_only(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE_TIME.match(value):
        raise ValueError("Input should be a valid datetime in ISO-8601, e.g. 2026-11-22T10:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601_only)]
"""A date-time parameter: ISO-8601 text (pydantic parses it), never a number of seconds."""
