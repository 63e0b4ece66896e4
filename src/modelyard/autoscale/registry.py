"""Policies by name, as the CLI and the benchmark spell them (``kpa``, ``fixed:4``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard.autoscale._base import AnyPolicy
from modelyard.autoscale._default import default_policy
from modelyard.autoscale._hpa import hpa
from modelyard.autoscale._kpa import kpa
from modelyard.autoscale._oracle import fixed, oracle
from modelyard.autoscale._ray import ray
from modelyard.core.errors import InvalidInput

POLICY_NAMES = ("default", "hpa", "kpa", "ray", "oracle", "fixed:N")


@dataclass(frozen=True)
class PolicySettings:
    """What every policy is built from.

    Attributes:
        target_concurrency: requests per replica (the competitors' target metric; the
            replica's capacity in the simulator).
        slo_s: the SLO in seconds.
        slo_includes_service: whether the SLO bounds the whole latency or only the wait.
        cold_start_s: replica start-up time.
        max_replicas: upper bound for every policy.
    """

    target_concurrency: float
    slo_s: float
    slo_includes_service: bool
    cold_start_s: float
    max_replicas: int = 100


def build_policy(spec: str, settings: PolicySettings) -> AnyPolicy:
    """The policy named ``spec``, with its own documented defaults and ``settings``.

    Raises:
        InvalidInput: an unknown name or a malformed ``fixed:N``.
    """
    name = spec.strip().lower()
    tc, top = settings.target_concurrency, settings.max_replicas
    if name == "default":
        return default_policy(
            tc,
            settings.slo_s,
            settings.cold_start_s,
            slo_includes_service=settings.slo_includes_service,
            max_replicas=top,
        )
    if name == "hpa":
        return hpa(tc, max_replicas=top)
    if name == "kpa":
        return kpa(tc, max_replicas=top)
    if name == "ray":
        return ray(tc, max_replicas=top)
    if name == "oracle":
        return oracle(tc, settings.cold_start_s, max_replicas=top)
    match = re.fullmatch(r"fixed:(\d+)", name)
    if match:
        return fixed(int(match[1]))
    raise InvalidInput(f"unknown policy {spec!r}; choose from {', '.join(POLICY_NAMES)}")


def parse_policy_list(text: str) -> list[str]:
    """``"default,kpa,fixed:4"`` → names, checked, duplicates refused."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise InvalidInput("--policy: name at least one policy")
    if len(set(names)) != len(names):
        raise InvalidInput(f"--policy: a policy is named twice in {text!r}")
    return names
