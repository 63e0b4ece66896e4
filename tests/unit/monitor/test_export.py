"""Prometheus rules and the Grafana dashboard, checked with the real ``promtool``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from modelyard.core.errors import InvalidInput
from modelyard.monitor._export import (
    DASHBOARD_UID,
    PROMETHEUS_METRICS,
    alert_name,
    grafana_dashboard,
    prometheus_rules,
    promql_expr,
    promql_metric,
    promql_string,
    render_grafana_dashboard,
    render_prometheus_rules,
)
from modelyard.monitor.rules import METRICS, OPS, AlertRule, parse_rule

ALERT_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

SPREAD = [
    "rps < 1 for 10m",
    "p50_ms > 20",
    "p90_ms >= 35.5 for 90s",
    "p99_ms > 50 for 2m",
    "error_rate >= 0.05",
    "replicas == 0 for 1h",
    "in_flight > 100",
    "queued > 10 for 30s",
    "drift_share > 0.3 for 10m",
    "drift:age > 0.2 for 5m",
    'drift:"petal length (cm)" > 0.2',
    'drift:"we{{ird}} \\"quoted\\" back\\\\slash" >= 1',
    "drifted:income == 1",
    "accuracy < 0.8 for 1h",
    "auc <= 0.7",
    "log_dropped > 0",
    "rps != 0 for 1.5s",
    "in_flight < -1e-07",
]


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed; it comes with the Debian package 'prometheus' "
            "(apt-get install --no-install-recommends prometheus) or a Prometheus release"
        )
    return path


def check_rules(promtool: str, text: str, tmp: Path) -> str:
    path = tmp / "rules.yml"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"promtool rejected:\n{proc.stdout}{proc.stderr}\n{text}"
    return proc.stdout


def spread() -> list[tuple[str, str, AlertRule]]:
    return [("churn", "churn-api", parse_rule(text)) for text in SPREAD] + [
        ("fraud", "fraud-v2", parse_rule("p99_ms > 250 for 5m")),
        ('we"ird\\proj', 'dep {{x}} "q"\n', parse_rule("error_rate > 0.1")),
    ]


# --- promtool --------------------------------------------------------------------------


def test_promtool_accepts_a_spread_of_rules(promtool: str, tmp_path: Path) -> None:
    rules = spread()
    text = render_prometheus_rules(rules, keep_firing_s=60)
    out = check_rules(promtool, text, tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out


def test_promtool_check_is_real(promtool: str, tmp_path: Path) -> None:
    broken = "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: sum(up\n"
    (tmp_path / "bad.yml").write_text(broken)
    proc = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "bad.yml")],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0


@st.composite
def rule_sets(draw: st.DrawFn) -> list[tuple[str, str, AlertRule]]:
    names = st.text(min_size=1, max_size=10)
    out = []
    for _ in range(draw(st.integers(1, 6))):
        metric = draw(st.sampled_from(sorted(METRICS)))
        feature = draw(names) if METRICS[metric].per_feature else None
        threshold = draw(st.floats(-1e6, 1e6, allow_nan=False))
        for_s = draw(st.integers(0, 7 * 86400 * 1000)) / 1000
        rule = AlertRule(metric, feature, draw(st.sampled_from(OPS)), threshold, for_s)
        out.append((draw(names), draw(names), rule))
    return out


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule_sets(), st.sampled_from(["1m", "5m", "1h30m"]), st.sampled_from([0.0, 0.1]))
def test_promtool_accepts_generated_rule_sets(
    promtool: str, rules: list[tuple[str, str, AlertRule]], window: str, hysteresis: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        text = render_prometheus_rules(rules, rate_window=window, hysteresis=hysteresis)
        check_rules(promtool, text, Path(tmp))
    for group in yaml.safe_load(text)["groups"]:
        for entry in group["rules"]:
            assert ALERT_NAME_RE.fullmatch(entry["alert"])


def test_promtool_unit_test_of_hysteresis(promtool: str, tmp_path: Path) -> None:
    """Prometheus itself resolves the exported alert where the built-in evaluator does."""
    rule = parse_rule("queued > 10")
    text = render_prometheus_rules([("churn", "churn-api", rule)])
    (tmp_path / "rules.yml").write_text(text)
    labels = {
        "severity": "warning",
        "project": "churn",
        "deployment": "churn-api",
        "rule": "queued > 10",
    }

    def firing(value: str) -> list[dict[str, Any]]:
        return [
            {
                "exp_labels": labels,
                "exp_annotations": {
                    "summary": "churn/churn-api: queued > 10",
                    "description": f"queued of deployment churn/churn-api is {value} "
                    "(threshold > 10).",
                },
            }
        ]

    series = 'modelyard_gateway_queued_requests{deployment="churn-api",revision="3"}'
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                # 9.5 is inside the band (> 9): it keeps a firing alert, never starts one.
                "input_series": [{"series": series, "values": "5 9.5 20 9.5 9.5 5 9.5"}],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "ModelyardChurnApiQueued", "exp_alerts": []},
                    {
                        "eval_time": "2m",
                        "alertname": "ModelyardChurnApiQueued",
                        "exp_alerts": firing("20"),
                    },
                    {
                        "eval_time": "4m",
                        "alertname": "ModelyardChurnApiQueued",
                        "exp_alerts": firing("9.5"),
                    },
                    {"eval_time": "5m", "alertname": "ModelyardChurnApiQueued", "exp_alerts": []},
                    {"eval_time": "6m", "alertname": "ModelyardChurnApiQueued", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run(
        [promtool, "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
    return exprs


def test_promtool_accepts_every_dashboard_query(promtool: str, tmp_path: Path) -> None:
    exprs = dashboard_exprs(grafana_dashboard(["churn-api", "fraud"]))
    assert len(exprs) >= 12
    concrete = [
        e.replace("$__rate_interval", "5m").replace("$deployment", "churn-api|fraud") for e in exprs
    ]
    assert not any("$" in e for e in concrete)
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"modelyard:dashboard_query_{i}", "expr": e}
                    for i, e in enumerate(concrete)
                ],
            }
        ]
    }
    out = check_rules(promtool, yaml.safe_dump(rules), tmp_path)
    assert f"SUCCESS: {len(concrete)} rules found" in out


# --- the rules' content ------------------------------------------------------------------


def test_rules_file_structure() -> None:
    data = prometheus_rules(spread())
    groups = data["groups"]
    assert [g["name"] for g in groups] == [
        "modelyard/churn/churn-api",
        "modelyard/fraud/fraud-v2",
        'modelyard/we"ird\\proj/dep {{x}} "q"\n',
    ]
    first = groups[0]["rules"][3]
    assert first["alert"] == "ModelyardChurnApiP99Ms"
    assert first["for"] == "2m"
    assert first["labels"] == {
        "severity": "warning",
        "project": "churn",
        "deployment": "churn-api",
        "rule": "p99_ms > 50 for 2m",
    }
    assert first["annotations"]["summary"] == "churn/churn-api: p99_ms > 50 for 2m"
    assert "{{ $value | humanize }}" in first["annotations"]["description"]
    assert "keep_firing_for" not in first
    by_rule = {r["labels"]["rule"]: r for g in groups for r in g["rules"]}
    assert by_rule["rps != 0 for 1.5s"]["for"] == "1500ms"
    assert by_rule["drift:age > 0.2 for 5m"]["alert"] == "ModelyardChurnApiDriftAge"
    assert "for" not in by_rule["p50_ms > 20"]
    # Go-template text is escaped in labels and annotations.
    weird = groups[2]["rules"][0]
    assert weird["labels"]["deployment"] == 'dep {{"{"}}{{"{"}}x}} "q"\n'
    assert weird["alert"] == "ModelyardDepXQErrorRate"


def test_p99_expression_matches_the_documented_translation() -> None:
    rule = parse_rule("p99_ms > 50 for 2m")
    assert promql_expr("churn", "churn-api", rule, hysteresis=0.0) == (
        "(histogram_quantile(0.99, sum by (le) (rate("
        'modelyard_gateway_request_duration_seconds_bucket{deployment="churn-api"}[5m])))'
        " * 1000) > 50"
    )
    with_band = promql_expr("churn", "churn-api", rule)
    assert ") > 45) and on() ALERTS{" in with_band
    assert 'alertname="ModelyardChurnApiP99Ms",alertstate="firing"' in with_band


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rps > 1", 'sum(rate(modelyard_gateway_requests_total{deployment="d"}[5m]))'),
        (
            "error_rate > 0.1",
            'sum(rate(modelyard_gateway_requests_total{deployment="d",code=~"5.."}[5m])) / '
            'sum(rate(modelyard_gateway_requests_total{deployment="d"}[5m]))',
        ),
        (
            "replicas < 1",
            'sum(modelyard_deployment_replicas{project="p",deployment="d",state="ready"})',
        ),
        ("in_flight > 1", 'sum(modelyard_gateway_in_flight_requests{deployment="d"})'),
        ("queued > 1", 'sum(modelyard_gateway_queued_requests{deployment="d"})'),
        ("drift_share > 0.3", 'max(modelyard_drift_share{project="p",deployment="d"})'),
        (
            "drift:age > 0.2",
            'max(modelyard_feature_drift_score{project="p",deployment="d",feature="age"})',
        ),
        (
            "drifted:age == 1",
            'max(modelyard_feature_drifted{project="p",deployment="d",feature="age"})',
        ),
        ("accuracy < 0.8", 'max(modelyard_model_accuracy{project="p",deployment="d"})'),
        ("auc < 0.8", 'max(modelyard_model_auc{project="p",deployment="d"})'),
        (
            "log_dropped > 0",
            'sum(increase(modelyard_prediction_log_dropped_total{deployment="d"}[5m]))',
        ),
        ("p50_ms > 1", "histogram_quantile(0.5, "),
        ("p90_ms > 1", "histogram_quantile(0.9, "),
    ],
)
def test_metric_translation(text: str, fragment: str) -> None:
    assert promql_metric("p", "d", parse_rule(text)) == fragment or fragment in promql_metric(
        "p", "d", parse_rule(text)
    )


def test_promql_string_escaping() -> None:
    assert promql_string('a"b\\c') == '"a\\"b\\\\c"'
    assert promql_string("line\nnext\ttab\x01") == '"line\\nnext\\ttab\\x01"'
    assert promql_string("überall") == '"überall"'


def test_alert_names() -> None:
    assert alert_name("churn-api", parse_rule("p99_ms > 50")) == "ModelyardChurnApiP99Ms"
    assert alert_name("a.b c", parse_rule('drift:"x y" > 1')) == "ModelyardABCDriftXY"
    assert alert_name("2fast", parse_rule("rps > 1")) == "Modelyard2fastRps"
    assert alert_name("ünï", parse_rule("rps > 1")) == "ModelyardNRps"


def test_bad_export_options() -> None:
    rules = spread()[:1]
    with pytest.raises(InvalidInput, match="rate window '5 minutes'"):
        prometheus_rules(rules, rate_window="5 minutes")
    with pytest.raises(InvalidInput, match="hysteresis"):
        prometheus_rules(rules, hysteresis=1.5)
    with pytest.raises(InvalidInput, match="keep_firing_s"):
        prometheus_rules(rules, keep_firing_s=-1)
    with pytest.raises(InvalidInput, match="deployment name"):
        prometheus_rules([("p", "", parse_rule("rps > 1"))])


def test_exports_are_deterministic() -> None:
    assert render_prometheus_rules(spread()) == render_prometheus_rules(spread())
    assert render_grafana_dashboard(["a"]) == render_grafana_dashboard(["a"])
    assert json.loads(render_grafana_dashboard()) == grafana_dashboard()
    assert render_prometheus_rules([]).endswith("groups: []\n")


# --- the dashboard -----------------------------------------------------------------------


def test_dashboard_model() -> None:
    dashboard = grafana_dashboard()
    assert dashboard["uid"] == DASHBOARD_UID
    assert dashboard["id"] is None
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    deployment = variables["deployment"]
    assert deployment["query"]["query"] == (
        "label_values(modelyard_gateway_requests_total, deployment)"
    )
    assert deployment["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert deployment["multi"]
    assert deployment["includeAll"]
    assert deployment["regex"] == ""
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in panels if p["type"] == "timeseries"}
    assert titles == {
        "Request rate",
        "Latency p50 / p90 / p99",
        "Error rate",
        "In flight / queued",
        "Replicas by revision",
        "Drift share",
        "Drifted features",
        "Feature drift scores",
        "Accuracy / AUC",
        "Prediction-log drops",
    }
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"panel {panel['title']} overlaps another"
        cells |= mine
        if panel["type"] == "timeseries":
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))
            assert all('deployment=~"$deployment"' in t["expr"] for t in panel["targets"])
    used = " ".join(dashboard_exprs(dashboard))
    for metric, (kind, _) in PROMETHEUS_METRICS.items():
        assert (metric + ("_bucket" if kind == "histogram" else "")) in used


def test_dashboard_limited_to_deployments() -> None:
    dashboard = grafana_dashboard(["churn-api", "a.b", "churn-api"])
    deployment = next(v for v in dashboard["templating"]["list"] if v["name"] == "deployment")
    assert deployment["regex"] == "/^(churn\\-api|a\\.b)$/"
    assert deployment["current"]["value"] == ["churn-api", "a.b"]
    with pytest.raises(InvalidInput):
        grafana_dashboard([""])
