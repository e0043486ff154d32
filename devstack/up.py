"""`tweetpipe up`: the whole pipeline on this machine, supervised until Ctrl-C."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

from devstack import plan
from devstack.plan import GeneratorRun, StackSettings
from devstack.prometheus import PrometheusServer, prometheus_available
from devstack.stack import LocalStack


def run_stack(*, rate: float, count: int | None, seed: int | None) -> int:
    """Start every service in order, print the banner when all are ready, run until a signal."""
    settings = StackSettings()
    index_path = settings.search.tantivy_path
    if not index_path.is_absolute():
        index_path = Path.cwd() / index_path
    data_dir = settings.data_dir.resolve()
    specs = plan.services(settings, GeneratorRun(rate=rate, count=count, seed=seed))
    prometheus = None
    if settings.monitoring and prometheus_available():
        options = settings.prometheus
        prometheus = PrometheusServer(
            settings.ports.prometheus,
            targets=plan.scrape_targets(specs),
            data_dir=data_dir / "prometheus",
            scrape_interval_s=options.scrape_interval_s,
            retention=options.retention,
            log_path=data_dir / "logs" / "prometheus.log",
        )
    stack = LocalStack(
        specs,
        data_dir,
        settings.ports.broker,
        plan.base_env(settings, index_path),
        prometheus=prometheus,
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
