"""Evaluating alert rules: a pure state machine with an injected time, and silences.

States follow Prometheus: ``inactive → pending → firing → (resolved) → inactive``.

- A sample that makes the rule's condition true moves an inactive alert to *pending*
  (or straight to *firing* when the rule has no ``for``). The condition must then hold
  on every sample for ``for_s`` seconds, counted from the first true sample, before the
  alert *fires*; a false sample (or no data) sends a pending alert back to inactive.
- Hysteresis: a firing alert resolves only when the value is on the healthy side of the
  threshold by ``hysteresis * |threshold|`` (for ``>``/``>=``: ``value ≤ threshold -
  band``; for ``<``/``<=``: ``value ≥ threshold + band``; ``==``/``!=`` have no band),
  and every sample has stayed there for ``keep_firing_s`` seconds. A value inside the
  band keeps it firing and restarts that wait. A threshold of 0 has no band.
- No data (``value is None`` or NaN) is not recovery: a firing alert stays firing (and
  its ``keep_firing_s`` wait restarts); a pending alert falls back to inactive, since the
  condition is no longer known to hold.
- *Resolved* is the transition a firing alert makes when it recovers; the state stored
  afterwards is inactive, with ``resolved_at_s`` set.

:func:`step` is the whole machine: it reads no clock and keeps nothing, so replaying the
same samples gives the same transitions. The caller stores :class:`AlertState` (it
round-trips through :meth:`AlertState.to_json`), and notifies on the transitions whose
:attr:`Transition.notify` is true unless :func:`silenced` finds a silence: a silenced
transition is still recorded in the history, only not sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, TypeAlias, cast

from modelyard.core.errors import InvalidInput
from modelyard.monitor.rules import AlertRule, format_number, parse_rule

__all__ = [
    "AlertState",
    "Silence",
    "Status",
    "Transition",
    "TransitionTo",
    "is_healthy",
    "replay",
    "silenced",
    "step",
]

Status: TypeAlias = Literal["inactive", "pending", "firing"]
TransitionTo: TypeAlias = Literal["inactive", "pending", "firing", "resolved"]

_STATUSES: Final[tuple[Status, ...]] = ("inactive", "pending", "firing")


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"alert state: '{key}' must be a number or null, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class AlertState:
    """What :func:`step` remembers about one rule of one deployment.

    Attributes:
        status: ``inactive``, ``pending`` or ``firing``.
        active_since_s: when the condition started holding (the first true sample of the
            current run); None while inactive.
        fired_at_s: when the alert started firing; None unless firing.
        recovering_since_s: while firing, the first of the consecutive healthy samples
            (beyond the hysteresis band); None otherwise.
        last_value: the last sample's value (None for no data).
        last_eval_s: the time of the last sample; None before the first.
        resolved_at_s: when the alert last resolved; kept across later states for the UI.
    """

    status: Status = "inactive"
    active_since_s: float | None = None
    fired_at_s: float | None = None
    recovering_since_s: float | None = None
    last_value: float | None = None
    last_eval_s: float | None = None
    resolved_at_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_json` turns it back into an equal state.

        A non-finite ``last_value`` is stored as None.
        """
        last_value = self.last_value
        if last_value is not None and not math.isfinite(last_value):
            last_value = None
        return {
            "status": self.status,
            "active_since_s": self.active_since_s,
            "fired_at_s": self.fired_at_s,
            "recovering_since_s": self.recovering_since_s,
            "last_value": last_value,
            "last_eval_s": self.last_eval_s,
            "resolved_at_s": self.resolved_at_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertState:
        """The state :meth:`to_json` wrote.

        Raises:
            InvalidInput: an unknown status or a field of the wrong type.
        """
        status = data.get("status", "inactive")
        if status not in _STATUSES:
            raise InvalidInput(f"alert state: unknown status {status!r}")
        return cls(
            status=cast(Status, status),
            active_since_s=_opt_float(data, "active_since_s"),
            fired_at_s=_opt_float(data, "fired_at_s"),
            recovering_since_s=_opt_float(data, "recovering_since_s"),
            last_value=_opt_float(data, "last_value"),
            last_eval_s=_opt_float(data, "last_eval_s"),
            resolved_at_s=_opt_float(data, "resolved_at_s"),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of an alert's state, with what a notification and the history need.

    Attributes:
        rule: the rule's normalised text.
        from_state: the status before the sample.
        to_state: ``pending``, ``firing``, ``resolved`` (firing → inactive) or
            ``inactive`` (pending → inactive).
        value: the sample's value (None for no data).
        threshold: the rule's threshold.
        since_s: when the state being entered or left began: for ``pending``, ``firing``
            and ``inactive`` the first true sample of the run; for ``resolved`` the time
            the alert started firing.
        at_s: the sample's time.
    """

    rule: str
    from_state: Status
    to_state: TransitionTo
    value: float | None
    threshold: float
    since_s: float
    at_s: float

    @property
    def notify(self) -> bool:
        """Whether receivers hear of it: firing and resolved transitions only."""
        return self.to_state in ("firing", "resolved")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict for the alert history (a non-finite value becomes None)."""
        value = self.value if self.value is not None and math.isfinite(self.value) else None
        return {
            "rule": self.rule,
            "from": self.from_state,
            "to": self.to_state,
            "value": value,
            "threshold": self.threshold,
            "since_s": self.since_s,
            "at_s": self.at_s,
        }


def _band(rule: AlertRule, hysteresis: float) -> float:
    return hysteresis * abs(rule.threshold)


def is_healthy(rule: AlertRule, value: float, *, hysteresis: float = 0.1) -> bool:
    """Whether ``value`` is far enough on the healthy side to let a firing alert resolve.

    That is: the condition is false, and for ``>``/``>=`` ``value ≤ threshold - band``,
    for ``<``/``<=`` ``value ≥ threshold + band``, where ``band = hysteresis *
    |threshold|``. ``==`` and ``!=`` have no band. NaN is never healthy.
    """
    if math.isnan(value) or rule.holds(value):
        return False
    band = _band(rule, hysteresis)
    if rule.op in (">", ">="):
        return value <= rule.threshold - band
    if rule.op in ("<", "<="):
        return value >= rule.threshold + band
    return True


def _check_options(hysteresis: float, keep_firing_s: float) -> None:
    if not (math.isfinite(hysteresis) and 0.0 <= hysteresis < 1.0):
        raise InvalidInput(f"hysteresis must be in [0, 1), got {hysteresis!r}")
    if not (math.isfinite(keep_firing_s) and keep_firing_s >= 0.0):
        raise InvalidInput(f"keep_firing_s must be a finite number ≥ 0, got {keep_firing_s!r}")


def step(
    rule: AlertRule,
    state: AlertState,
    value: float | None,
    now_s: float,
    *,
    hysteresis: float = 0.1,
    keep_firing_s: float = 0.0,
) -> tuple[AlertState, Transition | None]:
    """Feed one sample of the rule's metric; return the new state and any transition.

    Args:
        rule: the rule.
        state: the state the previous call returned (``AlertState()`` at first).
        value: the metric's value now, or None when there is no data (NaN counts as none).
        now_s: the sample's time in seconds; the caller's clock, only differences matter.
        hysteresis: the fraction of ``|threshold|`` the value must clear to resolve.
        keep_firing_s: seconds a firing alert's value must stay healthy to resolve.

    Returns:
        ``(new_state, transition)``; at most one transition per sample.

    Raises:
        InvalidInput: ``hysteresis`` outside [0, 1) or a negative ``keep_firing_s``.
    """
    _check_options(hysteresis, keep_firing_s)
    if value is not None and math.isnan(value):
        value = None
    text = rule.text

    def move(new: AlertState, to: TransitionTo, since_s: float) -> tuple[AlertState, Transition]:
        return new, Transition(text, state.status, to, value, rule.threshold, since_s, now_s)

    base = AlertState(
        status=state.status,
        active_since_s=state.active_since_s,
        fired_at_s=state.fired_at_s,
        recovering_since_s=state.recovering_since_s,
        last_value=value,
        last_eval_s=now_s,
        resolved_at_s=state.resolved_at_s,
    )
    holds = value is not None and rule.holds(value)

    if state.status == "firing":
        fired_at = state.fired_at_s if state.fired_at_s is not None else now_s
        if value is None or not is_healthy(rule, value, hysteresis=hysteresis):
            # No data, still true, or inside the band: keep firing, restart the wait.
            return replace(base, recovering_since_s=None, fired_at_s=fired_at), None
        recovering = state.recovering_since_s
        if recovering is None:
            recovering = now_s
        if now_s - recovering >= keep_firing_s:
            resolved = AlertState(last_value=value, last_eval_s=now_s, resolved_at_s=now_s)
            return move(resolved, "resolved", fired_at)
        return replace(base, recovering_since_s=recovering, fired_at_s=fired_at), None

    if state.status == "pending":
        since = state.active_since_s if state.active_since_s is not None else now_s
        if not holds:
            inactive = AlertState(
                last_value=value, last_eval_s=now_s, resolved_at_s=state.resolved_at_s
            )
            return move(inactive, "inactive", since)
        if now_s - since >= rule.for_s:
            firing = replace(base, status="firing", active_since_s=since, fired_at_s=now_s)
            return move(firing, "firing", since)
        return replace(base, active_since_s=since), None

    # inactive
    if not holds:
        return replace(base, active_since_s=None, fired_at_s=None, recovering_since_s=None), None
    if rule.for_s <= 0:
        firing = replace(base, status="firing", active_since_s=now_s, fired_at_s=now_s)
        return move(firing, "firing", now_s)
    pending = replace(base, status="pending", active_since_s=now_s, fired_at_s=None)
    return move(pending, "pending", now_s)


def replay(
    rule: AlertRule,
    samples: Iterable[tuple[float, float | None]],
    *,
    state: AlertState | None = None,
    hysteresis: float = 0.1,
    keep_firing_s: float = 0.0,
) -> tuple[AlertState, list[Transition]]:
    """Run :func:`step` over ``(now_s, value)`` samples; the final state and transitions."""
    current = state if state is not None else AlertState()
    transitions: list[Transition] = []
    for now_s, value in samples:
        current, transition = step(
            rule, current, value, now_s, hysteresis=hysteresis, keep_firing_s=keep_firing_s
        )
        if transition is not None:
            transitions.append(transition)
    return current, transitions


def _normalise_rule_text(text: str) -> str:
    try:
        return parse_rule(text).text
    except InvalidInput:
        return text.strip()


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes the notifications of one deployment's alerts for a while.

    Attributes:
        deployment: the deployment it matches (exactly).
        rule: the rule it matches, or None for every rule of the deployment. Stored
            normalised, so ``p99_ms>50 for 120s`` matches ``p99_ms > 50 for 2m``.
        starts_s: when it starts (epoch seconds, inclusive).
        ends_s: when it ends (exclusive); after ``starts_s``.
        comment: why (free text).
        created_by: who created it.
    """

    deployment: str
    rule: str | None
    starts_s: float
    ends_s: float
    comment: str = ""
    created_by: str = ""

    def __post_init__(self) -> None:
        if not self.deployment:
            raise InvalidInput("silence: deployment must not be empty")
        if not (math.isfinite(self.starts_s) and math.isfinite(self.ends_s)):
            raise InvalidInput("silence: starts and ends must be finite times")
        if self.ends_s <= self.starts_s:
            raise InvalidInput(
                f"silence: ends ({format_number(self.ends_s)}) must be after "
                f"starts ({format_number(self.starts_s)})"
            )
        if self.rule is not None:
            object.__setattr__(self, "rule", parse_rule(self.rule).text)

    def active(self, now_s: float) -> bool:
        """Whether it is in force at ``now_s``: ``starts_s ≤ now_s < ends_s``."""
        return self.starts_s <= now_s < self.ends_s

    def matches(self, deployment: str, rule_text: str) -> bool:
        """Whether it covers that deployment's rule (at any time)."""
        if deployment != self.deployment:
            return False
        return self.rule is None or self.rule == _normalise_rule_text(rule_text)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_json` turns it back."""
        return {
            "deployment": self.deployment,
            "rule": self.rule,
            "starts_s": self.starts_s,
            "ends_s": self.ends_s,
            "comment": self.comment,
            "created_by": self.created_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Silence:
        """The silence :meth:`to_json` wrote.

        Raises:
            InvalidInput: a missing or mistyped field, or the checks of the constructor.
        """
        try:
            return cls(
                deployment=str(data["deployment"]),
                rule=None if data.get("rule") is None else str(data["rule"]),
                starts_s=float(data["starts_s"]),
                ends_s=float(data["ends_s"]),
                comment=str(data.get("comment", "")),
                created_by=str(data.get("created_by", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"silence: bad or missing field: {exc}") from None


def silenced(
    silences: Sequence[Silence], deployment: str, rule_text: str, now_s: float
) -> Silence | None:
    """The silence in force for that deployment's rule at ``now_s``, or None.

    When several match, the one that ends last is returned (ties: the first given).
    A silenced transition is still recorded in the alert history; only its
    notification is not sent.
    """
    best: Silence | None = None
    for silence in silences:
        if (
            silence.active(now_s)
            and silence.matches(deployment, rule_text)
            and (best is None or silence.ends_s > best.ends_s)
        ):
            best = silence
    return best
