"""The pipeline schedules API over a real store with a fake clock: add, list, show,
enable/disable/re-time, fire now, fires, remove; every refusal (400/404/409 naming the
field, nothing written), targets confined to MODELYARD_PIPELINES_DIR, the roles, the
audit log, and the REST client.

No process starts here: the scheduler's passes are tested in test_scheduler_loop.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.entities import Role
from modelyard.core.errors import Conflict, InvalidInput, NotFound
from modelyard.pipelines.schedules import next_tick
from modelyard.testing.harness import Api

S = "/api/v1/projects/default/schedules"


@pytest.fixture
def pipelines(api: Api) -> Path:
    folder: Path = api.ctx.settings.pipelines_dir
    (folder / "daily").mkdir(parents=True)
    (folder / "daily" / "train.py").write_text("pipeline = None\n")
    return folder


def add(api: Api, headers: dict[str, str] | None = None, **body: Any) -> Any:
    full = {"name": "nightly", "target": "daily/train.py:pipeline", "cron": "0 3 * * *", **body}
    return api.client.post(S, json=full, headers=headers or api.as_admin())


def listed(api: Api) -> list[str]:
    return [s["name"] for s in api.client.get(S, headers=api.as_admin()).json()]


def test_add_show_list_and_the_next_fire(api: Api, pipelines: Path, fake_clock: FakeClock) -> None:
    r = add(api, cron="*/5  * * * *", executor="ray://127.0.0.1:10001")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["target"] == "daily/train.py:pipeline"
    assert body["cron"] == "*/5 * * * *"  # normalized
    assert (body["executor"], body["enabled"], body["created_by"]) == (
        "ray://127.0.0.1:10001",
        True,
        "admin",
    )
    assert body["next_fire_at"] == next_tick("*/5 * * * *", fake_clock.now())
    assert body["armed_at"] == fake_clock.now()
    assert (body["last_fire_at"], body["last_state"]) == (None, None)
    shown = api.client.get(f"{S}/nightly", headers=api.as_admin()).json()
    assert shown == body
    assert listed(api) == ["nightly"]
    # an absolute path inside the folder is stored relative to it
    absolute = add(api, name="abs", target=f"{pipelines / 'daily' / 'train.py'}:pipeline")
    assert absolute.json()["target"] == "daily/train.py:pipeline"
    disabled = add(api, name="off", enabled=False).json()
    assert disabled["next_fire_at"] is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"cron": "61 * * * *"}, "cron: '61 * * * *' is invalid"),
        ({"cron": "* * * * * *"}, "cron: '* * * * * *' has 6 fields"),
        ({"executor": "dask"}, "executor: unknown executor 'dask'"),
        ({"name": "a/b"}, "name: schedule name 'a/b' is invalid"),
        ({"target": "daily/train.py"}, "target: 'daily/train.py' is not 'path.py:attr'"),
        ({"target": "daily/missing.py:pipeline"}, "target: no file 'daily/missing.py'"),
        ({"target": "../outside.py:pipeline"}, "is outside the pipelines folder"),
        ({"target": "/etc/hostname.py:x"}, "is outside the pipelines folder"),
        ({"target": "daily/notes.txt:pipeline"}, "is not a Python file"),
        ({"target": "daily/\u0000.py:pipeline"}, "target: cannot resolve"),
        ({"target": "x" * 300 + ".py:pipeline"}, "target: cannot resolve"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    api: Api, pipelines: Path, body: dict[str, Any], fragment: str
) -> None:
    (pipelines.parent / "outside.py").write_text("pipeline = None\n")
    (pipelines / "daily" / "notes.txt").write_text("")
    r = add(api, **body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["message"]
    assert listed(api) == []
    if "outside" in fragment:
        assert str(pipelines) in r.json()["message"]  # it names the folder


def test_a_symlink_out_of_the_folder_is_refused(api: Api, pipelines: Path, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.py"
    secret.write_text("pipeline = None\n")
    os.symlink(secret, pipelines / "daily" / "link.py")
    r = add(api, target="daily/link.py:pipeline")
    assert r.status_code == 400
    assert "outside the pipelines folder" in r.json()["message"]
    os.symlink(pipelines / "loop.py", pipelines / "loop.py")
    looped = add(api, target="loop.py:pipeline")
    assert looped.status_code == 400
    assert "target: cannot resolve 'loop.py'" in looped.json()["message"]
    # a symlink that stays inside is followed, and the real file is what is stored
    os.symlink(pipelines / "daily" / "train.py", pipelines / "alias.py")
    ok = add(api, target="alias.py:pipeline")
    assert ok.status_code == 201, ok.text
    assert ok.json()["target"] == "daily/train.py:pipeline"


def test_type_errors_and_unknown_fields_are_400(api: Api, pipelines: Path) -> None:
    assert add(api, enabled="maybe").status_code == 400
    assert add(api, color="blue").status_code == 400
    assert listed(api) == []


def test_duplicates_and_unknown_schedules(api: Api, pipelines: Path) -> None:
    assert add(api).status_code == 201
    dup = add(api, cron="@hourly")
    assert dup.status_code == 409
    assert "already has a schedule named 'nightly'" in dup.json()["message"]
    for method, path in [
        ("GET", f"{S}/ghost"),
        ("PATCH", f"{S}/ghost"),
        ("DELETE", f"{S}/ghost"),
        ("POST", f"{S}/ghost/run"),
        ("GET", f"{S}/ghost/fires"),
    ]:
        body = {"enabled": True} if method == "PATCH" else None
        r = api.client.request(method, path, json=body, headers=api.as_admin())
        assert r.status_code == 404, (method, path, r.text)
        assert "schedule 'ghost' does not exist" in r.json()["message"]
    r = api.client.post(
        "/api/v1/projects/nope/schedules",
        json={"name": "x", "target": "daily/train.py:pipeline", "cron": "@daily"},
        headers=api.as_admin(),
    )
    assert r.status_code == 404


def test_disable_enable_and_re_time(api: Api, pipelines: Path, fake_clock: FakeClock) -> None:
    add(api, cron="@hourly")
    created_at = fake_clock.now()
    fake_clock.advance(90 * 60)

    def patch(**body: Any) -> Any:
        return api.client.patch(f"{S}/nightly", json=body, headers=api.as_admin())

    off = patch(enabled=False).json()
    assert (off["enabled"], off["next_fire_at"], off["armed_at"]) == (False, None, created_at)
    fake_clock.advance(3 * 3600)
    on = patch(enabled=True).json()
    # re-armed now: the hours it was disabled are not replayed
    assert (on["enabled"], on["armed_at"]) == (True, fake_clock.now())
    assert on["next_fire_at"] == next_tick("@hourly", fake_clock.now())
    fake_clock.advance(60)
    same = patch(enabled=True).json()
    assert same["armed_at"] == on["armed_at"]  # enabling an enabled schedule re-arms nothing
    retimed = patch(cron="*/10 * * * *").json()
    assert (retimed["cron"], retimed["armed_at"]) == ("*/10 * * * *", fake_clock.now())
    bad = patch(cron="0 0 30 2 *")
    assert bad.status_code == 400
    assert "cron: '0 0 30 2 *' never matches a date" in bad.json()["message"]
    empty = patch()
    assert empty.status_code == 400
    assert "give enabled or cron" in empty.json()["message"]
    assert api.client.get(f"{S}/nightly", headers=api.as_admin()).json()["cron"] == "*/10 * * * *"


def test_fire_now_is_queued_once_and_listed(
    api: Api, pipelines: Path, fake_clock: FakeClock
) -> None:
    add(api)
    fired = api.client.post(f"{S}/nightly/run", headers=api.as_admin())
    assert fired.status_code == 202, fired.text
    fire = fired.json()
    assert (fire["state"], fire["trigger"], fire["requested_by"]) == ("PENDING", "manual", "admin")
    assert fire["fired_at"] == fake_clock.now()
    again = api.client.post(f"{S}/nightly/run", headers=api.as_admin())
    assert again.status_code == 409
    assert "already pending" in again.json()["message"]
    fires = api.client.get(f"{S}/nightly/fires", headers=api.as_admin()).json()
    assert [f["id"] for f in fires] == [fire["id"]]
    assert api.client.get(f"{S}/nightly", headers=api.as_admin()).json()["last_state"] == "PENDING"
    assert api.client.get(f"{S}/nightly/fires?limit=0", headers=api.as_admin()).status_code == 400
    removed = api.client.delete(f"{S}/nightly", headers=api.as_admin())
    assert removed.json() == {"deleted": "nightly"}
    assert listed(api) == []


def test_viewers_read_editors_write_and_mutations_are_audited(api: Api, pipelines: Path) -> None:
    viewer = api.auth(api.token_for("vera", Role.VIEWER))
    editor = api.auth(api.token_for("ed", Role.EDITOR))
    assert add(api, viewer).status_code == 403
    created = add(api, editor)
    assert created.status_code == 201
    assert created.json()["created_by"] == "ed"
    assert api.client.get(S, headers=viewer).status_code == 200
    assert api.client.get(f"{S}/nightly/fires", headers=viewer).status_code == 200
    for method, path in [
        ("PATCH", f"{S}/nightly"),
        ("POST", f"{S}/nightly/run"),
        ("DELETE", f"{S}/nightly"),
    ]:
        r = api.client.request(method, path, json={"enabled": False}, headers=viewer)
        assert r.status_code == 403, (method, path)
    assert api.client.post(f"{S}/nightly/run", headers=editor).status_code == 202
    audit = api.client.get("/api/v1/audit", headers=api.as_admin()).json()
    actions = {(a["action"], a["actor"], a["outcome"]) for a in audit}
    assert ("schedule.create", "ed", "ok") in actions
    assert ("schedule.run", "ed", "ok") in actions
    assert ("schedule.create", "vera", "denied") in actions
    target = next(
        a["target"] for a in audit if a["action"] == "schedule.create" and a["actor"] == "ed"
    )
    assert target.startswith("schedule:nightly daily/train.py:pipeline")


def test_the_rest_client_round_trip(api: Api, pipelines: Path) -> None:
    with api.rest_client() as client:
        added = client.add_schedule("default", "nightly", "daily/train.py:pipeline", "@daily")
        assert added["cron"] == "@daily"
        assert [s["name"] for s in client.list_schedules("default")] == ["nightly"]
        assert client.get_schedule("default", "nightly")["id"] == added["id"]
        assert client.update_schedule("default", "nightly", enabled=False)["enabled"] is False
        fire = client.run_schedule("default", "nightly")
        assert client.schedule_fires("default", "nightly", limit=5)[0]["id"] == fire["id"]
        with pytest.raises(Conflict):
            client.run_schedule("default", "nightly")
        with pytest.raises(InvalidInput, match="cron"):
            client.update_schedule("default", "nightly", cron="99 * * * *")
        client.delete_schedule("default", "nightly")
        with pytest.raises(NotFound):
            client.get_schedule("default", "nightly")
