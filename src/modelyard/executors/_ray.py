"""The Ray executor: each task is a plain Ray task (no Ray Tune, no actors).

Why plain tasks: a trial or a step is one function call; Ray schedules it on any node
(``SPREAD``), retries it elsewhere when its worker or node dies (``max_retries``), and
the driver (tuning, pipelines) keeps the search and the bookkeeping. Ray is imported
lazily, so ``import modelyard`` stays cheap and Ray stays optional for ``local`` users.

Connections: ``ray.init()`` joins ``RAY_ADDRESS`` or the newest cluster started on this
machine, else starts a local Ray; ``ray://host:port`` goes through Ray Client. When Ray
is already initialized in this process the executor reuses that connection and leaves
it open on ``close()``. Workers need modelyard installed (the task trampoline is
``modelyard.executors._payload.run_call``); user functions travel by value.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from modelyard.core.errors import InvalidInput
from modelyard.executors._base import ExecutorUnavailable, Resources, WorkerLost
from modelyard.executors._payload import TaskFuture, dumps_call, loads_outcome, run_call

if TYPE_CHECKING:
    from ray import ObjectRef

T = TypeVar("T")

MAX_RETRIES = 3


def current_node() -> str:
    """The Ray node id inside a Ray task, else this machine's hostname."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        try:
            context = ray.get_runtime_context()
            if context.worker.mode == ray.WORKER_MODE:
                return str(context.get_node_id())
        except AttributeError:  # a Ray Client driver has no local worker
            pass
    return socket.gethostname()


def _raise(exc: BaseException) -> NoReturn:
    raise exc


def _translate(ray_future: Future[bytes]) -> Any:
    """The task's value, or the exception the caller should see (runs on a Ray thread)."""
    import ray.exceptions as rex

    try:
        data = ray_future.result()
    except rex.TaskCancelledError:
        raise CancelledError() from None
    except (
        rex.WorkerCrashedError,
        rex.NodeDiedError,
        rex.ObjectLostError,
        rex.LocalRayletDiedError,
        rex.RaySystemError,
    ) as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise WorkerLost(
            f"the Ray worker or node running this task died"
            f" ({type(exc).__name__}, after {MAX_RETRIES} retries): {first_line}"
        ) from None
    except rex.RayTaskError as exc:
        # The trampoline returns user errors as values; this is a failure around it
        # (e.g. the payload could not be unpickled on the worker).
        cause = exc.cause
        raise (cause if isinstance(cause, BaseException) else exc) from None
    return loads_outcome(data)


class RayExecutor:
    """Runs each submitted call as a Ray task on a cluster (or a Ray started here)."""

    def __init__(
        self,
        address: str | None,
        *,
        name: str,
        workers: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Connect (or reuse the connection of this process).

        Args:
            address: None (``RAY_ADDRESS``, a cluster on this machine, else a new local
                Ray), ``"auto"`` (an existing cluster only) or ``"ray://host:port"``.
                Probe an explicit address before calling this (``open_executor`` does).
            name: how runs name this executor (``ray``, ``ray://host:port``).
            workers: tasks kept in flight; default the cluster's CPU count.
            env: environment variables set in every task.

        Raises:
            ExecutorUnavailable: Ray cannot be reached or started.
            InvalidInput: Ray is not installed (the ``ray`` extra).
        """
        try:
            import ray
        except ImportError:
            raise InvalidInput(
                f"executor {name!r} needs Ray: pip install 'modelyard[ray]'"
            ) from None

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._name = name
        self._env = dict(env or {})
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            _connect(address, self._env)
        # Reused connection: its job-wide env is not ours, so each task carries it.
        self._task_env = None if self._owns_connection or not self._env else self._env
        try:
            self._remote = ray.remote(run_call)
            self._totals = _cluster_totals()
        except BaseException:
            if self._owns_connection:
                ray.shutdown()
            raise
        self._slots = workers or max(1, int(self._totals.get("CPU", 1)))
        self._lock = threading.Lock()
        self._pending: dict[TaskFuture[Any], ObjectRef[bytes]] = {}
        self._closed = False

    @property
    def name(self) -> str:
        """``ray`` or the ``ray://host:port`` address."""
        return self._name

    @property
    def slots(self) -> int:
        """``workers`` if given, else the CPUs of the cluster when connected (>= 1)."""
        return self._slots

    def submit(
        self, fn: Callable[..., T], /, *args: Any, resources: Resources | None = None
    ) -> Future[T]:
        """Run ``fn(*args)`` as a Ray task; retried on another node if its node dies.

        Raises:
            InvalidInput: ``resources`` exceed what the whole cluster has.
            RuntimeError: the executor is closed.
        """
        res = Resources.of(resources)
        self._check(res)
        payload = dumps_call(fn, args)
        options: dict[str, Any] = {
            "num_cpus": res.cpu,
            "num_gpus": res.gpu,
            "scheduling_strategy": "SPREAD",
            "max_retries": MAX_RETRIES,
            "retry_exceptions": False,
        }
        if res.memory_mb is not None:
            options["memory"] = res.memory_mb * 1024 * 1024
        if self._task_env is not None:
            options["runtime_env"] = {"env_vars": self._task_env}
        out: TaskFuture[T] = TaskFuture()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self._name} executor is closed")
            ref = self._remote.options(**options).remote(payload)
            self._pending[out] = ref
        out.link(partial(_cancel, ref))
        ref.future().add_done_callback(partial(self._settle, out))
        return out

    def close(self) -> None:
        """Cancel this executor's unfinished tasks; disconnect if it connected (idempotent)."""
        import ray

        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._pending)
            self._pending.clear()
        for out in pending:
            out.cancel()
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()

    def _settle(self, out: TaskFuture[Any], ray_future: Future[bytes]) -> None:
        with self._lock:
            self._pending.pop(out, None)
        try:
            value = _translate(ray_future)
        except CancelledError:
            out.mark_cancelled()
            return
        except Exception as exc:
            out.resolve(partial(_raise, exc))
            return
        out.resolve(lambda: value)

    def _check(self, res: Resources) -> None:
        needs = {"CPU": res.cpu, "GPU": res.gpu}
        if res.memory_mb is not None:
            needs["memory"] = res.memory_mb * 1024 * 1024
        if all(needs[key] <= self._totals.get(key, 0.0) for key in needs):
            return
        self._totals = _cluster_totals()  # nodes may have joined since
        field = {"CPU": "resources.cpu", "GPU": "resources.gpu", "memory": "resources.memory_mb"}
        for key, amount in needs.items():
            have = self._totals.get(key, 0.0)
            if amount > have:
                if key == "memory":
                    shown, unit = f"{amount / 2**20:g}", f"{have / 2**20:.0f} MiB of memory"
                else:
                    shown, unit = f"{amount:g}", f"{have:g} {key}s"
                raise InvalidInput(
                    f"{field[key]} = {shown} is more than the whole Ray cluster has ({unit})"
                )


# A Ray Client server starts one server process per client session; on a loaded machine
# that start fails now and then ("Initialization failure from server") while the next
# try works. The address itself was probed before, so retrying cannot hide a dead one.
CLIENT_CONNECT_TRIES = 3
CLIENT_RETRY_DELAY_S = 1.0


def _connect(address: str | None, env: Mapping[str, str]) -> None:
    import ray

    kwargs: dict[str, Any] = {"address": address, "log_to_driver": False}
    if env:
        kwargs["runtime_env"] = {"env_vars": dict(env)}
    client = address is not None and address.startswith("ray://")
    if not client:
        # Ray Client forwards unknown arguments to the server's ray.init; keep it minimal.
        kwargs["include_dashboard"] = False
        kwargs["configure_logging"] = False
    tries = CLIENT_CONNECT_TRIES if client else 1
    for attempt in range(1, tries + 1):
        try:
            ray.init(**kwargs)
            return
        except BaseException as exc:
            # A failed init leaves state behind that makes every later ray.init in this
            # process fail; shutting down clears it.
            ray.shutdown()
            if not isinstance(exc, ConnectionError | TimeoutError):
                raise
            if attempt < tries:
                time.sleep(CLIENT_RETRY_DELAY_S * attempt)
                continue
            where = address or os.environ.get("RAY_ADDRESS") or "this machine"
            raise ExecutorUnavailable(f"Ray at {where} does not answer: {exc}") from None


def _cluster_totals() -> dict[str, float]:
    import ray

    totals: dict[str, Any] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {key: float(value) for key, value in totals.items()}


def _cancel(ref: ObjectRef[bytes]) -> bool:
    import ray

    # Already finished, or the connection is gone: nothing left to stop either way.
    with contextlib.suppress(Exception):
        ray.cancel(ref)
    return True
