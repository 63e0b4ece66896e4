"""``modelyard autoscale simulate`` as a user runs it: tables, JSON, report, plot, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.autoscale.report import SUMMARY_KEYS
from modelyard.cli.main import app

TRACES = Path(__file__).parents[2] / ".." / "shared" / "traces"


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    rows = ["t,exec"] + [
        f"{1_700_000_000 + i * 0.05:.3f},{0.02 + (i % 5) * 0.01}" for i in range(800)
    ]
    rows += [f"{1_700_000_100 + i * 0.5:.3f},0.03" for i in range(40)]
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["autoscale", "simulate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_simulate_writes_json_report_and_plot(trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    code, stdout, stderr = run(
        "--trace",
        str(trace),
        "--time-column",
        "t",
        "--service-time-column",
        "exec",
        "--target-concurrency",
        "2",
        "--slo-ms",
        "300",
        "--policy",
        "default,kpa,hpa,ray,oracle,fixed:2",
        "--report",
        str(tmp_path / "sim.md"),
        "--plot",
        str(tmp_path / "sim.png"),
        "--json",
        str(out),
    )
    assert code == 0, stderr
    assert "default" in stdout
    assert "fixed:2" in stdout
    assert "replica-s" in stdout
    document = json.loads(out.read_text())
    assert set(document) == {"settings", "trace", "policies"}
    assert set(document["trace"]) == {"requests", "duration_s"}
    assert document["trace"]["requests"] == 840
    assert list(document["policies"]) == ["default", "kpa", "hpa", "ray", "oracle", "fixed:2"]
    for row in document["policies"].values():
        assert tuple(row) == SUMMARY_KEYS
        assert row["requests"] == 840
    assert document["settings"]["slo_ms"] == 300
    report = (tmp_path / "sim.md").read_text()
    assert "| default |" in report
    assert "sim.png" in report
    assert (tmp_path / "sim.png").read_bytes()[:4] == b"\x89PNG"


def test_json_to_stdout_with_counts_and_a_distribution(tmp_path: Path) -> None:
    counts = tmp_path / "counts.txt"
    counts.write_text("5 10 20\n40 0 3\n", encoding="utf-8")
    code, stdout, stderr = run(
        "--trace",
        str(counts),
        "--format",
        "counts",
        "--interval-s",
        "2",
        "--service-time-ms",
        "lognormal:40,0.5",
        "--slo-wait-ms",
        "100",
        "--time-scale",
        "2",
        "--policy",
        "default",
        "--json",
        "-",
    )
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["trace"]["requests"] == 78
    assert document["settings"]["slo_wait_ms"] == 100
    assert document["settings"]["service_time"] == "lognormal:40,0.5"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("t\n1\nnoon\n", ["--time-column", "t"], "line 3: cannot parse timestamp"),
        ("", ["--time-column", "t"], "empty"),
        ("t\n1\n", ["--time-column", "x"], "no column 'x'"),
        ("1 -2\n", ["--format", "counts"], "line 1: count -2 is negative"),
        ("t\n1\n", ["--time-column", "t", "--policy", "magic"], "unknown policy 'magic'"),
        ("t\n1\n", ["--time-column", "t", "--service-time-ms", "soon"], "--service-time-ms"),
        ("t\n1\n", ["--time-column", "t", "--slo-ms", "1", "--slo-wait-ms", "1"], "either"),
        ("t\n1\n", [], "--time-column"),
    ],
)
def test_bad_input_is_one_red_line_and_exit_2(
    tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    code, stdout, stderr = run("--trace", str(path), *args)
    assert code == 2
    flat = " ".join(stderr.split())  # Rich wraps long lines at the terminal width
    assert flat.startswith("error: ")
    assert flat.count("error:") == 1
    assert message in flat
    assert "Traceback" not in stdout + stderr


def test_the_issue_example_on_the_real_azure_trace(tmp_path: Path) -> None:
    azure = TRACES / "azure_llm_conv_2023.csv"
    if not azure.exists():
        pytest.skip(f"Azure trace not found at {azure.resolve()}")
    out = tmp_path / "sim.json"
    code, _, stderr = run(
        "--trace",
        str(azure),
        "--format",
        "timestamps",
        "--time-column",
        "TIMESTAMP",
        "--time-scale",
        "10",
        "--service-time-ms",
        "40",
        "--cold-start-s",
        "2",
        "--target-concurrency",
        "4",
        "--slo-ms",
        "250",
        "--policy",
        "default,kpa,hpa,oracle,fixed:4",
        "--json",
        str(out),
    )
    assert code == 0, stderr
    policies = json.loads(out.read_text())["policies"]
    assert policies["default"]["slo_violation_pct"] <= 1.0
    assert policies["default"]["replica_seconds"] <= policies["kpa"]["replica_seconds"]
    assert policies["fixed:4"]["max_replicas"] == 4
