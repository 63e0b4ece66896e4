"""Weighted revision choice and least-outstanding-requests replica choice."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from modelyard.gateway import cumulative_weights, least_outstanding, weighted_index


@dataclass
class Replica:
    id: str
    in_flight: int = 0
    ejected_until_s: float = 0.0


@given(st.lists(st.integers(0, 100), min_size=1, max_size=6).filter(lambda w: sum(w) > 0))
def test_split_fractions_converge_to_the_weights(weights: list[int]) -> None:
    cumulative = cumulative_weights(weights)
    total = cumulative[-1]
    draws = 20 * total
    counts = [0] * len(weights)
    for k in range(draws):  # evenly spaced points: the limit of uniform draws
        counts[weighted_index(cumulative, (k + 0.5) * total / draws)] += 1
    assert counts == [20 * w for w in weights]


def test_zero_weights_are_never_chosen_even_at_the_edges() -> None:
    cumulative = cumulative_weights([0, 30, 0, 70, 0])
    chosen = {weighted_index(cumulative, p) for p in (0.0, 29.999, 30.0, 99.9999)}
    assert chosen == {1, 3}


def test_least_outstanding_prefers_the_idle_replica() -> None:
    replicas = [Replica("a", 3), Replica("b", 1), Replica("c", 2)]
    for start in range(6):
        chosen = least_outstanding(replicas, start, now_s=0.0)
        assert chosen is not None
        assert chosen.id == "b"


def test_ties_rotate_with_the_start_offset() -> None:
    replicas = [Replica("a"), Replica("b"), Replica("c")]
    seen = [least_outstanding(replicas, start, now_s=0.0) for start in range(3)]
    assert [r.id for r in seen if r is not None] == ["a", "b", "c"]


def test_tried_replicas_are_skipped_and_none_when_all_tried() -> None:
    replicas = [Replica("a"), Replica("b", 5)]
    chosen = least_outstanding(replicas, 0, 0.0, tried={"a"})
    assert chosen is not None
    assert chosen.id == "b"
    assert least_outstanding(replicas, 0, 0.0, tried={"a", "b"}) is None
    assert least_outstanding([], 0, 0.0) is None


def test_ejected_replicas_are_a_last_resort() -> None:
    replicas = [Replica("a", 0, ejected_until_s=10.0), Replica("b", 50)]
    chosen = least_outstanding(replicas, 0, now_s=5.0)
    assert chosen is not None
    assert chosen.id == "b"
    later = least_outstanding(replicas, 0, now_s=11.0)
    assert later is not None
    assert later.id == "a"
    only = least_outstanding(replicas[:1], 0, now_s=5.0)
    assert only is not None
    assert only.id == "a"


@given(st.lists(st.integers(0, 20), min_size=1, max_size=8), st.integers(0, 100))
def test_least_outstanding_is_a_minimum(loads: list[int], start: int) -> None:
    replicas = [Replica(str(i), load) for i, load in enumerate(loads)]
    chosen = least_outstanding(replicas, start, 0.0)
    assert chosen is not None
    assert chosen.in_flight == min(loads)
