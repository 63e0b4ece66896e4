"""Applying a right-sizing hint: which verdicts apply, what the new requests are (the
suggestion in whole millicores and MiB, GPU kept), and that "no data" / "right-sized"
are refused naming the verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.core.cost_facts import UsageSample
from modelyard.core.errors import Conflict
from modelyard.cost import default_catalog
from modelyard.cost._rightsize import (
    CPU_FLOOR,
    CPU_STEP,
    MEMORY_FLOOR_MB,
    MEMORY_STEP_MB,
    SizeHint,
    plan_resize,
    rightsize,
    whole_millicores,
)

CATALOG = default_catalog()


def _hint(
    cores: float, rss: float, *, cpu: float = 2.0, memory: int = 2048, gpu: float = 0.0, n: int = 40
) -> SizeHint:
    samples = [UsageSample(1, "r", 3, i, 10.0, cores, rss) for i in range(n)]
    return rightsize(
        3,
        samples,
        requested_cpu=cpu,
        requested_memory_mb=memory,
        requested_gpu=gpu,
        replicas_avg=1.0,
        catalog=CATALOG,
    )


def test_an_over_provisioned_hint_becomes_its_suggestion_and_keeps_the_gpu() -> None:
    hint = _hint(0.5, 300.0, gpu=1.0)  # 0.5 x 1.3 = 0.65 -> 0.75; 300 x 1.2 = 360 -> 384
    plan = plan_resize(hint, deployment="churn-api")
    assert plan.verdict == "over-provisioned"
    assert (plan.cpu_before, plan.memory_mb_before) == (2.0, 2048)
    assert (plan.cpu_after, plan.memory_mb_after) == (0.75, 384)
    assert plan.gpu == 1.0
    assert plan.to_json() == {
        "revision": 3,
        "verdict": "over-provisioned",
        "before": {"cpu": 2.0, "memory_mb": 2048, "gpu": 1.0},
        "after": {"cpu": 0.75, "memory_mb": 384, "gpu": 1.0},
    }


def test_an_under_provisioned_hint_grows_the_requests() -> None:
    hint = _hint(1.9, 900.0, cpu=1.0, memory=512)  # 2.47 -> 2.5 vCPU; 1080 -> 1088 MiB
    plan = plan_resize(hint, deployment="churn-api")
    assert plan.verdict == "under-provisioned"
    assert (plan.cpu_after, plan.memory_mb_after) == (2.5, 1088)


def test_no_data_is_refused_naming_the_verdict_and_why() -> None:
    hint = _hint(0.5, 300.0, n=5)
    with pytest.raises(Conflict, match=r"'churn-api' revision 3: .*'no data' \(5 usage samples"):
        plan_resize(hint, deployment="churn-api")


def test_right_sized_is_refused_naming_the_verdict() -> None:
    hint = _hint(1.5, 1700.0)  # 1.95 -> 2.0 vCPU; 2040 -> 2048 MiB: what it requests
    assert hint.verdict == "right-sized"
    with pytest.raises(Conflict, match=r"'right-sized' \(requests 2 vCPU, 2048 MB"):
        plan_resize(hint, deployment="churn-api")


def test_a_hand_made_hint_without_a_suggestion_is_refused() -> None:
    hint = replace(_hint(0.5, 300.0), suggested_cpu=None)
    with pytest.raises(Conflict, match="no suggested size"):
        plan_resize(hint, deployment="x")


def test_whole_millicores_removes_float_noise_and_keeps_one_millicore() -> None:
    assert whole_millicores(0.1 + 0.2) == 0.3
    assert whole_millicores(0.7504) == 0.75
    assert whole_millicores(0.00001) == 0.001


@settings(max_examples=300, deadline=None)
@given(
    cores=st.floats(0.0, 16.0, allow_nan=False),
    rss=st.floats(1.0, 65_536.0, allow_nan=False),
    cpu=st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 4.0, 8.0]),
    memory=st.sampled_from([128, 256, 512, 1000, 2048, 4096, 16_384]),
    gpu=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
)
def test_what_is_applied_is_the_suggestion_on_the_grid(
    cores: float, rss: float, cpu: float, memory: int, gpu: float
) -> None:
    hint = _hint(cores, rss, cpu=cpu, memory=memory, gpu=gpu)
    if hint.verdict not in ("over-provisioned", "under-provisioned"):
        with pytest.raises(Conflict, match=hint.verdict):
            plan_resize(hint, deployment="d")
        return
    plan = plan_resize(hint, deployment="d")
    assert (plan.cpu_after, plan.memory_mb_after) == (hint.suggested_cpu, hint.suggested_memory_mb)
    assert plan.cpu_after >= CPU_FLOOR
    assert plan.memory_mb_after >= MEMORY_FLOOR_MB
    assert (plan.cpu_after / CPU_STEP).is_integer()  # on the grid, exactly
    assert (plan.cpu_after * 1000).is_integer()  # sayable as a Kubernetes quantity
    assert plan.memory_mb_after % MEMORY_STEP_MB == 0
    assert isinstance(plan.memory_mb_after, int)
    assert plan.gpu == gpu  # never resized: not observed
    assert (plan.cpu_after, plan.memory_mb_after) != (cpu, memory)  # something changes
    grows = plan.cpu_after > cpu or plan.memory_mb_after > memory
    assert grows == (plan.verdict == "under-provisioned")
