"""``modelyard deploy create|ls|show|events|update|render|traffic|shadow|rollback|delete``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelyard.cli._context import ProjectOpt, client_of, project_of
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fail,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

deploy_app = typer.Typer(
    help="Deployments: a gateway endpoint, autoscaled replicas, canary/shadow/rollback.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="The deployment's name (its gateway path).")]
MinOpt = Annotated[
    int | None,
    typer.Option("--min-replicas", "--min", min=0, help="Fewest replicas (0: scale to zero)."),
]
MaxOpt = Annotated[
    int | None, typer.Option("--max-replicas", "--max", min=1, help="Most replicas.")
]
TargetOpt = Annotated[
    float | None, typer.Option(min=0.001, help="Requests one replica should serve at once.")
]
GraceOpt = Annotated[
    float | None, typer.Option(min=0.0, help="Seconds without traffic before scaling to zero.")
]
PolicyOpt = Annotated[
    str | None, typer.Option(help="Autoscaling policy: kpa (default), default, hpa, ray, fixed:N.")
]
PrewarmOpt = Annotated[
    bool | None,
    typer.Option("--prewarm/--no-prewarm", help="Keep a loaded standby process per revision."),
]
TimeoutOpt = Annotated[float | None, typer.Option(min=0.001, help="Gateway timeout per request.")]
CpuOpt = Annotated[
    str | None,
    typer.Option(help="vCPU each replica requests (what it is billed): 0.5 or 500m."),
]
MemoryOpt = Annotated[
    int | None, typer.Option("--memory-mb", min=1, help="Memory each replica requests, MB.")
]
MemoryQtyOpt = Annotated[
    str | None,
    typer.Option("--memory", help="Memory each replica requests as a quantity: 512Mi, 1Gi."),
]
BackendOpt = Annotated[
    str | None,
    typer.Option("--backend", help="Where replicas run: local (default), kubernetes or ray."),
]
NamespaceOpt = Annotated[
    str | None, typer.Option(help="Kubernetes namespace (kubernetes; default: default).")
]
AutoscalerOpt = Annotated[
    str | None,
    typer.Option(
        help="Who scales: hpa, keda (scale to zero), knative (kubernetes); serve or "
        "modelyard (ray). Default: keda when --min 0, else hpa; serve on Ray."
    ),
]
AddressOpt = Annotated[
    str | None, typer.Option(help="The Ray cluster (ray backend): ray://host:port or auto.")
]
ImageOpt = Annotated[str | None, typer.Option(help="The runtime's container image (kubernetes).")]
GpuOpt = Annotated[float | None, typer.Option(min=0.0, help="GPUs each replica requests.")]


def _scaling(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _resources(
    cpu: str | None, memory: str | None, memory_mb: int | None, gpu: float | None
) -> dict[str, Any]:
    """--cpu/--memory as Kubernetes-style quantities (or plain numbers) → runtime settings.

    Raises:
        InvalidInput: a quantity that does not parse, or both --memory and --memory-mb.
    """
    from modelyard.core.backends import parse_cpu, parse_memory_mb
    from modelyard.core.errors import InvalidInput

    if memory is not None and memory_mb is not None:
        raise InvalidInput("give --memory or --memory-mb, not both")
    return _scaling(
        cpu=parse_cpu(cpu) if cpu is not None else None,
        memory_mb=parse_memory_mb(memory) if memory is not None else memory_mb,
        gpu=gpu,
    )


def _backend(**values: str | None) -> dict[str, Any] | None:
    """The backend body, or None for the default (local) with no backend options."""
    given = {k: v for k, v in values.items() if v is not None}
    return given or None


def _runtime(
    client: ModelyardClient | None, project: str, name: str, **values: Any
) -> dict[str, Any] | None:
    """Runtime settings with the given requests (cpu, memory_mb, gpu); for an update, the
    stable revision's other settings are kept (``client`` reads them)."""
    given = _scaling(**values)
    if not given:
        return None
    if client is None:
        return given
    dep = client.get_deployment(project, name)
    stable = next((r for r in dep["revisions"] if r["number"] == dep["stable_revision"]), None)
    return {**(stable["settings"] if stable is not None else {}), **given}


def _wait_ready(
    client: ModelyardClient, project: str, name: str, revision: int, timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        dep = client.get_deployment(project, name)
        rev = next(r for r in dep["revisions"] if r["number"] == revision)
        if rev["state"] in ("ready", "failed"):
            return dep
        if time.monotonic() > deadline:
            fail(f"revision {revision} is still {rev['state']} after {timeout_s:g}s")
        time.sleep(0.25)


@deploy_app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    model: Annotated[str, typer.Option(help="models:/<name>@<alias> or models:/<name>/<v>.")],
    min_replicas: MinOpt = None,
    max_replicas: MaxOpt = None,
    target_concurrency: TargetOpt = None,
    idle_grace_s: GraceOpt = None,
    policy: PolicyOpt = None,
    prewarm: PrewarmOpt = None,
    request_timeout_s: TimeoutOpt = None,
    cpu: CpuOpt = None,
    memory: MemoryQtyOpt = None,
    memory_mb: MemoryOpt = None,
    gpu: GpuOpt = None,
    backend: BackendOpt = None,
    namespace: NamespaceOpt = None,
    autoscaler: AutoscalerOpt = None,
    address: AddressOpt = None,
    image: ImageOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the first revision loaded (or failed).")
    ] = False,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Deploy a registered model (behind the gateway, or on Kubernetes / Ray Serve with
    --backend); prints its endpoint."""
    proj = project_of(ctx, project)
    scaling = _scaling(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_concurrency=target_concurrency,
        idle_grace_s=idle_grace_s,
        policy=policy,
        prewarm=prewarm,
        request_timeout_s=request_timeout_s,
    )
    spec = _backend(
        kind=backend, namespace=namespace, autoscaler=autoscaler, address=address, image=image
    )
    with user_errors(), client_of(ctx) as client:
        runtime = _runtime(None, proj, name, **_resources(cpu, memory, memory_mb, gpu))
        dep = client.create_deployment(
            proj, name, model, scaling=scaling, runtime=runtime, backend=spec
        )
        if wait:
            dep = _wait_ready(client, proj, name, 1, 180.0)
    if as_json:
        print_json(dep)
        return
    rev = dep["revisions"][0]
    if rev["state"] == "failed":
        fail(f"{name}: revision 1 failed to load: {rev['error']}")
    console.print(
        f"deployment [bold]{name}[/] → {rev['model_ref']} (version {rev['model_version']})"
    )
    console.print(dep["endpoint"])


@deploy_app.command("ls")
def ls(ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION) -> None:
    """List deployments with their traffic and replica counts."""
    with user_errors(), client_of(ctx) as client:
        deps = client.list_deployments(project_of(ctx, project))
    print_table(
        deps,
        [
            ("name", lambda d: d["name"]),
            ("status", lambda d: d["status"]),
            ("traffic", lambda d: _traffic(d)),
            ("replicas", lambda d: _replica_counts(d)),
            ("endpoint", lambda d: d["endpoint"]),
        ],
        as_json=as_json,
    )


def _traffic(d: dict[str, Any]) -> str:
    by_rev = {r["number"]: r for r in d["revisions"]}
    parts = [f"v{by_rev[int(n)]['model_version']}={w}%" for n, w in d["traffic"].items()]
    parts += [f"v{by_rev[int(n)]['model_version']}~{p:g}% shadow" for n, p in d["shadow"].items()]
    return ", ".join(parts) or "-"


def _print_split(name: str, dep: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(dep)
    else:
        console.print(f"{name}: {_traffic(dep)}")


def _replica_counts(d: dict[str, Any]) -> str:
    states: dict[str, int] = {}
    for r in d["replicas"]:
        states[r["state"]] = states.get(r["state"], 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "0"


@deploy_app.command("render")
def render(
    ctx: typer.Context,
    name: NameArg,
    backend: Annotated[
        str, typer.Option("--backend", help="What to render for: kubernetes.")
    ] = "kubernetes",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Folder to write one YAML file per object (default: stdout)."
        ),
    ] = None,
    namespace: NamespaceOpt = None,
    autoscaler: AutoscalerOpt = None,
    image: ImageOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Render the manifests that run a deployment on Kubernetes: reviewable YAML for
    GitOps or `kubectl apply -f`. Nothing is applied."""
    if backend != "kubernetes":
        fail(f"--backend: only kubernetes manifests can be rendered, got {backend!r}", 2)
    options = _backend(kind=backend, namespace=namespace, autoscaler=autoscaler, image=image)
    with user_errors(), client_of(ctx) as client:
        files = client.render_deployment(project_of(ctx, project), name, options or {})
    if output is None:
        typer.echo("---\n".join(files[f] for f in sorted(files)), nl=False)
        return
    try:
        output.mkdir(parents=True, exist_ok=True)
        for file_name in sorted(files):
            (output / file_name).write_text(files[file_name])
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", 1)
    console.print(f"{len(files)} manifests for {name} written to {output}/")


@deploy_app.command("show")
def show(
    ctx: typer.Context, name: NameArg, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """Revisions, traffic split, replicas and their state, endpoint."""
    with user_errors(), client_of(ctx) as client:
        dep = client.get_deployment(project_of(ctx, project), name)
    if as_json:
        print_json(dep)
        return
    sc = dep["scaling"]
    console.print(f"[bold]{dep['name']}[/] ({dep['status']}) {dep['endpoint']}")
    console.print(
        f"  scaling: {sc['policy']}, {sc['min_replicas']}..{sc['max_replicas']} replicas, "
        f"target concurrency {sc['target_concurrency']:g}, idle grace {sc['idle_grace_s']:g}s"
        + (", prewarm" if sc["prewarm"] else "")
    )
    ro = dep["rollout"]
    if ro is not None:
        console.print(
            f"  rollout: {ro['strategy']} of revision {ro['target']} over {ro['stable']}: "
            f"{ro['phase']}"
        )
    print_table(
        dep["revisions"],
        [
            ("rev", lambda r: r["number"]),
            ("model", lambda r: f"{r['model_name']}/{r['model_version']}"),
            ("state", lambda r: r["state"] + _stable_mark(r, dep)),
            ("traffic", lambda r: f"{r['weight']}%"),
            ("shadow", lambda r: f"{r['shadow_percent']:g}%" if r["shadow_percent"] else "-"),
            ("error", lambda r: r["error"][:80]),
        ],
        as_json=False,
    )
    print_table(
        dep["replicas"],
        [
            ("replica", lambda r: r["id"]),
            ("rev", lambda r: r["revision"]),
            ("state", lambda r: r["state"] + (" (standby)" if r["standby"] else "")),
            ("pid", lambda r: r["pid"]),
            ("port", lambda r: r["port"]),
            ("mode", lambda r: r["mode"]),
            ("started", lambda r: fmt_time(r["started_at_ms"] / 1000)),
        ],
        as_json=False,
    )


def _stable_mark(rev: dict[str, Any], dep: dict[str, Any]) -> str:
    return " (stable)" if rev["number"] == dep["stable_revision"] else ""


@deploy_app.command("events")
def events(
    ctx: typer.Context,
    name: NameArg,
    kind: Annotated[
        str | None, typer.Option(help="Only scale, rollout, replica, revision, traffic, quota.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most events.")] = 200,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Every scaling and rollout decision with its reason and inputs, oldest first."""
    proj = project_of(ctx, project)
    with user_errors(), client_of(ctx) as client:
        found: list[dict[str, Any]] = []
        after = 0
        while True:  # page through to the newest ``limit`` events
            page = client.deployment_events(proj, name, after=after, limit=10_000, kind=kind)
            found.extend(page)
            if len(page) < 10_000:
                break
            after = page[-1]["id"]
    print_table(
        found[-limit:],
        [
            ("time", lambda e: fmt_time(e["time_ms"] / 1000)),
            ("kind", lambda e: e["kind"]),
            ("rev", lambda e: e["revision"] if e["revision"] is not None else "-"),
            ("message", lambda e: e["message"]),
        ],
        as_json=as_json,
    )


@deploy_app.command("update")
def update(
    ctx: typer.Context,
    name: NameArg,
    model: Annotated[
        str | None, typer.Option(help="Roll out this model (models:/<name>/<version>).")
    ] = None,
    strategy: Annotated[str, typer.Option(help="canary or rolling.")] = "rolling",
    steps: Annotated[str, typer.Option(help="Canary traffic steps, e.g. 10,50,100.")] = "10,50,100",
    step_interval_s: Annotated[float, typer.Option(min=0.001, help="Seconds per step.")] = 60.0,
    max_error_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Canary error rate that rolls back.")
    ] = 0.01,
    max_p99_ratio: Annotated[
        float, typer.Option(min=0.001, help="Canary p99 / stable p99 that rolls back.")
    ] = 1.5,
    min_replicas: MinOpt = None,
    max_replicas: MaxOpt = None,
    target_concurrency: TargetOpt = None,
    idle_grace_s: GraceOpt = None,
    policy: PolicyOpt = None,
    prewarm: PrewarmOpt = None,
    request_timeout_s: TimeoutOpt = None,
    cpu: CpuOpt = None,
    memory: MemoryQtyOpt = None,
    memory_mb: MemoryOpt = None,
    gpu: GpuOpt = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Roll out a new model version (canary or rolling) and/or change scaling settings;
    new requests (--cpu, --memory, --gpu) roll out as a new revision (vertical scaling)."""
    if strategy not in ("canary", "rolling"):
        fail(f"--strategy must be canary or rolling, got {strategy!r}", 2)
    try:
        step_list = tuple(int(s) for s in steps.split(",") if s.strip())
    except ValueError:
        fail(f"--steps must be comma-separated integers, got {steps!r}", 2)
    scaling = _scaling(
        min_replicas=min_replicas, max_replicas=max_replicas,
        target_concurrency=target_concurrency, idle_grace_s=idle_grace_s, policy=policy,
        prewarm=prewarm, request_timeout_s=request_timeout_s,
    )  # fmt: skip
    with user_errors(), client_of(ctx) as client:
        resources = _resources(cpu, memory, memory_mb, gpu)
        runtime = _runtime(client, project_of(ctx, project), name, **resources)
        dep = client.update_deployment(
            project_of(ctx, project), name, model=model, strategy=strategy, steps=step_list,
            step_interval_s=step_interval_s, max_error_rate=max_error_rate,
            max_p99_ratio=max_p99_ratio, scaling=scaling, runtime=runtime,
        )  # fmt: skip
    if as_json:
        print_json(dep)
        return
    ro = dep["rollout"]
    if (model is not None or runtime is not None) and ro is not None:
        console.print(f"{name}: {ro['strategy']} rollout of revision {ro['target']} started; "
                      f"follow it with `modelyard deploy events {name}`")  # fmt: skip
    else:
        console.print(f"{name}: scaling settings updated")


@deploy_app.command("traffic")
def traffic(
    ctx: typer.Context,
    name: NameArg,
    split: Annotated[list[str], typer.Argument(help="VERSION=PERCENT pairs summing to 100.")],
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Split traffic by model version, e.g. ``3=90 4=10``."""
    weights: dict[int, int] = {}
    for item in split:
        version, sep, pct = item.partition("=")
        if not sep or not version.strip().isdigit() or not pct.strip().lstrip("-").isdigit():
            fail(f"expected VERSION=PERCENT, got {item!r}", 2)
        if int(version) in weights:
            fail(f"version {version} is given twice", 2)
        weights[int(version)] = int(pct)
    with user_errors(), client_of(ctx) as client:
        dep = client.set_traffic(project_of(ctx, project), name, weights)
    _print_split(name, dep, as_json)


@deploy_app.command("shadow")
def shadow(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[int, typer.Argument(min=1, help="Model version to mirror traffic to.")],
    percent: Annotated[
        float, typer.Option(min=0.0, max=100.0, help="Share of requests copied (0: stop).")
    ] = 100.0,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Mirror a share of requests to a model version; its responses are compared, discarded."""
    with user_errors(), client_of(ctx) as client:
        dep = client.set_shadow(project_of(ctx, project), name, version, percent)
    _print_split(name, dep, as_json)


@deploy_app.command("rollback")
def rollback(
    ctx: typer.Context, name: NameArg, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """Back to the previous stable revision (or stop the rollout in progress)."""
    with user_errors(), client_of(ctx) as client:
        dep = client.rollback_deployment(project_of(ctx, project), name)
    _print_split(name, dep, as_json)


@deploy_app.command("delete")
def delete(
    ctx: typer.Context,
    name: NameArg,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every replica stopped.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Stop routing, drain and stop every replica, then remove the deployment."""
    proj = project_of(ctx, project)
    with user_errors(), client_of(ctx) as client:
        client.delete_deployment(proj, name)
        deadline = time.monotonic() + 120
        while wait and time.monotonic() < deadline:
            if name not in {d["name"] for d in client.list_deployments(proj)}:
                break
            time.sleep(0.25)
    console.print(f"{name}: deleted" if wait else f"{name}: deleting (replicas drain first)")
