"""What an orchestrator reports → replica records and revision failures (pure).

:func:`replica_changes` decides which records of a deployment to add and update so they
match the replicas an :class:`~modelyard.deploy._backend.OrchestratorBackend` observed;
:func:`failed_revisions` and :func:`canary_failure` say when a new revision failed. The
orchestrated controller (:mod:`modelyard.deploy._orchestrated`) writes what they decide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field, replace
from typing import Any

from modelyard.core.deployments import (
    ACTIVE_REPLICA_STATES,
    Deployment,
    EventDraft,
    Replica,
    Rollout,
)
from modelyard.deploy._backend import Observed, ObservedReplica

# The replica record's ``mode`` (at most 8 characters in the store) per backend kind;
# the pid of such a record is 0: there is no process on this machine to signal.
RECORD_MODES = {"kubernetes": "k8s", "ray": "ray"}
# Replica ids are at most 32 characters in the store; longer orchestrator names are cut.
RECORD_ID_MAX = 32
_DIGEST_CHARS = 12
# Most distinct failure reasons a failed revision's error names.
MAX_REASONS = 3


def record_id(orchestrator_id: str) -> str:
    """The replica record's id for an orchestrator's replica: its own name when that
    fits the store's 32 characters, else its start and a digest of the whole name."""
    if 0 < len(orchestrator_id) <= RECORD_ID_MAX:
        return orchestrator_id
    digest = hashlib.sha256(orchestrator_id.encode()).hexdigest()[:_DIGEST_CHARS]
    head = orchestrator_id[: RECORD_ID_MAX - _DIGEST_CHARS - 1]
    return f"{head}-{digest}" if head else f"o-{digest}"


@dataclass(frozen=True)
class ReplicaChanges:
    """What :func:`replica_changes` decided.

    Attributes:
        added: records to create.
        updated: ``(record id, column values)`` to set on existing records.
        events: ``replica`` events, one per transition worth telling.
        live: the deployment's active replicas after the changes (what revision
            states are judged on).
        ended: record ids that ended now (stopped or failed).
        reopened: ended record ids the orchestrator reports running again.
    """

    added: tuple[Replica, ...] = ()
    updated: tuple[tuple[str, dict[str, Any]], ...] = ()
    events: tuple[EventDraft, ...] = ()
    live: tuple[Replica, ...] = ()
    ended: frozenset[str] = frozenset()
    reopened: frozenset[str] = frozenset()


@dataclass
class _Changes:
    added: list[Replica] = field(default_factory=list)
    updated: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[EventDraft] = field(default_factory=list)
    live: list[Replica] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)
    reopened: set[str] = field(default_factory=set)

    def frozen(self) -> ReplicaChanges:
        return ReplicaChanges(
            tuple(self.added),
            tuple(self.updated),
            tuple(self.events),
            tuple(self.live),
            frozenset(self.ended),
            frozenset(self.reopened),
        )


def replica_changes(
    dep: Deployment,
    active: Sequence[Replica],
    ended: Set[str],
    observed: Observed,
    now_ms: int,
) -> ReplicaChanges:
    """The record changes that make ``dep``'s replica records match ``observed``.

    Args:
        dep: the deployment (its backend kind names the record mode; its revisions'
            settings give a new record's cpu, memory and gpu for the cost ledger).
        active: its replica records now starting, ready or draining.
        ended: ids of its records that already ended (stopped or failed).
        observed: what the orchestrator reports.
        now_ms: the time to stamp.

    A replica seen for the first time gets a record (pid 0, port 0); a known one takes
    the reported state; an ended one reported running again is reopened; an active
    record the orchestrator no longer reports has stopped.
    """
    kind = dep.backend.kind
    out = _Changes()
    by_id = {r.id: r for r in active}
    seen: set[str] = set()
    for o in observed.replicas:
        rid = record_id(o.id)
        if rid in seen:
            continue
        seen.add(rid)
        record = by_id.get(rid)
        if record is not None:
            _follow(record, o, now_ms, kind, out)
        elif rid in ended:
            if o.state in ACTIVE_REPLICA_STATES:
                _reopen(dep, rid, o, now_ms, out)
        else:
            _add(dep, rid, o, now_ms, out)
    for r in active:
        if r.id not in seen:
            reason = f"no longer reported by {kind}"
            values = {"state": "stopped", "stopped_at_ms": now_ms, "exit_reason": reason}
            out.updated.append((r.id, values))
            out.ended.add(r.id)
            out.events.append(_event(f"replica {r.id} stopped: {reason}", r.revision, r.id))
    return out.frozen()


def _event(message: str, revision: int, rid: str, o: ObservedReplica | None = None) -> EventDraft:
    data: dict[str, Any] = {"replica": rid}
    if o is not None:
        data.update({"orchestrator_id": o.id, "node": o.node, "state": o.state})
        if o.reason:
            data["reason"] = o.reason
    return EventDraft("replica", message, revision, data)


def _on(o: ObservedReplica) -> str:
    return f" on {o.node}" if o.node else ""


def _follow(r: Replica, o: ObservedReplica, now_ms: int, kind: str, out: _Changes) -> None:
    """A known active record takes the state the orchestrator reports."""
    if o.state == r.state:
        out.live.append(r)
        return
    values: dict[str, Any] = {"state": o.state}
    if o.state in ACTIVE_REPLICA_STATES:
        if o.state == "ready" and r.ready_at_ms is None:
            values["ready_at_ms"] = o.ready_at_ms if o.ready_at_ms is not None else now_ms
        out.live.append(replace(r, **values))
        if o.state == "ready":
            out.events.append(_event(f"replica {r.id} ready{_on(o)}", r.revision, r.id, o))
        elif o.reason:
            message = f"replica {r.id} {o.state}: {o.reason}"
            out.events.append(_event(message, r.revision, r.id, o))
    else:
        values["stopped_at_ms"] = now_ms
        values["exit_reason"] = o.reason or f"{o.state} on {kind}"
        out.ended.add(r.id)
        why = f": {o.reason}" if o.reason else ""
        out.events.append(_event(f"replica {r.id} {o.state}{why}", r.revision, r.id, o))
    out.updated.append((r.id, values))


def _reopen(dep: Deployment, rid: str, o: ObservedReplica, now_ms: int, out: _Changes) -> None:
    """An ended record whose replica runs again (a pod out of CrashLoopBackOff)."""
    record = _record(dep, rid, o, now_ms)
    values: dict[str, Any] = {"state": o.state, "stopped_at_ms": None, "exit_reason": ""}
    if o.state == "ready":
        values["ready_at_ms"] = record.ready_at_ms
        out.events.append(_event(f"replica {rid} ready again{_on(o)}", o.revision, rid, o))
    out.updated.append((rid, values))
    out.reopened.add(rid)
    out.live.append(record)


def _add(dep: Deployment, rid: str, o: ObservedReplica, now_ms: int, out: _Changes) -> None:
    """A replica seen for the first time gets a record."""
    record = _record(dep, rid, o, now_ms)
    out.added.append(record)
    if record.active:
        out.live.append(record)
    else:
        out.ended.add(rid)
    why = f": {o.reason}" if o.reason else ""
    out.events.append(_event(f"replica {rid} {o.state}{_on(o)}{why}", o.revision, rid, o))


def _record(dep: Deployment, rid: str, o: ObservedReplica, now_ms: int) -> Replica:
    rev = dep.revision(o.revision)
    settings = rev.settings if rev is not None else None
    ended = o.state not in ACTIVE_REPLICA_STATES
    ready_at = o.ready_at_ms
    if ready_at is None and o.state == "ready":
        ready_at = now_ms
    return Replica(
        id=rid,
        deployment_id=dep.id,
        revision=o.revision,
        pid=0,
        port=0,
        state=o.state,
        mode=RECORD_MODES.get(dep.backend.kind, dep.backend.kind[:8]),
        standby=False,
        cpu=settings.cpu if settings is not None else 0.0,
        memory_mb=settings.memory_mb if settings is not None else 0,
        started_at_ms=o.started_at_ms if o.started_at_ms is not None else now_ms,
        ready_at_ms=ready_at,
        stopped_at_ms=now_ms if ended else None,
        exit_reason=(o.reason or f"{o.state} on {dep.backend.kind}") if ended else "",
        gpu=settings.gpu if settings is not None else 0.0,
    )


# --- revision and canary failures -------------------------------------------------------


def failed_revisions(dep: Deployment, replicas: Iterable[ObservedReplica]) -> dict[int, str]:
    """Pending revisions that failed: every replica the orchestrator reports for one has
    failed, each with a reason (the reasons, up to :data:`MAX_REASONS`, are its error)."""
    by_revision: dict[int, list[ObservedReplica]] = {}
    for o in replicas:
        by_revision.setdefault(o.revision, []).append(o)
    failed: dict[int, str] = {}
    for rev in dep.revisions:
        mine = by_revision.get(rev.number, [])
        if rev.state != "pending" or not mine:
            continue
        if all(o.state == "failed" and o.reason for o in mine):
            failed[rev.number] = "; ".join(sorted({o.reason for o in mine})[:MAX_REASONS])
    return failed


def canary_failure(rollout: Rollout, replicas: Iterable[ObservedReplica]) -> str | None:
    """Why the rollout's target is unhealthy (one of its replicas failed), or None."""
    for o in replicas:
        if o.revision == rollout.target and o.state == "failed":
            return (
                f"replica {o.id} of revision {rollout.target} failed: "
                f"{o.reason or 'no reason given'}"
            )
    return None
