"""``modelyard cost prices`` and ``modelyard cost estimate`` as a user runs them: tables,
JSON, report, plot, the catalog in effect, and bad input as one red line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.cost.estimate_report import OPTION_KEYS

TRACES = Path(__file__).parents[3] / ".." / "shared" / "traces"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh MODELYARD_HOME with no price file, and no MODELYARD_PRICES."""
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MODELYARD_PRICES", raising=False)
    return tmp_path / "home"


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """Two bursts of 20 requests/s with a quiet minute between them."""
    rows = ["t,exec"] + [f"{1_700_000_000 + i * 0.05:.3f},0.1" for i in range(300)]
    rows += [f"{1_700_000_075 + i * 0.05:.3f},0.1" for i in range(300)]
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def cost(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["cost", *args])
    return result.exit_code, result.stdout, result.stderr


def one_error(code: int, stdout: str, stderr: str) -> str:
    """The single error line (Rich wraps long lines), after checking its form."""
    assert code == 2, (stdout, stderr)
    flat = " ".join(stderr.split())
    assert flat.startswith("error: ")
    assert flat.count("error:") == 1
    assert "Traceback" not in stdout + stderr
    return flat


# ---- cost prices ---------------------------------------------------------------------------


def test_prices_show_each_price_its_rate_and_origin() -> None:
    code, stdout, stderr = cost("prices")
    assert code == 0, stderr
    assert "0.04048 USD per vCPU-hour" in stdout
    assert "0.0000112444 USD per vCPU-second" in stdout
    assert "serverless.max_concurrency" in stdout
    assert "default" in stdout


def test_prices_json_follows_the_file_in_effect(home: Path, tmp_path: Path) -> None:
    home.mkdir(parents=True)
    (home / "prices.toml").write_text('[provisioned]\ncpu = "0.05 USD per vCPU-hour"\n')
    code, stdout, _ = cost("prices", "--json")
    assert code == 0
    document = json.loads(stdout)
    assert document["sources"] == ["default", str(home / "prices.toml")]
    assert document["prices"]["provisioned.cpu"]["origin"] == f"{home / 'prices.toml'}:2"
    assert document["prices"]["provisioned.memory"]["origin"] == "default"
    flag = tmp_path / "flag.toml"
    flag.write_text("[serverless]\n\nkeep_alive_s = 60\n")
    code, stdout, _ = cost("prices", "--json", "--prices", str(flag))
    document = json.loads(stdout)
    assert document["sources"] == ["default", str(flag)]  # --prices wins over the home file
    assert document["numbers"]["serverless.keep_alive_s"] == {
        "value": 60.0,
        "origin": f"{flag}:3",
        "meaning": "how long an idle instance stays warm, seconds",
    }


def test_prices_follow_modelyard_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.toml"
    path.write_text('[provisioned]\ngpu = "2 USD per GPU-hour"\n')
    monkeypatch.setenv("MODELYARD_PRICES", str(path))
    code, stdout, _ = cost("prices", "--json")
    assert code == 0
    assert json.loads(stdout)["prices"]["provisioned.gpu"]["amount"] == 2.0


def test_a_bad_price_file_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('# mine\n[provisioned]\ncpu = "-1 USD per vCPU-hour"\n')
    message = one_error(*cost("prices", "--prices", str(path)))
    assert f"{path}:3: provisioned.cpu: a price must be >= 0" in message
    message = one_error(*cost("prices", "--prices", str(tmp_path / "none.toml")))
    assert "cannot read the price file" in message


# ---- cost estimate -----------------------------------------------------------------------


def test_estimate_prints_a_table_and_a_recommendation(trace: Path) -> None:
    code, stdout, stderr = cost(
        "estimate", "--trace", str(trace), "--time-column", "t", "--service-time-column",
        "exec", "--target-concurrency", "2", "--slo-ms", "500",
        "--options", "provisioned:3,autoscaled:default,serverless,spot",
    )  # fmt: skip
    assert code == 0, stderr
    assert "600 requests over" in stdout
    for name in ("provisioned:3", "autoscaled:default", "serverless", "spot", "cost USD"):
        assert name in stdout
    assert "Recommendation: spot: cheapest option within 1% SLO misses" in stdout
    assert "note: spot: priced with the catalog's spot discount" in stdout


def test_estimate_json_report_and_plot(trace: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[provisioned]\nspot_discount = 0.5\n")
    report, plot = tmp_path / "e.md", tmp_path / "e.png"
    code, stdout, stderr = cost(
        "estimate", "--trace", str(trace), "--time-column", "t",
        "--service-time-ms", "lognormal:100,0.3", "--memory-gb", "1", "--cpu", "0.5",
        "--target-concurrency", "2", "--slo-ms", "500", "--max-slo-miss-pct", "2",
        "--options", "provisioned:auto,autoscaled,serverless,spot",
        "--max-concurrency", "3", "--keep-alive-s", "10", "--serverless-cold-start-s", "0.2",
        "--prices", str(prices), "--report", str(report), "--plot", str(plot), "--json", "-",
    )  # fmt: skip
    assert code == 0, stderr
    document = json.loads(stdout)
    assert set(document) == {"settings", "trace", "currency", "options", "recommendation",
                             "notes"}  # fmt: skip
    assert document["trace"]["requests"] == 600
    assert document["currency"] == "USD"
    options = document["options"]
    assert list(options) == ["provisioned:auto", "autoscaled:default", "serverless", "spot"]
    for row in options.values():
        assert tuple(row) == OPTION_KEYS
    assert options["spot"]["cost"] == pytest.approx(options["autoscaled:default"]["cost"] / 2,
                                                    rel=1e-4)  # fmt: skip
    serverless = options["serverless"]
    assert serverless["throttled"] > 0  # 20 requests/s of 0.1 s each need 2+ at once
    assert serverless["failures"] == serverless["throttled"]
    assert serverless["slo_misses"] >= serverless["failures"]
    assert document["settings"]["serverless"] == {
        "max_concurrency": 3,
        "max_execution_s": 900.0,
        "cold_start_s": 0.2,
        "keep_alive_s": 10.0,
        "bill_cold_start": True,
    }
    assert document["settings"]["prices"] == ["default", str(prices)]
    recommendation = document["recommendation"]
    assert recommendation["option"] in options
    assert recommendation["max_slo_miss_pct"] == 2.0
    page = report.read_text()
    assert "| serverless |" in page
    assert "e.png" in page
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_estimate_on_a_counts_trace_with_a_time_limit(tmp_path: Path) -> None:
    counts = tmp_path / "counts.txt"
    counts.write_text("5 10 20\n40 0 3\n", encoding="utf-8")
    out = tmp_path / "e.json"
    code, _, stderr = cost(
        "estimate", "--trace", str(counts), "--format", "counts", "--interval-s", "2",
        "--service-time-ms", "lognormal:400,1", "--max-execution-s", "0.5",
        "--options", "serverless", "--json", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    row = json.loads(out.read_text())["options"]["serverless"]
    assert row["requests"] == 78
    assert row["timed_out"] > 0
    assert row["failures"] == row["timed_out"]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("t\n1\nnoon\n", ["--time-column", "t"], "line 3: cannot parse timestamp 'noon'"),
        ("t,s\n1,2\n3\n", ["--time-column", "t"], "line 3: expected 2 columns, got 1"),
        ("t\n1\n\n2\n", ["--time-column", "t"], "line 3: blank line between requests"),
        ("t,s\n1,2\n2,\n", ["--time-column", "t", "--service-time-column", "s"],
         "line 3: empty service time in column 's'"),
        ("t,s\n1,-2\n", ["--time-column", "t", "--service-time-column", "s"],
         "line 2: service time must be a finite number >= 0"),
        ("1\n\n2\n", ["--format", "counts"], "line 2: blank line between counts"),
        ("t\n1\n", [], "--format timestamps needs --time-column"),
        ("t\n1\n", ["--time-column", "t", "--options", "lambda"], "unknown option 'lambda'"),
        ("t\n1\n", ["--time-column", "t", "--options", "provisioned"], "provisioned:N"),
        ("t\n1\n", ["--time-column", "t", "--memory-gb", "-1"], "--memory-gb"),
        ("t\n1\n", ["--time-column", "t", "--cpu", "nan"], "--cpu"),
        ("t\n1\n", ["--time-column", "t", "--max-concurrency", "0"], "--max-concurrency"),
        ("t\n1\n", ["--time-column", "t", "--max-execution-s", "0"], "--max-execution-s"),
        ("t\n1\n", ["--time-column", "t", "--max-slo-miss-pct", "101"], "--max-slo-miss-pct"),
        ("t\n1\n", ["--time-column", "t", "--slo-ms", "-5"], "the SLO must be > 0 ms"),
        ("t\n1\n", ["--time-column", "t", "--slo-ms", "1", "--slo-wait-ms", "1"], "either"),
        ("t\n1\n", ["--time-column", "t", "--target-concurrency", "0"],
         "--target-concurrency must be >= 1"),
        ("t\n1\n", ["--time-column", "t", "--cold-start-s", "nan"], "--cold-start-s"),
        ("t\n1\n", ["--time-column", "t", "--max-replicas", "0"], "--max-replicas"),
        ("t\n1\n", ["--time-column", "t", "--time-scale", "0"], "--time-scale"),
        ("t\n1\n", ["--time-column", "t", "--service-time-ms", "soon"], "--service-time-ms"),
        ("t\n1\n", ["--time-column", "t", "--plot", "/nonexistent/dir/p.png"],
         "--plot: the directory /nonexistent/dir does not exist"),
        ("t\n1\n", ["--time-column", "t", "--json", "/nonexistent/e.json"],
         "--json: the directory"),
    ],
)  # fmt: skip
def test_bad_input_is_one_red_line_and_exit_2(
    tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    assert message in one_error(*cost("estimate", "--trace", str(path), *args))


def test_a_bad_price_file_stops_the_estimate(tmp_path: Path, trace: Path) -> None:
    prices = tmp_path / "p.toml"
    prices.write_text('currency = "EUR"\n')
    message = one_error(*cost("estimate", "--trace", str(trace), "--time-column", "t",
                              "--prices", str(prices)))  # fmt: skip
    assert "give every price" in message


def test_the_azure_trace_worked_example() -> None:
    azure = TRACES / "azure_llm_conv_2023.csv"
    if not azure.exists():
        pytest.skip(f"Azure trace not found at {azure.resolve()}")
    code, stdout, stderr = cost(
        "estimate", "--trace", str(azure), "--time-column", "TIMESTAMP",
        "--service-time-ms", "40", "--memory-gb", "2",
        "--options", "provisioned:2,autoscaled:default,serverless,spot", "--json", "-",
    )  # fmt: skip
    assert code == 0, stderr
    options = json.loads(stdout)["options"]
    assert options["autoscaled:default"]["max_instances"] == 1  # one replica carries it all
    assert options["provisioned:2"]["cost"] == pytest.approx(
        2 * options["autoscaled:default"]["cost"], rel=1e-3
    )
    assert options["serverless"]["cold_starts"] > 0
    assert options["serverless"]["failures"] == 0
    assert options["serverless"]["cost"] < options["autoscaled:default"]["cost"]
