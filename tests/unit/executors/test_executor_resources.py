"""Resources parsing and the executor spec: bad input names the field, good input parses."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from modelyard.core.errors import InvalidInput
from modelyard.executors import Resources, open_executor
from modelyard.executors._probe import local_gpu_count


def test_defaults_are_one_cpu_no_gpu_no_memory_limit() -> None:
    assert Resources.of(None) == Resources(cpu=1.0, gpu=0.0, memory_mb=None)


def test_a_mapping_parses_and_numbers_in_strings_are_accepted() -> None:
    assert Resources.of({"cpu": "0.5", "gpu": 1, "memory_mb": "512"}) == Resources(0.5, 1.0, 512)


def test_an_instance_passes_through() -> None:
    res = Resources(cpu=2)
    assert Resources.of(res) is res


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"cpu": 0}, "resources.cpu"),
        ({"cpu": -1}, "resources.cpu"),
        ({"gpu": -0.5}, "resources.gpu"),
        ({"memory_mb": 0}, "resources.memory_mb"),
        ({"cpus": 2}, "'cpus'"),
        ({"cpu": "lots"}, "invalid resources"),
    ],
)
def test_bad_resources_name_the_field(value: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        Resources.of(value)


@given(
    cpu=st.floats(min_value=0.01, max_value=512, allow_nan=False),
    gpu=st.floats(min_value=0, max_value=16, allow_nan=False),
    memory_mb=st.none() | st.integers(min_value=1, max_value=2**40),
)
def test_any_valid_mapping_round_trips(cpu: float, gpu: float, memory_mb: int | None) -> None:
    res = Resources.of({"cpu": cpu, "gpu": gpu, "memory_mb": memory_mb})
    assert (res.cpu, res.gpu, res.memory_mb) == (cpu, gpu, memory_mb)
    assert Resources.of(res.__dict__) == res


@pytest.mark.parametrize("spec", ["locale", "ray:", "ray:/x:1", "kubernetes", ""])
def test_an_unknown_executor_is_invalid_input(spec: str) -> None:
    with pytest.raises(InvalidInput, match="executor"):
        open_executor(spec)


@pytest.mark.parametrize("spec", ["ray://", "ray://host", "ray://host:port", "ray://h:0"])
def test_a_malformed_ray_address_is_invalid_input(spec: str) -> None:
    with pytest.raises(InvalidInput, match="executor"):
        open_executor(spec)


def test_workers_below_one_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="workers"):
        open_executor("local", workers=0)


@pytest.mark.parametrize(
    ("visible", "count"),
    [("", 0), ("-1", 0), ("0", 1), ("0,1", 2), ("1, 3 ,", 2), ("0,-1,2", 1)],
)
def test_cuda_visible_devices_decides_the_gpu_count(
    visible: str, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert local_gpu_count() == count
