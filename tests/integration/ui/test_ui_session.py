"""Signing in and out of the web UI, sessions, CSRF, error pages and static files."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from modelyard.core.entities import Role
from modelyard.testing.harness import UI_PASSWORD, Api

HTML = {"Accept": "text/html"}


def _login_form(client: TestClient, url: str = "/ui/login") -> str:
    page = client.get(url, headers=HTML)
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _fresh(api: Api) -> TestClient:
    return TestClient(api.client.app, raise_server_exceptions=False, follow_redirects=False)


def test_root_and_pages_send_a_browser_to_the_login_page(api: Api) -> None:
    root = api.client.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (303, "/ui/")
    page = api.client.get("/ui/go?project=default", headers=HTML, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fgo%3Fproject%3Ddefault"
    fragment = api.client.get("/ui/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert (fragment.status_code, fragment.headers["hx-redirect"]) == (
        401,
        "/ui/login?next=%2Fui%2F",
    )
    # A program (no text/html) gets the API's JSON 401, as on every other route.
    program = api.client.get("/ui/")
    assert (program.status_code, program.json()["error_code"]) == (401, "UNAUTHENTICATED")


def test_login_sets_a_strict_httponly_session_cookie(api: Api) -> None:
    api.ctx.auth.set_password(api.ctx.auth.authenticate(api.admin_token), "admin", UI_PASSWORD)
    client = _fresh(api)
    csrf = _login_form(client, "/ui/login?next=/ui/p/default/models")
    done = client.post(
        "/ui/login",
        data={
            "username": "admin",
            "password": UI_PASSWORD,
            "csrf_token": csrf,
            "next": "/ui/p/default/models",
        },
        headers=HTML,
    )
    assert (done.status_code, done.headers["location"]) == (303, "/ui/p/default/models")
    cookie = next(c for c in done.headers.get_list("set-cookie") if "modelyard_session=" in c)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert client.get("/api/v1/users/me").json()["user"] == "admin"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/api/v1/x"])
def test_login_never_redirects_off_the_ui(api: Api, target: str) -> None:
    api.ctx.auth.set_password(api.ctx.auth.authenticate(api.admin_token), "admin", UI_PASSWORD)
    client = _fresh(api)
    csrf = _login_form(client)
    fields = {"username": "admin", "password": UI_PASSWORD, "csrf_token": csrf, "next": target}
    done = client.post("/ui/login", data=fields, headers=HTML)
    assert done.headers["location"] == "/ui/"


def test_wrong_password_and_missing_form_token_open_no_session(api: Api) -> None:
    api.ctx.auth.set_password(api.ctx.auth.authenticate(api.admin_token), "admin", UI_PASSWORD)
    client = _fresh(api)
    csrf = _login_form(client)
    wrong = client.post(
        "/ui/login",
        data={"username": "admin", "password": "not it at all", "csrf_token": csrf},
        headers=HTML,
    )
    assert wrong.status_code == 401
    assert "wrong user name or password" in wrong.text
    assert "modelyard_session" not in client.cookies
    stranger = _fresh(api)  # never loaded the form: no login CSRF cookie
    forged = stranger.post(
        "/ui/login",
        data={"username": "admin", "password": UI_PASSWORD, "csrf_token": csrf},
        headers=HTML,
    )
    assert forged.status_code == 403
    assert "modelyard_session" not in stranger.cookies


def test_cookie_sessions_need_the_csrf_token_on_every_mutating_call(api: Api) -> None:
    browser = api.browser()
    body = {"name": "from-the-browser"}
    refused = browser.client.post("/api/v1/projects", json=body)
    assert (refused.status_code, refused.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert "CSRF" in refused.json()["message"]
    wrong = browser.client.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    done = browser.client.post(
        "/api/v1/projects", json=body, headers={"X-CSRF-Token": browser.csrf}
    )
    assert done.status_code == 201, done.text
    # Reads need no token; a bearer token needs none either (browsers never send one).
    assert browser.client.get("/api/v1/projects").status_code == 200
    bearer = api.client.post("/api/v1/projects", json={"name": "by-token"}, headers=api.as_admin())
    assert bearer.status_code == 201


def test_logout_ends_the_session_for_good(api: Api) -> None:
    browser = api.browser()
    cookie = browser.client.cookies["modelyard_session"]
    assert browser.post("/ui/logout", csrf=False).status_code == 403
    out = browser.post("/ui/logout")
    assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
    replay = _fresh(api)
    replay.cookies.set("modelyard_session", cookie)
    again = replay.get("/ui/?stay=1", headers=HTML)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/ui/login")


def test_viewer_and_admin_see_their_projects(api: Api) -> None:
    viewer = api.browser("vera", Role.VIEWER)
    page = viewer.get("/ui/?stay=1")
    assert page.status_code == 200
    assert "vera" in page.text
    assert '<a href="/ui/p/default/experiments">default</a>' in page.text
    assert viewer.get("/ui/go?project=default").headers["location"] == ("/ui/p/default/experiments")
    assert viewer.get("/ui/go?project=secret").status_code == 404


def test_pages_carry_security_headers(api: Api) -> None:
    page = api.browser().get("/ui/?stay=1")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline scripts anywhere: only src= scripts


def test_unknown_pages_are_404_pages(api: Api) -> None:
    browser = api.browser()
    missing = browser.get("/ui/p/default/no-such-page")
    assert missing.status_code == 404
    assert "404" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    assert api.client.get("/ui/no-such-page").json()["error_code"] == "NOT_FOUND"


def test_static_files_are_cached_by_content_digest(api: Api) -> None:
    page = api.browser().get("/ui/?stay=1")
    url = re.search(r'src="(/ui/static/htmx-[^"]+)"', page.text)
    assert url is not None
    first = api.client.get(url.group(1))
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert first.headers["content-type"].startswith("text/javascript")
    again = api.client.get(url.group(1), headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert api.client.get("/ui/static/../_render.py").status_code == 404
    assert api.client.get("/ui/static/nothing.js").status_code == 404
    licences = api.client.get("/ui/static/uPlot.LICENSE")
    assert "MIT" in licences.text


def test_password_route_is_self_service_or_platform_admin(api: Api) -> None:
    vera = api.auth(api.token_for("vera", Role.VIEWER))
    own = api.client.put(
        "/api/v1/users/vera/password", json={"password": UI_PASSWORD}, headers=vera
    )
    assert own.status_code == 200
    other = api.client.put(
        "/api/v1/users/admin/password", json={"password": UI_PASSWORD}, headers=vera
    )
    assert other.status_code == 403
    weak = api.client.put("/api/v1/users/vera/password", json={"password": "x"}, headers=vera)
    assert weak.status_code == 400
    assert "8 to 1024" in weak.json()["message"]
    ghost = api.client.put(
        "/api/v1/users/ghost/password", json={"password": UI_PASSWORD}, headers=api.as_admin()
    )
    assert ghost.status_code == 404
