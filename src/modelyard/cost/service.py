"""Cost operations as the API, SDK and CLI see them (permission-checked), and the
project spend the budget loop reads (not checked: internal).

Reports are recomputed from the store's facts on every call (:func:`._ledger.build_ledger`)
with the price catalog loaded once at server start; "now" comes from the injected clock.

Applying a right-sizing hint (:meth:`CostService.apply_rightsize`) decides here and
changes desired state through the deployment service's own update path, handed in as a
:class:`SettingsRollout` by the caller (``cost`` sits below ``deploy`` in the package
map, so it cannot import it): the same permission checks, quota checks and events apply
as for ``deploy update --cpu … --memory-mb …``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from modelyard.auth import Principal
from modelyard.core.clock import Clock
from modelyard.core.deployments import Deployment, RuntimeSettings
from modelyard.core.entities import Role
from modelyard.core.errors import Conflict, InvalidInput, NotFound
from modelyard.cost._daily import bucket_days, spend_over_time
from modelyard.cost._ledger import (
    ROLLUPS,
    Ledger,
    build_ledger,
    is_reserved_tag,
    ledger_json,
)
from modelyard.cost._rightsize import SizeHint, plan_resize, rightsize
from modelyard.cost.prices import PriceCatalog
from modelyard.store import MetadataStore

DAY_MS = 86_400_000
#: The longest period a report covers (ten years): longer is surely a typo.
MAX_PERIOD_MS = 3660 * DAY_MS
TAG_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,127}$")
MAX_TAG_VALUE = 256
MAX_TAGS = 50
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}


def parse_instant(field: str, text: str, now_ms: int) -> int:
    """``now``, a duration back from now (``7d``, ``12h``, ``30m``, ``2w``), a UTC date
    (``2026-11-01``) or an ISO 8601 time (``2026-11-01T12:00:00Z``; no zone: UTC), in
    epoch ms.

    Raises:
        InvalidInput: anything else; the message names ``field``.
    """
    value = text.strip()
    if value.lower() == "now":
        return now_ms
    duration = duration_ms(value)
    if duration is not None:
        return now_ms - duration
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or not value[:4].isdigit():
        raise InvalidInput(
            f"{field}: {text!r} is not a duration like 7d, 12h, 30m, a date like "
            "2026-11-01 or a time like 2026-11-01T12:00:00Z"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def duration_ms(text: str) -> int | None:
    """``7d`` → ms; None when ``text`` is not a positive duration."""
    match = _DURATION.match(text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        return None
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)])


def resolve_period(since: str, until: str | None, now_ms: int) -> tuple[int, int]:
    """``[start_ms, end_ms)`` of a report. ``until`` defaults to now; a duration in
    ``since`` counts back from ``until`` (``--since 7d --until 2026-11-01``: the week
    before that day).

    Raises:
        InvalidInput: an unreadable value, an empty or reversed period, one over ten
            years, or one before 1970; the message names the field.
    """
    end_ms = parse_instant("until", until, now_ms) if until else now_ms
    duration = duration_ms(since)
    start_ms = end_ms - duration if duration is not None else parse_instant("since", since, now_ms)
    if start_ms < 0:
        raise InvalidInput(f"since: {since!r} is before 1970")
    if end_ms <= start_ms:
        raise InvalidInput(f"since: {since!r} is not before until ({until or 'now'})")
    if end_ms - start_ms > MAX_PERIOD_MS:
        raise InvalidInput(f"since: a report covers at most {MAX_PERIOD_MS // DAY_MS} days")
    return start_ms, end_ms


def check_tags(values: Mapping[str, str], unset: Sequence[str]) -> None:
    """Refuse tags that cannot allocate cost.

    Raises:
        InvalidInput: nothing to do, a bad or reserved key, a too-long value, a key
            both set and unset.
    """
    if not values and not unset:
        raise InvalidInput("tags: give KEY=VALUE tags to set and/or keys to unset")
    for key in [*values, *unset]:
        if not TAG_KEY.fullmatch(key):
            raise InvalidInput(
                f"tags: key {key!r}: use 1-128 letters, digits and _ . : / @ + -, "
                "starting with a letter or digit"
            )
        if is_reserved_tag(key):
            raise InvalidInput(f"tags: key {key!r} is reserved (mlflow., modelyard., cost.)")
    for key, value in values.items():
        if len(value) > MAX_TAG_VALUE or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise InvalidInput(
                f"tags: value of {key!r}: at most {MAX_TAG_VALUE} printable characters"
            )
    both = sorted(set(values) & set(unset))
    if both:
        raise InvalidInput(f"tags: {both[0]!r} is both set and unset")


class SettingsRollout(Protocol):
    """Starts a ``rolling`` rollout of a new revision of the deployment's stable model
    version with ``settings``, as ``caller``, and returns the deployment after the change.

    The server passes ``DeploymentService.update``; it raises ``Conflict`` when a rollout
    is in progress and ``QuotaExceeded`` when the project cannot hold the new size.
    """

    def __call__(
        self, caller: Principal, project: str, name: str, settings: RuntimeSettings
    ) -> Deployment: ...


class CostService:
    """The ledger, its reports, right-sizing hints and cost-allocation tags.

    Args:
        store: The metadata store.
        catalog: The price catalog (loaded once at server start).
        clock: "Now" for open-ended facts and relative periods.
    """

    def __init__(self, store: MetadataStore, catalog: PriceCatalog, clock: Clock) -> None:
        self._store = store
        self._repo = store.cost
        self.catalog = catalog
        self._clock = clock

    @property
    def currency(self) -> str:
        """The catalog's currency (ISO 4217): every amount is in it."""
        return self.catalog.currency

    def now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    # ---- the ledger ---------------------------------------------------------------

    def ledger(
        self,
        start_ms: int,
        end_ms: int,
        *,
        projects: Sequence[str] | None = None,
        deployment_ids: Sequence[int] | None = None,
    ) -> Ledger:
        """The ledger of ``[start_ms, end_ms)`` (no permission check)."""
        facts = self._repo.facts(
            start_ms, end_ms, self.now_ms(), projects=projects, deployment_ids=deployment_ids
        )
        return build_ledger(facts, self.catalog, start_ms, end_ms)

    def project_spend(self, project: str, start_ms: int, end_ms: int) -> float:
        """The project's ledger total in :attr:`currency` over ``[start_ms, end_ms)``;
        what still runs counts up to now. No permission check (the budget loop's)."""
        if end_ms <= start_ms:
            return 0.0
        return self.ledger(start_ms, end_ms, projects=[project]).total.cost

    def report(
        self,
        caller: Principal,
        *,
        project: str | None,
        by: str = "deployment",
        since: str = "7d",
        until: str | None = None,
        tag_key: str | None = None,
    ) -> dict[str, object]:
        """Cost per group over a period: of one project (viewer there), or of every
        project the caller has a role in (``project`` None; all of them for a platform
        admin).

        Raises:
            InvalidInput: unknown ``by``, ``tag_key`` without ``by=tag``, a bad period.
            NotFound: no such project.
            PermissionDenied: no viewer role in ``project``.
        """
        if by not in ROLLUPS:
            raise InvalidInput(f"by: unknown roll-up {by!r} (use {', '.join(ROLLUPS)})")
        if tag_key is not None and by != "tag":
            raise InvalidInput("tag_key: only with by=tag")
        if tag_key is not None and not TAG_KEY.fullmatch(tag_key):
            raise InvalidInput(f"tag_key: {tag_key!r} is not a tag key")
        start_ms, end_ms = resolve_period(since, until, self.now_ms())
        if project is not None:
            caller.require(project, Role.VIEWER)
            self._store.auth.get_project(project)
            projects = [project]
        else:
            projects = [
                p.name
                for p in self._store.auth.list_projects()
                if caller.role_in(p.name) is not None
            ]
        # A platform admin's all-projects report also shows what no project owns.
        everything = project is None and caller.is_platform_admin
        ledger = self.ledger(start_ms, end_ms, projects=None if everything else projects)
        out = ledger_json(ledger, ledger.rollup(by, tag_key=tag_key))
        out.update(
            by=by,
            tag_key=tag_key,
            project=project,
            projects=projects,
            overlapping=by == "tag" and tag_key is None,
        )
        return out

    def deployment_report(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        since: str = "7d",
        until: str | None = None,
    ) -> dict[str, object]:
        """One deployment over a period (every deployment of that name in the project,
        deleted ones too): cost per day, per 1k requests, idle share, replica-hours,
        per-revision lines and the right-sizing hints of its serving revisions.

        Raises:
            NotFound: the project never had a deployment of that name.
        """
        caller.require(project, Role.VIEWER)
        start_ms, end_ms = resolve_period(since, until, self.now_ms())
        ids = self._repo.deployment_ids(project, name)
        if not ids:
            raise NotFound(f"no deployment named {name!r} in project {project!r}")
        ledger = self.ledger(start_ms, end_ms, deployment_ids=ids)
        total = ledger.total
        days = (end_ms - start_ms) / DAY_MS
        revisions = [g for g in ledger.rollup("revision") if g.key != "-"]
        live = self._live(project, name)
        hints = self._hints(live, ledger, start_ms, end_ms) if live is not None else []
        summary = total.to_json()
        summary.pop("key")
        return {
            **summary,
            "deployment": name,
            "project": project,
            "live": live is not None,
            "currency": ledger.currency,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "days": days,
            "cost_per_day": total.cost / days,
            "revisions": [
                {**g.to_json(), "revision": int(g.key)}
                for g in sorted(revisions, key=lambda g: int(g.key))
            ],
            "rightsize": [h.to_json() for h in hints],
            "warnings": list(ledger.warnings),
        }

    def over_time(
        self, caller: Principal, project: str, *, since: str, until: str | None, name: str = ""
    ) -> dict[str, object]:
        """Cost per UTC day (per several days over a long period) of the project, or of
        its deployment ``name`` (as :meth:`deployment_report`: deleted ones too)."""
        caller.require(project, Role.VIEWER)
        start_ms, end_ms = resolve_period(since, until, self.now_ms())
        self._store.auth.get_project(project)
        ids = self._repo.deployment_ids(project, name) if name else None
        if ids is not None and not ids:
            raise NotFound(f"no deployment named {name!r} in project {project!r}")
        scope = None if ids else [project]
        now_ms = self.now_ms()
        facts = self._repo.facts(start_ms, end_ms, now_ms, projects=scope, deployment_ids=ids)
        days = bucket_days(start_ms, end_ms)
        buckets = spend_over_time(facts, self.catalog, start_ms, end_ms, days)
        return {
            "currency": self.currency,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "days_per_bucket": days,
            "buckets": [b.to_json() for b in buckets],
        }

    # ---- right-sizing -------------------------------------------------------------

    def rightsize(
        self, caller: Principal, project: str, name: str, *, window: str = "7d"
    ) -> dict[str, object]:
        """Right-sizing hints of a live deployment's serving revisions over ``window``.

        Raises:
            InvalidInput: ``window`` is not a duration.
            NotFound: no live deployment of that name.
        """
        caller.require(project, Role.VIEWER)
        window_ms = _window_ms(window)
        dep = self._store.deployments.get(name, project)
        end_ms = self.now_ms()
        start_ms = end_ms - window_ms
        ledger = self.ledger(start_ms, end_ms, deployment_ids=[dep.id])
        return {
            "deployment": name,
            "project": project,
            "currency": self.currency,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "hints": [h.to_json() for h in self._hints(dep, ledger, start_ms, end_ms)],
        }

    def apply_rightsize(
        self,
        caller: Principal,
        project: str,
        name: str,
        roll_out: SettingsRollout,
        *,
        window: str = "7d",
        revision: int | None = None,
    ) -> dict[str, object]:
        """Apply the stable revision's right-sizing hint as a new revision (vertical
        scaling): same model version, ``cpu`` / ``memory_mb`` set to the suggestion, GPU
        and every other runtime setting kept, rolled out ``rolling`` by ``roll_out``.

        Args:
            caller: needs the editor role in ``project`` (checked here and again by
                ``roll_out``).
            roll_out: the deployment service's update path (see :class:`SettingsRollout`).
            window: how far back the hint looks at usage (``7d``).
            revision: the revision whose hint the caller read; it must be the stable one
                (a guard against applying a hint to a revision that changed since).

        Raises:
            InvalidInput: ``window`` is not a duration, ``revision`` < 1.
            NotFound: no live deployment of that name, or no such revision.
            Conflict: a rollout is in progress; no stable revision; ``revision`` is not
                the stable one; the verdict is "no data" or "right-sized". Nothing is
                changed.
            QuotaExceeded: the project's quota cannot hold a replica of the new size.
        """
        caller.require(project, Role.EDITOR)
        window_ms = _window_ms(window)
        if revision is not None and revision < 1:
            raise InvalidInput(f"revision must be >= 1, got {revision}")
        dep = self._store.deployments.get(name, project)
        if dep.rollout is not None and dep.rollout.active:
            raise Conflict(
                f"deployment {name!r} is rolling out revision {dep.rollout.target}; wait for "
                "it (or roll back) before applying a right-sizing hint"
            )
        stable = dep.revision(dep.stable_revision or 0)
        if stable is None:
            raise Conflict(f"deployment {name!r} has no stable revision to resize")
        if revision is not None and revision != stable.number:
            if dep.revision(revision) is None:
                raise NotFound(f"deployment {name!r} has no revision {revision}")
            raise Conflict(
                f"revision {revision} of {name!r} is not its stable revision "
                f"({stable.number}); only the stable revision's hint is applied"
            )
        end_ms = self.now_ms()
        start_ms = end_ms - window_ms
        ledger = self.ledger(start_ms, end_ms, deployment_ids=[dep.id])
        hint = next(
            h for h in self._hints(dep, ledger, start_ms, end_ms) if h.revision == stable.number
        )
        plan = plan_resize(hint, deployment=name)
        settings = replace(stable.settings, cpu=plan.cpu_after, memory_mb=plan.memory_mb_after)
        after = roll_out(caller, project, name, settings)
        if after.rollout is not None and after.rollout.stable == stable.number:
            new_revision = after.rollout.target
        else:  # a roll-out path that promotes at once: the newest revision
            new_revision = max(r.number for r in after.revisions)
        return {
            "deployment": name,
            "project": project,
            "new_revision": new_revision,
            "strategy": after.rollout.strategy if after.rollout is not None else "rolling",
            **plan.to_json(),
            "reason": hint.reason,
            "saving_per_month": hint.saving_per_month,
            "replicas_avg": hint.replicas_avg,
            "currency": self.currency,
            "start_ms": start_ms,
            "end_ms": end_ms,
        }

    def _live(self, project: str, name: str) -> Deployment | None:
        try:
            return self._store.deployments.get(name, project)
        except NotFound:
            return None

    def _hints(self, dep: Deployment, ledger: Ledger, start_ms: int, end_ms: int) -> list[SizeHint]:
        """A hint per serving revision (traffic, stable, or replicas in the window)."""
        samples = self._repo.usage([dep.id], start_ms, end_ms)
        span_ms = max(1, min(end_ms, self.now_ms()) - start_ms)
        replica_ms: dict[int, int] = {}
        for item in ledger.items:  # this deployment's, not a deleted namesake's
            if item.deployment_id == dep.id and item.revision is not None:
                replica_ms[item.revision] = replica_ms.get(item.revision, 0) + item.replica_ms
        hints = []
        for rev in dep.revisions:
            serving = rev.weight > 0 or rev.number == dep.stable_revision
            if not serving and rev.number not in replica_ms:
                continue
            hints.append(
                rightsize(
                    rev.number,
                    samples,
                    requested_cpu=rev.settings.cpu,
                    requested_memory_mb=rev.settings.memory_mb,
                    requested_gpu=rev.settings.gpu,
                    replicas_avg=replica_ms.get(rev.number, 0) / span_ms,
                    catalog=self.catalog,
                )
            )
        return hints

    # ---- tags ---------------------------------------------------------------------

    def tags(self, caller: Principal, project: str) -> dict[str, object]:
        """The project's tags and its live deployments' tags."""
        caller.require(project, Role.VIEWER)
        self._store.auth.get_project(project)
        deployments = self._store.deployments.list_all(project)
        by_id = self._repo.deployment_tags(d.id for d in deployments)
        return {
            "project": project,
            "tags": self._repo.project_tags([project]).get(project, {}),
            "deployments": {d.name: by_id.get(d.id, {}) for d in deployments},
        }

    def set_project_tags(
        self, caller: Principal, project: str, values: Mapping[str, str], unset: Sequence[str]
    ) -> dict[str, str]:
        """Set/unset a project's tags (project admins: they allocate all its cost)."""
        caller.require(project, Role.ADMIN)
        check_tags(values, unset)
        current = self._repo.project_tags([project]).get(project, {})
        _check_count(current, values, unset, f"project {project!r}")
        return self._repo.set_project_tags(project, values, unset)

    def set_deployment_tags(
        self,
        caller: Principal,
        project: str,
        name: str,
        values: Mapping[str, str],
        unset: Sequence[str],
    ) -> dict[str, str]:
        """Set/unset a live deployment's tags (editors of its project)."""
        caller.require(project, Role.EDITOR)
        check_tags(values, unset)
        dep = self._store.deployments.get(name, project)
        current = self._repo.deployment_tags([dep.id]).get(dep.id, {})
        _check_count(current, values, unset, f"deployment {name!r}")
        return self._repo.set_deployment_tags(dep.id, values, unset)


def _window_ms(window: str) -> int:
    window_ms = duration_ms(window)
    if window_ms is None or window_ms > MAX_PERIOD_MS:
        raise InvalidInput(f"window: {window!r} is not a duration like 7d, 24h or 30m")
    return window_ms


def _check_count(
    current: Mapping[str, str], values: Mapping[str, str], unset: Sequence[str], what: str
) -> None:
    after = (set(current) | set(values)) - set(unset)
    if len(after) > MAX_TAGS:
        raise InvalidInput(f"tags: {what} may have at most {MAX_TAGS} tags ({len(after)} given)")


__all__ = [
    "CostService",
    "SettingsRollout",
    "check_tags",
    "duration_ms",
    "parse_instant",
    "resolve_period",
]
