"""BackendSpec validation and defaults, and Kubernetes-style quantities."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.core.backends import (
    DEFAULT_IMAGE,
    BackendSpec,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory_mb,
)
from modelyard.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "cores"),
    [("500m", 0.5), ("2", 2.0), ("0.25", 0.25), (".5", 0.5), ("1500m", 1.5), ("1m", 0.001)],
)
def test_cpu_quantities(text: str, cores: float) -> None:
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize(
    ("text", "mb"),
    [("1Gi", 1024), ("512Mi", 512), ("1G", 954), ("2048", 1), ("1.5Gi", 1536), ("1Ti", 1 << 20)],
)
def test_memory_quantities(text: str, mb: int) -> None:
    assert parse_memory_mb(text) == mb


@pytest.mark.parametrize("text", ["", "0", "0m", "-1", "1.5.0", "500 m", "1Gi", "abc", "nan"])
def test_bad_cpu_is_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidInput, match="cpu"):
        parse_cpu(text)


@pytest.mark.parametrize("text", ["", "0", "0Mi", "1GB", "-1Gi", "1 Gi", "many"])
def test_bad_memory_is_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidInput, match="memory"):
        parse_memory_mb(text)


@given(st.integers(min_value=1, max_value=256_000))
def test_cpu_round_trips_through_millicores(milli: int) -> None:
    assert parse_cpu(format_cpu(milli / 1000)) == pytest.approx(milli / 1000)


@given(st.integers(min_value=1, max_value=1 << 22))
def test_memory_round_trips(mb: int) -> None:
    assert parse_memory_mb(format_memory(mb)) == mb


def test_format_is_what_kubectl_shows() -> None:
    assert (format_cpu(0.5), format_cpu(2.0), format_cpu(0.25)) == ("500m", "2", "250m")
    assert (format_memory(1024), format_memory(512), format_memory(1536)) == (
        "1Gi",
        "512Mi",
        "1536Mi",
    )


def test_defaults_are_filled_in_by_backend() -> None:
    assert BackendSpec().resolved(0) == BackendSpec()
    k = BackendSpec(kind="kubernetes").resolved(0)
    assert (k.namespace, k.autoscaler, k.image) == ("default", "keda", DEFAULT_IMAGE)
    assert BackendSpec(kind="kubernetes").resolved(1).autoscaler == "hpa"
    assert BackendSpec(kind="kubernetes", autoscaler="knative").resolved(0).autoscaler == "knative"
    r = BackendSpec(kind="ray", address="ray://127.0.0.1:10001").resolved(0)
    assert (r.autoscaler, r.address) == ("serve", "ray://127.0.0.1:10001")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"kind": "docker"}, "backend must be one of"),
        ({"namespace": "ml"}, "--namespace applies only"),
        ({"kind": "kubernetes", "autoscaler": "serve"}, "hpa, keda or knative"),
        ({"kind": "kubernetes", "namespace": "Bad_NS"}, "namespace 'Bad_NS'"),
        ({"kind": "kubernetes", "image": "not an image"}, "not an image reference"),
        ({"kind": "kubernetes", "address": "auto"}, "--address applies only"),
        ({"kind": "ray"}, "needs --address"),
        ({"kind": "ray", "address": "http://x"}, "ray address"),
        ({"kind": "ray", "address": "auto", "autoscaler": "hpa"}, "serve or modelyard"),
        ({"kind": "ray", "address": "auto", "namespace": "ml"}, "apply only to kubernetes"),
    ],
)
def test_bad_specs_are_refused_by_name(values: dict[str, str], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        BackendSpec(**values)  # type: ignore[arg-type]


def test_hpa_cannot_scale_to_zero() -> None:
    with pytest.raises(InvalidInput, match="cannot scale to zero"):
        BackendSpec(kind="kubernetes", autoscaler="hpa").resolved(0)


def test_a_row_written_before_backends_reads_as_local() -> None:
    assert BackendSpec.from_dict({"kind": "local"}) == BackendSpec()
    spec = BackendSpec(kind="kubernetes", namespace="ml", autoscaler="keda", image="r/x:1")
    assert BackendSpec.from_dict(json.loads(spec.to_json())) == spec
