"""The budget loop over a real SQLite store, a fake ledger (spend set by the test), a fake
clock and real signed webhooks to a receiver on 127.0.0.1 (retries recorded, never
slept)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelyard.auth import LOCAL_PRINCIPAL
from modelyard.core.clock import FakeClock
from modelyard.cost.budget_loop import BudgetLoop
from modelyard.cost.budget_service import BudgetService
from modelyard.notify import Dispatcher, verify_signature
from modelyard.store import MetadataStore, open_store

DAY = 86400.0
MARCH_10 = datetime(2026, 3, 10, tzinfo=UTC).timestamp()  # 9 days of 31 gone
APRIL_2 = datetime(2026, 4, 2, tzinfo=UTC).timestamp()


class Receiver:
    """A webhook receiver that checks each request's signature and answers ``statuses``."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.secret = ""
        self.received: list[tuple[dict[str, str], dict[str, Any], bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                valid = verify_signature(
                    receiver.secret,
                    headers.get("x-modelyard-timestamp", ""),
                    body,
                    headers.get("x-modelyard-signature", ""),
                    now_s=time.time(),
                )
                receiver.received.append((headers, json.loads(body), valid))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/budget-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_s=MARCH_10)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[MetadataStore]:
    s = open_store(f"sqlite:///{tmp_path / 'm.db'}", clock)
    s.migrate()
    s.auth.create_project("fraud-team")
    s.auth.create_project("churn")
    yield s
    s.close()


class Ledger:
    """The fake ledger: spend per project, and the periods asked for."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.failing: set[str] = set()
        self.asked: list[tuple[str, int, int]] = []

    def __call__(self, project: str, start_ms: int, end_ms: int) -> float:
        self.asked.append((project, start_ms, end_ms))
        if project in self.failing:
            raise RuntimeError("ledger exploded")
        return self.spent.get(project, 0.0)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def service(store: MetadataStore, clock: FakeClock, ledger: Ledger) -> BudgetService:
    return BudgetService(store, clock, spend=ledger, currency="USD")


class Harness:
    def __init__(self, store: MetadataStore, clock: FakeClock, ledger: Ledger) -> None:
        self.delays: list[float] = []
        self.loop = BudgetLoop(store, ledger, clock=clock, interval_s=60)
        self.dispatcher = Dispatcher(self.loop.delivered, sleep=self.delays.append)
        self.loop._dispatcher = self.dispatcher

    def tick(self) -> None:
        self.loop.tick()
        assert self.dispatcher.wait_idle(timeout=30)

    def close(self) -> None:
        self.dispatcher.close(timeout=10)


@pytest.fixture
def harness(store: MetadataStore, clock: FakeClock, ledger: Ledger) -> Iterator[Harness]:
    h = Harness(store, clock, ledger)
    yield h
    h.close()


def kinds(store: MetadataStore, project: str = "fraud-team") -> list[str]:
    return [e.kind for e in store.budgets.history(project)]


def test_crossings_notify_a_signed_webhook_once_each(
    store: MetadataStore, clock: FakeClock, ledger: Ledger, receiver: Receiver, harness: Harness
) -> None:
    added = service(store, clock, ledger).set_budget(
        LOCAL_PRINCIPAL, "fraud-team", monthly=200, alert_at=(50, 80, 100), webhook=receiver.url
    )
    assert added.webhook_secret
    receiver.secret = added.webhook_secret
    # March 10th: 104 of 200 spent (52 %); the forecast 104 x 31 / 9 is over 100 %.
    ledger.spent["fraud-team"] = 104.0
    harness.tick()
    harness.tick()  # the same spend again: nothing new
    clock.advance(2 * DAY)
    ledger.spent["fraud-team"] = 170.0  # 85 %
    harness.tick()
    payloads = [body for _, body, _ in receiver.received]
    assert [(p["threshold"], p["kind"]) for p in payloads] == [
        (50.0, "actual"),
        (100.0, "forecast"),
        (80.0, "actual"),
    ]
    assert all(valid for _, _, valid in receiver.received)
    headers, first, _ = receiver.received[0]
    assert headers["x-modelyard-event"] == "budget"
    assert headers["x-modelyard-delivery"] == first["id"]
    assert first["event"] == "budget"
    assert first["project"] == "fraud-team"
    assert (first["budget"], first["currency"], first["month"]) == (200.0, "USD", "2026-03")
    assert (first["spent"], first["threshold_amount"]) == (104.0, 100.0)
    assert first["forecast"] == pytest.approx(104 * 31 / 9)
    assert first["percent"] == pytest.approx(52.0)
    assert "[BUDGET] fraud-team" in first["summary"]
    assert len({p["id"] for p in payloads}) == 3
    # The ledger was asked for March to date.
    project, start_ms, end_ms = ledger.asked[0]
    assert (project, start_ms) == (
        "fraud-team",
        int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000),
    )
    assert end_ms == int(MARCH_10 * 1000)
    history = kinds(store)
    assert history.count("crossed") == 3
    assert history.count("notify") == 3
    assert store.budgets.pending_notifications() == []
    audit = [a for a in store.auth.list_audit() if a.action == "budget.notify"]
    assert [a.outcome for a in audit] == ["ok", "ok", "ok"]
    last = store.budgets.budget("fraud-team").last
    assert last["spent"] == 170.0


def test_a_failed_delivery_is_retried_and_every_attempt_recorded(
    store: MetadataStore, clock: FakeClock, ledger: Ledger, harness: Harness
) -> None:
    receiver = Receiver([500, 503])
    try:
        added = service(store, clock, ledger).set_budget(
            LOCAL_PRINCIPAL, "fraud-team", monthly=100, alert_at=(50,), webhook=receiver.url
        )
        receiver.secret = added.webhook_secret or ""
        ledger.spent["fraud-team"] = 60.0
        harness.tick()
    finally:
        receiver.close()
    assert len(receiver.received) == 3
    assert len({h["x-modelyard-delivery"] for h, _, _ in receiver.received}) == 1
    assert len(harness.delays) == 2  # waited (without sleeping) before each retry
    events = store.budgets.history("fraud-team")
    assert [e.kind for e in events if e.kind.startswith("notify")] == [
        "notify_failed",
        "notify_failed",
        "notify",
    ]
    assert "HTTP 500" in next(e.message for e in events if e.kind == "notify_failed")


def test_a_crash_before_sending_loses_nothing_and_a_resend_keeps_the_id(
    store: MetadataStore, clock: FakeClock, ledger: Ledger, receiver: Receiver
) -> None:
    added = service(store, clock, ledger).set_budget(
        LOCAL_PRINCIPAL, "fraud-team", monthly=100, alert_at=(50,), webhook=receiver.url
    )
    receiver.secret = added.webhook_secret or ""
    ledger.spent["fraud-team"] = 60.0
    # A server evaluates and stores the crossing, then dies before sending anything.
    crashed = BudgetLoop(store, ledger, clock=clock)
    assert crashed.evaluate(store.budgets.budget("fraud-team"), clock.now())
    crashed.stop()
    (queued,) = store.budgets.pending_notifications()
    assert receiver.received == []
    # The next server sends it (the evaluation itself crosses nothing new).
    first = Harness(store, clock, ledger)
    try:
        first.tick()
    finally:
        first.close()
    assert [h["x-modelyard-delivery"] for h, _, _ in receiver.received] == [queued.notification_id]
    assert store.budgets.pending_notifications() == []
    # A crash after the delivery but before it was marked: sent again, same id.
    store.budgets.finish_notification(queued.id, "pending", 0)
    again = Harness(store, clock, ledger)
    try:
        again.tick()
        again.tick()
    finally:
        again.close()
    ids = [h["x-modelyard-delivery"] for h, _, _ in receiver.received]
    assert ids == [queued.notification_id, queued.notification_id]
    assert all(valid for _, _, valid in receiver.received)


def test_a_dispatcher_that_is_closed_leaves_the_notification_queued(
    store: MetadataStore, clock: FakeClock, ledger: Ledger, harness: Harness
) -> None:
    service(store, clock, ledger).set_budget(
        LOCAL_PRINCIPAL, "fraud-team", monthly=100, alert_at=(50,), webhook="http://127.0.0.1:9/x"
    )
    ledger.spent["fraud-team"] = 60.0
    harness.dispatcher.close()
    harness.loop.tick()
    assert len(store.budgets.pending_notifications()) == 1
    assert any("stays queued" in e.message for e in store.budgets.history("fraud-team"))


def test_one_failing_project_does_not_stop_the_others_and_is_said_once(
    store: MetadataStore, clock: FakeClock, ledger: Ledger, harness: Harness
) -> None:
    budgets = service(store, clock, ledger)
    budgets.set_budget(LOCAL_PRINCIPAL, "churn", monthly=100, alert_at=(50,))
    budgets.set_budget(LOCAL_PRINCIPAL, "fraud-team", monthly=100, alert_at=(50,))
    ledger.failing.add("churn")
    ledger.spent["fraud-team"] = 70.0
    harness.tick()
    harness.tick()
    assert kinds(store, "churn").count("error") == 1
    assert "ledger exploded" in store.budgets.history("churn", kind="error")[0].message
    # Without a webhook or action the crossing is recorded, and nothing is queued.
    crossed = store.budgets.history("fraud-team", kind="crossed")
    assert len(crossed) == 1
    assert "not notified" in crossed[0].message
    assert store.budgets.pending_notifications() == []


def test_a_new_month_rearms_the_thresholds(
    store: MetadataStore, clock: FakeClock, ledger: Ledger, receiver: Receiver, harness: Harness
) -> None:
    added = service(store, clock, ledger).set_budget(
        LOCAL_PRINCIPAL, "fraud-team", monthly=100, alert_at=(50,), webhook=receiver.url
    )
    receiver.secret = added.webhook_secret or ""
    ledger.spent["fraud-team"] = 60.0
    harness.tick()
    clock.advance(APRIL_2 - MARCH_10)
    ledger.spent["fraud-team"] = 55.0  # April to date
    harness.tick()
    months = [(body["month"], body["kind"]) for _, body, _ in receiver.received]
    assert months == [("2026-03", "actual"), ("2026-04", "actual")]
    assert "rearmed" in kinds(store)


def test_an_action_is_notified_with_its_own_secret(
    store: MetadataStore, clock: FakeClock, ledger: Ledger, receiver: Receiver, harness: Harness
) -> None:
    # Registered as `modelyard alerts action-add page --webhook URL` stores it.
    store.monitoring.add_action(
        "fraud-team", "page", "webhook",
        {"url": receiver.url, "secret": "whsec_action", "timeout_s": 5}, "admin",
    )  # fmt: skip
    receiver.secret = "whsec_action"
    service(store, clock, ledger).set_budget(
        LOCAL_PRINCIPAL, "fraud-team", monthly=100, alert_at=(50,), action="page"
    )
    ledger.spent["fraud-team"] = 60.0
    harness.tick()
    assert [(b["kind"], valid) for _, b, valid in receiver.received] == [("actual", True)]


# ---- the notification itself --------------------------------------------------------


def _record(amount: float = 200.0) -> Any:
    from modelyard.store.budget_repo import BudgetRecord

    return BudgetRecord(1, "fraud-team", amount, "USD", (50.0,), "", "", {}, {}, None, "u", 0, 0)


def test_a_budget_notification_has_a_stable_id_and_survives_the_outbox() -> None:
    from modelyard.core.errors import InvalidInput
    from modelyard.cost.budget import Crossing, month_of
    from modelyard.cost.budget_loop import (
        budget_notification,
        notification_from_payload,
        notification_payload,
    )

    march, april = month_of(MARCH_10), month_of(APRIL_2)
    crossing = Crossing(50.0, "actual", MARCH_10, 104.0, 358.0)
    n = budget_notification(_record(), crossing, march)
    later = Crossing(50.0, "actual", MARCH_10 + DAY, 120.0, 300.0)
    assert budget_notification(_record(), later, march).id == n.id  # same crossing
    others = {
        budget_notification(_record(), Crossing(50.0, "forecast", MARCH_10, 1, 1), march).id,
        budget_notification(_record(), crossing, april).id,
        budget_notification(_record(300.0), crossing, march).id,
    }
    assert n.id not in others
    assert len(others) == 3
    again = notification_from_payload(json.loads(json.dumps(notification_payload(n))))
    assert again.body() == n.body()
    body = json.loads(n.body())
    assert (body["event"], body["kind"], body["threshold"], body["month"]) == (
        "budget", "actual", 50.0, "2026-03",
    )  # fmt: skip
    assert "deployment" not in body
    with pytest.raises(InvalidInput, match="unreadable"):
        notification_from_payload({"id": "x"})


def test_events_other_than_alerts_are_checked() -> None:
    from modelyard.core.errors import InvalidInput
    from modelyard.notify import Notification

    common: dict[str, Any] = {
        "id": "n1", "deployment": "", "project": "p", "rule": "r", "state": "firing",
        "value": 1.0, "threshold": 1.0, "at": 0.0, "summary": "s",
    }  # fmt: skip
    with pytest.raises(InvalidInput, match="event"):
        Notification(**common, event="Not An Event")
    with pytest.raises(InvalidInput, match="may not set"):
        Notification(**common, event="budget", details={"id": "other"})
    alert = json.loads(Notification(**common, details={"extra": 1}).body())
    assert alert["event"] == "alert"
    assert "extra" not in alert  # an alert's payload is what it always was
