"""Notifications: signed webhooks against real local HTTP servers, command actions as real
subprocesses, and the retrying dispatcher (with a recorded, never real, backoff sleep)."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelyard.core.clock import FakeClock
from modelyard.core.errors import InvalidInput
from modelyard.notify import (
    CommandAction,
    DeliveryResult,
    Dispatcher,
    Notification,
    NotificationState,
    Notifier,
    WebhookNotifier,
    check_webhook_url,
    notification_id,
    sign,
    verify_signature,
)

SECRET = "s3cr3t-for-tests"


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 10
    extra = set(threading.enumerate()) - before
    while extra and time.monotonic() < deadline:
        time.sleep(0.02)
        extra = {t for t in extra if t.is_alive()}
    assert not extra, f"threads left behind: {extra}"


def make_notification(
    state: NotificationState = "firing", at: float = 1_700_000_120.0
) -> Notification:
    """An alert rule's transition, as :mod:`modelyard.monitor` builds it."""
    rule = "p99_ms > 50 for 2m"
    value = 61.5 if state == "firing" else 1.0
    return Notification(
        id=notification_id("churn", "churn-api", rule, state, at),
        deployment="churn-api",
        project="churn",
        rule=rule,
        state=state,
        value=value,
        threshold=50.0,
        at=at,
        summary=f"[{state.upper()}] churn/churn-api: {rule} (value {value:g}, threshold 50)",
        labels={"team": "ml", "a": "1"},
        since=at - 120,
    )


# --- local HTTP receivers ------------------------------------------------------------


@dataclass
class Receiver:
    """What a test HTTP server answers, and what it received."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    hang: bool = False
    requests: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        valid = verify_signature(
            SECRET,
            headers.get("X-Modelyard-Timestamp", ""),
            body,
            headers.get("X-Modelyard-Signature", ""),
            now_s=time.time(),
        )
        with self.lock:
            self.requests.append((headers, body, valid))
            return self.script.pop(0) if self.script else (200, {})


@contextmanager
def serve(receiver: Receiver) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, headers = receiver.record(dict(self.headers.items()), body)
            if receiver.hang:
                receiver.received.set()
                receiver.release.wait(30)
            payload = b'{"received": true}' if status < 300 else b"receiver says no"
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (the hanging receiver)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


class Results:
    """An ``on_result`` callback that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, DeliveryResult, bool]] = []
        self._cond = threading.Condition()

    def __call__(
        self, target: Notifier, n: Notification, attempt: int, result: DeliveryResult, final: bool
    ) -> None:
        with self._cond:
            self.calls.append((target.target, n.id, attempt, result, final))
            self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, timeout), f"timed out; calls: {self.calls}"

    def finals(self) -> int:
        return sum(1 for call in self.calls if call[4])

    def of(self, notification_id: str) -> list[tuple[str, str, int, DeliveryResult, bool]]:
        with self._cond:
            return [c for c in self.calls if c[1] == notification_id]


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


# --- notifications -------------------------------------------------------------------


def test_notification_payload() -> None:
    n = make_notification()
    assert list(n.labels) == ["a", "team"]
    assert n.id == make_notification().id  # stable
    assert n.id == notification_id("churn", "churn-api", n.rule, "firing", n.at)
    assert make_notification("resolved").id != n.id
    data = json.loads(n.body())
    assert data == n.to_json()
    assert data["at_iso"] == "2023-11-14T22:15:20+00:00"
    assert {"id", "project", "deployment", "rule", "state", "value", "threshold", "at"} <= set(data)
    with pytest.raises(InvalidInput, match="firing or resolved"):
        Notification("x", "d", "p", "r", "pending", 1.0, 1.0, 0.0, "s")  # type: ignore[arg-type]


def test_signature_helpers() -> None:
    body = b'{"a":1}'
    header = sign(SECRET, 1000, body)
    assert header.startswith("sha256=")
    assert len(header) == 7 + 64
    assert verify_signature(SECRET, "1000", body, header, now_s=1100)
    assert verify_signature(SECRET.encode(), 1000, body, header, now_s=700)
    assert not verify_signature(SECRET, 1000, body + b" ", header, now_s=1000)
    assert not verify_signature("other", 1000, body, header, now_s=1000)
    assert not verify_signature(SECRET, 1001, body, header, now_s=1000)
    assert not verify_signature(SECRET, 1000, body, header, now_s=1301)  # stale
    assert not verify_signature(SECRET, "soon", body, header, now_s=1000)
    assert not verify_signature(SECRET, 1000, body, header[7:], now_s=1000)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("127.0.0.1:9000/hook", "only http and https"),
        ("http://", "has no host"),
        ("", "is not a valid URL"),
        ("http://exa mple.com/", "is not a valid URL"),
        ("http://example.com:99999/", "invalid port 99999"),
    ],
)
def test_webhook_url_is_validated(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        WebhookNotifier(url, SECRET)
    assert repr(url) in str(info.value) or url in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "/relative/hook",
        "http://",
        "http://a b.example/",
        "http://x/" + "a" * 2048,
    ],
)
def test_check_webhook_url_refuses_what_cannot_be_stored(url: str) -> None:
    with pytest.raises(InvalidInput, match="webhook"):
        check_webhook_url(url)


def test_check_webhook_url_accepts_http_and_https() -> None:
    check_webhook_url("http://127.0.0.1:9000/hook")
    check_webhook_url("https://hooks.example.com/a?token=t")


def test_webhook_settings_are_validated() -> None:
    with pytest.raises(InvalidInput, match="secret"):
        WebhookNotifier("http://127.0.0.1:9/", "")
    with pytest.raises(InvalidInput, match="timeout"):
        WebhookNotifier("http://127.0.0.1:9/", SECRET, timeout_s=0)
    hook = WebhookNotifier("https://user:pw@hooks.example.com:8443/a/b?token=t#f", SECRET)
    assert hook.target == "webhook https://hooks.example.com:8443/a/b"
    assert "pw" not in repr(hook)
    assert "token" not in repr(hook)


def test_webhook_posts_signed_json() -> None:
    clock = FakeClock(start_s=time.time())
    receiver = Receiver()
    n = make_notification()
    with serve(receiver) as url:
        result = WebhookNotifier(url, SECRET, clock=clock, trust_env=False).deliver(n)
    assert result.ok
    assert result.code == 200
    assert result.error is None
    assert result.output == '{"received": true}'
    assert result.duration_s > 0
    [(headers, body, valid)] = receiver.requests
    assert valid
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Modelyard-Event"] == "alert"
    assert headers["X-Modelyard-Delivery"] == n.id
    assert headers["X-Modelyard-Timestamp"] == str(int(clock.now()))
    assert body == n.body()
    assert json.loads(body)["rule"] == "p99_ms > 50 for 2m"


def test_webhook_failures_are_results_not_exceptions() -> None:
    receiver = Receiver(script=[(404, {}), (503, {"Retry-After": "7"}), (302, {"Location": "/"})])
    with serve(receiver) as url:
        hook = WebhookNotifier(url, SECRET, trust_env=False)
        not_found, unavailable, redirect = (hook.deliver(make_notification()) for _ in range(3))
    assert (not_found.ok, not_found.code, not_found.retryable) == (False, 404, False)
    assert not_found.error == "HTTP 404: receiver says no"
    assert (unavailable.code, unavailable.retryable, unavailable.retry_after_s) == (503, True, 7.0)
    assert (redirect.code, redirect.retryable) == (302, False)
    assert redirect.error is not None
    assert "not followed" in redirect.error
    # Nothing listens there any more: a retryable connection error.
    refused = WebhookNotifier(url, SECRET, trust_env=False).deliver(make_notification())
    assert (refused.ok, refused.code, refused.retryable) == (False, None, True)
    assert refused.error


# --- the dispatcher against real receivers -------------------------------------------


def test_500_twice_then_200_is_retried_with_backoff() -> None:
    receiver = Receiver(script=[(500, {}), (500, {})])
    results, sleep = Results(), RecordingSleep()
    n = make_notification()
    with serve(receiver) as url, Dispatcher(results, sleep=sleep, rng=random.Random(1)) as d:
        hook = WebhookNotifier(url, SECRET, trust_env=False)
        assert d.submit(hook, n)
        results.wait(lambda: results.finals() == 1)
    attempts = [(a, r.ok, r.code, final) for _, _, a, r, final in results.calls]
    assert attempts == [(1, False, 500, False), (2, False, 500, False), (3, True, 200, True)]
    assert results.calls[0][0] == f"webhook {url}"
    assert 0.8 <= sleep.delays[0] <= 1.2
    assert 1.6 <= sleep.delays[1] <= 2.4
    assert len(sleep.delays) == 2
    assert len(receiver.requests) == 3
    assert all(valid for _, _, valid in receiver.requests)
    assert {h["X-Modelyard-Delivery"] for h, _, _ in receiver.requests} == {n.id}


def test_404_is_not_retried() -> None:
    receiver = Receiver(script=[(404, {})])
    results, sleep = Results(), RecordingSleep()
    with serve(receiver) as url, Dispatcher(results, sleep=sleep) as d:
        d.submit(WebhookNotifier(url, SECRET, trust_env=False), make_notification())
        results.wait(lambda: results.finals() == 1)
    [(_, _, attempt, result, final)] = results.calls
    assert (attempt, result.code, final) == (1, 404, True)
    assert sleep.delays == []
    assert len(receiver.requests) == 1


def test_retry_after_is_honoured() -> None:
    receiver = Receiver(script=[(429, {"Retry-After": "30"})])
    results, sleep = Results(), RecordingSleep()
    with serve(receiver) as url, Dispatcher(results, sleep=sleep) as d:
        d.submit(WebhookNotifier(url, SECRET, trust_env=False), make_notification())
        results.wait(lambda: results.finals() == 1)
    assert [c[3].code for c in results.calls] == [429, 200]
    assert sleep.delays == [30.0]


def test_a_hanging_webhook_holds_up_only_its_own_deliveries() -> None:
    hanging, healthy = Receiver(hang=True), Receiver()
    results, sleep = Results(), RecordingSleep()
    stuck, other = make_notification(), make_notification(at=1_700_000_500.0)
    with (
        serve(hanging) as hang_url,
        serve(healthy) as ok_url,
        Dispatcher(results, sleep=sleep, max_attempts=2) as d,
    ):
        slow = WebhookNotifier(hang_url, SECRET, timeout_s=3, trust_env=False)
        d.submit(slow, stuck)
        assert hanging.received.wait(10)
        d.submit(WebhookNotifier(ok_url, SECRET, trust_env=False), other)
        results.wait(lambda: len(results.of(other.id)) == 1)
        assert results.of(stuck.id) == []  # still hanging while the other was delivered
        results.wait(lambda: results.finals() == 2)
    hung = results.of(stuck.id)
    assert [(a, r.ok, r.code, r.retryable, f) for _, _, a, r, f in hung] == [
        (1, False, None, True, False),
        (2, False, None, True, True),
    ]
    assert all(r.error is not None and "timed out" in r.error for _, _, _, r, _ in hung)
    assert all(r.duration_s < 10 for _, _, _, r, _ in hung)
    assert len(sleep.delays) == 1
    assert [(c[2], c[3].ok) for c in results.of(other.id)] == [(1, True)]


# --- the dispatcher's own rules, with in-process targets ------------------------------


class FakeTarget:
    """A notifier that answers from a script, optionally blocking first."""

    def __init__(
        self,
        name: str,
        answers: list[DeliveryResult] | None = None,
        log: list[str] | None = None,
    ) -> None:
        self.name = name
        self.answers = list(answers or [])
        self.delivered: list[str] = []
        self.log = log if log is not None else []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    @property
    def target(self) -> str:
        return f"fake {self.name}"

    def deliver(self, notification: Notification) -> DeliveryResult:
        self.started.set()
        assert self.gate.wait(20)
        self.delivered.append(notification.id)
        self.log.append(notification.id)
        if self.answers:
            return self.answers.pop(0)
        return DeliveryResult(ok=True, code=200, error=None, duration_s=0.0)


def notifications(count: int) -> list[Notification]:
    return [make_notification(at=1_700_000_000.0 + 60 * i) for i in range(count)]


def test_one_target_receives_in_order() -> None:
    target, results = FakeTarget("a"), Results()
    batch = notifications(20)
    with Dispatcher(results, workers=4) as d:
        for n in batch:
            assert d.submit(target, n)
        assert d.wait_idle(20)
    assert target.delivered == [n.id for n in batch]
    assert results.finals() == 20
    assert d.pending == 0


def test_notifier_objects_for_the_same_target_share_one_ordered_lane() -> None:
    log: list[str] = []
    first, second = FakeTarget("same", log=log), FakeTarget("same", log=log)
    first.gate.clear()
    batch = notifications(6)
    with Dispatcher(Results(), workers=4) as d:
        d.submit(first, batch[0])
        assert first.started.wait(10)
        for i, n in enumerate(batch[1:], start=1):
            d.submit(second if i % 2 else first, n)
        assert second.delivered == []  # waits behind the first object's delivery
        first.gate.set()
        assert d.wait_idle(20)
    assert log == [n.id for n in batch]
    assert first.delivered == [batch[0].id, batch[2].id, batch[4].id]


def test_a_full_queue_drops_and_reports() -> None:
    target, results = FakeTarget("a"), Results()
    target.gate.clear()
    first, second, third = notifications(3)
    with Dispatcher(results, queue_size=1, workers=1) as d:
        assert d.submit(target, first)
        assert target.started.wait(10)  # first is being delivered; the queue is empty
        assert d.submit(target, second)
        assert not d.submit(target, third)  # the queue (1) is full
        [(_, nid, attempt, result, final)] = results.calls
        assert (nid, attempt, result.ok, final) == (third.id, 0, False, True)
        assert result.error is not None
        assert "queue is full" in result.error
        target.gate.set()
        assert d.wait_idle(20)
    assert target.delivered == [first.id, second.id]


def test_connection_errors_are_retried_up_to_max_attempts() -> None:
    receiver, results, sleep = Receiver(), Results(), RecordingSleep()
    with serve(receiver) as url:
        pass  # the port is closed again: connection refused
    with Dispatcher(results, sleep=sleep, max_attempts=3, jitter=0.0) as d:
        d.submit(WebhookNotifier(url, SECRET, timeout_s=2, trust_env=False), make_notification())
        results.wait(lambda: results.finals() == 1)
    assert [(c[2], c[3].retryable, c[4]) for c in results.calls] == [
        (1, True, False),
        (2, True, False),
        (3, True, True),
    ]
    assert sleep.delays == [1.0, 2.0]


def test_backoff_doubles_to_the_cap_with_bounded_jitter() -> None:
    exact = Dispatcher(jitter=0.0)
    assert [exact.backoff_delay(a) for a in range(1, 8)] == [1, 2, 4, 8, 16, 16, 16]
    assert exact.backoff_delay(1, retry_after_s=1000) == 300.0  # capped Retry-After
    jittered = Dispatcher(jitter=0.2, rng=random.Random(7))
    for attempt in range(1, 8):
        base = min(16.0, 2.0 ** (attempt - 1))
        assert 0.8 * base <= jittered.backoff_delay(attempt) <= 1.2 * base
    with pytest.raises(InvalidInput, match="max_attempts"):
        Dispatcher(max_attempts=0)
    with pytest.raises(InvalidInput, match="jitter"):
        Dispatcher(jitter=1.5)


def test_a_raising_target_or_callback_does_not_stop_the_dispatcher() -> None:
    class Broken:
        target = "broken"

        def deliver(self, notification: Notification) -> DeliveryResult:
            raise RuntimeError("bug in a notifier")

    calls: list[tuple[int, bool, str | None]] = []

    def on_result(
        target: Notifier, n: Notification, attempt: int, result: DeliveryResult, final: bool
    ) -> None:
        calls.append((attempt, final, result.error))
        raise ValueError("bug in the callback")

    good = FakeTarget("good")
    with Dispatcher(on_result) as d:
        d.submit(Broken(), make_notification())
        d.submit(good, make_notification("resolved"))
        assert d.wait_idle(20)
    assert (1, True, "RuntimeError: bug in a notifier") in calls
    assert len(good.delivered) == 1


def test_close_reports_undelivered_and_refuses_new_work() -> None:
    target, results = FakeTarget("a"), Results()
    target.gate.clear()
    first, second, third = notifications(3)
    d = Dispatcher(results, workers=1)
    d.submit(target, first)
    assert target.started.wait(10)
    d.submit(target, second)
    closer = threading.Thread(target=lambda: d.close(timeout=20))
    closer.start()
    results.wait(lambda: len(results.of(second.id)) == 1)
    target.gate.set()
    closer.join(20)
    assert not closer.is_alive()
    [(_, _, attempt, result, final)] = results.of(second.id)
    assert (attempt, final, result.error) == (0, True, "dispatcher closed before delivery")
    assert results.of(first.id)[0][3].ok
    assert not d.submit(target, third)
    assert results.of(third.id)[0][3].error == "dispatcher is closed; notification dropped"
    assert d.close(timeout=1)


def test_close_cuts_a_backoff_wait_short() -> None:
    down = DeliveryResult(ok=False, code=503, error="HTTP 503", duration_s=0.0, retryable=True)
    target, results = FakeTarget("down", [down] * 10), Results()
    d = Dispatcher(results, base_delay_s=60.0, max_delay_s=60.0)  # the real, interruptible wait
    d.submit(target, make_notification())
    results.wait(lambda: len(results.calls) == 1)
    started = time.monotonic()
    assert d.close(timeout=10)
    assert time.monotonic() - started < 5
    assert [(c[2], c[4]) for c in results.calls] == [(1, False), (1, True)]
    assert results.calls[-1][3].error == "dispatcher closed after 1 attempt(s); not retried"


# --- command actions (real subprocesses) ----------------------------------------------

READ_ALERT = """
import json, os, sys
payload = sys.stdin.read()
assert json.loads(payload) == json.loads(os.environ["MODELYARD_ALERT"])
open(sys.argv[1], "w").write(payload)
print("retrain queued for", json.loads(payload)["deployment"])
"""


def test_command_action_gets_the_notification_on_stdin_and_env(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    action = CommandAction([sys.executable, "-c", READ_ALERT, str(out)], timeout_s=60)
    assert action.target.startswith("command ")
    assert "-c" in action.target
    n = make_notification()
    result = action.deliver(n)
    assert result.ok
    assert result.code == 0
    assert result.error is None
    assert result.output.strip() == "retrain queued for churn-api"
    assert json.loads(out.read_text()) == n.to_json()


def test_command_action_failure_keeps_the_output_tail() -> None:
    script = "import sys; print('x' * 10000); print('boom', file=sys.stderr); sys.exit(3)"
    result = CommandAction([sys.executable, "-c", script]).deliver(make_notification())
    assert (result.ok, result.code, result.error, result.retryable) == (
        False,
        3,
        "exit code 3",
        False,
    )
    assert result.output.endswith("boom\n")
    assert len(result.output) <= 4096
    retried = CommandAction([sys.executable, "-c", script], retry=True)
    assert retried.deliver(make_notification()).retryable


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie waiting for its reaper


def test_command_action_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result = CommandAction([sys.executable, "-c", script], timeout_s=2).deliver(make_notification())
    assert time.monotonic() - started < 20
    assert not result.ok
    assert result.error == "timed out after 2 s; killed"
    assert result.code is not None
    assert result.code < 0
    assert "started" in result.output
    if sys.platform.startswith("linux"):
        child = int(pid_file.read_text())
        deadline = time.monotonic() + 10
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(child)


def test_command_action_validation() -> None:
    with pytest.raises(InvalidInput, match="non-empty list"):
        CommandAction([])
    with pytest.raises(InvalidInput, match="non-empty list"):
        CommandAction("retrain.sh")
    with pytest.raises(InvalidInput, match="NUL"):
        CommandAction([sys.executable, "a\x00b"])
    with pytest.raises(InvalidInput, match="not an executable file or on PATH"):
        CommandAction(["modelyard-no-such-command-xyz"])
    with pytest.raises(InvalidInput, match="timeout"):
        CommandAction([sys.executable], timeout_s=-1)
    missing = CommandAction(["modelyard-no-such-command-xyz"], check_exists=False)
    result = missing.deliver(make_notification())
    assert not result.ok
    assert result.code is None
    assert result.error is not None
    assert "cannot run 'modelyard-no-such-command-xyz'" in result.error


def test_dispatcher_runs_a_command_action(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    results = Results()
    env_script = "import os, sys; open(sys.argv[1], 'w').write(os.environ['EXTRA'])"
    action = CommandAction([sys.executable, "-c", env_script, str(out)], env={"EXTRA": "yes"})
    with Dispatcher(results) as d:
        d.submit(action, make_notification())
        assert d.wait_idle(60)
    assert [(c[2], c[3].ok, c[4]) for c in results.calls] == [(1, True, True)]
    assert out.read_text() == "yes"
    assert "EXTRA" not in os.environ
