"""``modelyard token|project|user|audit``: talk to the server through the REST client."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from modelyard.cli._context import client_of, parse_duration_s
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)
from modelyard.core.entities import Role

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
project_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)
user_app = typer.Typer(
    help="Add users to projects, list them, set web UI passwords.", no_args_is_help=True
)
audit_app = typer.Typer(help="Read the audit log of mutating calls.", no_args_is_help=True)

RoleOpt = Annotated[Role, typer.Option("--role", help="viewer, editor or admin.")]


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="A label to recognise the token by.")],
    project: Annotated[
        str | None, typer.Option("--project", help="Restrict the token to this project.")
    ] = None,
    role: Annotated[
        Role | None, typer.Option("--role", help="At most this role in --project.")
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Issue it for this user (default: you).")
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime, e.g. 3600, 12h, 30d.")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a token and print it once; only its hash is stored."""
    expires_s = parse_duration_s(expires_in) if expires_in else None
    with user_errors(), client_of(ctx) as client:
        issued = client.create_token(
            name, user=user, project=project, role=role, expires_in_s=expires_s
        )
    if as_json:
        print_json({"token": issued.plaintext, **issued.token.__dict__})
        return
    t = issued.token
    scope = f"{t.role.value if t.role else 'member roles'} in {t.project}" if t.project else "all"
    console.print(f"created token [bold]{t.id}[/] ({t.name}) for {t.user}, scope: {scope}")
    console.print("store it now; it will not be shown again:", style="yellow")
    typer.echo(issued.plaintext)


@token_app.command("ls")
def token_ls(
    ctx: typer.Context,
    all_users: Annotated[
        bool, typer.Option("--all", help="Every user's tokens (platform admins).")
    ] = False,
    as_json: bool = JSON_OPTION,
) -> None:
    """List tokens (never their secrets)."""
    with user_errors(), client_of(ctx) as client:
        tokens = client.list_tokens(all_users=all_users)
    print_table(
        tokens,
        [
            ("id", lambda t: t.id),
            ("name", lambda t: t.name),
            ("user", lambda t: t.user),
            ("project", lambda t: t.project or "*"),
            ("role", lambda t: t.role.value if t.role else "-"),
            ("created", lambda t: fmt_time(t.created_at)),
            ("expires", lambda t: fmt_time(t.expires_at)),
            ("revoked", lambda t: fmt_time(t.revoked_at)),
            ("last used", lambda t: fmt_time(t.last_used_at)),
        ],
        as_json=as_json,
    )


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="The token's id.")]
) -> None:
    """Revoke a token: every later request with it gets 401."""
    with user_errors(), client_of(ctx) as client:
        token = client.revoke_token(token_id)
    console.print(f"revoked token {token.id} ({token.name})")


@project_app.command("create")
def project_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Lowercase letters, digits and '-'.")],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a project (platform admins)."""
    with user_errors(), client_of(ctx) as client:
        project = client.create_project(name, description)
    if as_json:
        print_json(project)
    else:
        console.print(f"created project [bold]{project.name}[/]")


@project_app.command("ls")
def project_ls(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the projects you can see."""
    with user_errors(), client_of(ctx) as client:
        projects = client.list_projects()
    print_table(
        projects,
        [
            ("name", lambda p: p.name),
            ("description", lambda p: p.description),
            ("created", lambda p: fmt_time(p.created_at)),
        ],
        as_json=as_json,
    )


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's name; created if new.")],
    project: Annotated[str, typer.Option("--project", help="The project to join.")],
    role: RoleOpt,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a user to a project with a role (or change their role there)."""
    with user_errors(), client_of(ctx) as client:
        membership = client.add_member(project, name, role)
    if as_json:
        print_json(membership)
    else:
        console.print(f"{membership.user} is {membership.role.value} in {membership.project}")


@user_app.command("ls")
def user_ls(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option("--project", help="Members of this project only.")
    ] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """List users: a project's members, or every user (platform admins)."""
    with user_errors(), client_of(ctx) as client:
        if project is not None:
            members = client.list_members(project)
            print_table(
                members,
                [
                    ("user", lambda m: m.user),
                    ("role", lambda m: m.role.value),
                    ("since", lambda m: fmt_time(m.created_at)),
                ],
                as_json=as_json,
                title=f"members of {project}",
            )
            return
        users = client.list_users()
    print_table(
        users,
        [
            ("name", lambda u: u.name),
            ("platform admin", lambda u: "yes" if u.is_admin else "no"),
            ("created", lambda u: fmt_time(u.created_at)),
        ],
        as_json=as_json,
    )


@user_app.command("passwd")
def user_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Whose password: yours, or anyone's as an admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
) -> None:
    """Set the password a user signs in to the web UI with (stored as an argon2id hash).

    Programs keep using API tokens. Asks twice on a terminal; setting a password signs
    the user out of every browser.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with user_errors(), client_of(ctx) as client:
        client.set_password(name, password)
    console.print(f"password set for [bold]{name}[/]; sign in at /ui/login")


@audit_app.command("ls")
def audit_ls(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project")] = None,
    actor: Annotated[str | None, typer.Option("--actor")] = None,
    action: Annotated[str | None, typer.Option("--action", help="e.g. token.create")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show audit records, newest first."""
    with user_errors(), client_of(ctx) as client:
        records = client.list_audit(project=project, actor=actor, action=action, limit=limit)
    print_table(
        records,
        [
            ("time", lambda r: fmt_time(r.timestamp)),
            ("actor", lambda r: r.actor),
            ("action", lambda r: r.action),
            ("project", lambda r: r.project or "-"),
            ("target", lambda r: r.target),
            ("outcome", lambda r: f"{r.outcome} ({r.status_code})"),
        ],
        as_json=as_json,
    )
