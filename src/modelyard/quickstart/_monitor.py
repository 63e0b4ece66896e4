"""Step 6 of the quickstart: monitoring closes the loop.

The deployment's replicas have been logging the traffic of step 5. Here the quickstart
adds a drift alert, sends traffic whose features are shifted away from the training data
(the first ten columns scaled by 1.6, as a unit change upstream would), and watches the
server's monitor loop compute drift against the dataset version that trained the model
(found through lineage) until the alert fires; then it prints the per-feature verdicts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

import httpx
from rich.console import Console
from rich.table import Table

from modelyard.client import ModelyardClient
from modelyard.quickstart._deploy import DEPLOYMENT
from modelyard.quickstart._result import MonitorSummary, StepError

DRIFT_RULE = "drift_share > 0.3 for 10s"
SHIFTED_COLUMNS = 10
SHIFT_FACTOR = 1.6
#: The monitor settings of the demo: a short window so the shift shows within seconds.
DEMO_CONFIG = {"drift_window_s": 30.0, "drift_interval_s": 5.0, "min_rows": 100}


def shifted_bodies(columns: Sequence[str], rows: Sequence[Sequence[float]]) -> list[bytes]:
    """``dataframe_split`` bodies of ``rows`` with the first columns scaled up."""
    names = list(columns)
    bodies = []
    for row in rows:
        shifted = [v * SHIFT_FACTOR if j < SHIFTED_COLUMNS else v for j, v in enumerate(row)]
        bodies.append(
            json.dumps({"dataframe_split": {"columns": names, "data": [shifted]}}).encode()
        )
    return bodies


class _Sender:
    """Sends the bodies round and round on one keep-alive connection until stopped."""

    def __init__(self, url: str, bodies: list[bytes]) -> None:
        self.url = url
        self.bodies = bodies
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quickstart-drift", daemon=True)

    def __enter__(self) -> _Sender:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                try:
                    r = http.post(
                        self.url, content=self.bodies[i % len(self.bodies)], headers=headers
                    )
                    if r.status_code != 200:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1
                    time.sleep(0.05)
                self.sent += 1
                i += 1


def drift_demo(
    client: ModelyardClient,
    project: str,
    endpoint: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[float]],
    console: Console,
    *,
    timeout_s: float = 120.0,
) -> MonitorSummary:
    """Add the drift rule, send shifted traffic until it fires, print the verdicts.

    Raises:
        StepError: the alert did not fire within ``timeout_s``.
    """
    client.set_monitor_config(project, DEPLOYMENT, DEMO_CONFIG)
    for rule in client.list_alerts(project, DEPLOYMENT):  # a re-run starts afresh
        client.delete_alert(project, DEPLOYMENT, rule["id"])
    client.add_alerts(project, DEPLOYMENT, [DRIFT_RULE])
    console.print(
        f"alert rule [bold]{DRIFT_RULE}[/] on {DEPLOYMENT}; now sending traffic with the "
        f"first {SHIFTED_COLUMNS} features scaled by {SHIFT_FACTOR} …",
        highlight=False,
    )
    started = time.monotonic()
    fired_after: float | None = None
    sender = _Sender(f"{endpoint}invocations", shifted_bodies(columns, rows))
    with sender, console.status("waiting for the monitor loop …") as status:
        while time.monotonic() - started < timeout_s:
            time.sleep(1.0)
            view = client.monitor_show(project, DEPLOYMENT, minutes=2)
            state = _rule_state(view)
            drift = view.get("drift") or {}
            share = drift.get("drift_share") if isinstance(drift, dict) else None
            live = view.get("live") or {}
            rps = live.get("rps") if isinstance(live, dict) else None
            status.update(
                f"sent {sender.sent} shifted requests ({_fmt(rps)} req/s); drift share "
                f"{_fmt(share)}; alert {state}"
            )
            if state == "firing":
                fired_after = time.monotonic() - started
                break
    drift = client.drift(project, DEPLOYMENT, window_s=DEMO_CONFIG["drift_window_s"])
    console.print(_drift_table(drift))
    if fired_after is None:
        raise StepError(
            f"the alert {DRIFT_RULE!r} did not fire within {timeout_s:g} s (drift share "
            f"{_fmt(drift.get('drift_share'))}); see `modelyard alerts history {DEPLOYMENT}`"
        )
    console.print(
        f"[bold red]alert firing[/] after {fired_after:.0f} s: drift share "
        f"{drift['drift_share']:.2f} against {drift['reference']} (the data that trained the "
        f"model, found through lineage). See it with `modelyard monitor show {DEPLOYMENT}` "
        f"and `modelyard alerts history {DEPLOYMENT}`.",
        highlight=False,
    )
    drifted = tuple(f["column"] for f in drift["report"]["features"] if f["drifted"])
    return MonitorSummary(DRIFT_RULE, True, fired_after, drift["drift_share"], drifted, sender.sent)


def _rule_state(view: dict[str, object]) -> str:
    alerts = view.get("alerts")
    if not isinstance(alerts, list):
        return "unknown"
    for rule in alerts:
        if rule.get("rule") == DRIFT_RULE:
            return str((rule.get("state") or {}).get("status", "inactive"))
    return "missing"


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _drift_table(drift: dict[str, object]) -> Table:
    report = drift["report"]
    assert isinstance(report, dict)
    table = Table(
        title=f"drift of the last 30 s against {drift['reference']}", title_justify="left"
    )
    for name in ("feature", "test", "statistic", "threshold", "drifted"):
        table.add_column(name)
    features = sorted(report["features"], key=lambda f: (not f["drifted"], f["column"]))
    for f in features[:12]:
        table.add_row(
            f["column"],
            f["test"],
            f"{f['statistic']:.4g}",
            f"{f['threshold']:.3g}",
            "[red]yes[/]" if f["drifted"] else "no",
        )
    if len(features) > 12:
        table.caption = f"… and {len(features) - 12} more features"
    return table
