"""The Grafana dashboards' PromQL, read from their JSON files (`infra/grafana/dashboards/`).

The Pipeline page charts the same queries Grafana shows, so one definition drives both. Grafana
replaces variables before it sends a query; `render` does the same for the ones these dashboards
use: `$__rate_interval` (Grafana's rule: the larger of four scrape intervals and the step plus
one scrape interval) and template variables such as `$job` and `$instance`, whose "All" value is
`.*` (their `allValue`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]")
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
ALL = ".*"


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Target(_Read):
    expr: str
    ref_id: str = Field(alias="refId")
    legend: str = Field(default="", alias="legendFormat")


class Panel(_Read):
    title: str
    targets: list[Target] = []

    def target(self, ref_id: str) -> Target:
        for target in self.targets:
            if target.ref_id == ref_id:
                return target
        raise KeyError(f"panel {self.title!r} has no target {ref_id!r}")


class Variable(_Read):
    name: str
    all_value: str | None = Field(default=None, alias="allValue")


class Templating(_Read):
    variables: list[Variable] = Field(default=[], alias="list")


class Dashboard(_Read):
    uid: str
    title: str
    panels: list[Panel]
    templating: Templating = Templating()

    def panel(self, title: str) -> Panel:
        for panel in self.panels:
            if panel.title == title:
                return panel
        raise KeyError(f"dashboard {self.uid!r} has no panel {title!r}")

    @property
    def variables(self) -> dict[str, str]:
        """Each template variable → its "All" value, as Grafana sends it."""
        return {v.name: v.all_value or ALL for v in self.templating.variables}


def load(path: Path) -> Dashboard:
    """One dashboard file; raises OSError or ValueError (pydantic's, too) when unreadable."""
    return Dashboard.model_validate(json.loads(path.read_text()))


def load_all(directory: Path) -> dict[str, Dashboard]:
    """Every dashboard in `directory`, by uid."""
    found = [load(path) for path in sorted(directory.glob("*.json"))]
    return {dashboard.uid: dashboard for dashboard in found}


def rate_interval(step_s: float, scrape_interval_s: float) -> str:
    """Grafana's `$__rate_interval` for a query with this step: max(4 * scrape, step + scrape)."""
    seconds = max(4 * scrape_interval_s, step_s + scrape_interval_s)
    return f"{math.ceil(seconds)}s"


def render(expr: str, *, rate_interval: str, variables: Mapping[str, str]) -> str:
    """`expr` with its variables replaced as Grafana would; an unknown variable is an error
    (Prometheus would reject the query anyway, with a less helpful message)."""
    values = {"__rate_interval": rate_interval, **variables}

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def legend(template: str, labels: Mapping[str, str], fallback: str) -> str:
    """A series' name from its target's `legendFormat` (`{{route}}`), as Grafana names it."""
    if not template:
        return fallback
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), template)
