"""The cost API (and the ``modelyard cost`` commands) over a real store with a fake clock.

Replica lifetimes and runs are recorded with known times, requests and replica usage
come from the monitor loop's passes driven by hand (fake gateway counters, a fake
``/proc``), so every figure of a report is checked against the catalog's rates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.client import ModelyardClient
from modelyard.config import Settings
from modelyard.core.clock import FakeClock
from modelyard.core.cost_facts import UsageSample
from modelyard.core.deployments import Replica, RevisionDraft, RuntimeSettings, ScalingConfig
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.errors import InvalidInput
from modelyard.cost.usage import UsageSampler
from modelyard.deploy.signals import GatewaySnapshot
from modelyard.monitor.loop import MonitorLoop
from modelyard.server import build_context
from modelyard.testing.harness import Api

P = "/api/v1/projects/default/cost"
GIB = 1 << 30


def _replica(rid: str, dep_id: int, start_ms: int, stop_ms: int | None, pid: int) -> Replica:
    return Replica(
        id=rid, deployment_id=dep_id, revision=1, pid=pid, port=1,
        state="ready" if stop_ms is None else "stopped", mode="fork", standby=False, cpu=2.0,
        memory_mb=2048, started_at_ms=start_ms, ready_at_ms=start_ms, stopped_at_ms=stop_ms,
        exit_reason="",
    )  # fmt: skip


class _Proc:
    """/proc of one replica process: 0.5 cores busy, 300 MiB resident."""

    def __init__(self) -> None:
        self.ticks = 0

    def read(self, path: str) -> str:
        if path.endswith("/status"):
            return "VmRSS:\t307200 kB\n"
        return f"7 (replica) S 1 1 1 0 -1 0 0 0 0 0 {self.ticks} 0 0 0 20 0 1 0 555 1 1"


def _snapshot(now_s: float, completions: int) -> GatewaySnapshot:
    revision = {"completions": completions, "arrivals": completions, "latency_buckets": []}
    return GatewaySnapshot.parse(
        {"now_s": now_s, "deployments": {"churn-api": {"revisions": {"1": revision}}}}
    )


@pytest.fixture
def world(api: Api, fake_clock: FakeClock) -> dict[str, Any]:
    """churn-api (2 vCPU, 2 GiB) with a replica that ran an hour and one running since
    30 minutes before T; a run of half an hour; a GiB stored at T; then an hour passes
    and four monitor passes count 100, 0 and 50 requests."""
    ctx = api.ctx
    t = int(fake_clock.now() * 1000)
    settings = RuntimeSettings(cpu=2.0, memory_mb=2048)
    dep = ctx.store.deployments.create(
        "default", "churn-api", ScalingConfig(),
        RevisionDraft("churn", 1, "models:/churn/1", settings, weight=100), "admin",
    )  # fmt: skip
    ctx.store.deployments.add_replica(_replica("r1", dep.id, t - 7_200_000, t - 3_600_000, 6))
    ctx.store.deployments.add_replica(_replica("r2", dep.id, t - 1_800_000, None, 7))
    ctx.store.tracking.create_run(
        run_id="a" * 32, experiment_id=0, name="train", user="admin",
        start_time_ms=t - 3_600_000, tags={"team": "ml"}, parent_run_id=None,
    )  # fmt: skip
    ctx.store.tracking.update_run("a" * 32, end_time_ms=t - 1_800_000)
    ctx.store.artifacts.put("project:default", "data.bin", "d" * 64, GIB)
    fake_clock.advance(3600)
    proc = _Proc()
    state = {"n": 1000, "t": 500.0}
    loop = MonitorLoop(
        ctx.store,
        ctx.monitoring,
        ctx.settings.home,
        lambda: _snapshot(state["t"], state["n"]),
        clock=fake_clock,
        interval_s=10,
        usage=UsageSampler(read_text=proc.read, ticks_per_s=100, enabled=True),
    )
    try:
        for added in (0, 100, 0, 50):
            state["n"] += added
            state["t"] += 10.0
            proc.ticks += 500  # 5 CPU-seconds per 10 s
            fake_clock.advance(10)
            loop.tick()
    finally:
        loop.stop()
    return {"t": t, "dep": dep.id}


def _rates(api: Api) -> tuple[float, float, float]:
    cat = api.ctx.cost.catalog
    return cat.cpu_second, cat.gib_second, cat.rate("storage.artifacts")


def test_report_by_deployment_with_a_total_row(
    api: Api, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    r = api.client.get(f"{P}/report", params={"since": "7d"}, headers=api.as_admin())
    assert r.status_code == 200, r.text
    report = r.json()
    cpu, gib, stored = _rates(api)
    now_s = fake_clock.now()
    replica_s = 3600 + (now_s - (world["t"] / 1000 - 1800))
    serving = replica_s * (2 * cpu + 2 * gib)
    run = 1800 * (1 * cpu + 2 * gib)  # the catalog's runs.cpu = 1, runs.memory_gb = 2
    storage = (now_s - world["t"] / 1000) * stored
    assert report["currency"] == "USD"
    assert report["end_ms"] - report["start_ms"] == 7 * 86_400_000
    groups = {g["key"]: g for g in report["groups"]}
    churn = groups["churn-api"]
    assert churn["cost"] == pytest.approx(serving)
    assert churn["replica_hours"] == pytest.approx(replica_s / 3600)
    assert churn["vcpu_hours"] == pytest.approx(2 * replica_s / 3600)
    assert churn["gb_hours"] == pytest.approx(2 * replica_s / 3600)
    assert churn["requests"] == 150
    assert churn["cost_per_1k"] == pytest.approx(serving / 150 * 1000)
    assert churn["idle_share"] == pytest.approx(1 / 3)  # one of three 10 s intervals
    assert groups["(runs and storage)"]["cost"] == pytest.approx(run + storage)
    assert report["total"]["cost"] == pytest.approx(serving + run + storage)
    assert report["total"]["cost_by_kind"] == pytest.approx(
        {"replica": serving, "run": run, "storage": storage}
    )
    again = api.client.get(
        f"{P}/report",
        params={"since": str(report["start_ms"] // 1000), "until": "now"},
        headers=api.as_admin(),
    )
    assert again.status_code == 400  # a bare number is no duration: says which field
    assert "since" in again.json()["message"]


def test_recomputing_a_past_period_gives_the_same_numbers(
    api: Api, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    params = {"since": "2023-11-14T00:00:00Z", "until": "2023-11-14T23:00:00Z"}  # ended
    first = api.client.get(f"{P}/report", params=params, headers=api.as_admin()).json()
    fake_clock.advance(86_400)
    second = api.client.get(f"{P}/report", params=params, headers=api.as_admin()).json()
    assert first == second
    assert first["total"]["cost"] > 0


def test_roll_ups_by_run_tag_and_project(
    api: Api, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    admin = api.as_admin()
    r = api.client.patch(f"{P}/tags", json={"set": {"team": "risk"}}, headers=admin)
    assert r.json() == {"project": "default", "deployment": None, "tags": {"team": "risk"}}
    r = api.client.patch(
        f"{P}/deployments/churn-api/tags", json={"set": {"team": "churn"}}, headers=admin
    )
    assert r.json()["tags"] == {"team": "churn"}
    report = api.client.get(
        f"{P}/report", params={"by": "tag", "tag_key": "team"}, headers=admin
    ).json()
    costs = {g["key"]: g["cost"] for g in report["groups"]}
    # churn-api's own tag wins; the run's own team=ml wins over the project's; the
    # project's stored GiB carries the project's.
    assert set(costs) == {"team=churn", "team=ml", "team=risk"}
    assert sum(costs.values()) == pytest.approx(report["total"]["cost"])
    assert report["overlapping"] is False
    by_run = api.client.get(f"{P}/report", params={"by": "run"}, headers=admin).json()
    assert {(g["key"], g["name"]) for g in by_run["groups"]} == {
        ("a" * 32, "train"),
        ("(not a run)", ""),
    }
    tags = api.client.get(f"{P}/tags", headers=admin).json()
    assert tags == {
        "project": "default",
        "tags": {"team": "risk"},
        "deployments": {"churn-api": {"team": "churn"}},
    }
    api.client.post("/api/v1/projects", json={"name": "other"}, headers=admin)
    api.ctx.store.artifacts.put("scratch", "x", "e" * 64, GIB)  # no project owns it
    fake_clock.advance(60)
    everywhere = api.client.get("/api/v1/cost/report", headers=admin).json()
    assert everywhere["projects"] == ["default", "other"]
    assert [g["key"] for g in everywhere["groups"]] == ["default", "(unattributed)"]
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    mine = api.client.get("/api/v1/cost/report", headers=viewer).json()
    assert [g["key"] for g in mine["groups"]] == ["default"]


def test_one_deployment_in_detail(api: Api, fake_clock: FakeClock, world: dict[str, Any]) -> None:
    now_ms = int(fake_clock.now() * 1000)
    api.ctx.store.cost.add_usage(
        [UsageSample(world["dep"], "r2", 1, now_ms - i, 10.0, 0.25, 200.0) for i in range(1, 31)]
    )
    r = api.client.get(f"{P}/deployments/churn-api", params={"since": "2d"}, headers=api.as_admin())
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["days"] == 2
    assert view["cost_per_day"] == pytest.approx(view["cost"] / 2)
    assert view["requests"] == 150
    assert view["idle_share"] == pytest.approx(1 / 3)
    assert view["cost_by_kind"]["run"] == 0
    assert [rev["revision"] for rev in view["revisions"]] == [1]
    assert view["revisions"][0]["cost"] == pytest.approx(view["cost"])
    (hint,) = view["rightsize"]
    # 33 samples (3 from the monitor passes, 30 added): p95 0.5 cores, peak 300 MiB
    assert hint["samples"] == 33
    assert (hint["cpu_p95"], hint["memory_peak_mb"]) == (0.5, 300.0)
    assert (hint["suggested_cpu"], hint["suggested_memory_mb"]) == (0.75, 384)
    assert hint["verdict"] == "over-provisioned"
    assert hint["saving_per_month"] > 0
    sized = api.client.get(f"{P}/deployments/churn-api/rightsize", headers=api.as_admin()).json()
    (week,) = sized["hints"]
    assert (week["samples"], week["suggested_cpu"]) == (33, 0.75)
    assert week["replicas_avg"] == pytest.approx(hint["replicas_avg"] * 2 / 7)  # same hours
    # A deleted deployment is still reported (its replica history is billed).
    api.ctx.store.deployments.purge(world["dep"])
    gone = api.client.get(
        f"{P}/deployments/churn-api", params={"since": "2d"}, headers=api.as_admin()
    ).json()
    assert gone["live"] is False
    assert gone["rightsize"] == []
    assert gone["cost"] == view["cost"]


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/report", {"since": "a week"}, 400, "since: 'a week' is not a duration"),
        ("/report", {"until": "yesterday"}, 400, "until: 'yesterday'"),
        ("/report", {"since": "2030-01-01"}, 400, "is not before until"),
        ("/report", {"by": "team"}, 400, "by: unknown roll-up 'team'"),
        ("/report", {"tag_key": "team"}, 400, "tag_key: only with by=tag"),
        ("/report", {"by": "tag", "tag_key": "a b"}, 400, "tag_key: 'a b'"),
        ("/deployments/nope", {}, 404, "no deployment named 'nope'"),
        ("/deployments/churn-api/rightsize", {"window": "forever"}, 400, "window: 'forever'"),
        ("/deployments/nope/rightsize", {}, 404, "no deployment named 'nope'"),
    ],
)
def test_bad_queries_are_4xx_naming_what_is_wrong(
    api: Api, world: dict[str, Any], path: str, params: dict[str, str], status: int, says: str
) -> None:
    r = api.client.get(P + path, params=params, headers=api.as_admin())
    assert r.status_code == status, r.text
    assert says in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 400, "give KEY=VALUE tags"),
        ({"set": {"a b": "x"}}, 400, "key 'a b'"),
        ({"set": {"mlflow.user": "x"}}, 400, "'mlflow.user' is reserved"),
        ({"set": {"cost.cpu": "4"}}, 400, "'cost.cpu' is reserved"),
        ({"set": {"team": "x" * 300}}, 400, "at most 256 printable"),
        ({"set": {"team": "a"}, "unset": ["team"]}, 400, "both set and unset"),
        ({"set": {f"k{i}": "v" for i in range(51)}}, 400, "set"),
        ({"tags": {"a": "b"}}, 400, "unknown field 'tags'"),
    ],
)
def test_bad_tags_are_refused(api: Api, body: dict[str, Any], status: int, says: str) -> None:
    r = api.client.patch(f"{P}/tags", json=body, headers=api.as_admin())
    assert r.status_code == status, r.text
    assert says in r.json()["message"]


def test_permissions(api: Api, world: dict[str, Any]) -> None:
    admin = api.as_admin()
    api.client.post("/api/v1/projects", json={"name": "other"}, headers=admin)
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    editor = api.auth(api.token_for("ed", Role.EDITOR))
    assert api.client.get(f"{P}/report", headers=viewer).status_code == 200
    assert api.client.get(f"{P}/deployments/churn-api", headers=viewer).status_code == 200
    assert api.client.get(f"{P}/tags", headers=viewer).status_code == 200
    body = {"set": {"team": "x"}}
    assert api.client.patch(f"{P}/tags", json=body, headers=viewer).status_code == 403
    assert api.client.patch(f"{P}/tags", json=body, headers=editor).status_code == 403
    dep_tags = f"{P}/deployments/churn-api/tags"
    assert api.client.patch(dep_tags, json=body, headers=viewer).status_code == 403
    assert api.client.patch(dep_tags, json=body, headers=editor).status_code == 200
    other = "/api/v1/projects/other/cost/report"
    assert api.client.get(other, headers=viewer).status_code == 403
    mine = api.client.get("/api/v1/cost/report", headers=viewer).json()
    assert mine["projects"] == ["default"]
    audit = api.ctx.store.auth.list_audit(limit=50)
    assert any(a.action == "cost.tag_deployment" and a.outcome == "ok" for a in audit)


def test_project_spend_and_currency_for_budgets(
    api: Api, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    cost = api.ctx.cost
    now_ms = int(fake_clock.now() * 1000)
    start = now_ms - 86_400_000
    report = api.client.get(f"{P}/report", params={"since": "1d"}, headers=api.as_admin())
    assert cost.project_spend("default", start, now_ms) == report.json()["total"]["cost"]
    assert cost.project_spend("default", start, now_ms + 86_400_000) == pytest.approx(
        cost.project_spend("default", start, now_ms)
    )  # nothing is billed past now
    assert cost.project_spend("default", now_ms, now_ms) == 0.0
    assert cost.project_spend("nobody", start, now_ms) == 0.0
    assert cost.currency == "USD"


def test_a_bad_price_file_stops_the_start_naming_its_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "prices.toml").write_text('[provisioned]\ncpu = "-1 USD per vCPU-hour"\n')
    with pytest.raises(InvalidInput, match=r"prices.toml:2: provisioned.cpu: a price must be >= 0"):
        build_context(Settings(home=home))
    (home / "prices.toml").write_text('[provisioned]\ncpu = "0.08 USD per vCPU-hour"\n')
    ctx = build_context(Settings(home=home))
    try:
        assert ctx.cost.catalog.cpu_second == pytest.approx(0.08 / 3600)
    finally:
        ctx.store.close()


# ---- the CLI, in process ------------------------------------------------------------------


def _in_process_client(api: Api) -> Callable[[object], ModelyardClient]:
    def client_of(_ctx: object) -> ModelyardClient:
        return api.rest_client()

    return client_of


@pytest.fixture
def cli(api: Api, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    from modelyard.cli import _cost_cmds

    monkeypatch.setattr(_cost_cmds, "client_of", _in_process_client(api))
    monkeypatch.setenv("MODELYARD_PROJECT", "default")
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def _run(cli: CliRunner, *args: str) -> Any:
    from modelyard.cli.main import app

    return cli.invoke(app, ["cost", *args])


def test_cli_report_table_json_and_csv(cli: CliRunner, world: dict[str, Any]) -> None:
    table = _run(cli, "report", "--since", "7d")
    assert table.exit_code == 0, table.output
    assert "churn-api" in table.output
    assert "total" in table.output
    assert "USD/1k req" in table.output
    as_json = json.loads(_run(cli, "report", "--json").output)
    assert as_json["by"] == "deployment"
    rows = _run(cli, "report", "--csv", "--by", "run").output.strip().splitlines()
    assert rows[0].startswith("run,name,project,currency,cost,replica_hours")
    assert rows[2].startswith(f"{'a' * 32},train,default,USD,")  # the cheaper one
    assert rows[-1].startswith("total,")
    assert len(rows) == 4  # header, the run, the rest, total
    detail = _run(cli, "report", "churn-api")
    assert detail.exit_code == 0, detail.output
    assert "USD/day" in detail.output
    assert "idle share 33 %" in detail.output
    assert "right-sizing" in detail.output
    everywhere = json.loads(_run(cli, "report", "--by", "project", "--json").output)
    assert everywhere["project"] is None


def test_cli_tags_and_errors(cli: CliRunner, world: dict[str, Any]) -> None:
    done = _run(cli, "tag", "team=risk", "env=prod")
    assert done.exit_code == 0, done.output
    assert "project default: env=prod, team=risk" in done.output
    done = _run(cli, "tag", "--deployment", "churn-api", "team=churn")
    assert "deployment churn-api: team=churn" in done.output
    done = _run(cli, "tag", "--unset", "env")
    assert "project default: team=risk" in done.output
    listed = _run(cli, "tags")
    assert "deployment churn-api" in listed.output
    bad = _run(cli, "tag", "team")
    assert bad.exit_code == 2
    assert "expected KEY=VALUE, got 'team'" in bad.output
    bad = _run(cli, "report", "--since", "soon")
    assert bad.exit_code == 2
    assert "since: 'soon' is not a duration" in bad.output
    bad = _run(cli, "report", "nope")
    assert bad.exit_code == 1
    assert "no deployment named 'nope'" in bad.output
    bad = _run(cli, "report", "churn-api", "--by", "tag")
    assert bad.exit_code == 2
    sized = _run(cli, "rightsize", "churn-api")
    assert sized.exit_code == 0, sized.output
    assert "no data" in sized.output  # three samples only


def test_deploy_cli_sets_the_requests_the_ledger_bills(
    api: Api, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.cli import _deploy_cmds
    from modelyard.cli.main import app

    monkeypatch.setattr(_deploy_cmds, "client_of", _in_process_client(api))
    api.ctx.store.registry.create_version(
        "default", "churn", source_run_id=None, source_uri="upload", flavor="sklearn",
        signature_json="", package_digest="b" * 64,
        files=[ArtifactEntry("modelyard.yaml", "b" * 64, 10)], user="admin",
    )  # fmt: skip
    made = cli.invoke(
        app,
        ["deploy", "create", "gpu-api", "--model", "models:/churn/1", "--cpu", "0.5",
         "--gpu", "1", "--json"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    settings = json.loads(made.output)["revisions"][0]["settings"]
    assert (settings["cpu"], settings["memory_mb"], settings["gpu"]) == (0.5, 512, 1.0)
    changed = cli.invoke(app, ["deploy", "update", "gpu-api", "--memory-mb", "960", "--json"])
    assert changed.exit_code == 0, changed.output
    revision = json.loads(changed.output)["revisions"][1]["settings"]
    assert (revision["cpu"], revision["memory_mb"], revision["gpu"]) == (0.5, 960, 1.0)
    bad = cli.invoke(app, ["deploy", "create", "x", "--model", "models:/churn/1", "--gpu", "-1"])
    assert bad.exit_code == 2


# ---- vertical scaling: applying a right-sizing hint as a new revision ---------------------


def _register_churn_v1(api: Api) -> None:
    """The model version ``world``'s deployment serves (the update path resolves it)."""
    api.ctx.store.registry.create_version(
        "default", "churn", source_run_id=None, source_uri="upload", flavor="sklearn",
        signature_json="", package_digest="b" * 64,
        files=[ArtifactEntry("modelyard.yaml", "b" * 64, 10)], user="admin",
    )  # fmt: skip


def _add_usage(api: Api, fake_clock: FakeClock, dep_id: int, cores: float, rss: float) -> None:
    now_ms = int(fake_clock.now() * 1000)
    api.ctx.store.cost.add_usage(
        [UsageSample(dep_id, "r2", 1, now_ms - i, 10.0, cores, rss) for i in range(1, 31)]
    )


def test_applying_a_hint_rolls_out_a_resized_revision_of_the_same_version(
    api: Api, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    _register_churn_v1(api)
    apply = f"{P}/deployments/churn-api/rightsize"
    editor = api.auth(api.token_for("ed", Role.EDITOR))
    # Three samples from the monitor passes: no data. Refused, nothing written.
    refused = api.client.post(apply, json={}, headers=editor)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error_code"] == "CONFLICT"
    assert "'no data' (3 usage samples" in refused.json()["message"]
    dep = api.ctx.store.deployments.get("churn-api", "default")
    assert [r.number for r in dep.revisions] == [1]
    assert dep.rollout is None
    # 30 more samples: p95 0.5 cores, peak 300 MiB -> 0.75 vCPU, 384 MiB.
    _add_usage(api, fake_clock, world["dep"], 0.25, 200.0)
    done = api.client.post(apply, json={"window": "7d", "revision": 1}, headers=editor)
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["new_revision"] == 2
    assert result["revision"] == 1
    assert result["strategy"] == "rolling"
    assert result["verdict"] == "over-provisioned"
    assert result["before"] == {"cpu": 2.0, "memory_mb": 2048, "gpu": 0.0}
    assert result["after"] == {"cpu": 0.75, "memory_mb": 384, "gpu": 0.0}
    assert result["saving_per_month"] > 0
    shown = api.client.get("/api/v1/projects/default/deployments/churn-api", headers=editor)
    view = shown.json()
    old, new = view["revisions"]
    assert (new["number"], new["model_name"], new["model_version"]) == (2, "churn", 1)
    assert new["model_ref"] == old["model_ref"]
    assert {k: new["settings"][k] for k in ("cpu", "memory_mb", "gpu")} == result["after"]
    kept = ("max_batch_size", "max_latency_ms", "batching")
    assert {k: new["settings"][k] for k in kept} == {k: old["settings"][k] for k in kept}
    assert view["rollout"]["strategy"] == "rolling"
    assert (view["rollout"]["target"], view["rollout"]["stable"]) == (2, 1)
    events = api.client.get(
        "/api/v1/projects/default/deployments/churn-api/events",
        params={"kind": "rollout"},
        headers=editor,
    ).json()
    assert any("as revision 2 started" in e["message"] for e in events)
    # A second apply while that rollout runs: refused, nothing more written.
    again = api.client.post(apply, json={}, headers=editor)
    assert again.status_code == 409
    assert "is rolling out revision 2" in again.json()["message"]
    assert len(api.ctx.store.deployments.get("churn-api", "default").revisions) == 2
    audit = api.ctx.store.auth.list_audit(limit=50)
    outcomes = [a.outcome for a in audit if a.action == "cost.rightsize_apply"]
    assert sorted(outcomes) == ["error", "error", "ok"]


def test_a_right_sized_revision_is_refused_and_nothing_changes(
    api: Api, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    _register_churn_v1(api)
    _add_usage(api, fake_clock, world["dep"], 1.5, 1700.0)  # -> 2 vCPU, 2048 MiB: as asked
    r = api.client.post(f"{P}/deployments/churn-api/rightsize", json={}, headers=api.as_admin())
    assert r.status_code == 409, r.text
    assert "'right-sized' (requests 2 vCPU, 2048 MB" in r.json()["message"]
    assert len(api.ctx.store.deployments.get("churn-api", "default").revisions) == 1


@pytest.mark.parametrize(
    ("name", "body", "status", "says"),
    [
        ("churn-api", {"window": "forever"}, 400, "window: 'forever'"),
        ("churn-api", {"revision": 0}, 400, "revision"),
        ("churn-api", {"cpu": 1}, 400, "unknown field 'cpu'"),
        ("churn-api", {"revision": 7}, 404, "has no revision 7"),
        ("nope", {}, 404, "'nope'"),
    ],
)
def test_bad_apply_requests_are_4xx_naming_what_is_wrong(
    api: Api, world: dict[str, Any], name: str, body: dict[str, Any], status: int, says: str
) -> None:
    r = api.client.post(f"{P}/deployments/{name}/rightsize", json=body, headers=api.as_admin())
    assert r.status_code == status, r.text
    assert says in r.json()["message"]


def test_only_editors_apply_a_hint(api: Api, fake_clock: FakeClock, world: dict[str, Any]) -> None:
    _register_churn_v1(api)
    _add_usage(api, fake_clock, world["dep"], 0.25, 200.0)
    apply = f"{P}/deployments/churn-api/rightsize"
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    assert api.client.get(apply, headers=viewer).status_code == 200  # reading the hint
    denied = api.client.post(apply, json={}, headers=viewer)
    assert denied.status_code == 403
    assert denied.json()["error_code"] == "PERMISSION_DENIED"
    api.client.post("/api/v1/projects", json={"name": "other"}, headers=api.as_admin())
    outsider = api.auth(api.token_for("olga", Role.EDITOR, project="other"))
    assert api.client.post(apply, json={}, headers=outsider).status_code == 403
    assert len(api.ctx.store.deployments.get("churn-api", "default").revisions) == 1


def test_cli_apply_prints_what_changed(
    api: Api, cli: CliRunner, fake_clock: FakeClock, world: dict[str, Any]
) -> None:
    _register_churn_v1(api)
    refused = _run(cli, "rightsize", "churn-api", "--apply")
    assert refused.exit_code == 1
    assert "'no data'" in refused.output
    assert "Traceback" not in refused.output
    lonely = _run(cli, "rightsize", "churn-api", "--revision", "1")
    assert lonely.exit_code == 2
    assert "--revision only goes with --apply" in lonely.output
    _add_usage(api, fake_clock, world["dep"], 0.25, 200.0)
    hinted = _run(cli, "rightsize", "churn-api")
    assert "modelyard cost rightsize churn-api --apply" in hinted.output
    done = _run(cli, "rightsize", "churn-api", "--apply", "--revision", "1")
    assert done.exit_code == 0, done.output
    assert "churn-api: revision 2 rolls out (rolling)" in done.output
    assert "of revision 1 (over-provisioned)" in done.output
    lines = {line.split()[1]: line for line in done.output.splitlines() if line.startswith("│")}
    assert "2 vCPU" in lines["cpu"]
    assert "0.75 vCPU" in lines["cpu"]
    assert "2048 MB" in lines["memory"]
    assert "384 MB" in lines["memory"]
    assert "(unchanged)" in lines["gpu"]
    busy = _run(cli, "rightsize", "churn-api", "--apply", "--json")
    assert busy.exit_code == 1
    assert "rolling out revision 2" in busy.output
