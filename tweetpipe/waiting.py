"""Waiting until something is ready: a server answering, a count reached, a port open.

One polling rule everywhere (services at start-up, the single-machine stack, the tests): ask
every `interval_s` until the answer is yes or `timeout_s` has passed, treat the `ignore`d
exceptions as "not yet", and stop at once when the thing waited for can no longer become ready
(its process exited) instead of waiting out the timeout. tenacity does the polling.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)


class Gone(RuntimeError):
    """What was waited for can no longer become ready (e.g. its process exited)."""


def wait_until(
    ready: Callable[[], object],
    timeout_s: float = 60.0,
    what: str = "a condition",
    *,
    interval_s: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
    gone: Callable[[], str | None] | None = None,
) -> None:
    """Return once `ready()` is truthy; `TimeoutError` naming `what` after `timeout_s`.

    `gone`, asked before each try, returns why waiting is pointless (or None): `Gone` is raised
    with that reason at once.
    """

    def attempt() -> object:
        if gone is not None and (reason := gone()) is not None:
            raise Gone(f"{what}: {reason}")
        return ready()

    retrying = Retrying(
        retry=retry_if_result(lambda answer: not answer) | retry_if_exception_type(ignore),
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(interval_s),
    )
    try:
        retrying(attempt)
    except RetryError as exc:
        last = exc.last_attempt
        detail = f" (last error: {last.exception()!r})" if last.failed else ""
        raise TimeoutError(f"timed out after {timeout_s:g}s waiting for {what}{detail}") from None
