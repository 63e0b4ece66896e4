"""Quotas: what fits, the controller's scale-up cap and the deploy-time check (pure, with
Hypothesis for the cap's invariants)."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from modelyard.core.deployments import RuntimeSettings
from modelyard.core.errors import InvalidInput, QuotaExceeded
from modelyard.cost.quota import (
    Quota,
    ReplicaSize,
    Usage,
    cap_scale_up,
    check_deployment,
    room,
)

ONE_CPU = ReplicaSize(cpu=1.0, memory_gb=0.5)


def test_room_is_the_tightest_limit() -> None:
    quota = Quota(max_replicas=8, max_cpu=4.0)
    assert room(quota, Usage(), ONE_CPU) == (4, "max_cpu")
    assert room(quota, Usage(replicas=6, cpu=1.0), ONE_CPU) == (2, "max_replicas")
    assert room(Quota(), Usage(replicas=99), ONE_CPU) == (None, None)
    over = Usage(replicas=10, cpu=10.0)
    assert room(quota, over, ONE_CPU) == (0, "max_replicas")


def test_amounts_compare_exactly() -> None:
    tenth = ReplicaSize(cpu=0.1, memory_gb=0.25)
    assert room(Quota(max_cpu=0.3), Usage(), tenth) == (3, "max_cpu")
    assert room(Quota(max_memory_gb=0.75), Usage(), tenth) == (3, "max_memory_gb")


def test_a_resource_a_replica_does_not_request_does_not_limit_it() -> None:
    assert room(Quota(max_gpu=0), Usage(), ONE_CPU) == (None, None)
    gpu = ReplicaSize(cpu=1, memory_gb=1, gpu=1)
    assert room(Quota(max_gpu=2), Usage(gpu=1), gpu) == (1, "max_gpu")


def test_replica_size_of_runtime_settings() -> None:
    size = ReplicaSize.of(RuntimeSettings(cpu=2.0, memory_mb=1536, gpu=1.0))
    assert size == ReplicaSize(2.0, 1.5, 1.0)


def test_cap_holds_a_scale_up_and_says_why() -> None:
    quota = Quota(max_replicas=3)
    cap = cap_scale_up(quota, Usage(replicas=2), ONE_CPU, current=1, desired=4)
    assert (cap.replicas, cap.wanted, cap.limit) == (2, 4, "max_replicas")
    assert "max_replicas 3 replicas (2 in use" in cap.message
    assert "scaling to 2 replica(s) instead of 4" in cap.message
    full = cap_scale_up(quota, Usage(replicas=3), ONE_CPU, current=1, desired=4)
    assert full.replicas == 1
    assert "not starting replicas" in full.message
    fits = cap_scale_up(quota, Usage(replicas=1), ONE_CPU, current=1, desired=3)
    assert (fits.replicas, fits.limited) == (3, False)


def test_a_lowered_quota_never_scales_down() -> None:
    over = Usage(replicas=6, cpu=6.0)
    assert cap_scale_up(Quota(max_replicas=2), over, ONE_CPU, current=6, desired=6).replicas == 6
    # A scale-down is the autoscaler's to make, quota or not.
    assert cap_scale_up(Quota(max_replicas=2), over, ONE_CPU, current=6, desired=4).replicas == 4


def test_deploy_check_refuses_what_can_never_fit() -> None:
    quota = Quota(max_replicas=8, max_cpu=16.0)
    with pytest.raises(QuotaExceeded, match="max_cpu 16 vCPU") as info:
        check_deployment(
            quota, Usage(), ReplicaSize(4.0, 1.0), project="fraud-team", deployment="d",
            max_replicas=5, start_replicas=1,
        )  # fmt: skip
    assert "up to 5 replica(s)" in info.value.message
    assert "at most 4" in info.value.message
    with pytest.raises(QuotaExceeded, match="max_cpu"):
        check_deployment(
            Quota(max_cpu=1.0), Usage(), ReplicaSize(2.0, 1.0), project="p", deployment="d",
            max_replicas=1, start_replicas=0,
        )  # fmt: skip


def test_deploy_check_refuses_a_minimum_that_does_not_fit_now() -> None:
    quota = Quota(max_replicas=8)
    used = Usage(replicas=6, cpu=6.0)
    with pytest.raises(QuotaExceeded) as info:
        check_deployment(
            quota, used, ONE_CPU, project="fraud-team", deployment="churn-api",
            max_replicas=4, start_replicas=3,
        )  # fmt: skip
    message = info.value.message
    assert "'fraud-team'" in message
    assert "'churn-api'" in message
    assert "max_replicas 8 replicas (6 in use" in message
    assert "needs 3 replica(s) now and only 2 fit" in message
    check_deployment(
        quota, used, ONE_CPU, project="p", deployment="d", max_replicas=4, start_replicas=2
    )
    check_deployment(
        quota, Usage(replicas=20), ONE_CPU, project="p", deployment="d", max_replicas=4,
        start_replicas=0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_replicas": -1},
        {"max_replicas": 1.5},
        {"max_cpu": -0.5},
        {"max_cpu": float("nan")},
        {"max_memory_gb": float("inf")},
        {"max_gpu": "2"},
    ],
)
def test_bad_limits_are_refused_naming_them(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(InvalidInput, match=name):
        Quota(**kwargs)  # type: ignore[arg-type]


# ---- invariants ---------------------------------------------------------------------

limit = st.one_of(st.none(), st.integers(min_value=0, max_value=40))
quota_st = st.builds(
    Quota,
    max_replicas=limit,
    max_cpu=st.one_of(st.none(), st.integers(0, 400).map(lambda n: n / 4)),
    max_memory_gb=st.one_of(st.none(), st.integers(0, 400).map(lambda n: n / 8)),
    max_gpu=st.one_of(st.none(), st.integers(0, 8).map(float)),
)
size_st = st.builds(
    ReplicaSize,
    cpu=st.integers(1, 32).map(lambda n: n / 4),
    memory_gb=st.integers(1, 64).map(lambda n: n / 8),
    gpu=st.sampled_from([0.0, 0.0, 1.0]),
)


def _within(quota: Quota, usage: Usage) -> bool:
    return (
        (quota.max_replicas is None or usage.replicas <= quota.max_replicas)
        and (quota.max_cpu is None or round(usage.cpu * 1000) <= round(quota.max_cpu * 1000))
        and (
            quota.max_memory_gb is None
            or round(usage.memory_gb * 1024) <= round(quota.max_memory_gb * 1024)
        )
        and (quota.max_gpu is None or round(usage.gpu * 1000) <= round(quota.max_gpu * 1000))
    )


@settings(max_examples=300, deadline=None)
@given(
    quota=quota_st,
    size=size_st,
    others=st.integers(0, 40),
    current=st.integers(0, 20),
    desired=st.integers(0, 40),
)
def test_the_cap_never_exceeds_the_quota_nor_goes_below_what_runs(
    quota: Quota, size: ReplicaSize, others: int, current: int, desired: int
) -> None:
    usage = Usage().plus(others, size).plus(current, size)
    cap = cap_scale_up(quota, usage, size, current=current, desired=desired)
    # Never below what runs because of the quota (a scale-down passes through).
    assert cap.replicas == desired if desired <= current else cap.replicas >= current
    assert cap.replicas <= max(desired, current)
    # Starting within the quota, the scale-up ends within it.
    if _within(quota, usage) and desired > current:
        assert _within(quota, usage.plus(cap.replicas - current, size))
    # The wanted count (the minimum, say) is honoured exactly when it fits.
    if desired > current:
        fits = _within(quota, usage.plus(desired - current, size))
        assert (cap.replicas == desired) == fits
        assert cap.limited == (not fits)
        assert bool(cap.message) == cap.limited


@settings(max_examples=200, deadline=None)
@given(quota=quota_st, size=size_st, others=st.integers(0, 40), start=st.integers(0, 10))
def test_deploy_check_passes_exactly_when_the_start_fits(
    quota: Quota, size: ReplicaSize, others: int, start: int
) -> None:
    used = Usage().plus(others, size)
    try:
        check_deployment(
            quota, used, size, project="p", deployment="d", max_replicas=max(start, 1),
            start_replicas=start,
        )  # fmt: skip
        refused = False
    except QuotaExceeded:
        refused = True
    ever = _within(quota, Usage().plus(max(start, 1), size))
    now = start == 0 or _within(quota, used.plus(start, size))
    assert refused == (not (ever and now))
