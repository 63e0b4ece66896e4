"""Exports for an existing Prometheus and Grafana: alerting rules and a dashboard.

Both are pure functions of their arguments: the same input gives byte-identical output,
so the files can be committed and diffed.

The PromQL uses the metrics the platform exposes (the gateway at ``/-/metrics``, the
server at ``/metrics``); :data:`PROMETHEUS_METRICS` lists them. A rule's metric maps to
PromQL as follows (``{d}`` the deployment matcher, ``[w]`` the rate window):

==================  =================================================================
``rps``             ``sum(rate(modelyard_gateway_requests_total{d}[w]))``
``pNN_ms``          ``histogram_quantile(0.NN, sum by (le) (rate(…_bucket{d}[w]))) * 1000``
``error_rate``      5xx request rate / all request rate
``replicas``        ``sum(modelyard_deployment_replicas{d,state="ready"})``
``in_flight``       ``sum(modelyard_gateway_in_flight_requests{d})``
``queued``          ``sum(modelyard_gateway_queued_requests{d})``
``drift_share``     ``max(modelyard_drift_share{d})``
``drift:<f>``       ``max(modelyard_feature_drift_score{d,feature="<f>"})``
``drifted:<f>``     ``max(modelyard_feature_drifted{d,feature="<f>"})``
``accuracy``/``auc`` ``max(modelyard_model_accuracy{d})`` / ``max(modelyard_model_auc{d})``
``log_dropped``     ``sum(increase(modelyard_prediction_log_dropped_total{d}[w]))``
==================  =================================================================

Hysteresis is kept: once an alert fires, its expression also holds while the value is
inside the band (``… or (value > threshold - band and on() ALERTS{…firing…})``), so
Prometheus resolves it at the same point the built-in evaluator does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml

from modelyard.core.errors import InvalidInput
from modelyard.monitor.rules import AlertRule, format_duration, format_number

__all__ = [
    "DASHBOARD_UID",
    "PROMETHEUS_METRICS",
    "alert_name",
    "grafana_dashboard",
    "prometheus_rules",
    "promql_expr",
    "promql_metric",
    "promql_string",
    "render_grafana_dashboard",
    "render_prometheus_rules",
]

#: The metrics the exports query, with their type and labels.
PROMETHEUS_METRICS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "modelyard_gateway_requests_total": ("counter", ("deployment", "revision", "code")),
    "modelyard_gateway_request_duration_seconds": ("histogram", ("deployment", "revision")),
    "modelyard_gateway_in_flight_requests": ("gauge", ("deployment", "revision")),
    "modelyard_gateway_queued_requests": ("gauge", ("deployment", "revision")),
    "modelyard_deployment_replicas": ("gauge", ("project", "deployment", "revision", "state")),
    "modelyard_drift_share": ("gauge", ("project", "deployment")),
    "modelyard_feature_drift_score": ("gauge", ("project", "deployment", "feature", "test")),
    "modelyard_feature_drifted": ("gauge", ("project", "deployment", "feature")),
    "modelyard_model_accuracy": ("gauge", ("project", "deployment")),
    "modelyard_model_auc": ("gauge", ("project", "deployment")),
    "modelyard_prediction_log_dropped_total": ("counter", ("deployment", "revision")),
}

#: The dashboard's uid, stable so re-importing it replaces the previous one.
DASHBOARD_UID: Final = "modelyard-overview"

_PROM_DURATION_RE: Final = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
_QUANTILES: Final[Mapping[str, str]] = {"p50_ms": "0.5", "p90_ms": "0.9", "p99_ms": "0.99"}
_READY_STATE: Final = "ready"


# --- PromQL --------------------------------------------------------------------------


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal, escaped."""
    out = ['"']
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _selector(metric: str, matchers: Sequence[tuple[str, str, str]]) -> str:
    inner = ",".join(f"{name}{op}{promql_string(value)}" for name, op, value in matchers)
    return f"{metric}{{{inner}}}"


def _check_window(rate_window: str) -> str:
    if not _PROM_DURATION_RE.fullmatch(rate_window):
        raise InvalidInput(
            f"rate window '{rate_window}': use a Prometheus duration such as 5m or 1h30m"
        )
    return rate_window


def promql_metric(
    project: str, deployment: str, rule: AlertRule, *, rate_window: str = "5m"
) -> str:
    """PromQL for the value of the rule's metric for one deployment (one series)."""
    _check_window(rate_window)
    dep = [("deployment", "=", deployment)]
    proj_dep = [("project", "=", project), ("deployment", "=", deployment)]
    metric = rule.metric
    if metric in _QUANTILES:
        buckets = _selector("modelyard_gateway_request_duration_seconds_bucket", dep)
        return (
            f"histogram_quantile({_QUANTILES[metric]}, "
            f"sum by (le) (rate({buckets}[{rate_window}]))) * 1000"
        )
    if metric == "rps":
        return f"sum(rate({_selector('modelyard_gateway_requests_total', dep)}[{rate_window}]))"
    if metric == "error_rate":
        errors = _selector("modelyard_gateway_requests_total", [*dep, ("code", "=~", "5..")])
        total = _selector("modelyard_gateway_requests_total", dep)
        return f"sum(rate({errors}[{rate_window}])) / sum(rate({total}[{rate_window}]))"
    if metric == "replicas":
        ready = [*proj_dep, ("state", "=", _READY_STATE)]
        return f"sum({_selector('modelyard_deployment_replicas', ready)})"
    if metric == "in_flight":
        return f"sum({_selector('modelyard_gateway_in_flight_requests', dep)})"
    if metric == "queued":
        return f"sum({_selector('modelyard_gateway_queued_requests', dep)})"
    if metric == "drift_share":
        return f"max({_selector('modelyard_drift_share', proj_dep)})"
    if metric in ("drift", "drifted"):
        assert rule.feature is not None
        name = "modelyard_feature_drift_score" if metric == "drift" else "modelyard_feature_drifted"
        return f"max({_selector(name, [*proj_dep, ('feature', '=', rule.feature)])})"
    if metric in ("accuracy", "auc"):
        return f"max({_selector(f'modelyard_model_{metric}', proj_dep)})"
    if metric == "log_dropped":
        dropped = _selector("modelyard_prediction_log_dropped_total", dep)
        return f"sum(increase({dropped}[{rate_window}]))"
    raise AssertionError(f"no PromQL for metric {metric!r}")  # pragma: no cover


def _camel(text: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in re.split(r"[^A-Za-z0-9]+", text))


def alert_name(deployment: str, rule: AlertRule) -> str:
    """A valid Prometheus alert name: ``ModelyardChurnApiP99Ms``, ``ModelyardChurnApiDriftAge``.

    Characters other than ASCII letters and digits separate words.
    """
    parts = [rule.metric, rule.feature or ""]
    return "Modelyard" + _camel(deployment) + "".join(_camel(p) for p in parts)


def _alert_labels(project: str, deployment: str, rule: AlertRule, severity: str) -> dict[str, str]:
    return {
        "severity": severity,
        "project": project,
        "deployment": deployment,
        "rule": rule.text,
    }


def promql_expr(
    project: str,
    deployment: str,
    rule: AlertRule,
    *,
    rate_window: str = "5m",
    hysteresis: float = 0.1,
    severity: str = "warning",
) -> str:
    """The alert expression of a rule, with its hysteresis band.

    For ``>``/``>=`` with a band ``b = hysteresis * |threshold|`` > 0::

        (V > t) or ((V > t - b) and on() ALERTS{alertname=…, alertstate="firing", …})

    (mirrored for ``<``/``<=``); ``==``, ``!=`` and a zero band give ``V op t``.
    """
    if not (0.0 <= hysteresis < 1.0):
        raise InvalidInput(f"hysteresis must be in [0, 1), got {hysteresis!r}")
    value = promql_metric(project, deployment, rule, rate_window=rate_window)
    fire = f"({value}) {rule.op} {format_number(rule.threshold)}"
    band = hysteresis * abs(rule.threshold)
    if band == 0 or rule.op in ("==", "!="):
        return fire
    if rule.op in (">", ">="):
        keep = f"({value}) > {_band_edge(rule.threshold - band)}"
    else:
        keep = f"({value}) < {_band_edge(rule.threshold + band)}"
    labels = _alert_labels(project, deployment, rule, severity)
    firing = _selector(
        "ALERTS",
        [
            ("alertname", "=", alert_name(deployment, rule)),
            ("alertstate", "=", "firing"),
            *((k, "=", v) for k, v in labels.items()),
        ],
    )
    return f"({fire}) or (({keep}) and on() {firing})"


def _band_edge(value: float) -> str:
    """The band's edge to 12 significant digits: ``0.88``, not ``0.8800000000000001``."""
    return format_number(float(f"{value:.12g}"))


def _template_literal(text: str) -> str:
    """Text for a Prometheus label or annotation (Go templates): every ``{`` escaped."""
    return text.replace("{", '{{"{"}}')


def _prom_duration(seconds: float) -> str:
    ms = round(seconds * 1000)
    for unit, unit_ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % unit_ms == 0:
            return f"{ms // unit_ms}{unit}"
    return f"{ms}ms"


def prometheus_rules(
    rules: Sequence[tuple[str, str, AlertRule]],
    *,
    rate_window: str = "5m",
    hysteresis: float = 0.1,
    keep_firing_s: float = 0.0,
    severity: str = "warning",
) -> dict[str, Any]:
    """A Prometheus rules file for ``(project, deployment, rule)`` triples.

    One group per deployment (``modelyard/<project>/<deployment>``), in the order of
    first appearance; one alerting rule per rule, with ``for``, ``keep_firing_for``
    (when ``keep_firing_s`` > 0), labels ``severity``, ``project``, ``deployment`` and
    ``rule``, and ``summary``/``description`` annotations.

    Raises:
        InvalidInput: a bad rate window, hysteresis, keep_firing_s or severity.
    """
    _check_window(rate_window)
    if not (math.isfinite(keep_firing_s) and keep_firing_s >= 0):
        raise InvalidInput(f"keep_firing_s must be ≥ 0, got {keep_firing_s!r}")
    if not severity:
        raise InvalidInput("severity must not be empty")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for project, deployment, rule in rules:
        if not deployment:
            raise InvalidInput(f"rule '{rule}': the deployment name must not be empty")
        info_value = "{{ $value | humanize }}"
        labels = _alert_labels(project, deployment, rule, severity)
        entry: dict[str, Any] = {
            "alert": alert_name(deployment, rule),
            "expr": promql_expr(
                project,
                deployment,
                rule,
                rate_window=rate_window,
                hysteresis=hysteresis,
                severity=severity,
            ),
        }
        if rule.for_s > 0:
            entry["for"] = _prom_duration(rule.for_s)
        if keep_firing_s > 0:
            entry["keep_firing_for"] = _prom_duration(keep_firing_s)
        entry["labels"] = {k: _template_literal(v) for k, v in labels.items()}
        where = _template_literal(f"{project}/{deployment}")
        entry["annotations"] = {
            "summary": f"{where}: {_template_literal(rule.text)}",
            "description": (
                f"{_template_literal(rule.metric_key)} of deployment {where} is "
                f"{info_value} (threshold {rule.op} {format_number(rule.threshold)}"
                + (f" for {format_duration(rule.for_s)}" if rule.for_s > 0 else "")
                + ")."
            ),
        }
        groups.setdefault((project, deployment), []).append(entry)
    return {
        "groups": [
            {"name": f"modelyard/{project}/{deployment}", "rules": entries}
            for (project, deployment), entries in groups.items()
        ]
    }


def render_prometheus_rules(
    rules: Sequence[tuple[str, str, AlertRule]],
    *,
    rate_window: str = "5m",
    hysteresis: float = 0.1,
    keep_firing_s: float = 0.0,
    severity: str = "warning",
) -> str:
    """:func:`prometheus_rules` as the YAML text of a rules file."""
    data = prometheus_rules(
        rules,
        rate_window=rate_window,
        hysteresis=hysteresis,
        keep_firing_s=keep_firing_s,
        severity=severity,
    )
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)
    return "# Generated by `modelyard monitor export`; edit the rules in modelyard.\n" + text


# --- Grafana -------------------------------------------------------------------------

_DS: Final[dict[str, str]] = {"type": "prometheus", "uid": "${datasource}"}
_DEP: Final = 'deployment=~"$deployment"'


def _regex_escape(text: str) -> str:
    return re.sub(r"([\\.^$|?*+()\[\]{}/-])", r"\\\1", text)


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {
        "datasource": dict(_DS),
        "expr": expr,
        "legendFormat": legend,
        "range": True,
        "refId": ref,
    }


def _panel(
    panel_id: int,
    title: str,
    description: str,
    targets: Sequence[tuple[str, str]],
    unit: str,
    grid: tuple[int, int, int, int],
    *,
    stack: bool = False,
    min_max: tuple[float, float] | None = None,
) -> dict[str, Any]:
    x, y, w, h = grid
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
    }
    if min_max is not None:
        defaults["min"], defaults["max"] = min_max
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": dict(_DS),
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            _target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)
        ],
    }


def _row(panel_id: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def _dashboard_panels() -> list[dict[str, Any]]:
    rate = "$__rate_interval"
    requests = f"modelyard_gateway_requests_total{{{_DEP}}}"
    errors = f'modelyard_gateway_requests_total{{{_DEP},code=~"5.."}}'
    buckets = f"modelyard_gateway_request_duration_seconds_bucket{{{_DEP}}}"

    def quantile(q: str) -> str:
        return f"histogram_quantile({q}, sum by (deployment, le) (rate({buckets}[{rate}]))) * 1000"

    panels: list[dict[str, Any]] = []
    ids = iter(range(1, 100))

    def add_row(title: str, y: int) -> None:
        panels.append(_row(next(ids), title, y))

    def add(*args: Any, **kwargs: Any) -> None:
        panels.append(_panel(next(ids), *args, **kwargs))

    add_row("Traffic", 0)
    add(
        "Request rate",
        "Requests per second answered by the gateway, by revision.",
        [
            (
                f"sum by (deployment, revision) (rate({requests}[{rate}]))",
                "{{deployment}} {{revision}}",
            )
        ],
        "reqps",
        (0, 1, 8, 8),
    )
    add(
        "Latency p50 / p90 / p99",
        "Request latency at the gateway, from its histogram.",
        [
            (quantile("0.5"), "{{deployment}} p50"),
            (quantile("0.9"), "{{deployment}} p90"),
            (quantile("0.99"), "{{deployment}} p99"),
        ],
        "ms",
        (8, 1, 8, 8),
    )
    add(
        "Error rate",
        "Share of requests answered with a 5xx status.",
        [
            (
                f"sum by (deployment) (rate({errors}[{rate}])) "
                f"/ sum by (deployment) (rate({requests}[{rate}]))",
                "{{deployment}}",
            )
        ],
        "percentunit",
        (16, 1, 8, 8),
        min_max=(0.0, 1.0),
    )
    add_row("Capacity", 9)
    add(
        "In flight / queued",
        "Requests being served and requests waiting in the gateway's queue.",
        [
            (
                f"sum by (deployment) (modelyard_gateway_in_flight_requests{{{_DEP}}})",
                "{{deployment}} in flight",
            ),
            (
                f"sum by (deployment) (modelyard_gateway_queued_requests{{{_DEP}}})",
                "{{deployment}} queued",
            ),
        ],
        "short",
        (0, 10, 12, 8),
    )
    add(
        "Replicas by revision",
        "Replicas of each revision, by state (starting, ready, draining …).",
        [
            (
                f"sum by (deployment, revision, state) (modelyard_deployment_replicas{{{_DEP}}})",
                "{{deployment}} {{revision}} {{state}}",
            )
        ],
        "short",
        (12, 10, 12, 8),
        stack=True,
    )
    add_row("Model quality", 18)
    add(
        "Drift share",
        "Share of features detected as drifted against the training data.",
        [(f"max by (deployment) (modelyard_drift_share{{{_DEP}}})", "{{deployment}}")],
        "percentunit",
        (0, 19, 6, 8),
        min_max=(0.0, 1.0),
    )
    add(
        "Drifted features",
        "Features detected as drifted, by name.",
        [
            (
                f"max by (deployment, feature) (modelyard_feature_drifted{{{_DEP}}}) == 1",
                "{{deployment}} {{feature}}",
            )
        ],
        "short",
        (6, 19, 6, 8),
        stack=True,
    )
    add(
        "Feature drift scores",
        "Each feature's drift statistic, by test.",
        [
            (
                f"max by (deployment, feature, test) (modelyard_feature_drift_score{{{_DEP}}})",
                "{{deployment}} {{feature}} ({{test}})",
            )
        ],
        "short",
        (12, 19, 6, 8),
    )
    add(
        "Accuracy / AUC",
        "Accuracy and ROC AUC on labelled predictions.",
        [
            (
                f"max by (deployment) (modelyard_model_accuracy{{{_DEP}}})",
                "{{deployment}} accuracy",
            ),
            (f"max by (deployment) (modelyard_model_auc{{{_DEP}}})", "{{deployment}} AUC"),
        ],
        "percentunit",
        (18, 19, 6, 8),
        min_max=(0.0, 1.0),
    )
    add(
        "Prediction-log drops",
        "Prediction-log rows dropped by its byte budget.",
        [
            (
                "sum by (deployment) "
                f"(increase(modelyard_prediction_log_dropped_total{{{_DEP}}}[{rate}]))",
                "{{deployment}}",
            )
        ],
        "short",
        (0, 27, 24, 6),
    )
    return panels


def grafana_dashboard(
    deployments: Sequence[str] | None = None,
    *,
    title: str = "modelyard",
    uid: str = DASHBOARD_UID,
) -> dict[str, Any]:
    """A Grafana dashboard (JSON model) over the platform's Prometheus metrics.

    It has a ``datasource`` variable (any Prometheus data source) and a ``deployment``
    variable from ``label_values(modelyard_gateway_requests_total, deployment)``
    (multi-select, with All); ``deployments`` limits that variable to those names and
    preselects them. Panels: request rate, p50/p90/p99 latency, error rate, in-flight
    and queued, replicas by revision, drift share, drifted features, feature drift
    scores, accuracy/AUC, prediction-log drops. The output is deterministic: panel ids
    and the uid are fixed.

    Raises:
        InvalidInput: an empty deployment name or uid.
    """
    if not uid:
        raise InvalidInput("dashboard uid must not be empty")
    names = list(dict.fromkeys(deployments)) if deployments is not None else None
    if names is not None and any(not n for n in names):
        raise InvalidInput("deployment names must not be empty")
    query = "label_values(modelyard_gateway_requests_total, deployment)"
    deployment_var: dict[str, Any] = {
        "name": "deployment",
        "label": "Deployment",
        "type": "query",
        "datasource": dict(_DS),
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "sort": 1,
        "regex": "",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }
    if names:
        deployment_var["regex"] = "/^(" + "|".join(_regex_escape(n) for n in names) + ")$/"
        deployment_var["current"] = {"selected": True, "text": names, "value": names}
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": "modelyard deployments: traffic, latency, errors, capacity, drift, quality.",
        "tags": ["modelyard"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "refresh": 1,
                    "regex": "",
                    "current": {},
                    "options": [],
                    "hide": 0,
                },
                deployment_var,
            ]
        },
        "panels": _dashboard_panels(),
    }


def render_grafana_dashboard(
    deployments: Sequence[str] | None = None,
    *,
    title: str = "modelyard",
    uid: str = DASHBOARD_UID,
) -> str:
    """:func:`grafana_dashboard` as indented JSON text (deterministic)."""
    data = grafana_dashboard(deployments, title=title, uid=uid)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
