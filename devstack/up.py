"""`tweetpipe up`: the whole pipeline on this machine, supervised until Ctrl-C."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from devstack import plan
from devstack.drain import BacklogMeter
from devstack.plan import GeneratorRun, StackSettings
from devstack.ports import describe, describe_shared, in_use, shared
from devstack.prometheus import PrometheusServer, prometheus_available
from devstack.stack import LocalStack
from tweetpipe.settings import REPO_ROOT, project_path

ALERT_RULES = REPO_ROOT / "infra" / "prometheus" / "alerts.yml"
"""The cluster's alert rules, evaluated by the local Prometheus too (its /alerts page)."""

__all__ = ["GeneratorRun", "run_stack"]


def run_stack(*, rate: float, count: int | None, seed: int | None) -> int:
    """Start every service in order, print the banner when all are ready, run until a signal."""
    settings = StackSettings()
    # Relative paths are the project's own (as `tweetpipe search` reads them), not the cwd's.
    settings = settings.model_copy(update={"data_dir": project_path(settings.data_dir)})
    index_path = project_path(settings.search.tantivy_path)
    data_dir = settings.data_dir
    monitored = settings.monitoring and prometheus_available()
    ports = settings.ports.model_dump()
    if not monitored:
        del ports["prometheus"]
    clashes = shared(ports)
    if clashes:
        print(describe_shared(clashes), file=sys.stderr)
        return 1
    taken = in_use(ports)
    if taken:
        print(describe(taken), file=sys.stderr)
        return 1
    specs = plan.services(settings, GeneratorRun(rate=rate, count=count, seed=seed))
    prometheus = None
    if monitored:
        options = settings.prometheus
        prometheus = PrometheusServer(
            settings.ports.prometheus,
            targets=plan.scrape_targets(specs),
            data_dir=data_dir / "prometheus",
            scrape_interval_s=options.scrape_interval_s,
            retention=options.retention,
            log_path=data_dir / "logs" / "prometheus.log",
            rule_files=[ALERT_RULES],
        )
    stack = LocalStack(
        specs,
        data_dir,
        settings.ports.broker,
        plan.base_env(settings, index_path),
        prometheus=prometheus,
        supervisor=settings.supervisor,
        backlog=BacklogMeter([f"127.0.0.1:{settings.ports.broker}"], plan.drain_streams(settings)),
        drain=settings.drain,
        dead_letter_topic=settings.kafka.dlq_topic,
    )

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stack.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def ready() -> None:
        url = prometheus.url if prometheus else None
        print(plan.banner(settings, index_path, url), flush=True)

    try:
        stack.start()
        return stack.wait(on_ready=ready)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"tweetpipe up failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
