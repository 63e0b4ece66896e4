"""The Ray Serve backend's load signal, without a cluster.

The ingress's counting (the ASGI router run in this process with fake revision handles
and a fake clock), its report as the backend parses it, and the pure sum over ingress
replicas that survives a replica's restart (Hypothesis invariants). The same path on a
real cluster is exercised in ``tests/e2e/test_ray_serve.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.deploy._ray_app import Ingress, Request, Response, Router
from modelyard.deploy._ray_backend import import_serve
from modelyard.deploy._ray_plan import (
    INGRESS,
    LoadBook,
    accumulate,
    ingress_actors,
    load_of,
    parse_report,
    routed_revisions,
)
from modelyard.deploy.signals import RevisionCounters, observation
from modelyard.gateway.stats import LATENCY_BUCKETS_S


class FakeTime:
    """Stands in for the ``time`` module of ``_ray_app``: a clock that moves when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class Revision:
    """A revision deployment's handle: answers once ``gate`` opens, or fails."""

    def __init__(self, gate: asyncio.Event, status: int = 200, error: Exception | None = None):
        self.gate = gate
        self.status = status
        self.error = error

    async def remote(self, request: Request) -> Response:
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.status, [(b"content-type", b"application/json")], b"{}"


class LocalIngress(Ingress):
    """The real ingress, its revision handles replaced by fakes."""

    def __init__(self, handles: dict[str, Revision]) -> None:
        super().__init__("default-churn")
        self.fakes = handles
        self.reconfigure({"routes": [[name, 100 // len(handles)] for name in handles]})

    def handle(self, name: str) -> Any:
        return self.fakes[name]


async def call(router: Router, path: str, body: bytes = b"{}") -> int:
    """One request through the ingress's ASGI app; its status."""
    scope: MutableMapping[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": f"/churn{path}",
        "root_path": "/churn",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await router(scope, receive, send)
    return int(sent[0]["status"])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    import_serve()  # first, so Ray Serve's import warnings are not errors in the router
    fake = FakeTime()
    monkeypatch.setattr("modelyard.deploy._ray_app.time", fake)
    return fake


def test_the_ingress_counts_each_revisions_requests_like_the_gateway(clock: FakeTime) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[int]]:
        gate = asyncio.Event()
        ingress = LocalIngress({"rev-1": Revision(gate)})
        router = ingress.__serve_build_asgi_app__()
        calls = [asyncio.create_task(call(router, "/invocations")) for _ in range(3)]
        while ingress.stats_for("rev-1").in_flight < 3:  # all three wait on the revision
            await asyncio.sleep(0)
        during = await ingress.record_routing_stats()
        clock.now += 2.0
        gate.set()
        statuses = list(await asyncio.gather(*calls))
        clock.now += 1.0
        assert await call(router, "/v2/health/live") == 200  # the ingress's own: not counted
        return during, await ingress.record_routing_stats(), statuses

    during, after, statuses = asyncio.run(scenario())
    assert statuses == [200, 200, 200]
    now = parse_report(during)[1]
    assert (now.in_flight, now.arrivals, now.completions) == (3, 3, 0)
    done = parse_report(after)
    assert set(done) == {1}
    c = done[1]
    assert (c.now_s, c.in_flight, c.arrivals, c.completions, c.errors) == (103.0, 0, 3, 3, 0)
    assert c.load_area == 6.0  # 3 requests in flight for 2 s
    assert (c.service_count, c.service_s_sum, c.service_sq_s2_sum) == (3, 6.0, 12.0)
    assert len(c.latency_buckets) == len(LATENCY_BUCKETS_S) + 1
    assert sum(c.latency_buckets) == 3
    # What an autoscaling policy sees between the two reports (3 s apart).
    obs = observation(parse_report(during)[1], c, replicas=1, ready_replicas=1)
    assert obs.mean_concurrency == 2.0  # 6 request-seconds over the 3 s between reads
    assert (obs.arrivals, obs.completions, obs.completed_service_s) == (0, 3, 6.0)


def test_an_answer_the_ingress_makes_itself_is_an_error_without_a_service_time(
    clock: FakeTime,
) -> None:
    async def scenario() -> dict[str, Any]:
        gate = asyncio.Event()
        gate.set()
        ingress = LocalIngress({"rev-2": Revision(gate, error=RuntimeError("back-pressure"))})
        router = ingress.__serve_build_asgi_app__()
        assert await call(router, "/invocations") == 503
        ingress.fakes["rev-2"] = Revision(gate, status=400)  # the runtime's own 400
        assert await call(router, "/invocations") == 400
        return await ingress.record_routing_stats()

    c = parse_report(asyncio.run(scenario()))[2]
    assert (c.arrivals, c.completions, c.errors, c.service_count) == (2, 2, 1, 1)


def test_no_route_is_a_503_counted_nowhere(clock: FakeTime) -> None:
    async def scenario() -> tuple[int, dict[str, Any]]:
        ingress = Ingress("default-churn")
        status = await call(ingress.__serve_build_asgi_app__(), "/invocations")
        return status, await ingress.record_routing_stats()

    status, report = asyncio.run(scenario())
    assert status == 503
    assert parse_report(report) == {}


# --- reading the ingress replicas out of Serve's details --------------------------------


def test_running_ingress_replicas_and_routed_revisions_come_from_serves_details() -> None:
    details = {
        "applications": {
            "default-churn": {
                "deployments": {
                    INGRESS: {
                        "replicas": [
                            {"replica_id": "a", "state": "RUNNING", "actor_name": "SERVE_A"},
                            {"replica_id": "b", "state": "STARTING", "actor_name": "SERVE_B"},
                            {"replica_id": "c", "state": "RUNNING"},
                        ],
                        "deployment_config": {
                            "user_config": {"routes": [["rev-3", 10], ["rev-1", 90]]}
                        },
                    }
                }
            }
        }
    }
    assert ingress_actors(details, "default-churn") == [("a", "SERVE_A")]
    assert routed_revisions(details, "default-churn") == [1, 3]
    assert ingress_actors(details, "default-other") == []
    assert routed_revisions({}, "default-churn") == []


# --- the sum over ingress replicas (pure) -------------------------------------------------


def counters(
    arrivals: int, area: float, in_flight: int = 0, now_s: float = 0.0
) -> RevisionCounters:
    return RevisionCounters(
        now_s=now_s,
        in_flight=in_flight,
        arrivals=arrivals,
        completions=arrivals,
        service_count=arrivals,
        service_s_sum=0.5 * arrivals,
        load_area=area,
        latency_buckets=tuple([arrivals] + [0] * len(LATENCY_BUCKETS_S)),
    )


def test_a_restarted_ingress_replica_does_not_make_the_sum_go_down() -> None:
    book = accumulate(
        LoadBook(), {"a": {1: counters(100, 50.0)}, "b": {1: counters(80, 40.0)}}, 1.0, {"a", "b"}
    )
    assert (book.totals[1].arrivals, book.totals[1].load_area) == (180, 90.0)
    # b restarted (its counters start again from zero) while a went on.
    book = accumulate(
        book, {"a": {1: counters(130, 60.0, 2)}, "b": {1: counters(5, 1.0, 1)}}, 2.0, {"a", "b"}
    )
    total = book.totals[1]
    assert (total.arrivals, total.load_area, total.in_flight, total.now_s) == (215, 101.0, 3, 2.0)
    assert total.latency_buckets[0] == 215
    # a does not answer this time: nothing of it is lost when it does again.
    book = accumulate(book, {"b": {1: counters(9, 2.0)}}, 3.0, {"a", "b"})
    assert book.totals[1].arrivals == 219
    book = accumulate(book, {"a": {1: counters(140, 61.0)}}, 4.0, {"a", "b"})
    assert book.totals[1].arrivals == 229
    assert load_of(book, [1, 2], 4.0) == {1: book.totals[1], 2: RevisionCounters(now_s=4.0)}


@st.composite
def reads(draw: st.DrawFn) -> list[dict[str, tuple[int, float, int, bool]]]:
    """Reads of up to three ingress replicas: per read and replica that answers, growth
    of its arrivals and load area, requests in flight now, and whether it restarted."""
    out = []
    for _ in range(draw(st.integers(1, 12))):
        read = {}
        for replica in ("a", "b", "c"):
            if draw(st.booleans()):
                read[replica] = (
                    draw(st.integers(0, 50)),
                    draw(st.floats(0, 20, allow_nan=False)),
                    draw(st.integers(0, 8)),
                    draw(st.integers(0, 5)) == 0,
                )
        out.append(read)
    return out


@settings(max_examples=200, deadline=None)
@given(reads())
def test_the_summed_counters_only_grow_and_count_every_reported_request(
    sequence: list[dict[str, tuple[int, float, int, bool]]],
) -> None:
    book = LoadBook()
    state: dict[str, tuple[int, float]] = {}  # each replica's own cumulative counters
    expected = 0  # every request any report showed, counted once
    previous: RevisionCounters | None = None
    for t, read in enumerate(sequence):
        reports = {}
        for replica, (grow, area, in_flight, restarted) in read.items():
            arrivals, load = state.get(replica, (0, 0.0))
            if restarted and arrivals > 0:  # it starts again from zero and counts less
                grow = min(grow, arrivals - 1)
                arrivals, load = 0, 0.0
            state[replica] = (arrivals + grow, load + area)
            expected += grow
            reports[replica] = {7: counters(*state[replica], in_flight=in_flight)}
        book = accumulate(book, reports, float(t), {"a", "b", "c"})
        total = book.totals.get(7)
        if total is None:
            assert not reports
            continue
        assert total.now_s == float(t)
        assert total.in_flight == sum(read[r][2] for r in reports)
        if previous is not None:
            for name in ("arrivals", "completions", "service_count", "load_area"):
                assert getattr(total, name) >= getattr(previous, name)
            assert observation(previous, total, replicas=1, ready_replicas=1).arrivals >= 0
        assert total.arrivals == expected
        previous = total
