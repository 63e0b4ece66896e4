"""``modelyard data add|ls|versions|show|diff|get`` and ``modelyard lineage``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._context import ProjectOpt, client_of, settings_of
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    err_console,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)
from modelyard.core.datasets import DatasetVersion
from modelyard.core.errors import InvalidInput
from modelyard.data import render_lineage_tree

# Rich (tables, trees) is imported where it is used: see modelyard.cli._output.

data_app = typer.Typer(
    help="Versioned datasets: add, list, show, diff and get.", no_args_is_help=True
)

MAX_FILES_SHOWN = 50


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


@data_app.command("add")
def data_add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file or a directory.")],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Dataset name (default: the file stem).")
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="A note for the version.")] = "",
    verify: Annotated[
        bool, typer.Option("--verify", help="Rehash every file, ignoring the stat cache.")
    ] = False,
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Do not profile CSV/Parquet files.")
    ] = False,
    link: Annotated[
        bool,
        typer.Option(
            "--link",
            help="Reflink or hard-link files into a local store instead of copying them "
            "(hard-linked files become read-only).",
        ),
    ] = False,
    upload: Annotated[
        bool,
        typer.Option(
            "--upload",
            help="Send every blob through the server even when its store is a local folder.",
        ),
    ] = False,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a file or directory as the next version of a dataset (unchanged → no version).

    When the server's artifact store is a local folder this process can write (the
    default on one machine), blobs are written straight into it; else they are uploaded.
    """
    from modelyard.data.add import add_dataset
    from modelyard.data.hashing import hash_cache_path

    settings = settings_of(ctx)
    dataset = name or path.resolve().name.split(".")[0]
    with user_errors(), client_of(ctx) as client:
        result = add_dataset(
            client,
            project or settings.project,
            path,
            dataset,
            message=message,
            verify=verify,
            cache_path=hash_cache_path(settings.home),
            with_profile=not no_profile,
            progress=lambda line: None if as_json else err_console.print(line, highlight=False),
            direct=not upload,
            link=link,
        )
    v = result.version
    if as_json:
        print_json({"version": v.ref, "created": result.created, "files": v.file_count,
                    "size": v.total_size, "uploaded_files": result.uploaded_files,
                    "uploaded_bytes": result.uploaded_bytes, "hashed_files": result.hashed_files,
                    "cached_files": result.cached_files})  # fmt: skip
    elif result.created:
        console.print(
            f"[bold]{v.ref}[/] created: {v.file_count} file(s), {_size(v.total_size)} "
            f"({result.uploaded_files} uploaded, {_size(result.uploaded_bytes)})",
            highlight=False,
        )
    else:
        console.print(
            f"no change: content is identical to [bold]{v.ref}[/]; no new version created",
            highlight=False,
        )


@data_app.command("ls")
def data_ls(ctx: typer.Context, project: ProjectOpt = None, as_json: bool = JSON_OPTION) -> None:
    """List the datasets of a project."""
    with user_errors(), client_of(ctx) as client:
        datasets = client.list_datasets(project or settings_of(ctx).project)
    print_table(
        datasets,
        [
            ("name", lambda d: d.name),
            ("latest", lambda d: f"v{d.latest_version}" if d.latest_version else "-"),
            ("created", lambda d: fmt_time(d.created_at_ms / 1000)),
        ],
        as_json=as_json,
    )


@data_app.command("versions")
def data_versions(
    ctx: typer.Context, name: str, project: ProjectOpt = None, as_json: bool = JSON_OPTION
) -> None:
    """List the versions of a dataset, newest first."""
    with user_errors(), client_of(ctx) as client:
        versions = client.list_dataset_versions(project or settings_of(ctx).project, name)
    print_table(
        versions,
        [
            ("version", lambda v: v.ref),
            ("files", lambda v: v.file_count),
            ("size", lambda v: _size(v.total_size)),
            ("user", lambda v: v.user),
            ("created", lambda v: fmt_time(v.created_at_ms / 1000)),
            ("message", lambda v: v.message),
        ],
        as_json=as_json,
    )


@data_app.command("show")
def data_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name@vN, name@latest or name.")],
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a version: files, size, and for tables schema, row count and column profile."""
    with user_errors(), client_of(ctx) as client:
        version = client.get_dataset_version(project or settings_of(ctx).project, ref)
    if as_json:
        print_json(version)
        return
    console.print(
        f"[bold]{version.ref}[/]  {version.file_count} file(s), {_size(version.total_size)}, "
        f"by {version.user} at {fmt_time(version.created_at_ms / 1000)}",
        highlight=False,
    )
    if version.message:
        console.print(f"  {version.message}", highlight=False)
    console.print(f"  manifest sha256 {version.manifest_digest}", highlight=False)
    from rich.table import Table

    files = Table(header_style="bold", title="files")
    for col in ("path", "size", "sha256"):
        files.add_column(col)
    for f in version.files[:MAX_FILES_SHOWN]:
        files.add_row(f.path, _size(f.size), f.digest[:16])
    console.print(files)
    if version.file_count > MAX_FILES_SHOWN:
        console.print(f"… and {version.file_count - MAX_FILES_SHOWN} more (use --json)")
    _print_profile(version)


def _print_profile(version: DatasetVersion) -> None:
    from rich.table import Table

    for path, table in version.profile.get("tables", {}).items():
        if "error" in table:
            console.print(f"[yellow]{path}: no profile ({table['error']})[/]", highlight=False)
            continue
        t = Table(
            header_style="bold",
            title=f"{path}: {table['num_rows']} rows, {table['num_columns']} columns",
        )
        for col in ("column", "type", "nulls", "min", "max", "mean", "std", "top values"):
            t.add_column(col)
        types = {c["name"]: c["type"] for c in table["schema"]}
        for name, c in table["columns"].items():
            top = ", ".join(f"{i['value']}={i['count']}" for i in c.get("top_k", [])[:3])
            t.add_row(name, types.get(name, "?"), str(c["null_count"]), _num(c.get("min")),
                      _num(c.get("max")), _num(c.get("mean")), _num(c.get("std")), top)  # fmt: skip
        console.print(t)


@data_app.command("diff")
def data_diff(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="The older version, e.g. credit@v1.")],
    new: Annotated[str, typer.Argument(help="The newer version, e.g. credit@v2.")],
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Files added/removed/changed; for tables, schema, rows and column changes."""
    with user_errors(), client_of(ctx) as client:
        diff = client.diff_datasets(project or settings_of(ctx).project, old, new)
    if as_json:
        print_json(diff)
        return
    console.print(f"[bold]{diff['old']} → {diff['new']}[/]", highlight=False)
    for sign, key, style in (("+", "added", "green"), ("-", "removed", "red")):
        for f in diff[key]:
            console.print(f"[{style}]{sign} {f['path']}[/] ({_size(f['size'])})", highlight=False)
    for c in diff["changed"]:
        sizes = f"{_size(c['old_size'])} → {_size(c['new_size'])}"
        console.print(f"[yellow]~ {c['path']}[/] ({sizes})", highlight=False)
    console.print(f"{diff['unchanged']} file(s) unchanged", highlight=False)
    for table in diff["tables"]:
        console.print(f"[bold]{table['path']}[/]: rows {table['rows'][0]} → {table['rows'][1]}")
        for col in table["added_columns"]:
            console.print(f"  [green]+ column {col}[/]", highlight=False)
        for col in table["removed_columns"]:
            console.print(f"  [red]- column {col}[/]", highlight=False)
        for col, (a, b) in table["type_changes"].items():
            console.print(f"  [yellow]~ column {col}: {a} → {b}[/]", highlight=False)
        for col in table["columns"]:
            stats = ", ".join(f"{k} {_num(a)} → {_num(b)}" for k, (a, b) in col["stats"].items())
            if col.get("top_k_distance") is not None:
                stats += f"{', ' if stats else ''}top-k distance {col['top_k_distance']:.3f}"
            console.print(f"  {col['column']}: {stats}", highlight=False)


@data_app.command("get")
def data_get(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name@vN, name@latest or name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write into.")],
    project: ProjectOpt = None,
) -> None:
    """Download a version's files (each verified by sha256, written atomically)."""
    from modelyard.data.add import get_dataset

    with user_errors(), client_of(ctx) as client:
        version = client.get_dataset_version(project or settings_of(ctx).project, ref)
        written = get_dataset(client, version, out)
    console.print(f"{version.ref}: {len(written)} file(s) written to {out}", highlight=False)


def lineage(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(help="kind:id — model:churn/3, dataset:credit@v2, run:<id>.")
    ],
    direction: Annotated[str, typer.Option(help="up, down or both.")] = "both",
    depth: Annotated[int, typer.Option(help="How many hops to follow.")] = 10,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show where something came from and what it fed: data → run → model → deployment."""
    kind, sep, ident = target.partition(":")
    with user_errors():
        if not sep or not ident:
            raise InvalidInput(f"invalid target {target!r}: expected kind:id, e.g. model:churn/3")
        with client_of(ctx) as client:
            graph = client.lineage(
                project or settings_of(ctx).project, kind, ident, direction=direction, depth=depth
            )
    if as_json:
        print_json(graph)
    else:
        console.print(render_lineage_tree(graph))
