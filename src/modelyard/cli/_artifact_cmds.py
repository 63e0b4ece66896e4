"""``modelyard artifact put|get|ls|rm``: a project's artifact namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._context import client_of
from modelyard.cli._output import JSON_OPTION, console, fail, print_json, print_table, user_errors
from modelyard.core.entities import DEFAULT_PROJECT

artifact_app = typer.Typer(help="Store and fetch a project's artifacts.", no_args_is_help=True)

ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="The project.")]


@artifact_app.command("put")
def artifact_put(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The local file to upload.")],
    path: Annotated[
        str | None, typer.Option("--path", help="Logical path (default: the file name).")
    ] = None,
    project: ProjectOpt = DEFAULT_PROJECT,
    as_json: bool = JSON_OPTION,
) -> None:
    """Upload a file; content is stored once by its sha256 and verified on the way."""
    if not file.is_file():
        fail(f"{file} is not a readable file", 2)
    with user_errors(), client_of(ctx) as client:
        entry = client.put_artifact(project, path or file.name, file)
    if as_json:
        print_json(entry)
    else:
        console.print(f"stored {entry.path} ({entry.size} bytes, sha256 {entry.digest[:12]}…)")


@artifact_app.command("get")
def artifact_get(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The logical path.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")],
    project: ProjectOpt = DEFAULT_PROJECT,
) -> None:
    """Download an artifact; the file appears only once its digest checks out."""
    dest = output / Path(path).name if output.is_dir() else output
    with user_errors(), client_of(ctx) as client:
        entry = client.download_artifact(project, path, dest)
    console.print(f"wrote {dest} ({entry.size} bytes, verified)")


@artifact_app.command("ls")
def artifact_ls(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="Only paths starting with this.")] = "",
    project: ProjectOpt = DEFAULT_PROJECT,
    as_json: bool = JSON_OPTION,
) -> None:
    """List artifacts with their sizes and digests."""
    with user_errors(), client_of(ctx) as client:
        entries = client.list_artifacts(project, prefix)
    print_table(
        entries,
        [("path", lambda e: e.path), ("size", lambda e: e.size), ("sha256", lambda e: e.digest)],
        as_json=as_json,
    )


@artifact_app.command("rm")
def artifact_rm(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="The logical path.")],
    project: ProjectOpt = DEFAULT_PROJECT,
) -> None:
    """Remove an artifact's entry (its content stays while anything else refers to it)."""
    with user_errors(), client_of(ctx) as client:
        client.delete_artifact(project, path)
    console.print(f"removed {path}")
