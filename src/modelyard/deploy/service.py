"""Deployment operations as the API, SDK and CLI see them: validate, then change desired state.

Nothing here starts a process: every call writes desired state (with the events that
explain it) in one transaction, and the controller inside ``modelyard server``
reconciles replicas towards it. Invalid input is refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from modelyard.auth import Principal
from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import (
    Deployment,
    DeploymentEvent,
    EventDraft,
    Replica,
    RevisionDraft,
    Rollout,
    RolloutPhase,
    RuntimeSettings,
    ScalingConfig,
    Strategy,
    validate_deployment_name,
)
from modelyard.core.entities import Role
from modelyard.core.errors import Conflict, InvalidInput, QuotaExceeded
from modelyard.core.lineage import Edge, EdgeType, NodeKey, NodeKind
from modelyard.core.models import ModelVersion
from modelyard.cost.quota import ReplicaSize, check_deployment, quota_of, usage_of
from modelyard.deploy._policy import deployment_policy
from modelyard.registry.cache import parse_models_uri
from modelyard.registry.service import RegistryService
from modelyard.store import DeploymentChange, MetadataStore


@dataclass(frozen=True)
class DeploymentView:
    """A deployment with its replicas and endpoint, as ``deploy show`` prints it."""

    deployment: Deployment
    replicas: tuple[Replica, ...]
    endpoint: str


@dataclass(frozen=True)
class RolloutRequest:
    """How ``deploy update --model`` moves traffic to the new revision."""

    strategy: Strategy = "rolling"
    steps: tuple[int, ...] = (10, 50, 100)
    step_interval_s: float = 60.0
    max_error_rate: float = 0.01
    max_p99_ratio: float = 1.5


class DeploymentService:
    """Validated changes to deployments' desired state.

    Args:
        store: the metadata store.
        registry: resolves ``models:/`` references (permission-checked).
        gateway_url: the gateway's base URL, for endpoints.
        max_total_replicas: the global cap; no deployment may ask for more.
    """

    def __init__(
        self,
        store: MetadataStore,
        registry: RegistryService,
        *,
        gateway_url: str,
        max_total_replicas: int,
    ) -> None:
        self._store = store
        self._repo = store.deployments
        self._registry = registry
        self._gateway_url = gateway_url.rstrip("/")
        self._max_total = max_total_replicas

    def endpoint(self, name: str) -> str:
        """The gateway URL of a local deployment."""
        return f"{self._gateway_url}/{name}/"

    def endpoint_for(self, dep: Deployment) -> str:
        """Where clients reach ``dep``: the gateway (local), the in-cluster Service URL
        (kubernetes), or empty on Ray (the Serve proxy's address is known only to the
        cluster; events name it once the application runs)."""
        if dep.backend.kind == "kubernetes":
            return f"http://{dep.name}.{dep.backend.namespace or 'default'}.svc.cluster.local/"
        if dep.backend.kind == "ray":
            return ""
        return self.endpoint(dep.name)

    # --- reads ----------------------------------------------------------------------

    def get(self, caller: Principal, project: str, name: str) -> DeploymentView:
        caller.require(project, Role.VIEWER)
        dep = self._repo.get(name, project)
        return DeploymentView(dep, tuple(self._repo.replicas(dep.id)), self.endpoint_for(dep))

    def list_all(self, caller: Principal, project: str) -> list[DeploymentView]:
        caller.require(project, Role.VIEWER)
        replicas: dict[int, list[Replica]] = {}
        for r in self._repo.replicas():
            replicas.setdefault(r.deployment_id, []).append(r)
        return [
            DeploymentView(d, tuple(replicas.get(d.id, ())), self.endpoint_for(d))
            for d in self._repo.list_all(project)
        ]

    def events(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        after_id: int = 0,
        limit: int = 1000,
        kind: str | None = None,
    ) -> list[DeploymentEvent]:
        caller.require(project, Role.VIEWER)
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit must be between 1 and 10000, got {limit}")
        dep = self._repo.get(name, project)
        return self._repo.events(dep.id, after_id=after_id, limit=limit, kind=kind)

    def recent_events(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        limit: int = 20,
        kind: str | None = None,
    ) -> list[DeploymentEvent]:
        """The newest ``limit`` events (of one ``kind`` if given), newest first."""
        caller.require(project, Role.VIEWER)
        if not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, got {limit}")
        dep = self._repo.get(name, project)
        return self._repo.events(dep.id, limit=limit, kind=kind, newest_first=True)

    def render(
        self, caller: Principal, project: str, name: str, overrides: BackendSpec
    ) -> dict[str, str]:
        """The manifests that run ``name`` on ``overrides.kind`` (file name -> YAML).

        Options left empty in ``overrides`` come from the deployment's own backend when
        it is of the same kind, then from the defaults (:meth:`BackendSpec.resolved`).

        Raises:
            InvalidInput: options that cannot render (HPA with min 0, a bad image, a name
                too long once suffixed).
        """
        caller.require(project, Role.VIEWER)
        dep = self._repo.get(name, project)
        from modelyard.deploy._orchestrated import revision_targets
        from modelyard.deploy.kubernetes_render import render_manifests, to_yaml_files

        own = (
            dep.backend if dep.backend.kind == overrides.kind else BackendSpec(kind=overrides.kind)
        )
        spec = BackendSpec(
            kind=overrides.kind,
            namespace=overrides.namespace or own.namespace,
            autoscaler=overrides.autoscaler or own.autoscaler,
            address=overrides.address or own.address,
            image=overrides.image or own.image,
        ).resolved(dep.config.min_replicas)
        return to_yaml_files(render_manifests(dep, revision_targets(dep, spec), spec))

    # --- writes ---------------------------------------------------------------------

    def create(
        self,
        caller: Principal,
        project: str,
        name: str,
        model: str,
        config: ScalingConfig,
        settings: RuntimeSettings | None = None,
        backend: BackendSpec | None = None,
    ) -> DeploymentView:
        """Deploy ``model`` (``models:/name@alias`` or ``models:/name/3``) as ``name``,
        on ``backend`` (local processes when None; defaults filled in by
        :meth:`BackendSpec.resolved`).

        Raises:
            InvalidInput: bad name, model URI or config; max above the global cap.
            NotFound: no such model version or alias.
            AlreadyExists: a deployment of that name exists.
            QuotaExceeded: the project's quota cannot hold its first replicas (at least
                one, to prove the model loads) or ever its ``max_replicas``.
        """
        caller.require(project, Role.EDITOR)
        validate_deployment_name(name)
        spec = (backend or BackendSpec()).resolved(config.min_replicas)
        self._check_config(config, spec)
        version = self._resolve(caller, project, model)
        settings = settings or RuntimeSettings()
        self._check_quota(project, name, config, settings, start=max(config.min_replicas, 1))
        draft = RevisionDraft(version.model, version.version, model, settings, weight=100)
        created = EventDraft(
            "deployment",
            f"created: {model} (version {version.version}) as revision 1"
            + ("" if spec.kind == "local" else f" on {spec.kind}"),
            1,
            {"config": config.to_json(), "backend": spec.to_json()},
        )
        dep = self._repo.create(project, name, config, draft, caller.user, [created], spec)
        self._link(project, name, version)
        return DeploymentView(dep, (), self.endpoint_for(dep))

    def update(
        self,
        caller: Principal,
        project: str,
        name: str,
        *,
        model: str | None = None,
        rollout: RolloutRequest | None = None,
        scaling: Mapping[str, Any] | None = None,
        settings: RuntimeSettings | None = None,
    ) -> DeploymentView:
        """Roll out a new model version and/or change scaling settings.

        Raises:
            Conflict: a rollout is in progress.
            InvalidInput: nothing to change, or an invalid setting.
            QuotaExceeded: the project's quota cannot hold the new minimum, the new
                revision's first replica, or ever the new ``max_replicas`` (a ``quota``
                event says so).
        """
        caller.require(project, Role.EDITOR)
        dep = self._repo.get(name, project)
        if model is None and not scaling and settings is None:
            raise InvalidInput("nothing to update: give --model and/or scaling settings")
        change = DeploymentChange(expect_generation=dep.generation)
        events: list[EventDraft] = []
        if scaling:
            config = dep.config.merged(dict(scaling))
            self._check_config(config, dep.backend)
            change.config = config
            given = {k: v for k, v in scaling.items() if v is not None}
            events.append(EventDraft("config", "scaling settings changed", None, given))
        version = None
        if model is not None or settings is not None:
            if dep.rollout is not None and dep.rollout.active:
                raise Conflict(
                    f"deployment {name!r} is rolling out revision {dep.rollout.target}; "
                    "wait for it or run `modelyard deploy rollback` first"
                )
            stable = dep.revision(dep.stable_revision or 0)
            if stable is None:
                raise Conflict(f"deployment {name!r} has no stable revision to update from")
            if model is not None:
                version = self._resolve(caller, project, model)
            else:
                version = self._registry.get_version(
                    caller, project, stable.model_name, stable.model_version
                )
            req = rollout or RolloutRequest()
            ref = model or stable.model_ref
            change.new_revision = RevisionDraft(
                version.model, version.version, ref, settings or stable.settings
            )
            next_number = max(r.number for r in dep.revisions) + 1
            change.rollout = _rollout_of(req, target=next_number, stable=stable.number)
            started = (
                f"{req.strategy} rollout of {ref} (version {version.version}) "
                f"as revision {next_number} started"
            )
            data = {"strategy": req.strategy, "steps": list(req.steps)}
            events.append(EventDraft("rollout", started, next_number, data))
        change.events = events
        self._check_update_quota(dep, change)
        new, _ = self._repo.change(dep.id, change)
        if version is not None:
            self._link(project, name, version)
        return DeploymentView(new, tuple(self._repo.replicas(new.id)), self.endpoint_for(new))

    def set_traffic(
        self, caller: Principal, project: str, name: str, split: Mapping[int, int]
    ) -> DeploymentView:
        """Split traffic by model version (``{3: 90, 4: 10}``); a version without a
        revision gets one. Cancels a rollout in progress.

        Raises:
            InvalidInput: weights outside 0..100 or not summing to 100.
            NotFound: a model version does not exist.
        """
        caller.require(project, Role.EDITOR)
        dep = self._repo.get(name, project)
        _check_split(split)
        stable_model = (dep.revision(dep.stable_revision or 0) or dep.revisions[-1]).model_name
        for version in split:  # every version must exist before anything is written
            self._registry.get_version(caller, project, stable_model, version)
        weights: dict[int, int] = {}
        new_numbers: list[int] = []
        for version, pct in split.items():
            number = self._revision_for(caller, project, dep, stable_model, version, new_numbers)
            weights[number] = pct
            dep = self._repo.get(name, project)
        top = max(weights, key=lambda n: weights[n])
        summary = ", ".join(f"version {v} = {w}%" for v, w in split.items())
        data = {"weights": {str(n): w for n, w in weights.items()}}
        change = DeploymentChange(
            weights=weights,
            expect_generation=dep.generation,
            events=[EventDraft("traffic", f"traffic set: {summary}", None, data)],
        )
        if top != dep.stable_revision:
            change.stable_revision = top
            change.previous_stable = dep.stable_revision
        if dep.rollout is not None and dep.rollout.active:
            change.rollout = _ended(dep.rollout, "aborted")
        new, _ = self._repo.change(dep.id, change)
        return DeploymentView(new, tuple(self._repo.replicas(new.id)), self.endpoint_for(new))

    def set_shadow(
        self, caller: Principal, project: str, name: str, version: int, percent: float
    ) -> DeploymentView:
        """Mirror ``percent`` of requests to model ``version`` (0 stops mirroring).

        Raises:
            InvalidInput: percent outside 0..100, or the version already takes traffic.
        """
        caller.require(project, Role.EDITOR)
        if not 0 <= percent <= 100:
            raise InvalidInput(f"percent must be between 0 and 100, got {percent}")
        dep = self._repo.get(name, project)
        stable_model = (dep.revision(dep.stable_revision or 0) or dep.revisions[-1]).model_name
        number = self._revision_for(caller, project, dep, stable_model, version, [])
        dep = self._repo.get(name, project)
        if percent > 0 and dep.weights.get(number, 0) > 0:
            raise InvalidInput(f"version {version} takes live traffic; it cannot also be a shadow")
        shadows = {n: p for n, p in dep.shadows.items() if n != number}
        if percent > 0:
            shadows[number] = percent
        message = f"shadow: version {version} gets a copy of {percent:g}% of requests"
        change = DeploymentChange(
            shadows=shadows,
            expect_generation=dep.generation,
            events=[EventDraft("traffic", message, number)],
        )
        new, _ = self._repo.change(dep.id, change)
        return DeploymentView(new, tuple(self._repo.replicas(new.id)), self.endpoint_for(new))

    def rollback(self, caller: Principal, project: str, name: str) -> DeploymentView:
        """Back to the previous stable revision (or abort the rollout in progress).

        Raises:
            Conflict: there is nothing to roll back to.
        """
        caller.require(project, Role.EDITOR)
        dep = self._repo.get(name, project)
        ro = dep.rollout
        if ro is not None and ro.active:
            message = (
                f"rollback requested: revision {ro.target} stopped, revision {ro.stable} takes 100%"
            )
            change = DeploymentChange(
                weights={ro.stable: 100},
                rollout=_ended(ro, "rolled_back"),
                events=[EventDraft("rollout", message, ro.target)],
            )
        else:
            previous = dep.previous_stable
            prev_rev = dep.revision(previous) if previous is not None else None
            if prev_rev is None or prev_rev.state == "failed":
                raise Conflict(f"deployment {name!r} has no previous stable revision")
            message = (
                f"rollback: revision {prev_rev.number} "
                f"(version {prev_rev.model_version}) takes 100%"
            )
            change = DeploymentChange(
                weights={prev_rev.number: 100},
                stable_revision=prev_rev.number,
                previous_stable=dep.stable_revision,
                events=[EventDraft("rollout", message, prev_rev.number)],
            )
        change.expect_generation = dep.generation
        new, _ = self._repo.change(dep.id, change)
        return DeploymentView(new, tuple(self._repo.replicas(new.id)), self.endpoint_for(new))

    def delete(self, caller: Principal, project: str, name: str) -> DeploymentView:
        """Stop routing and drain every replica; the record goes once they are gone."""
        caller.require(project, Role.EDITOR)
        dep = self._repo.get(name, project)
        if dep.status == "deleting":
            return DeploymentView(dep, tuple(self._repo.replicas(dep.id)), self.endpoint_for(dep))
        change = DeploymentChange(
            status="deleting", events=[EventDraft("deployment", "delete requested")]
        )
        if dep.rollout is not None and dep.rollout.active:
            change.rollout = _ended(dep.rollout, "aborted")
        new, _ = self._repo.change(dep.id, change)
        return DeploymentView(new, tuple(self._repo.replicas(new.id)), self.endpoint_for(new))

    # --- helpers --------------------------------------------------------------------

    def _check_config(self, config: ScalingConfig, backend: BackendSpec) -> None:
        deployment_policy(config)  # an unknown policy name is refused here, not in the loop
        # The machine's cap is on local processes; an orchestrator has its own limits. A
        # HorizontalPodAutoscaler cannot scale to zero (checked again on every change).
        backend.resolved(config.min_replicas)
        if backend.kind != "local":
            return
        if config.max_replicas > self._max_total:
            raise InvalidInput(
                f"max_replicas {config.max_replicas} exceeds the machine's limit "
                f"MODELYARD_MAX_REPLICAS={self._max_total}"
            )
        if config.min_replicas > self._max_total:
            raise InvalidInput(
                f"min_replicas {config.min_replicas} exceeds MODELYARD_MAX_REPLICAS="
                f"{self._max_total}"
            )

    def _check_quota(
        self,
        project: str,
        name: str,
        config: ScalingConfig,
        settings: RuntimeSettings,
        *,
        start: int,
        max_replicas: int | None = None,
        exclude: int | None = None,
    ) -> None:
        """Refuse what the project's quota cannot hold (see ``cost._quota``): ``start``
        replicas now, ``max_replicas`` (the config's by default; 0: not checked) ever."""
        record = self._store.budgets.quota(project)
        if record is None:
            return
        others = usage_of(self._store.budgets.usage(project, exclude_deployment=exclude))
        highest = config.max_replicas if max_replicas is None else max_replicas
        check_deployment(
            quota_of(record),
            others,
            ReplicaSize.of(settings),
            project=project,
            deployment=name,
            max_replicas=highest,
            start_replicas=start,
        )

    def _check_update_quota(self, dep: Deployment, change: DeploymentChange) -> None:
        """What an update asks for beyond what the deployment has: a higher minimum
        (beside the project's other replicas), a higher maximum (within the whole
        quota), a new revision's first replica (beside all of them). A lowered quota
        therefore blocks no update that asks for nothing more. A refusal is recorded as
        a ``quota`` event."""
        stable = dep.revision(dep.stable_revision or 0)
        old, config = dep.config, change.config or dep.config
        try:
            if change.config is not None:
                settings = stable.settings if stable is not None else RuntimeSettings()
                higher = config.max_replicas if config.max_replicas > old.max_replicas else 0
                start = config.min_replicas if config.min_replicas > old.min_replicas else 0
                self._check_quota(
                    dep.project,
                    dep.name,
                    config,
                    settings,
                    max_replicas=higher,
                    start=start,
                    exclude=dep.id,
                )
            if change.new_revision is not None:
                new_settings = change.new_revision.settings
                self._check_quota(
                    dep.project, dep.name, config, new_settings, max_replicas=0, start=1
                )
        except QuotaExceeded as exc:
            self._repo.add_events(dep.id, [EventDraft("quota", f"update refused: {exc.message}")])
            raise

    def _resolve(self, caller: Principal, project: str, model: str) -> ModelVersion:
        name, ref = parse_models_uri(model)
        return self._registry.resolve(caller, project, name, ref)

    def _revision_for(
        self,
        caller: Principal,
        project: str,
        dep: Deployment,
        model_name: str,
        version: int,
        created: list[int],
    ) -> int:
        """The newest usable revision serving ``version``, created if there is none."""
        for rev in sorted(dep.revisions, key=lambda r: -r.number):
            if rev.model_version == version and rev.state != "failed":
                return rev.number
        mv = self._registry.get_version(caller, project, model_name, version)
        ref = f"models:/{model_name}/{version}"
        stable = dep.revision(dep.stable_revision or 0)
        settings = stable.settings if stable is not None else RuntimeSettings()
        change = DeploymentChange(
            new_revision=RevisionDraft(mv.model, mv.version, ref, settings),
            events=[EventDraft("revision", f"revision for {ref} added")],
        )
        _, number = self._repo.change(dep.id, change)
        assert number is not None
        created.append(number)
        self._link(project, dep.name, mv)
        return number

    def _link(self, project: str, name: str, version: ModelVersion) -> None:
        key = self._store.lineage.model_version_key(project, version.model, version.version)
        if key is not None:
            self._store.lineage.add_edge(
                Edge(key, NodeKey(NodeKind.DEPLOYMENT, f"{project}/{name}"), EdgeType.SERVES)
            )


def _check_split(split: Mapping[int, int]) -> None:
    if not split:
        raise InvalidInput("give at least one version=percent")
    for version, pct in split.items():
        if not 0 <= pct <= 100:
            raise InvalidInput(f"weight of version {version} must be 0..100, got {pct}")
    total = sum(split.values())
    if total != 100:
        raise InvalidInput(f"weights must sum to 100, got {total}")


def _rollout_of(req: RolloutRequest, *, target: int, stable: int) -> Rollout:
    """The rollout ``req`` asks for, from revision ``stable`` to ``target``."""
    return Rollout(
        strategy=req.strategy,
        target=target,
        stable=stable,
        steps=tuple(req.steps),
        step_interval_s=req.step_interval_s,
        max_error_rate=req.max_error_rate,
        max_p99_ratio=req.max_p99_ratio,
    )


def _ended(rollout: Rollout, phase: RolloutPhase) -> Rollout:
    return replace(rollout, phase=phase)
