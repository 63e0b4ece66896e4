"""``modelyard quickstart``: the whole lifecycle on one machine, with nothing to configure.

Server → a versioned dataset → three tracked candidate runs → the best one registered and
aliased ``production`` → deployed, scaled up by real HTTP traffic and back to zero →
shifted traffic that makes a drift alert fire → what it cost → its lineage. The pieces:

- :mod:`modelyard.quickstart._server` — find or start the server, stop it;
- :mod:`modelyard.quickstart._data` — the breast cancer table as a dataset version;
- :mod:`modelyard.quickstart._train` — the candidate runs;
- :mod:`modelyard.quickstart._deploy` — registry, deployment, rollout, waits;
- :mod:`modelyard.quickstart._traffic` — the asyncio load generator;
- :mod:`modelyard.quickstart._watch` — the live view while traffic runs;
- :mod:`modelyard.quickstart._monitor` — the drift demo: shifted traffic, a firing alert;
- :mod:`modelyard.quickstart._cost` — the deployment's cost from the ledger;
- :mod:`modelyard.quickstart.view` — tables and panels;
- :mod:`modelyard.quickstart._steps` — :func:`run_quickstart`, failures and cleanup.
"""

from __future__ import annotations

from modelyard.quickstart._result import (
    STEP_TITLES,
    CostSummary,
    LineageNode,
    MonitorSummary,
    QuickstartFailed,
    QuickstartOptions,
    QuickstartResult,
    RunSummary,
    TrafficSummary,
)
from modelyard.quickstart._steps import run_quickstart

__all__ = [
    "STEP_TITLES",
    "CostSummary",
    "LineageNode",
    "MonitorSummary",
    "QuickstartFailed",
    "QuickstartOptions",
    "QuickstartResult",
    "RunSummary",
    "TrafficSummary",
    "run_quickstart",
]
