"""The zygote: imports the serving runtime once, then forks model replicas from itself.

Run as ``python -m modelyard.deploy._zygote [--preload mod1,mod2]`` by
:class:`modelyard.deploy._launcher.ZygoteLauncher`, which sends one JSON command per
line on stdin and reads one JSON reply per line on stdout:

- ``{"op": "fork", "spec": {...}}`` → ``{"pid": n}`` or ``{"error": "..."}``. The spec
  is a worker spec (:func:`~modelyard.deploy._launcher.worker_spec`) plus ``log_path``
  and ``env``. The package's flavor libraries are imported first, in the zygote.
- ``{"op": "preload", "modules": [...]}`` → ``{"ok": true, "failed": {module: error}}``.
- ``{"op": "ping"}`` → ``{"ok": true, "pid": n}``.

End of input ends the zygote with status 0; the replicas it forked run on in their own
sessions. While it lives it reaps them and appends each one's exit status to its log.

Fork copies only the calling thread, so the zygote avoids starting threads: before
numpy is imported, BLAS and OpenMP pools are capped at one thread
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) and pyarrow's
jemalloc background thread is turned off, unless the environment sets them already.
Replicas inherit these settings (they do single-threaded inference anyway). Importing
onnxruntime starts a thread; replicas do not need it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import random
import re
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn

from modelyard.core.errors import InvalidInput
from modelyard.deploy._launcher import (
    SINGLE_THREAD_ENV,
    flavor_modules,
    note_exit,
    parse_worker_spec,
)
from modelyard.serving.options import ServeOptions
from modelyard.serving.server import ResolvedModel

# What run_worker and a first request import; names missing here are skipped.
RUNTIME_MODULES = (
    "numpy",
    "pandas",
    "pyarrow.pandas_compat",
    "prometheus_client",
    "uvloop",
    "httptools",
    "uvicorn",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "modelyard.models",
    "modelyard.serving._app",
    "modelyard.serving._metrics",
    "modelyard.serving._runtime",
    "modelyard.serving.server",
)
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def preload(modules: Sequence[str]) -> dict[str, str]:
    """Import ``modules``; the ones that failed, with their errors."""
    failed: dict[str, str] = {}
    for name in modules:
        if not _MODULE_NAME.fullmatch(name):
            failed[name] = "not a module name"
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # best effort: the replica imports it itself
            failed[name] = f"{type(exc).__name__}: {exc}"
    return failed


class Zygote:
    """The command loop, and the replicas forked so far (pid → log path).

    Args:
        replies: Where replies go (the launcher's pipe).
    """

    def __init__(self, replies: BinaryIO) -> None:
        self._replies = replies
        self._logs: dict[int, Path] = {}

    def serve(self, commands: BinaryIO) -> None:
        """Answer commands until end of input."""
        signal.signal(signal.SIGCHLD, self._reap)
        for line in iter(commands.readline, b""):
            reply = self.handle(line)
            self._replies.write(json.dumps(reply).encode() + b"\n")
            self._replies.flush()

    def handle(self, line: bytes) -> dict[str, object]:
        """The reply to one command line."""
        try:
            command = json.loads(line)
            op = command["op"]
            if op == "ping":
                return {"ok": True, "pid": os.getpid()}
            if op == "preload":
                return {"ok": True, "failed": preload([str(m) for m in command["modules"]])}
            if op == "fork":
                return {"pid": self._fork(command["spec"])}
            return {"error": f"unknown op {op!r}"}
        except Exception as exc:  # any failure is the caller's to see
            return {"error": f"{type(exc).__name__}: {exc}"}

    def _fork(self, doc: dict[str, object]) -> int:
        resolved, options = parse_worker_spec(doc)
        log_path = Path(str(doc["log_path"]))
        raw_env = doc.get("env") or {}
        if not isinstance(raw_env, dict):
            raise InvalidInput("malformed replica spec: 'env' must be a mapping")
        env = {str(k): str(v) for k, v in raw_env.items()}
        preload(flavor_modules(resolved.path))
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        # SIGCHLD waits until the pid is recorded, so a replica that dies at once is noted.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:
                os.close(self._replies.fileno())
                _replica(log_fd, env, resolved, options)
            self._logs[pid] = log_path
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            os.close(log_fd)
        return pid

    def _reap(self, _signum: int, _frame: object) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            log_path = self._logs.pop(pid, None)
            if log_path is not None:
                note_exit(log_path, pid, os.waitstatus_to_exitcode(status))


def _replica(
    log_fd: int, env: dict[str, str], resolved: ResolvedModel, opts: ServeOptions
) -> NoReturn:
    """The forked child: detach, point stdio at the log, serve; never returns."""
    code = 1
    try:
        os.setsid()
        _reset_signals()
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(null_fd)
        os.environ.update(env)
        _reseed()
        logging.basicConfig(
            level=opts.log_level.upper(),
            format="%(levelname)s %(name)s: %(message)s",
            force=True,
        )
        from modelyard.serving.server import run_worker

        run_worker(resolved, opts, reuse_port=False)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:  # the replica's log is where this must end up
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reset_signals() -> None:
    """Undo the zygote's signal setup: default handlers, nothing blocked."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    for signum in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError):
            if callable(signal.getsignal(signum)):
                signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _reseed() -> None:
    """Forked replicas would otherwise share the zygote's random state."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def main(argv: Sequence[str] | None = None) -> int:
    """Import the runtime, preload, then answer commands until end of input."""
    parser = argparse.ArgumentParser(prog="python -m modelyard.deploy._zygote")
    parser.add_argument("--preload", default="", help="comma-separated modules to import")
    args = parser.parse_args(argv)
    for key, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level="WARNING", format="%(levelname)s modelyard zygote: %(message)s")
    # Replies get a private copy of stdout; fd 1 goes to stderr, so a module that prints
    # cannot corrupt them.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    modules = [*RUNTIME_MODULES, *(m for m in args.preload.split(",") if m)]
    for name, error in preload(modules).items():
        logging.warning("cannot preload %s: %s", name, error)
    Zygote(replies).serve(sys.stdin.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
