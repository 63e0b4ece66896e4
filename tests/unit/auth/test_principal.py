"""Role arithmetic: what a principal may do, for every combination (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.auth import Principal
from modelyard.core.entities import Role
from modelyard.core.errors import PermissionDenied

roles = st.sampled_from(list(Role))
maybe_roles = st.one_of(st.none(), roles)
projects = st.sampled_from(["a", "b", "c"])


@st.composite
def principals(draw: st.DrawFn) -> Principal:
    memberships = draw(st.dictionaries(projects, roles, max_size=3))
    scope_project = draw(st.one_of(st.none(), projects))
    return Principal(
        user="u",
        is_admin=draw(st.booleans()),
        token_id="t",
        roles=memberships,
        scope_project=scope_project,
        scope_role=draw(maybe_roles) if scope_project else None,
    )


@given(principals(), projects)
def test_a_token_never_grants_more_than_the_user_holds(p: Principal, project: str) -> None:
    effective = p.role_in(project)
    held = Role.ADMIN if p.is_admin else p.roles.get(project)
    if effective is not None:
        assert held is not None
        assert held.allows(effective)


@given(principals(), projects)
def test_a_scoped_token_never_grants_more_than_its_scope(p: Principal, project: str) -> None:
    effective = p.role_in(project)
    if p.scope_project is not None and effective is not None:
        assert project == p.scope_project
        if p.scope_role is not None:
            assert p.scope_role.allows(effective)


@given(principals(), projects, roles)
def test_require_agrees_with_role_in(p: Principal, project: str, needed: Role) -> None:
    effective = p.role_in(project)
    allowed = effective is not None and effective.allows(needed)
    if allowed:
        p.require(project, needed)
    else:
        with pytest.raises(PermissionDenied, match=needed.value):
            p.require(project, needed)


def test_role_order() -> None:
    assert Role.ADMIN.allows(Role.EDITOR)
    assert Role.EDITOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.EDITOR)


def test_platform_admin_needs_an_unscoped_token() -> None:
    Principal("root", True, "t").require_platform_admin()
    with pytest.raises(PermissionDenied):
        Principal("root", True, "t", scope_project="a").require_platform_admin()
    with pytest.raises(PermissionDenied):
        Principal("bob", False, "t", roles={"a": Role.ADMIN}).require_platform_admin()
