"""What the server's ``/metrics`` says about deployments, read from the metadata store at
scrape time: every server worker answers the same, whichever one Prometheus reaches.

* ``modelyard_deployment_replicas{project,deployment,revision,state}``
* ``modelyard_drift_share{project,deployment}``
* ``modelyard_feature_drift_score{project,deployment,feature,test}``
* ``modelyard_feature_drifted{project,deployment,feature}`` (1 or 0)
* ``modelyard_model_accuracy`` / ``modelyard_model_auc{project,deployment}`` (from labels)
* ``modelyard_alert_firing{project,deployment,rule}`` (1 while firing)
* ``modelyard_prediction_log_rows{project,deployment}`` (rows kept in the artifact store)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelyard.store import MetadataStore

logger = logging.getLogger("modelyard.monitor")


class MonitorCollector(Collector):
    """Deployment and monitoring gauges for the server's registry."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._families()
        except Exception:  # a scrape must never fail because the store hiccuped
            logger.exception("collecting monitoring metrics failed")

    def _families(self) -> Iterator[Metric]:
        deps = self._store.deployments.list_all(include_deleting=False)
        replicas = GaugeMetricFamily(
            "modelyard_deployment_replicas",
            "Replicas by revision and state.",
            labels=["project", "deployment", "revision", "state"],
        )
        share = GaugeMetricFamily(
            "modelyard_drift_share",
            "Share of drifted features in the newest drift check.",
            labels=["project", "deployment"],
        )
        score = GaugeMetricFamily(
            "modelyard_feature_drift_score",
            "A feature's drift statistic (p-value for ks/chisquare/z, else a distance).",
            labels=["project", "deployment", "feature", "test"],
        )
        drifted = GaugeMetricFamily(
            "modelyard_feature_drifted",
            "1 when the feature drifted in the newest check.",
            labels=["project", "deployment", "feature"],
        )
        accuracy = GaugeMetricFamily(
            "modelyard_model_accuracy",
            "Accuracy over the newest hour of labelled predictions.",
            labels=["project", "deployment"],
        )
        auc = GaugeMetricFamily(
            "modelyard_model_auc",
            "ROC AUC over the newest hour of labelled predictions.",
            labels=["project", "deployment"],
        )
        firing = GaugeMetricFamily(
            "modelyard_alert_firing",
            "1 while an alert rule fires.",
            labels=["project", "deployment", "rule"],
        )
        rows = GaugeMetricFamily(
            "modelyard_prediction_log_rows",
            "Logged prediction rows kept in the artifact store.",
            labels=["project", "deployment"],
        )
        repo = self._store.monitoring
        for dep in deps:
            names = [dep.project, dep.name]
            counts = Counter(
                (r.revision, r.state) for r in self._store.deployments.replicas(dep.id)
            )
            for (revision, state), n in sorted(counts.items()):
                replicas.add_metric([*names, str(revision), state], n)
            latest = repo.latest_drift(dep.id)
            if latest is not None:
                share.add_metric(names, latest.drift_share)
                for f in latest.report.get("features", []):
                    stat = f.get("statistic")
                    if stat is not None:
                        score.add_metric([*names, str(f["column"]), str(f.get("test", ""))], stat)
                    drifted.add_metric([*names, str(f["column"])], 1.0 if f.get("drifted") else 0.0)
            sample = repo.latest_sample(dep.id)
            if sample is not None:
                values = sample.values
                if values.get("accuracy") is not None:
                    accuracy.add_metric(names, float(values["accuracy"] or 0))
                if values.get("auc") is not None:
                    auc.add_metric(names, float(values["auc"] or 0))
            for rule in repo.rules(dep.id):
                status = (rule.state or {}).get("status", "inactive")
                firing.add_metric([*names, rule.rule], 1.0 if status == "firing" else 0.0)
            rows.add_metric(names, sum(s.rows for s in repo.segments(dep.id, source="replica")))
        yield from (replicas, share, score, drifted, accuracy, auc, firing, rows)
