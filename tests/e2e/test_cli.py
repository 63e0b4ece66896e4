"""The CLI against a real server process, as a user would drive it."""

from __future__ import annotations

import json
import stat

import pytest

from modelyard.testing.cli_runner import run_cli
from modelyard.testing.server_process import ServerProcess

pytestmark = pytest.mark.slow


def _ok(result: object) -> str:
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    return str(result.stdout)  # type: ignore[attr-defined]


def test_admin_flow(server: ServerProcess) -> None:
    creds = server.home / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600

    _ok(run_cli(server, "project", "create", "fraud-team"))
    _ok(run_cli(server, "user", "add", "alice", "--project", "fraud-team", "--role", "viewer"))
    members = json.loads(_ok(run_cli(server, "user", "ls", "--project", "fraud-team", "--json")))
    assert [(m["user"], m["role"]) for m in members] == [("alice", "viewer")]
    projects = json.loads(_ok(run_cli(server, "project", "ls", "--json")))
    assert {p["name"] for p in projects} == {"default", "fraud-team"}

    create_ci = ("token", "create", "--name", "ci", "--project", "default", "--role", "editor")
    created = json.loads(_ok(run_cli(server, *create_ci, "--json")))
    ci_token = created["token"]
    assert ci_token.startswith("myt_")
    listed = _ok(run_cli(server, "token", "ls", "--json"))
    assert created["id"] in listed
    assert ci_token not in listed  # secrets are never listed

    # the scoped editor token can write artifacts in default, but not create projects
    denied = run_cli(server, "project", "create", "nope", token=ci_token)
    assert denied.returncode == 1
    assert "platform admin required" in denied.stderr
    assert "Traceback" not in denied.stderr

    _ok(run_cli(server, "token", "revoke", created["id"]))
    revoked = run_cli(server, "project", "ls", token=ci_token)
    assert revoked.returncode == 1
    assert "revoked" in revoked.stderr

    audit = json.loads(_ok(run_cli(server, "audit", "ls", "--json")))
    actions = [r["action"] for r in audit]
    assert actions[:2] == ["token.revoke", "project.create"]  # newest first
    assert (audit[1]["actor"], audit[1]["outcome"]) == ("admin", "denied")
    assert {"project.create", "project.member.add", "token.create"} <= set(actions)


def test_artifact_put_get(server: ServerProcess, tmp_path: object) -> None:
    from pathlib import Path

    src = Path(str(tmp_path)) / "model.bin"
    src.write_bytes(b"\x00\x01" * 50_000)
    _ok(run_cli(server, "artifact", "put", str(src), "--path", "models/m.bin"))
    entries = json.loads(_ok(run_cli(server, "artifact", "ls", "--json")))
    assert [(e["path"], e["size"]) for e in entries] == [("models/m.bin", 100_000)]
    out = Path(str(tmp_path)) / "out.bin"
    _ok(run_cli(server, "artifact", "get", "models/m.bin", "-o", str(out)))
    assert out.read_bytes() == src.read_bytes()


def test_config_show_masks_the_token(server: ServerProcess) -> None:
    token = server.admin_token
    shown = json.loads(_ok(run_cli(server, "config", "show", "--json", token=token)))
    assert shown["MODELYARD_TOKEN"].startswith(token[:6])
    assert token not in json.dumps(shown)
    assert shown["MODELYARD_STORE_URI"].startswith("sqlite:///")


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("project", "create", "Bad Name"), 2, "project name"),
        (("user", "add", "bob", "--project", "default", "--role", "god"), 2, "god"),
        (("user", "add", "bob", "--project", "ghost", "--role", "viewer"), 1, "ghost"),
        (("token", "create", "--name", "x", "--expires-in", "soon"), 2, "duration"),
        (("token", "revoke", "ffffffffffffffff"), 1, "does not exist"),
        (("artifact", "put", "/nonexistent/file"), 2, "not a readable file"),
        (("artifact", "get", "../etc/passwd", "-o", "/tmp/x"), 2, "'..'"),
    ],
)
def test_user_mistakes_get_a_message_not_a_traceback(
    server: ServerProcess, args: tuple[str, ...], code: int, fragment: str
) -> None:
    result = run_cli(server, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_server_is_a_clear_error(server: ServerProcess) -> None:
    env_server = ServerProcess(
        "http://127.0.0.1:9", 9, server.home, server.process, server.log_path
    )
    result = run_cli(env_server, "project", "ls")
    assert result.returncode == 1
    assert "cannot reach the modelyard server" in result.stderr


def test_user_passwd_sets_a_password_the_login_page_accepts(server: ServerProcess) -> None:
    import re

    import httpx

    _ok(run_cli(server, "user", "add", "alice", "--project", "default", "--role", "viewer"))
    short = run_cli(server, "user", "passwd", "alice", "--password-stdin", stdin="short\n")
    assert (short.returncode, "8 to 1024 characters" in short.stderr) == (2, True), short.stderr
    ghost = run_cli(server, "user", "passwd", "ghost", "--password-stdin", stdin="long enough 1\n")
    assert ghost.returncode == 1
    assert "does not exist" in ghost.stderr
    _ok(run_cli(server, "user", "passwd", "alice", "--password-stdin", stdin="long enough 1\n"))

    with httpx.Client(base_url=server.uri, headers={"Accept": "text/html"}) as browser:
        form = browser.get("/ui/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        fields = {"username": "alice", "password": "long enough 1", "csrf_token": csrf.group(1)}
        signed_in = browser.post("/ui/login", data=fields)
        assert signed_in.status_code == 303, signed_in.text
        assert "modelyard_session" in browser.cookies
        assert browser.get("/api/v1/users/me").json()["user"] == "alice"
    audit = json.loads(_ok(run_cli(server, "audit", "ls", "--json")))
    assert "user.password" in [r["action"] for r in audit]
    assert "long enough" not in json.dumps(audit)
