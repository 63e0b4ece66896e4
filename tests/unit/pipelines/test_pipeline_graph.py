"""Wiring steps into a DAG, and the scheduling decisions over it (Hypothesis)."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

import modelyard as my
from modelyard.core.errors import InvalidInput
from modelyard.pipelines._graph import (
    Binding,
    Source,
    StepState,
    descendants,
    ready_steps,
)


@my.step
def ingest(rows: int = 10) -> list[int]:
    return list(range(rows))


@my.step
def featurize(data: list[int], scale: float) -> list[float]:
    return [x * scale for x in data]


@my.step
def train(featurize: list[float], ingest: list[int], depth: int = 3) -> float:
    return sum(featurize) / max(1, len(ingest)) + depth


@my.step
def evaluate(model: float) -> float:
    return model / 2


def test_wiring_by_name_by_position_by_param_and_by_default() -> None:
    pipeline = my.Pipeline([ingest, featurize, train, evaluate], name="churn")
    assert pipeline.graph == {
        "ingest": [],
        "featurize": ["ingest"],  # first parameter: the previous step's output
        "train": ["featurize", "ingest"],  # named after earlier steps
        "evaluate": ["train"],
    }
    wiring = pipeline.wiring({"scale": 2.0})
    assert wiring["ingest"] == (Binding("rows", Source.DEFAULT, "rows"),)
    assert wiring["featurize"] == (
        Binding("data", Source.STEP, "ingest"),
        Binding("scale", Source.PARAM, "scale"),
    )
    assert wiring["train"][2] == Binding("depth", Source.DEFAULT, "depth")
    # A pipeline param beats a default, and beats the "previous output" rule.
    assert pipeline.wiring({"scale": 1, "depth": 9})["train"][2].source is Source.PARAM
    assert pipeline.wiring({"scale": 1, "model": 1.0})["evaluate"][0].source is Source.PARAM
    assert my.Pipeline([ingest, featurize, train, evaluate]).name == "pipeline"


def test_calling_a_step_calls_the_function() -> None:
    assert featurize([1, 2], 0.5) == [0.5, 1.0]
    assert ingest.name == "ingest"
    assert ingest.cache is True


def test_unresolved_parameters_are_named_at_run_time() -> None:
    pipeline = my.Pipeline([ingest, featurize])
    with pytest.raises(InvalidInput, match="step 'featurize' parameter 'scale' is unresolved"):
        pipeline.wiring({})
    with pytest.raises(InvalidInput, match="no step has a parameter named 'sclae'"):
        pipeline.wiring({"scale": 1, "sclae": 2})


def test_cycles_duplicates_and_bad_steps_fail_at_construction() -> None:
    @my.step
    def early(late: int) -> int:
        return late

    @my.step
    def late(early: int) -> int:
        return early

    with pytest.raises(InvalidInput, match="'early' parameter 'late' refers to the later step"):
        my.Pipeline([early, late])

    @my.step
    def selfish(selfish: int) -> int:
        return selfish

    with pytest.raises(InvalidInput, match="refers to itself"):
        my.Pipeline([selfish])
    with pytest.raises(InvalidInput, match="duplicate step name 'ingest'"):
        my.Pipeline([ingest, my.step(name="ingest")(lambda ingest: ingest)])
    with pytest.raises(InvalidInput, match=r"steps\[1\]"):
        my.Pipeline([ingest, 42])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="at least one step"):
        my.Pipeline([])
    with pytest.raises(InvalidInput, match="pipeline: invalid name"):
        my.Pipeline([ingest], name="no/slash")


def test_the_first_step_gets_no_previous_output() -> None:
    @my.step
    def needs(thing: int) -> int:
        return thing

    pipeline = my.Pipeline([needs])
    assert pipeline.graph == {"needs": []}  # thing is taken to be a param, until run
    with pytest.raises(InvalidInput, match="parameter 'thing' is unresolved"):
        pipeline.wiring({})
    assert pipeline.wiring({"thing": 1})["needs"][0].source is Source.PARAM


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"backoff_s": -0.1}, "backoff_s"),
        ({"backoff_s": float("nan")}, "backoff_s"),
        ({"version": ""}, "version"),
        ({"cache": "yes"}, "cache"),
        ({"resources": {"cpu": 0}}, "resources.cpu"),
        ({"resources": {"tpu": 1}}, "unknown resource 'tpu'"),
        ({"name": "a b"}, "invalid name"),
    ],
)
def test_step_options_are_validated_at_decoration(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput, match=field):

        @my.step(**options)
        def anything(x: int) -> int:
            return x


def test_lambdas_need_a_name() -> None:
    with pytest.raises(InvalidInput, match="pass name="):
        my.step(lambda x: x)
    assert my.step(name="double")(lambda x: 2 * x)(4) == 8


# --- ready_steps and descendants over random DAGs --------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """A random DAG: each step depends on a subset of the earlier ones."""
    n = draw(st.integers(1, 12))
    graph: dict[str, list[str]] = {}
    for i in range(n):
        earlier = [f"s{j}" for j in range(i)]
        graph[f"s{i}"] = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
    return graph


def _ancestors(graph: dict[str, list[str]], name: str) -> set[str]:
    out: set[str] = set()
    todo = list(graph[name])
    while todo:
        up = todo.pop()
        if up not in out:
            out.add(up)
            todo.extend(graph[up])
    return out


@settings(max_examples=200, deadline=None)
@given(graph=dags(), data=st.data())
def test_a_simulated_run_respects_dependencies(
    graph: dict[str, list[str]], data: st.DataObject
) -> None:
    states = dict.fromkeys(graph, StepState.PENDING)
    failed: set[str] = set()
    while ready := ready_steps(graph, states):
        for name in ready:  # never before every upstream has an output
            assert states[name] is StepState.PENDING
            assert all(states[u].has_output for u in graph[name])
        pick = data.draw(st.sampled_from(ready))  # finish one, in any order
        if data.draw(st.booleans()):
            states[pick] = data.draw(st.sampled_from([StepState.SUCCEEDED, StepState.CACHED]))
        else:
            states[pick] = StepState.FAILED
            failed.add(pick)
            for down in descendants(graph, pick):
                if states[down] is StepState.PENDING:
                    states[down] = StepState.SKIPPED
    assert all(s.is_final for s in states.values())  # nothing is left pending
    skipped = {n for n, s in states.items() if s is StepState.SKIPPED}
    # exactly the steps with a failed ancestor were skipped; everything else ran
    assert skipped == {n for n in graph if _ancestors(graph, n) & failed}
    for name, state in states.items():  # every step that ran had its inputs
        if state is not StepState.SKIPPED:
            assert all(states[u].has_output for u in graph[name])


@settings(max_examples=200, deadline=None)
@given(graph=dags(), data=st.data())
def test_descendants_are_exactly_the_steps_with_that_ancestor(
    graph: dict[str, list[str]], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(list(graph)))
    found = descendants(graph, name)
    assert set(found) == {n for n in graph if name in _ancestors(graph, n)}
    assert name not in found
    assert found == [n for n in graph if n in found]  # in graph order
