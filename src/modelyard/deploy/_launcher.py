"""Starting model replicas for local deployments: forked from a zygote, or spawned.

A replica is one process serving one model package on its own port with
:func:`modelyard.serving.server.run_worker`. Scaling from zero must answer the first
request within about 2 s, and a fresh interpreter spends 3 to 5 s importing the runtime and
scikit-learn, so :class:`ZygoteLauncher` forks replicas from a helper process
(:mod:`modelyard.deploy._zygote`) that has imported them once. :class:`SpawnLauncher`
starts a fresh interpreter per replica; the zygote launcher falls back to it when its
zygote cannot run.

Replicas run in their own session and outlive the launcher and the server that owns it,
so a restarted server can adopt them again by pid and port
(:mod:`modelyard.deploy.processes` checks, probes and stops them). When a replica exits
while its launcher (or zygote) still runs, a line with its exit status is appended to
its log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from modelyard.core.errors import InvalidInput, ModelyardError, Unavailable
from modelyard.serving.options import RuntimeOptions, ServeOptions
from modelyard.serving.predlog import PredictionLogOptions
from modelyard.serving.server import ResolvedModel

logger = logging.getLogger("modelyard.deploy")

LaunchMode = Literal["fork", "spawn"]

# Replicas do single-threaded inference (scale out with replicas), and fork copies only
# the calling thread, so the zygote should have no other threads: cap the BLAS pools and
# keep pyarrow's jemalloc from starting its background thread. The environment wins.
SINGLE_THREAD_ENV: Mapping[str, str] = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
}
_ZYGOTE_ARGV = (sys.executable, "-m", "modelyard.deploy._zygote")
_FLAVOR_MODULES: Mapping[str, tuple[str, ...]] = {
    "sklearn": ("sklearn",),
    "onnx": ("onnxruntime",),
    "pyfunc": ("cloudpickle",),
}


@dataclass(frozen=True)
class ReplicaSpec:
    """One replica to start: which package it serves, and where.

    Attributes:
        package_path: The model package directory.
        model_name: The OIP model name it is served under.
        model_version: The OIP model version.
        expected_files: Registered digests (path → SHA-256) the package must match.
        port: The TCP port the replica binds.
        log_path: The replica's stdout and stderr are appended here.
        host: The address it binds.
        runtime: Batching and inference threads.
        max_body_bytes: Larger request bodies get 413.
        env: Extra environment variables. A forked replica sets them after the runtime
            is imported, so they cannot change how numpy or the flavors start up.
        log_level: uvicorn's and the runtime's log level.
        prediction_log: Where and how much of its traffic the replica logs.
    """

    package_path: Path
    model_name: str
    model_version: str
    expected_files: dict[str, str] | None
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    max_body_bytes: int = 8 * 1024 * 1024
    env: Mapping[str, str] = field(default_factory=dict)
    log_level: str = "info"
    prediction_log: PredictionLogOptions | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InvalidInput(f"replica port must be in 1..65535, got {self.port}")


@dataclass(frozen=True)
class LaunchedReplica:
    """A replica process just started (it may not be ready, or even alive, yet).

    Attributes:
        pid: Its process id.
        port: The port it binds.
        mode: ``fork`` (from the zygote) or ``spawn`` (a fresh interpreter).
        launched_at: ``time.time()`` when the launch began.
    """

    pid: int
    port: int
    mode: LaunchMode
    launched_at: float


class Launcher(Protocol):
    """Starts replicas. Implementations are thread-safe."""

    def start(self, spec: ReplicaSpec) -> LaunchedReplica:
        """Start one replica and return at once, without waiting for it to be ready.

        Raises:
            Unavailable: the replica process could not be started.
        """
        ...

    def close(self) -> None:
        """Release the launcher's helpers; replicas it started keep running."""
        ...


def worker_spec(spec: ReplicaSpec) -> dict[str, object]:
    """The JSON spec ``python -m modelyard.serving._worker`` takes for ``spec``."""
    options = ServeOptions(
        host=spec.host,
        port=spec.port,
        workers=1,
        max_body_bytes=spec.max_body_bytes,
        log_level=spec.log_level,
        runtime=spec.runtime,
        prediction_log=spec.prediction_log,
    )
    return {
        "path": str(spec.package_path),
        "name": spec.model_name,
        "version": spec.model_version,
        "expected_files": spec.expected_files,
        "options": asdict(options),
    }


def parse_worker_spec(doc: Mapping[str, object]) -> tuple[ResolvedModel, ServeOptions]:
    """The model and options of a :func:`worker_spec` document.

    Raises:
        InvalidInput: a field is missing or has the wrong shape.
    """
    try:
        options = ServeOptions.from_dict(_mapping(doc["options"]))
        expected = doc["expected_files"]
        resolved = ResolvedModel(
            Path(str(doc["path"])),
            str(doc["name"]),
            str(doc["version"]),
            None if expected is None else {str(k): str(v) for k, v in _mapping(expected).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed replica spec: {exc!r}") from exc
    return resolved, options


def _mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def note_exit(log_path: Path, pid: int, code: int) -> None:
    """Append how replica ``pid`` ended to its log (``code`` < 0: killed by that signal)."""
    if code >= 0:
        how = f"exited with status {code}"
    else:
        how = f"was killed by {signal.Signals(-code).name}"
    with contextlib.suppress(OSError), open(log_path, "a", encoding="utf-8") as log:
        log.write(f"modelyard: replica {pid} {how}\n")


class SpawnLauncher:
    """Starts each replica as a fresh interpreter: ``python -m modelyard.serving._worker``.

    Needs no helper process but is slow to become ready: the interpreter imports the
    runtime and the model's libraries (~3.5 s for scikit-learn on two cores). The worker
    binds with ``SO_REUSEPORT``; it gets :data:`SINGLE_THREAD_ENV` unless the environment
    or ``spec.env`` says otherwise, like a forked replica. A thread per replica waits for
    it, so one that exits does not stay a zombie while the launcher's process lives.

    Args:
        python: The interpreter to run.
    """

    def __init__(self, *, python: str = sys.executable) -> None:
        self._python = python

    def start(self, spec: ReplicaSpec) -> LaunchedReplica:
        """Start one replica in a new session; see :meth:`Launcher.start`."""
        launched_at = time.time()
        cmd = [self._python, "-m", "modelyard.serving._worker", json.dumps(worker_spec(spec))]
        env = {**SINGLE_THREAD_ENV, **os.environ, **spec.env}
        try:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(spec.log_path, "ab") as log:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise Unavailable(f"cannot start a replica process: {exc}") from exc
        threading.Thread(
            target=_wait_and_note, args=(proc, spec.log_path), name=f"reap-{proc.pid}", daemon=True
        ).start()
        return LaunchedReplica(proc.pid, spec.port, "spawn", launched_at)

    def preload(self, modules: Sequence[str]) -> dict[str, str]:
        """Nothing to preload: every replica imports what it needs. Returns ``{}``."""
        return {}

    def close(self) -> None:
        """Nothing to release; the replicas keep running."""


def _wait_and_note(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    note_exit(log_path, proc.pid, proc.wait())


class _ZygoteGone(Exception):
    """The zygote exited, broke its pipe, or did not answer in time."""


class _ZygoteProcess:
    """One zygote process and its command pipes; the caller serializes calls."""

    def __init__(self, argv: Sequence[str], preload: Sequence[str]) -> None:
        cmd = [*argv, "--preload", ",".join(preload)] if preload else list(argv)
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**SINGLE_THREAD_ENV, **os.environ},
            start_new_session=True,
            bufsize=0,
        )
        self._pending = b""

    def call(self, message: Mapping[str, object], timeout_s: float) -> dict[str, object]:
        """Send one command and return its reply.

        Raises:
            _ZygoteGone: the zygote is gone or did not answer within ``timeout_s``.
        """
        assert self.proc.stdin is not None
        data = (json.dumps(message) + "\n").encode()
        try:
            while data:
                data = data[self.proc.stdin.write(data) or 0 :]
        except OSError as exc:
            raise _ZygoteGone(f"cannot write to it: {exc}") from exc
        reply = json.loads(self._read_line(timeout_s))
        if not isinstance(reply, dict):
            raise _ZygoteGone(f"it answered {reply!r}")
        return reply

    def _read_line(self, timeout_s: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ZygoteGone(f"no answer within {timeout_s:g} s")
            if select.select([fd], [], [], remaining)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise _ZygoteGone("it closed its reply pipe (exited?)")
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def close(self, timeout_s: float) -> None:
        """End of input makes the zygote exit; kill it if it takes longer than ``timeout_s``."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


class ZygoteLauncher:
    """Forks replicas from a zygote that has the serving runtime imported.

    The zygote (``python -m modelyard.deploy._zygote``) starts here, in the background,
    and imports the runtime and ``preload``; commands wait for it. Before forking a
    replica it imports the package's flavor libraries (:func:`flavor_modules`), once.
    If the zygote dies it is restarted once per command; if the restarted one fails
    too, this launcher starts every later replica with :class:`SpawnLauncher` and logs a
    warning. Thread-safe: commands are serialized.

    Args:
        preload: Modules the zygote imports at start (e.g. ``("sklearn",)``).
        reply_timeout_s: How long to wait for any answer of the zygote, its start-up
            imports included.
        argv: The zygote's command line (tests replace it).
    """

    def __init__(
        self,
        preload: Sequence[str] = (),
        *,
        reply_timeout_s: float = 120.0,
        argv: Sequence[str] = _ZYGOTE_ARGV,
    ) -> None:
        self._lock = threading.Lock()
        self._preload = list(dict.fromkeys(preload))
        self._argv = tuple(argv)
        self._timeout_s = reply_timeout_s
        self._zygote: _ZygoteProcess | None = None
        self._fallback: SpawnLauncher | None = None
        self._closed = False
        with self._lock, contextlib.suppress(OSError):
            self._zygote = _ZygoteProcess(self._argv, self._preload)

    @property
    def mode(self) -> LaunchMode:
        """``fork``, or ``spawn`` once the launcher has fallen back to fresh interpreters."""
        return "spawn" if self._fallback is not None else "fork"

    @property
    def zygote_pid(self) -> int | None:
        """The zygote's process id while one runs."""
        zygote = self._zygote
        return None if zygote is None else zygote.proc.pid

    def start(self, spec: ReplicaSpec) -> LaunchedReplica:
        """Fork one replica from the zygote; see :meth:`Launcher.start`."""
        launched_at = time.time()
        message = {
            "op": "fork",
            "spec": {**worker_spec(spec), "log_path": str(spec.log_path), "env": dict(spec.env)},
        }
        try:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create the replica's log directory: {exc}") from exc
        with self._lock:
            reply = self._call(message)
            if reply is None:
                assert self._fallback is not None
                return self._fallback.start(spec)
        pid = reply.get("pid")
        if not isinstance(pid, int):
            raise Unavailable(f"the zygote could not start a replica: {reply.get('error')}")
        return LaunchedReplica(pid, spec.port, "fork", launched_at)

    def preload(self, modules: Sequence[str]) -> dict[str, str]:
        """Make the zygote import ``modules`` now (e.g. when a deployment is created).

        Returns:
            The modules that failed to import, with their errors (they are skipped).
        """
        with self._lock:
            self._preload.extend(m for m in modules if m not in self._preload)
            reply = self._call({"op": "preload", "modules": list(modules)})
        failed = {} if reply is None else reply.get("failed", {})
        return {str(k): str(v) for k, v in _mapping(failed).items()}

    def _call(self, message: Mapping[str, object]) -> dict[str, object] | None:
        """The zygote's reply; None once fallen back to spawning (the lock is held)."""
        if self._closed:
            raise Unavailable("the replica launcher is closed")
        for attempt in ("first", "restarted"):
            if self._fallback is not None:
                return None
            try:
                if self._zygote is None:
                    self._zygote = _ZygoteProcess(self._argv, self._preload)
                return self._zygote.call(message, self._timeout_s)
            except (_ZygoteGone, OSError, ValueError) as exc:
                self._discard_zygote()
                if attempt == "first":
                    logger.warning("the replica zygote failed (%s); restarting it", exc)
                else:
                    logger.warning(
                        "the restarted replica zygote failed too (%s); starting replicas as "
                        "fresh interpreters from now on (slower to become ready)",
                        exc,
                    )
                    self._fallback = SpawnLauncher()
        return None

    def _discard_zygote(self) -> None:
        if self._zygote is not None:
            self._zygote.close(timeout_s=0)
            self._zygote = None

    def close(self) -> None:
        """Stop the zygote (its replicas keep running); later starts raise Unavailable."""
        with self._lock:
            self._closed = True
            if self._zygote is not None:
                self._zygote.close(timeout_s=5.0)
                self._zygote = None


def make_launcher(mode: LaunchMode = "fork", *, preload: Sequence[str] = ()) -> Launcher:
    """A :class:`ZygoteLauncher` (``fork``, where the OS can fork) or a
    :class:`SpawnLauncher` (``spawn``).

    Args:
        mode: ``fork`` or ``spawn``.
        preload: Modules the zygote imports at start.
    """
    if mode == "fork" and hasattr(os, "fork"):
        return ZygoteLauncher(preload)
    return SpawnLauncher()


def flavor_modules(package_path: Path) -> tuple[str, ...]:
    """The modules worth importing before loading the package at ``package_path``.

    From its manifest: ``sklearn`` and the estimator's module for the sklearn flavor,
    ``onnxruntime`` for onnx, ``cloudpickle`` for pyfunc; an imported MLflow model by
    the loader recorded for it. Best effort: ``()`` when the manifest is unreadable or
    the flavor unknown.
    """
    from modelyard.models import read_manifest

    try:
        manifest = read_manifest(package_path)
    except (ModelyardError, OSError):
        return ()
    flavor, config = manifest.flavor, manifest.flavor_config
    if flavor == "mlflow":
        flavor = str(config.get("loader"))
        if flavor == "pyfunc":
            return ("mlflow.pyfunc",)
    modules = _FLAVOR_MODULES.get(flavor, ())
    estimator = config.get("estimator_class")
    if flavor == "sklearn" and isinstance(estimator, str) and estimator.startswith("sklearn."):
        # Only sklearn's own modules: the manifest is not trusted before verification.
        modules = (*modules, estimator.rpartition(".")[0])
    return modules
