"""The local executor with real worker processes: results, errors, dead workers, cleanup."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError, wait

import pytest

from modelyard.core.errors import InvalidInput
from modelyard.executors import Executor, Resources, WorkerLost, current_node, open_executor


class TrialDiverged(Exception):
    """Defined here: workers cannot import this module, so it travels by value."""


def square(x: int) -> int:
    return x * x


def diverge(lr: float) -> float:
    raise TrialDiverged(f"loss is nan at lr={lr}")


def pid_after(delay_s: float) -> int:
    time.sleep(delay_s)
    return os.getpid()


def kill_myself(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(10)  # not reached


def exit_abruptly(code: int) -> None:
    os._exit(code)


def read_env(key: str) -> str | None:
    return os.environ.get(key)


def worker_pids(executor: Executor) -> set[int]:
    """The pids of all workers: one task per slot, each long enough to overlap."""
    futures = [executor.submit(pid_after, 0.2) for _ in range(executor.slots)]
    return {f.result(timeout=30) for f in futures}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def shared() -> Iterator[Executor]:
    """One pool for the tests that do not break it (spawning workers costs ~0.3 s)."""
    executor = open_executor("local", workers=2, env={"MODELYARD_PROJECT": "tuning-demo"})
    yield executor
    executor.close()


def test_results_come_back_in_submit_order(shared: Executor) -> None:
    futures = [shared.submit(square, n) for n in range(6)]
    assert [f.result(timeout=30) for f in futures] == [0, 1, 4, 9, 16, 25]


def test_lambdas_and_closures_run(shared: Executor) -> None:
    base = 100
    assert shared.submit(lambda x: x + base, 1).result(timeout=30) == 101


def test_a_user_exception_keeps_its_type_and_message(shared: Executor) -> None:
    future = shared.submit(diverge, 0.5)
    with pytest.raises(TrialDiverged, match=r"loss is nan at lr=0\.5"):
        future.result(timeout=30)


def test_a_builtin_exception_keeps_its_type(shared: Executor) -> None:
    with pytest.raises(ZeroDivisionError):
        shared.submit(lambda: 1 / 0).result(timeout=30)


def test_env_reaches_the_worker(shared: Executor) -> None:
    assert shared.submit(read_env, "MODELYARD_PROJECT").result(timeout=30) == "tuning-demo"


def test_tasks_run_in_other_processes_on_this_host(shared: Executor) -> None:
    pids = worker_pids(shared)
    assert os.getpid() not in pids
    assert len(pids) == 2  # both workers busy at once
    assert shared.submit(current_node).result(timeout=30) == current_node()


def test_slots_and_name(shared: Executor) -> None:
    assert (shared.name, shared.slots) == ("local", 2)


@pytest.mark.parametrize(
    ("fn", "arg", "how"),
    [
        (kill_myself, signal.SIGKILL, "killed by SIGKILL"),
        (kill_myself, signal.SIGSEGV, "killed by SIGSEGV"),
        (exit_abruptly, 3, "exited with code 3"),
    ],
)
def test_a_dead_worker_fails_its_tasks_with_worker_lost_and_the_pool_recovers(
    fn: object, arg: int, how: str
) -> None:
    executor = open_executor("local", workers=2)
    try:
        worker_pids(executor)  # both workers up and idle: one takes each task below
        running = executor.submit(pid_after, 1.0)
        assert callable(fn)
        doomed = executor.submit(fn, arg)
        with pytest.raises(WorkerLost, match=how):
            doomed.result(timeout=30)
        # Every task in flight in the broken pool fails the same way: it was running.
        with pytest.raises(WorkerLost):
            running.result(timeout=30)
        assert executor.submit(square, 7).result(timeout=30) == 49
        assert executor.submit(read_env, "HOME").result(timeout=30) == os.environ["HOME"]
    finally:
        executor.close()


def test_close_joins_every_worker_and_is_idempotent() -> None:
    executor = open_executor("local", workers=2)
    first_pool = worker_pids(executor)
    executor.submit(kill_myself, signal.SIGKILL).exception(timeout=30)  # retires that pool
    second_pool = worker_pids(executor)
    assert first_pool.isdisjoint(second_pool)
    assert all(alive(pid) for pid in second_pool)
    executor.close()
    executor.close()
    assert [pid for pid in first_pool | second_pool if alive(pid)] == []
    with pytest.raises(RuntimeError, match="closed"):
        executor.submit(square, 1)


def test_close_waits_for_running_tasks_and_cancels_queued_ones() -> None:
    executor = open_executor("local", workers=1)
    running = executor.submit(pid_after, 0.3)
    queued = [executor.submit(square, n) for n in range(20)]
    time.sleep(0.2)
    executor.close()
    assert isinstance(running.result(timeout=0), int)
    _, not_done = wait(queued, timeout=0)
    assert not not_done
    assert any(f.cancelled() for f in queued)
    for future in queued:
        if not future.cancelled():
            assert future.result() in {n * n for n in range(20)}
        else:
            with pytest.raises(CancelledError):
                future.result()


def test_a_queued_task_can_be_cancelled_a_running_one_cannot() -> None:
    executor = open_executor("local", workers=1)
    try:
        running = executor.submit(pid_after, 0.4)
        # The pool hands up to workers + 1 tasks to its call queue at once (those count
        # as running); the ones after that are still queued.
        queued = [executor.submit(square, n) for n in range(4)]
        assert queued[-1].cancel()
        assert not running.cancel()
        assert isinstance(running.result(timeout=30), int)
        assert queued[-1].cancelled()
        assert [f.result(timeout=30) for f in queued[:2]] == [0, 1]
    finally:
        executor.close()


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        (Resources(cpu=(os.cpu_count() or 1) + 1), "resources.cpu"),
        (Resources(gpu=1), "resources.gpu = 1 but this machine has no GPU"),
        (Resources(memory_mb=2**40), "resources.memory_mb"),
    ],
)
def test_resources_this_machine_lacks_are_rejected_at_submit(
    resources: Resources, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    executor = open_executor("local", workers=1)
    try:
        with pytest.raises(InvalidInput, match=field):
            executor.submit(square, 2, resources=resources)
        fits = Resources(cpu=os.cpu_count() or 1, memory_mb=64)
        assert executor.submit(square, 2, resources=fits).result(timeout=30) == 4
    finally:
        executor.close()


def test_a_gpu_is_accepted_where_cuda_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    executor = open_executor("local", workers=1)
    try:
        assert executor.submit(square, 3, resources=Resources(gpu=1)).result(timeout=30) == 9
        with pytest.raises(InvalidInput, match="only 1 GPU"):
            executor.submit(square, 3, resources=Resources(gpu=2))
    finally:
        executor.close()
