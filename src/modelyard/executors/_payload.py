"""How a call travels to a worker and its outcome travels back (both executors).

The driver pickles ``(fn, args)`` with cloudpickle, so lambdas, closures and functions
of a script work. Functions of the user's own modules (a test file, a ``pipeline.py``
loaded from a path) are shipped *by value*: a worker process, or a Ray node on another
machine, cannot import them by name. Installed packages and modelyard itself travel by
reference (every worker has them).

The worker runs the call and sends back a cloudpickled outcome instead of letting the
pool or Ray pickle an exception: the caller then gets the exception of the *original*
type (even a class defined in a test module), with the remote traceback as a note.
"""

from __future__ import annotations

import contextlib
import functools
import io
import sys
import sysconfig
import threading
import traceback
import types
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import cloudpickle  # type: ignore[import-untyped]

T = TypeVar("T")

_OK = "ok"
_ERROR = "error"
_register_lock = threading.Lock()


@functools.cache
def _installed_roots() -> tuple[Path, ...]:
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple(Path(p).resolve() for p in {sysconfig.get_path(n) for n in names} if p)


def _by_value_module(fn: Callable[..., Any]) -> ModuleType | None:
    """The user module ``fn`` comes from, when it must travel by value; else None."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    if module is None or module.__name__ == "__main__":
        return None  # cloudpickle ships __main__ by value already
    if module.__name__.partition(".")[0] == "modelyard":
        return None
    file = getattr(module, "__file__", None)
    if not file:
        return None  # builtin or namespace package: importable by name everywhere
    path = Path(file).resolve()
    if any(path.is_relative_to(root) for root in _installed_roots()):
        return None
    return module


class _ModuleFinder(cloudpickle.Pickler):  # type: ignore[misc]
    """Pickles as cloudpickle does, noting the user modules of the functions and
    classes it meets anywhere (an objective passed as an argument, a step's function
    inside a task object, a function a by-value function calls)."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.modules: dict[str, ModuleType] = {}

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type | types.FunctionType):
            module = _by_value_module(obj)
            if module is not None:
                self.modules[module.__name__] = module
        return super().reducer_override(obj)


def dumps_call(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """Pickle ``fn(*args)`` for a worker (user modules by value, see module docs)."""
    registered: list[ModuleType] = []
    with _register_lock:
        try:
            while True:  # until no new user module turns up (each pass may find more)
                buffer = io.BytesIO()
                finder = _ModuleFinder(buffer)
                finder.dump((fn, args))
                known = set(cloudpickle.list_registry_pickle_by_value())
                new = [m for name, m in finder.modules.items() if name not in known]
                if not new:
                    return buffer.getvalue()
                for module in new:
                    cloudpickle.register_pickle_by_value(module)
                    registered.append(module)
        finally:
            for module in registered:
                cloudpickle.unregister_pickle_by_value(module)


def run_call(payload: bytes) -> bytes:
    """In the worker: run the pickled call; return the pickled value or exception."""
    fn, args = cloudpickle.loads(payload)
    try:
        value = fn(*args)
    except Exception as exc:
        return _dumps_error(exc)
    try:
        return bytes(cloudpickle.dumps((_OK, value)))
    except Exception as exc:
        wrapped = TypeError(f"the task's return value cannot be pickled: {exc}")
        return _dumps_error(wrapped)


def _dumps_error(exc: Exception) -> bytes:
    remote_tb = "".join(traceback.format_exception(exc))
    try:
        return bytes(cloudpickle.dumps((_ERROR, exc, remote_tb)))
    except Exception:
        # The exception itself cannot travel: send its type name and message instead.
        substitute = RuntimeError(f"{type(exc).__qualname__}: {exc}")
        return bytes(cloudpickle.dumps((_ERROR, substitute, remote_tb)))


def loads_outcome(data: bytes) -> Any:
    """In the driver: return the task's value or raise its exception (original type)."""
    outcome = cloudpickle.loads(data)
    if outcome[0] == _OK:
        return outcome[1]
    exc: Exception = outcome[1]
    exc.add_note(f"raised in a worker:\n{outcome[2].rstrip()}")
    raise exc


class TaskFuture(Future[T]):
    """The caller's future: ``cancel()`` also cancels the task where it runs, if it can."""

    def __init__(self) -> None:
        super().__init__()
        self._cancel_task: Callable[[], bool] = lambda: True
        self._notify_lock = threading.RLock()
        self._notified = False

    def link(self, cancel_task: Callable[[], bool]) -> None:
        """Set what cancels the task (the pool future's ``cancel``, ``ray.cancel``)."""
        self._cancel_task = cancel_task

    def cancel(self) -> bool:
        """Cancel the task; False when it already runs and cannot be stopped."""
        if self.done():
            return self.cancelled()
        if not self._cancel_task():
            return False
        return self._cancel_and_notify()

    def mark_cancelled(self) -> None:
        """The task was cancelled where it ran (pool shut down, executor closed)."""
        self._cancel_and_notify()

    def _cancel_and_notify(self) -> bool:
        # Both paths may meet: cancelling the pool future runs its callback, which
        # marks this one cancelled before cancel() gets here.
        with self._notify_lock:
            if not super().cancel():
                return False
            if not self._notified:
                # Nobody else calls set_running_or_notify_cancel on this future, and
                # without it ``wait``/``as_completed`` never see the cancel.
                self._notified = True
                self.set_running_or_notify_cancel()
            return True

    def resolve(self, produce: Callable[[], T]) -> None:
        """Settle with ``produce()``'s value or exception, unless already settled."""
        if self.done():
            return
        try:
            value = produce()
        except Exception as exc:
            # InvalidStateError: cancelled by the caller meanwhile; nobody wants it.
            with contextlib.suppress(InvalidStateError):
                self.set_exception(exc)
            return
        with contextlib.suppress(InvalidStateError):
            self.set_result(value)
