"""The one polling helper: ready, not yet, never, gone."""

from __future__ import annotations

import pytest

from tweetpipe.waiting import Gone, wait_until


def test_returns_as_soon_as_ready() -> None:
    answers = iter([False, False, True, False])
    wait_until(lambda: next(answers), 5, "third answer", interval_s=0)
    assert next(answers) is False  # stopped asking at the first yes


def test_ignored_errors_mean_not_yet() -> None:
    attempts = iter([ConnectionError("refused"), ConnectionError("refused"), True])

    def ready() -> bool:
        answer = next(attempts)
        if isinstance(answer, Exception):
            raise answer
        return answer

    wait_until(ready, 5, "the server", interval_s=0, ignore=(ConnectionError,))


def test_other_errors_propagate_at_once() -> None:
    def ready() -> bool:
        raise ValueError("bad answer")

    with pytest.raises(ValueError, match="bad answer"):
        wait_until(ready, 5, "the server", interval_s=0, ignore=(ConnectionError,))


def test_times_out_naming_what_and_the_last_error() -> None:
    def ready() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(TimeoutError, match=r"0.2s waiting for the broker.*refused"):
        wait_until(ready, 0.2, "the broker", interval_s=0.01, ignore=(ConnectionError,))


def test_stops_at_once_when_what_it_waits_for_is_gone() -> None:
    asked = []
    with pytest.raises(Gone, match="postgres: exited with 1"):
        wait_until(
            lambda: asked.append(1),
            60,
            "postgres",
            gone=lambda: "exited with 1" if asked else None,
        )
    assert asked == [1]
