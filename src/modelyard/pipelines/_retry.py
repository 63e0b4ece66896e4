"""Retry decisions for a failed step attempt: pure functions."""

from __future__ import annotations

MAX_BACKOFF_S = 60.0


def backoff_delay_s(backoff_s: float, failed_attempts: int) -> float:
    """Seconds to wait before the next attempt, after ``failed_attempts`` (>= 1) failures.

    Exponential: ``backoff_s``, ``2·backoff_s``, ``4·backoff_s`` …, capped at 60 s.
    """
    if failed_attempts < 1:
        raise ValueError(f"failed_attempts must be >= 1, got {failed_attempts}")
    exponent = min(failed_attempts - 1, 32)  # 2**32 · anything positive is past the cap
    return min(backoff_s * 2.0**exponent, MAX_BACKOFF_S)


def backoff_delays_s(backoff_s: float, retries: int) -> list[float]:
    """The delays before each of ``retries`` retries."""
    return [backoff_delay_s(backoff_s, n) for n in range(1, retries + 1)]


def should_retry(attempts: int, retries: int, retryable: bool) -> bool:
    """Whether a step that failed its ``attempts``-th attempt runs again."""
    return retryable and attempts <= retries
