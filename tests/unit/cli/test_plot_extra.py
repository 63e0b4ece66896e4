"""matplotlib is the optional ``plot`` extra: without it every ``--plot`` says how to get
it (one red line, exit 2) and the quickstart trains without its ROC plot."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelyard.cli._tune_plot import write_parallel_coordinates
from modelyard.cli.main import app
from modelyard.core.errors import InvalidInput
from modelyard.quickstart._train import write_roc_png
from modelyard.tuning.study_report import StudyView

HINT = "pip install 'modelyard[plot]'"


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import matplotlib...`` fail, as on an install without the extra."""
    loaded = [name for name in sys.modules if name.split(".")[0] == "matplotlib"]
    for name in {"matplotlib", *loaded}:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    rows = ["t"] + [f"{1_700_000_000 + i * 0.1:.3f}" for i in range(100)]
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr


@pytest.mark.usefixtures("no_matplotlib")
def test_autoscale_simulate_plot_names_the_extra(trace: Path, tmp_path: Path) -> None:
    code, stderr = invoke(
        "autoscale", "simulate", "--trace", str(trace), "--time-column", "t",
        "--service-time-ms", "50", "--policy", "fixed:1", "--plot", str(tmp_path / "s.png"),
    )  # fmt: skip
    assert code == 2, stderr
    assert HINT in stderr
    assert not (tmp_path / "s.png").exists()


@pytest.mark.usefixtures("no_matplotlib")
def test_cost_estimate_plot_names_the_extra(trace: Path, tmp_path: Path) -> None:
    code, stderr = invoke(
        "cost", "estimate", "--trace", str(trace), "--time-column", "t",
        "--service-time-ms", "50", "--options", "provisioned:1",
        "--plot", str(tmp_path / "e.png"),
    )  # fmt: skip
    assert code == 2, stderr
    assert HINT in stderr
    assert not (tmp_path / "e.png").exists()


@pytest.mark.usefixtures("no_matplotlib")
def test_tune_plot_names_the_extra(tmp_path: Path) -> None:
    study = StudyView(
        name="s", run_id="p" * 32, experiment_id=1, experiment="Default", state="COMPLETED",
        metric="loss", mode="min", sampler="tpe", pruner="median", executor="local",
        n_trials=0, start_time_ms=0, end_time_ms=1, space={}, trials=(),
    )  # fmt: skip
    with pytest.raises(InvalidInput, match=r"modelyard\[plot\]"):
        write_parallel_coordinates(study, tmp_path / "study.png")


@pytest.mark.usefixtures("no_matplotlib")
def test_quickstart_roc_plot_is_skipped(tmp_path: Path) -> None:
    curve = np.array([0.0, 0.5, 1.0])
    assert write_roc_png(tmp_path / "roc.png", curve, curve, "m", 0.5) is None
    assert not (tmp_path / "roc.png").exists()


def test_quickstart_roc_plot_with_the_extra(tmp_path: Path) -> None:
    curve = np.array([0.0, 0.5, 1.0])
    path = write_roc_png(tmp_path / "roc.png", curve, curve, "m", 0.5)
    assert path is not None
    assert path.read_bytes()[:4] == b"\x89PNG"
