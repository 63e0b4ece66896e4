"""``modelyard models ls|show|alias|history|import|optimize``."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._context import ProjectOpt, client_of, project_of, settings_of
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fail,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)
from modelyard.core.models import ModelVersion
from modelyard.core.tracking import RunStatus

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

models_app = typer.Typer(help="Registered models, versions and aliases.", no_args_is_help=True)

_REF_RE = re.compile(r"^(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>.+))$")
IMPORT_EXPERIMENT = "model-imports"


@models_app.command("ls")
def models_ls(ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION) -> None:
    """List registered models with their latest version and aliases."""
    with user_errors(), client_of(ctx) as client:
        models = client.list_models(project_of(ctx, project))
    print_table(
        models,
        [
            ("name", lambda m: m.name),
            ("latest", lambda m: m.latest_version or "-"),
            ("aliases", lambda m: ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items()))),
            ("updated", lambda m: fmt_time(m.updated_at_ms / 1000)),
            ("description", lambda m: m.description),
        ],
        as_json=as_json,
    )


@models_app.command("show")
def models_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Versions, aliases, source runs, flavors and signatures of a model."""
    proj = project_of(ctx, project)
    with user_errors(), client_of(ctx) as client:
        model, versions = client.get_model(proj, name)
        latest = model.latest_version
        lineage = (
            client.lineage(proj, "model", f"{name}/{latest}", direction="up", depth=10)
            if latest is not None
            else None
        )
    if as_json:
        print_json({"model": model, "versions": versions, "lineage": lineage})
        return
    console.print(
        f"[bold]{model.name}[/] in {model.project} — {model.description or 'no description'}"
    )
    print_table(
        versions,
        [
            ("version", lambda v: v.version),
            ("aliases", lambda v: ", ".join(v.aliases)),
            ("flavor", lambda v: v.flavor),
            ("source run", lambda v: v.source_run_id or v.source_uri),
            ("by", lambda v: v.user),
            ("created", lambda v: fmt_time(v.created_at_ms / 1000)),
            ("inputs", _signature_inputs),
        ],
        as_json=False,
    )
    if lineage is not None:
        from modelyard.data import render_lineage_tree

        console.print(f"lineage of version {model.latest_version}:")
        console.print(render_lineage_tree(lineage))


def _signature_inputs(version: ModelVersion) -> str:
    if not version.signature_json:
        return "-"
    inputs = json.loads(version.signature_json).get("inputs") or {}
    columns = inputs.get("columns") if isinstance(inputs, dict) else None
    if isinstance(columns, list):
        names = [str(c.get("name")) for c in columns if isinstance(c, dict)]
        return ", ".join(names[:6]) + (" …" if len(names) > 6 else "")
    return json.dumps(inputs)[:60]


@models_app.command("alias")
def models_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    alias: Annotated[str, typer.Argument(help="e.g. production, staging.")],
    version: Annotated[int, typer.Argument(help="The version the alias should point to.", min=1)],
    project: ProjectOpt = None,
) -> None:
    """Move (or create) an alias; the move is recorded in the alias history."""
    with user_errors(), client_of(ctx) as client:
        change = client.set_alias(project_of(ctx, project), name, alias, version)
    before = change.from_version if change.from_version is not None else "nothing"
    console.print(f"{name}@{alias}: {before} → {change.to_version}")


@models_app.command("history")
def models_history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Who moved which alias, when, from which version to which."""
    with user_errors(), client_of(ctx) as client:
        changes = client.alias_history(project_of(ctx, project), name)
    print_table(
        changes,
        [
            ("time", lambda c: fmt_time(c.timestamp_ms / 1000)),
            ("alias", lambda c: c.alias),
            ("from", lambda c: c.from_version if c.from_version is not None else "-"),
            ("to", lambda c: c.to_version if c.to_version is not None else "(removed)"),
            ("by", lambda c: c.user),
        ],
        as_json=as_json,
    )


def _register_package(
    client: ModelyardClient, project: str, name: str, package: Path, run_name: str
) -> ModelVersion:
    """Upload a package as the artifacts of a new run, then register it from that run."""
    from modelyard.registry.fluent import upload_package

    experiment = client.find_experiment(project, IMPORT_EXPERIMENT) or client.create_experiment(
        project, IMPORT_EXPERIMENT
    )
    run = client.create_run(experiment.id, name=run_name)
    try:
        upload_package(client, run.id, package, "model")
        version = client.register_version(project, name, run.id, "model")
    except BaseException:
        client.update_run(run.id, status=RunStatus.FAILED)
        raise
    client.update_run(run.id, status=RunStatus.FINISHED)
    return version


@models_app.command("import")
def models_import(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="An MLflow model directory (with MLmodel).")],
    name: Annotated[str, typer.Option("--name", help="Register it under this model name.")],
    project: ProjectOpt = None,
) -> None:
    """Import an MLflow model directory as a new version (verified by digest from then on)."""
    if not (source / "MLmodel").is_file():
        fail(f"{source} is not an MLflow model directory: it has no MLmodel file", 2)
    with user_errors(), client_of(ctx) as client, tempfile.TemporaryDirectory() as tmp:
        from modelyard.models import import_mlflow_model

        package = Path(tmp) / "package"
        import_mlflow_model(source, package)
        version = _register_package(
            client, project_of(ctx, project), name, package, f"import-{source.name}"
        )
    console.print(f"registered {name} version {version.version} ({version.flavor})")


@models_app.command("optimize")
def models_optimize(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS, e.g. churn/3.")],
    to: Annotated[str, typer.Option("--to", help="Target format; only onnx today.")] = "onnx",
    project: ProjectOpt = None,
) -> None:
    """Convert to ONNX; a new version is registered only if predictions match."""
    if to != "onnx":
        fail(f"cannot optimize to {to!r}: only onnx is supported", 2)
    match = _REF_RE.match(ref)
    if match is None:
        fail(f"expected NAME/VERSION or NAME@ALIAS, got {ref!r}", 2)
    name = match["name"]
    settings = settings_of(ctx)
    with user_errors(), client_of(ctx) as client, tempfile.TemporaryDirectory() as tmp:
        from modelyard.models import optimize_to_onnx
        from modelyard.registry.fluent import fetch_version

        proj = project_of(ctx, project)
        source = client.get_version(proj, name, match["version"] or match["alias"])
        package = fetch_version(client, source, settings.home / "cache" / "models")
        converted = Path(tmp) / "onnx"
        report = optimize_to_onnx(package, converted)
        version = _register_package(
            client, proj, name, converted, f"optimize-{name}-v{source.version}"
        )
    console.print(report.summary())
    console.print(f"registered {name} version {version.version} (onnx, from v{source.version})")
