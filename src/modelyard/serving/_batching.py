"""The adaptive batching policy: a pure decision function and an online latency model.

Nothing here sleeps, reads a clock or touches the event loop; the caller passes ``now``
and the queue, and acts on the :class:`Decision`. That makes the policy testable with a
fake clock (see ``tests/unit/serving/test_serving_batching.py``).

The policy, for one inference lane at a time:

* Nothing pending, or no free lane: wait for an event (an arrival or a finished batch).
* Take the longest prefix of the queue (in arrival order) whose rows fit in
  ``max_batch_size``. If the next request would not fit, or the prefix is exactly full,
  release it: waiting cannot make the batch bigger.
* Otherwise release now when waiting longer would break the latency budget of the
  oldest request: ``oldest_arrival + max_latency_s - predict(rows + 1) <= now`` with the
  latency model ``t ≈ a·rows + b`` fitted online from observed batch durations.
* Otherwise wait only when another arrival is expected soon enough to be worth it: the
  average gap between arrivals is shorter than the fixed cost ``b`` of one more
  ``predict`` call (so one more row is cheaper to wait for than to run separately), and
  it is expected before the latest release time. With a closed-loop client (concurrency
  1) the gap is longer than ``b`` and requests go out immediately: batching never adds
  latency to a lone caller.

Where a released batch runs (:func:`runs_inline`): in an inference thread, unless the
latency model, fitted on enough batches, expects it to take no longer than a small
threshold (100 µs by default). Handing a batch to a thread and its result back costs
~300 µs of wake-ups and GIL hand-overs on the event loop (measured: a LogisticRegression
batch of 32 rows predicts in ~10 µs), so for such a model the hand-over, not the
inference, is what holds the loop up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_DECAY = 0.95  # weight of older observations in the latency fit and the gap estimate


@dataclass(slots=True)
class Pending:
    """One queued request: when it arrived (seconds, caller's clock) and its row count."""

    arrival_s: float
    rows: int


@dataclass(frozen=True)
class Decision:
    """What the batcher should do now.

    Attributes:
        take: How many requests (a prefix of the queue) to release as one batch; 0 means
            wait.
        wake_at_s: When waiting, the time to decide again even if nothing happens; None
            means wait for an event only.
    """

    take: int
    wake_at_s: float | None = None


WAIT_FOR_EVENT = Decision(0, None)


class LatencyModel:
    """Online least-squares fit of batch duration ``t ≈ a·rows + b``, older data decayed.

    Before any observation (or while every batch had the same size) the slope is
    unknown; the model then predicts the mean observed duration, which is what a batch
    of the sizes seen so far costs.
    """

    def __init__(self, decay: float = _DECAY) -> None:
        self._decay = decay
        self._w = 0.0
        self._sx = 0.0
        self._sy = 0.0
        self._sxx = 0.0
        self._sxy = 0.0
        self.a = 0.0
        self.b = 0.0
        self.samples = 0

    def observe(self, rows: int, duration_s: float) -> None:
        """Record that a batch of ``rows`` rows took ``duration_s`` seconds."""
        d = self._decay
        self.samples += 1
        x, y = float(rows), max(duration_s, 0.0)
        self._w = self._w * d + 1.0
        self._sx = self._sx * d + x
        self._sy = self._sy * d + y
        self._sxx = self._sxx * d + x * x
        self._sxy = self._sxy * d + x * y
        mean_x, mean_y = self._sx / self._w, self._sy / self._w
        var_x = self._sxx / self._w - mean_x * mean_x
        if var_x > 1e-9:
            slope = (self._sxy / self._w - mean_x * mean_y) / var_x
            self.a = max(slope, 0.0)
            self.b = max(mean_y - self.a * mean_x, 0.0)
        else:
            self.a, self.b = 0.0, mean_y

    def predict(self, rows: int) -> float:
        """The expected duration in seconds of a batch of ``rows`` rows."""
        return self.a * rows + self.b


INLINE_MIN_SAMPLES = 16


def runs_inline(rows: int, model: LatencyModel, inline_below_s: float) -> bool:
    """Whether a batch of ``rows`` rows should run on the event loop rather than in a
    thread: only once the model has seen :data:`INLINE_MIN_SAMPLES` batches (so a
    model's first calls, often its slowest, always go to a thread) and expects this one
    to take at most ``inline_below_s`` (0 switches inline runs off)."""
    return (
        inline_below_s > 0
        and model.samples >= INLINE_MIN_SAMPLES
        and model.predict(rows) <= inline_below_s
    )


class GapEstimate:
    """Exponentially weighted mean of the time between consecutive arrivals."""

    def __init__(self, decay: float = _DECAY) -> None:
        self._decay = decay
        self._last_s: float | None = None
        self.mean_s: float | None = None

    def arrival(self, now_s: float) -> None:
        """Record an arrival at ``now_s``."""
        if self._last_s is not None:
            gap = max(now_s - self._last_s, 0.0)
            self.mean_s = (
                gap
                if self.mean_s is None
                else (self.mean_s * self._decay + gap * (1.0 - self._decay))
            )
        self._last_s = now_s


def fitting_prefix(pending: Sequence[Pending], max_batch_size: int) -> tuple[int, int]:
    """The longest prefix of ``pending`` whose rows fit: (requests, rows)."""
    take = rows = 0
    for item in pending:
        if rows + item.rows > max_batch_size:
            break
        take += 1
        rows += item.rows
    return take, rows


def decide(
    now_s: float,
    pending: Sequence[Pending],
    *,
    lane_free: bool,
    model: LatencyModel,
    mean_gap_s: float | None,
    max_batch_size: int,
    max_latency_s: float,
) -> Decision:
    """Decide whether to release a batch now; see the module docstring for the policy.

    Args:
        now_s: The current time on the caller's clock.
        pending: The queued requests, oldest first; each has at most ``max_batch_size``
            rows (the caller splits bigger requests).
        lane_free: Whether an inference lane can take a batch now.
        model: The fitted latency model.
        mean_gap_s: The mean time between arrivals, or None when unknown.
        max_batch_size: The most rows one batch may hold (never exceeded).
        max_latency_s: The latency budget for queueing plus inference.

    Returns:
        The decision; ``take`` requests from the front of ``pending``, or wait.
    """
    if not pending or not lane_free:
        return WAIT_FOR_EVENT
    take, rows = fitting_prefix(pending, max_batch_size)
    if take == 0:  # a request bigger than the limit: the caller should have split it
        return Decision(1)
    if take < len(pending) or rows >= max_batch_size:
        return Decision(take)
    latest_s = pending[0].arrival_s + max_latency_s - model.predict(rows + 1)
    if now_s >= latest_s or mean_gap_s is None or mean_gap_s > model.b:
        return Decision(take)
    expected_next_s = pending[-1].arrival_s + mean_gap_s
    # Wait for the next arrival, but not past twice the expected gap after the last
    # one (the burst may be over) nor past the latest release time.
    wake_at_s = min(latest_s, expected_next_s + mean_gap_s)
    if expected_next_s >= latest_s or now_s >= wake_at_s:
        return Decision(take)
    return Decision(0, wake_at_s)
