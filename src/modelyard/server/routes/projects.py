"""/api/v1/projects and their members."""

from __future__ import annotations

from fastapi import Depends, Request

from modelyard.auth import AUTHENTICATED, PLATFORM_ADMIN, PROJECT_ADMIN, PROJECT_VIEWER, Principal
from modelyard.server._context import app_context
from modelyard.server._routing import ApiRouter, current_principal, set_audit_target
from modelyard.server._schemas import MemberAdd, MembershipOut, ProjectCreate, ProjectOut

api = ApiRouter("/api/v1", tags=["projects"])


@api.route("POST", "/projects", permission=PLATFORM_ADMIN, action="project.create", status_code=201)
def create_project(
    body: ProjectCreate, request: Request, caller: Principal = Depends(current_principal)
) -> ProjectOut:
    set_audit_target(request, f"project:{body.name}")
    request.state.audit_project = body.name
    project = app_context(request).auth.create_project(caller, body.name, body.description)
    return ProjectOut.of(project)


@api.route("GET", "/projects", permission=AUTHENTICATED, action="project.list")
def list_projects(
    request: Request, caller: Principal = Depends(current_principal)
) -> list[ProjectOut]:
    return [ProjectOut.of(p) for p in app_context(request).auth.list_projects(caller)]


@api.route("GET", "/projects/{project}", permission=PROJECT_VIEWER, action="project.get")
def get_project(project: str, request: Request) -> ProjectOut:
    return ProjectOut.of(app_context(request).store.auth.get_project(project))


@api.route(
    "POST",
    "/projects/{project}/members",
    permission=PROJECT_ADMIN,
    action="project.member.add",
    status_code=201,
)
def add_member(
    project: str,
    body: MemberAdd,
    request: Request,
    caller: Principal = Depends(current_principal),
) -> MembershipOut:
    set_audit_target(request, f"user:{body.user} role:{body.role.value}")
    membership = app_context(request).auth.add_member(caller, project, body.user, body.role)
    return MembershipOut.of(membership)


@api.route(
    "GET", "/projects/{project}/members", permission=PROJECT_VIEWER, action="project.member.list"
)
def list_members(
    project: str, request: Request, caller: Principal = Depends(current_principal)
) -> list[MembershipOut]:
    return [MembershipOut.of(m) for m in app_context(request).auth.list_members(caller, project)]
