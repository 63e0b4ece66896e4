"""Reading a study back from its runs: views, best trial, fANOVA importance, the plot."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given
from matplotlib.image import imread

from modelyard.cli._tune_plot import parallel_coordinates, write_parallel_coordinates
from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import LifecycleStage, Metric, Run, RunStatus
from modelyard.tuning.study_report import (
    ParamSpec,
    ParamValue,
    StudyView,
    TrialView,
    param_importances,
    parse_space,
    study_view,
)

SPACE_JSON = json.dumps(
    {
        "lr": {"type": "loguniform", "low": 0.0001, "high": 0.1},
        "depth": {"type": "randint", "low": 2, "high": 12},
        "x": {"type": "uniform", "low": 0.0, "high": 1.0, "step": None},
        "kernel": {"type": "choice", "values": ["rbf", "linear"]},
    }
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(
    run_id: str,
    name: str,
    tags: dict[str, str],
    *,
    status: RunStatus = RunStatus.FINISHED,
    parent: str | None = None,
    metrics: dict[str, float] | None = None,
    params: dict[str, str] | None = None,
    start_ms: int = 1_000,
    end_ms: int | None = 3_500,
) -> Run:
    return Run(
        id=run_id,
        experiment_id=7,
        project="default",
        name=name,
        status=status,
        start_time_ms=start_ms,
        end_time_ms=end_ms,
        user="admin",
        parent_run_id=parent,
        lifecycle_stage=LifecycleStage.ACTIVE,
        params=params or {},
        metrics={k: Metric(k, v, 0, 0) for k, v in (metrics or {}).items()},
        tags=tags,
    )


def _study(
    trials: list[TrialView], *, mode: str = "min", space: dict[str, ParamSpec] | None = None
) -> StudyView:
    return StudyView(
        name="s",
        run_id="p" * 32,
        experiment_id=1,
        experiment="Default",
        state="COMPLETED",
        metric="loss",
        mode=mode,
        sampler="tpe",
        pruner="median",
        executor="local",
        n_trials=len(trials),
        start_time_ms=0,
        end_time_ms=1,
        space=parse_space(SPACE_JSON) if space is None else space,
        trials=tuple(trials),
    )


def _trial(
    number: int, value: float | None, state: str = "COMPLETE", **params: ParamValue
) -> TrialView:
    return TrialView(number, f"r{number}", state, value, dict(params), 0, 1000)


def _synthetic(n: int = 30, seed: int = 0) -> StudyView:
    """The loss is driven by lr (on a log scale); depth and kernel barely matter."""
    rng = random.Random(seed)
    trials = []
    for i in range(n):
        lr = 10 ** rng.uniform(-4, -1)
        depth = rng.randint(2, 12)
        kernel = rng.choice(["rbf", "linear"])
        loss = (math.log10(lr) + 2.5) ** 2 + 0.01 * depth + rng.gauss(0, 0.01)
        trials.append(_trial(i, loss, lr=lr, depth=depth, kernel=kernel))
    return _study(trials)


def test_space_json_is_read_in_the_users_order() -> None:
    space = parse_space(SPACE_JSON)
    assert list(space) == ["lr", "depth", "x", "kernel"]
    assert space["lr"] == ParamSpec("loguniform", 0.0001, 0.1)
    assert space["lr"].log
    assert not space["x"].log
    assert space["x"].step is None
    assert space["depth"] == ParamSpec("randint", 2.0, 12.0)
    assert space["kernel"].values == ("rbf", "linear")
    assert parse_space("{not json") == {}
    assert parse_space(None) == {}


def test_study_view_reads_the_tag_layout() -> None:
    parent = _run(
        "a" * 32,
        "sweep",
        {
            "modelyard.study": "sweep",
            "modelyard.study.metric": "auc",
            "modelyard.study.mode": "max",
            "modelyard.study.sampler": "tpe",
            "modelyard.study.pruner": "median",
            "modelyard.study.executor": "local",
            "modelyard.study.n_trials": "5",
            "modelyard.study.space": SPACE_JSON,
            "modelyard.study.state": "STOPPED",
            "modelyard.study.stop_reason": "patience",
        },
        status=RunStatus.FINISHED,
    )

    def child(n: int, state: str | None, value: float | None, **extra: str) -> Run:
        tags = {"modelyard.trial": str(n), "modelyard.trial.params": json.dumps({"lr": 0.01 * n})}
        if state:
            tags["modelyard.trial.state"] = state
        if value is not None:
            tags["modelyard.trial.value"] = repr(value)
        return _run(f"c{n}", f"trial-{n}", tags | extra, parent=parent.id)

    children = [
        child(2, "COMPLETE", 0.91, **{"modelyard.trial.node": "node-b"}),
        child(0, "COMPLETE", 0.80),
        child(1, "FAIL", None, **{"modelyard.trial.error": "ValueError: boom"}),
        child(3, "PRUNED", 0.95),  # pruned: never the best, whatever its value
        _run("c9", "trial-9", {"modelyard.trial": "9"}, status=RunStatus.KILLED, parent="a" * 32),
        _run("x", "not-a-trial", {}, parent=parent.id),
    ]
    view = study_view(parent, children, "Default")
    assert (view.name, view.metric, view.mode, view.state) == ("sweep", "auc", "max", "STOPPED")
    assert view.n_trials == 5
    assert view.stop_reason == "patience"
    assert [t.number for t in view.trials] == [0, 1, 2, 3, 9]
    assert [t.state for t in view.trials] == ["COMPLETE", "FAIL", "COMPLETE", "PRUNED", "KILLED"]
    assert view.finished == 4
    best = view.best
    assert best is not None
    assert (best.number, best.run_id, best.value, best.node) == (2, "c2", 0.91, "node-b")
    assert best.params == {"lr": 0.02}
    assert view.trials[1].error == "ValueError: boom"
    assert view.trials[0].duration_s == 2.5


def test_recorded_best_trial_wins_and_untagged_runs_fall_back() -> None:
    parent = _run(
        "b" * 32,
        "s",
        {
            "modelyard.study": "s",
            "modelyard.study.metric": "loss",
            "modelyard.study.best_trial": "1",
        },
        status=RunStatus.RUNNING,
        end_ms=None,
    )
    children = [
        # No value tag and no exact params: the metric and the logged params stand in.
        _run(
            "c0",
            "trial-0",
            {"modelyard.trial": "0"},
            metrics={"loss": 0.1},
            params={"depth": "4", "k": "rbf"},
        ),
        _run("c1", "trial-1", {"modelyard.trial": "1", "modelyard.trial.value": "0.3"}),
        _run("c2", "trial-2", {"modelyard.trial": "2"}, status=RunStatus.RUNNING, end_ms=None),
    ]
    view = study_view(parent, children, "Default")
    assert view.mode == "min"
    assert view.state == "RUNNING"
    assert view.trials[0].value == 0.1
    assert view.trials[0].params == {"depth": 4, "k": "rbf"}
    assert view.trials[2].state == "RUNNING"
    assert view.trials[2].duration_s is None
    assert view.best is not None
    assert view.best.number == 1  # what the driver recorded, not recomputed


@given(
    st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
        min_size=0,
        max_size=20,
    ),
    st.sampled_from(["min", "max"]),
)
def test_best_is_the_extreme_finite_complete_value(values: list[float | None], mode: str) -> None:
    trials = [
        _trial(i, v, "COMPLETE" if i % 3 else "PRUNED", lr=0.01) for i, v in enumerate(values)
    ]
    view = _study(trials, mode=mode)
    finite = [t.value for t in trials if t.state == "COMPLETE" and t.value is not None]
    finite = [v for v in finite if math.isfinite(v)]
    best = view.best
    if not finite:
        assert best is None
        return
    assert best is not None
    assert best.state == "COMPLETE"
    assert best.value == (max(finite) if mode == "max" else min(finite))


def test_importance_ranks_the_param_that_drives_the_objective_first() -> None:
    scores = param_importances(_synthetic())
    assert scores is not None
    assert set(scores) == {"lr", "depth", "kernel"}
    assert next(iter(scores)) == "lr"
    assert scores["lr"] > 0.5
    assert sum(scores.values()) == pytest.approx(1.0)


def test_a_categorical_param_can_be_the_important_one() -> None:
    rng = random.Random(3)
    trials = []
    for i in range(30):
        kernel = rng.choice(["rbf", "linear"])
        x = rng.uniform(0, 1)
        trials.append(_trial(i, (5.0 if kernel == "rbf" else 0.0) + 0.1 * x, kernel=kernel, x=x))
    scores = param_importances(_study(trials, mode="max"))
    assert scores is not None
    assert next(iter(scores)) == "kernel"


@pytest.mark.parametrize(
    "trials",
    [
        [],
        [_trial(0, 1.0, lr=0.01)],
        [_trial(0, 1.0, lr=0.01), _trial(1, 2.0, lr=0.01)],  # the param never varies
        [_trial(0, 1.0, lr=0.01), _trial(1, 1.0, lr=0.02)],  # the objective never varies
        [_trial(0, 1.0, lr=0.01), _trial(1, 2.0, "PRUNED", lr=0.02), _trial(2, math.nan, lr=0.3)],
    ],
)
def test_importance_needs_two_complete_trials_that_vary(trials: list[TrialView]) -> None:
    assert param_importances(_study(trials)) is None


def test_plot_has_log_categorical_and_objective_axes(tmp_path: Path) -> None:
    study = _synthetic(12)
    figure = parallel_coordinates(study)
    by_title = {ax.get_title(): ax for ax in figure.axes if ax.get_title()}
    assert set(by_title) == {"lr (log)", "depth", "x", "kernel", "loss (min)"}
    assert by_title["lr (log)"].get_yscale() == "log"
    assert by_title["lr (log)"].get_ylim() == pytest.approx((1e-4, 0.1))
    assert by_title["depth"].get_yscale() == "linear"
    kernel = by_title["kernel"]
    assert [t.get_text() for t in kernel.get_yticklabels()] == ["rbf", "linear"]
    assert list(kernel.get_yticks()) == [0, 1]
    host = figure.axes[0]
    best = study.best
    assert best is not None
    red = [line for line in host.get_lines() if line.get_color() == "red"]
    assert len(red) == 1
    assert red[0].get_label() == f"best: trial {best.number}"
    assert len(host.get_lines()) == 12

    out = write_parallel_coordinates(study, tmp_path / "study.png")
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    pixels = imread(out)
    assert pixels.shape[0] >= 400
    assert pixels.shape[1] >= 800
    assert pixels[..., :3].std() > 0.05  # lines and text, not a blank canvas


def test_plot_refuses_a_study_without_complete_trials(tmp_path: Path) -> None:
    study = _study([_trial(0, None, "FAIL", lr=0.01), _trial(1, 0.5, "PRUNED", lr=0.02)])
    with pytest.raises(InvalidInput, match="no complete trial"):
        write_parallel_coordinates(study, tmp_path / "p.png")
    with pytest.raises(InvalidInput, match="--plot"):
        write_parallel_coordinates(_synthetic(4), tmp_path / "missing" / "p.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_without_a_space_infers_axes_and_centres_flat_ones() -> None:
    trials = [_trial(0, 1.0, opt="adam", w=3), _trial(1, 2.0, opt="sgd", w=3)]
    figure = parallel_coordinates(_study(trials, space={}))
    by_title = {ax.get_title(): ax for ax in figure.axes if ax.get_title()}
    assert [t.get_text() for t in by_title["opt"].get_yticklabels()] == ["adam", "sgd"]
    assert by_title["w"].get_ylim() == (2.0, 4.0)  # one value, drawn in the middle
    ys = [np.asarray(line.get_ydata(), dtype=float).tolist() for line in figure.axes[0].get_lines()]
    assert sorted(y[:2] for y in ys) == [[0.0, 0.5], [1.0, 0.5]]
