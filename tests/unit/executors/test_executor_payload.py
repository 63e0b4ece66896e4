"""How calls travel to workers and outcomes come back (in-process: no workers here)."""

from __future__ import annotations

import importlib
import json
import operator
import sys
import threading
from concurrent.futures import CancelledError
from pathlib import Path
from typing import NoReturn

import pytest

from modelyard.executors._payload import (
    TaskFuture,
    _by_value_module,
    dumps_call,
    loads_outcome,
    run_call,
)
from modelyard.executors._probe import parse_host_port


class CustomError(Exception):
    pass


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> NoReturn:
    raise CustomError(message)


def unpicklable() -> object:
    return threading.Lock()


def test_functions_of_user_modules_travel_by_value() -> None:
    module = _by_value_module(add)
    assert module is not None
    assert module.__name__ == add.__module__


def test_installed_and_modelyard_functions_travel_by_reference() -> None:
    assert _by_value_module(json.dumps) is None
    assert _by_value_module(parse_host_port) is None
    assert _by_value_module(len) is None


def test_a_value_comes_back() -> None:
    assert loads_outcome(run_call(dumps_call(add, (2, 3)))) == 5


def test_a_closure_travels() -> None:
    offset = 10
    assert loads_outcome(run_call(dumps_call(lambda x: x + offset, (1,)))) == 11


def test_an_exception_comes_back_with_its_type_and_the_remote_traceback() -> None:
    with pytest.raises(CustomError, match="boom") as info:
        loads_outcome(run_call(dumps_call(fail, ("boom",))))
    assert any("raised in a worker" in note and "fail" in note for note in info.value.__notes__)


def test_an_unpicklable_return_value_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="return value cannot be pickled"):
        loads_outcome(run_call(dumps_call(unpicklable, ())))


def test_a_user_function_inside_the_arguments_travels_by_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # my.tune submits modelyard's run_trial with the objective as an argument; a worker
    # that cannot import the objective's module must still get it.
    (tmp_path / "user_objective.py").write_text("def objective(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    objective = importlib.import_module("user_objective").objective
    payload = dumps_call(operator.call, (objective, 2))
    sys.path.remove(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_objective")
    assert loads_outcome(run_call(payload)) == 6  # as in a worker without the module
    assert "user_objective" not in sys.modules


def test_by_value_registration_is_undone_after_pickling() -> None:
    import cloudpickle  # type: ignore[import-untyped]

    dumps_call(add, (1, 2))
    assert add.__module__ not in cloudpickle.list_registry_pickle_by_value()


def test_cancel_asks_the_task_first_and_keeps_running_tasks() -> None:
    refused: TaskFuture[int] = TaskFuture()
    refused.link(lambda: False)
    assert not refused.cancel()
    assert not refused.done()
    accepted: TaskFuture[int] = TaskFuture()
    accepted.link(lambda: True)
    assert accepted.cancel()
    assert accepted.cancelled()
    accepted.resolve(lambda: 1)  # a late outcome is dropped, not an error
    with pytest.raises(CancelledError):
        accepted.result()


def test_resolve_settles_value_or_exception_once() -> None:
    ok: TaskFuture[int] = TaskFuture()
    ok.resolve(lambda: 7)
    ok.resolve(lambda: 8)
    assert ok.result() == 7
    bad: TaskFuture[int] = TaskFuture()
    bad.resolve(lambda: fail("x"))
    assert isinstance(bad.exception(), CustomError)


def test_waiters_see_a_cancelled_future() -> None:
    from concurrent.futures import wait

    by_caller: TaskFuture[int] = TaskFuture()
    by_executor: TaskFuture[int] = TaskFuture()
    by_caller.cancel()
    by_executor.mark_cancelled()
    done, not_done = wait([by_caller, by_executor], timeout=0)
    assert (len(done), not_done) == (2, set())
