"""Calling orchestrators: backend factories, retries with back-off, one event per error.

An orchestrator's client can fail in many ways (no cluster, no access, a refused
object, a missing library); the orchestrated controller must record why and try again
later without filling the event log. :func:`attempt` runs one call under those rules;
:func:`default_backend_factories` builds backends lazily so a server without the
``kubernetes`` or ``ray`` extra still starts.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from modelyard.core.backends import BackendSpec
from modelyard.core.deployments import EventDraft
from modelyard.core.errors import ModelyardError, Unavailable
from modelyard.deploy._backend import OrchestratorBackend
from modelyard.deploy._orchestrated_targets import retry_delay_s

logger = logging.getLogger("modelyard.deploy")

BackendFactory = Callable[[BackendSpec], OrchestratorBackend]
_T = TypeVar("_T")

# An error message kept in an event is cut here.
MAX_ERROR_CHARS = 500

# (module, class, the extra that installs its client library)
KUBERNETES_BACKEND = ("modelyard.deploy._kubernetes_backend", "KubernetesBackend", "kubernetes")
RAY_BACKEND = ("modelyard.deploy._ray_backend", "RayServeBackend", "ray")


def lazy_factory(module: str, name: str, extra: str, **options: object) -> BackendFactory:
    """A factory that imports ``module.name`` on first use and builds it with ``options``.

    The import is deferred so a server without the ``extra`` starts and serves local
    deployments; a deployment that needs the missing one gets an ``orchestrator`` event
    saying what to install, not a crash. The spec handed to the factory is that of the
    first deployment needing the backend; one backend serves every deployment of its
    kind and reads each one's spec from ``deployment.backend``.
    """

    def make(spec: BackendSpec) -> OrchestratorBackend:
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise Unavailable(
                f"the {spec.kind} backend is not available in this server ({exc}); "
                f"install modelyard[{extra}] where the server runs"
            ) from exc
        return cast(OrchestratorBackend, cls(**options))

    return make


def default_backend_factories(
    packages: object | None = None, *, server_url: str = ""
) -> dict[str, BackendFactory]:
    """The server's backends, each imported on first use: ``kubernetes`` →
    ``KubernetesBackend(server_url=...)`` (kubeconfig or the pod's service account), and
    with a package source (the local backend's ``ReplicaFactory``: one package cache)
    ``ray`` → ``RayServeBackend(packages)``. Without one, Ray deployments get an event
    that this server has no ray backend."""
    factories = {"kubernetes": lazy_factory(*KUBERNETES_BACKEND, server_url=server_url)}
    if packages is not None:
        factories["ray"] = lazy_factory(*RAY_BACKEND, packages=packages)
    return factories


def describe_error(exc: BaseException) -> str:
    """One line for an event: our errors by their message, others with their type."""
    text = str(exc) if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


@dataclass
class Trouble:
    """A call that keeps failing: its last error, how often in a row, when to retry,
    and the desired state it failed on (``key``)."""

    error: str
    failures: int
    retry_at_s: float
    key: object = None


class Failed:
    """The result of a call that raised or waits for its retry (its event is recorded)."""


FAILED = Failed()


def attempt(
    troubles: dict[str, Trouble],
    op: str,
    now_s: float,
    events: list[EventDraft],
    fn: Callable[[], _T],
    key: object = None,
) -> _T | Failed:
    """``fn()``, unless an earlier failure of ``op`` on the same ``key`` waits for its
    retry time (another key, i.e. new desired state, is tried at once).

    Any exception is caught: it becomes an ``orchestrator`` event when its error differs
    from the last one of ``op`` (one event per distinct error, not per pass), and the
    next try waits :func:`retry_delay_s`. A success after failures is an event too.
    """
    trouble = troubles.get(op)
    if trouble is not None and trouble.key == key and now_s < trouble.retry_at_s:
        return FAILED
    try:
        result = fn()
    except Exception as exc:  # any client's error: an event and a retry, never a crash
        error = describe_error(exc)
        failures = trouble.failures + 1 if trouble is not None else 1
        delay = retry_delay_s(failures)
        if trouble is None or trouble.error != error:
            logger.warning("orchestrator %s failed: %s", op, error)
            data = {"op": op, "failures": failures, "retry_in_s": delay}
            message = f"{op} failed: {error}; retrying with back-off"
            events.append(EventDraft("orchestrator", message, None, data))
        troubles[op] = Trouble(error, failures, now_s + delay, key)
        return FAILED
    if trouble is not None:
        del troubles[op]
        message = f"{op} works again after {trouble.failures} failed attempt(s)"
        events.append(EventDraft("orchestrator", message, None, {"op": op}))
    return result
