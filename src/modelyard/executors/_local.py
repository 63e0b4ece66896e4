"""The local executor: a pool of spawned worker processes on this machine.

A worker that dies (``os._exit``, SIGKILL, a segfault in native code) breaks a
``ProcessPoolExecutor`` for good: every task in flight fails and later submits are
refused. Here the tasks in flight fail with :class:`WorkerLost`, naming how the worker
died, and the next submit builds a fresh pool.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, NoReturn, TypeVar

from modelyard.core.errors import InvalidInput
from modelyard.executors._base import Resources, WorkerLost
from modelyard.executors._payload import TaskFuture, dumps_call, loads_outcome, run_call
from modelyard.executors._probe import local_gpu_count, local_memory_mb

T = TypeVar("T")


def _init_worker(env: dict[str, str]) -> None:
    os.environ.update(env)


def _describe_exit(pid: int, exitcode: int) -> str:
    if exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    return f"worker process {pid} {how}"


def _death_message(pool: ProcessPoolExecutor, *, wait_s: float = 1.0) -> str:
    """Which worker of a broken pool died and how (best effort: the pool is private).

    The pool notices a death when the worker's pipe closes, which can be a moment
    before the process can be reaped and its exit code read: poll for up to ``wait_s``.
    """
    processes: Mapping[int, Any] = getattr(pool, "_processes", None) or {}
    deadline = time.monotonic() + wait_s
    deaths: list[str] = []
    while processes and not deaths:
        for pid, process in list(processes.items()):
            exitcode = getattr(process, "exitcode", None)
            if isinstance(exitcode, int) and exitcode != 0:
                deaths.append(_describe_exit(pid, exitcode))
        if deaths or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    what = "; ".join(deaths) if deaths else "a worker process died abruptly"
    return f"{what} while this task was running or queued in the local executor"


class LocalExecutor:
    """``workers`` spawned processes (default: the CPU count); ``env`` applied in each.

    Functions and arguments travel with cloudpickle (lambdas and closures work);
    exceptions come back with their original type. ``close()`` waits for running tasks,
    cancels queued ones and joins every worker process.
    """

    def __init__(self, workers: int | None = None, env: Mapping[str, str] | None = None) -> None:
        if workers is not None and workers < 1:
            raise InvalidInput(f"workers must be >= 1, got {workers}")
        self._workers = workers or os.cpu_count() or 1
        self._env = dict(env or {})
        self._cpus = os.cpu_count() or 1
        self._gpus = local_gpu_count()
        self._memory_mb = local_memory_mb()
        self._lock = threading.Lock()
        self._closed = False
        self._retired: list[ProcessPoolExecutor] = []
        self._pool = self._new_pool()

    @property
    def name(self) -> str:
        """Always ``local``."""
        return "local"

    @property
    def slots(self) -> int:
        """The number of worker processes."""
        return self._workers

    def submit(
        self, fn: Callable[..., T], /, *args: Any, resources: Resources | None = None
    ) -> Future[T]:
        """Run ``fn(*args)`` in a worker process.

        Raises:
            InvalidInput: ``resources`` ask for more CPUs, GPUs or memory than this
                machine has.
            RuntimeError: the executor is closed.
        """
        self._check(Resources.of(resources))
        payload = dumps_call(fn, args)
        out: TaskFuture[T] = TaskFuture()
        with self._lock:
            if self._closed:
                raise RuntimeError("the local executor is closed")
            pool = self._pool
            try:
                inner = pool.submit(run_call, payload)
            except BrokenProcessPool:
                pool = self._replace_pool(pool)
                inner = pool.submit(run_call, payload)
        out.link(inner.cancel)
        inner.add_done_callback(partial(self._settle, out, pool))
        return out

    def close(self) -> None:
        """Wait for running tasks, cancel queued ones, join all workers (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pools = [*self._retired, self._pool]
            self._retired.clear()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)

    def _check(self, res: Resources) -> None:
        if res.cpu > self._cpus:
            raise InvalidInput(
                f"resources.cpu = {res.cpu:g} is more than the {self._cpus} CPUs of this machine"
            )
        if res.gpu > self._gpus:
            have = "no GPU" if self._gpus == 0 else f"only {self._gpus} GPU(s)"
            raise InvalidInput(f"resources.gpu = {res.gpu:g} but this machine has {have}")
        mem_mb, have_mb = res.memory_mb, self._memory_mb
        if mem_mb is not None and have_mb is not None and mem_mb > have_mb:
            raise InvalidInput(
                f"resources.memory_mb = {mem_mb} is more than the {have_mb} MiB of this machine"
            )

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._env,),
        )

    def _replace_pool(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """Swap in a fresh pool (caller holds the lock); the broken one is joined at close.

        Not joined here: this may run on the broken pool's own manager thread.
        """
        broken.shutdown(wait=False, cancel_futures=True)
        self._retired.append(broken)
        self._pool = self._new_pool()
        return self._pool

    @staticmethod
    def _settle(out: TaskFuture[Any], pool: ProcessPoolExecutor, inner: Future[bytes]) -> None:
        if inner.cancelled():
            out.mark_cancelled()
            return
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool):
            out.resolve(partial(_reraise, WorkerLost(_death_message(pool))))
        elif exc is not None:
            out.resolve(partial(_reraise, exc))
        else:
            out.resolve(partial(loads_outcome, inner.result()))


def _reraise(exc: BaseException) -> NoReturn:
    raise exc
