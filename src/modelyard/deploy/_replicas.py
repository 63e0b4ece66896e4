"""Replica processes of the local backend: package cache, launch, log tails.

The controller decides *how many*; this module, behind
:class:`~modelyard.deploy._local_backend.LocalProcessBackend`, knows *how*: it
materializes a revision's model package from the blob store (each file verified by
digest), starts a runtime process through a :class:`~modelyard.deploy._launcher.Launcher`
on a free port, and turns a dead replica's log into the one line that says why.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelyard.artifacts import BlobStore
from modelyard.core.deployments import Deployment, Replica, Revision
from modelyard.core.entities import ArtifactEntry
from modelyard.deploy._launcher import Launcher, ReplicaSpec
from modelyard.registry.cache import cached_package, expected_files
from modelyard.serving.options import RuntimeOptions
from modelyard.serving.predlog import PredictionLogOptions, revision_spool
from modelyard.store import MetadataStore

LOG_TAIL_BYTES = 4096


@dataclass(frozen=True)
class Package:
    """A revision's model package on local disk, with the digests the loader checks."""

    path: Path
    model_name: str
    model_version: int
    expected_files: dict[str, str]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class ReplicaFactory:
    """Starts replica processes for revisions.

    Args:
        store: to look up model versions.
        blobs: to read (and verify) their files.
        home: ``MODELYARD_HOME``: the package cache and the replica logs live under it.
        launchers: by mode: ``fork`` (zygote) and ``spawn``; a deployment's ``launch``
            setting picks one (``fork`` if its mode is missing).
    """

    def __init__(
        self, store: MetadataStore, blobs: BlobStore, home: Path, launchers: Mapping[str, Launcher]
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._home = home
        self._cache = home / "cache" / "models"
        self._logs = home / "logs" / "replicas"
        self._launchers = dict(launchers)
        self._packages: dict[tuple[str, str, int], Package] = {}

    def close(self) -> None:
        """Close the launchers (replicas keep running)."""
        for launcher in self._launchers.values():
            launcher.close()

    def package(self, project: str, revision: Revision) -> Package:
        """The revision's package, fetched into the cache once.

        Raises:
            NotFound: the model version is gone from the registry.
            IntegrityError: a file does not match its recorded digest.
        """
        key = (project, revision.model_name, revision.model_version)
        found = self._packages.get(key)
        if found is not None and found.path.is_dir():
            return found
        version = self._store.registry.get_version(
            project, revision.model_name, revision.model_version
        )

        def fetch(entry: ArtifactEntry, dest: Path) -> None:
            self._blobs.read_to_path(entry.digest, dest)

        path = cached_package(version, self._cache, fetch)
        package = Package(path, version.model, version.version, expected_files(version))
        self._packages[key] = package
        return package

    def log_path(self, replica_id: str) -> Path:
        return self._logs / f"{replica_id}.log"

    def start(
        self,
        replica_id: str,
        package: Package,
        revision: Revision,
        port: int,
        mode: str = "fork",
        deployment: Deployment | None = None,
    ) -> tuple[int, str]:
        """Launch a replica process; returns ``(pid, mode)``.

        With ``deployment``, the replica logs a sample of its traffic as its monitoring
        settings say, into the revision's spool folder.
        """
        self._logs.mkdir(parents=True, exist_ok=True)
        s = revision.settings
        prediction_log = None
        if deployment is not None:
            monitoring = self._store.monitoring.config(deployment.id)
            prediction_log = PredictionLogOptions(
                directory=str(revision_spool(self._home, deployment.id, revision.number)),
                deployment=deployment.name,
                revision=revision.number,
                replica=replica_id,
                sample_rate=monitoring.log_sample_rate,
                max_bytes_per_s=monitoring.log_max_bytes_per_s,
            )
        spec = ReplicaSpec(
            package_path=package.path,
            model_name=package.model_name,
            model_version=str(package.model_version),
            expected_files=package.expected_files,
            port=port,
            log_path=self.log_path(replica_id),
            runtime=RuntimeOptions(
                batching=s.batching,
                max_batch_size=s.max_batch_size,
                max_latency_ms=s.max_latency_ms,
                threads=1,
            ),
            prediction_log=prediction_log,
        )
        launcher = self._launchers.get(mode) or next(iter(self._launchers.values()))
        launched = launcher.start(spec)
        return launched.pid, launched.mode

    def failure_reason(self, replica: Replica) -> str:
        """The last meaningful line of a dead replica's log (the loader's error, usually)."""
        return log_failure_reason(self.log_path(replica.id))


def log_failure_reason(path: Path) -> str:
    """The last non-empty line of a log that looks like an error, else the last line."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return "the replica exited (no log)"
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return "the replica exited without output"
    for line in reversed(lines):
        if "Error" in line or "error" in line or "Exception" in line:
            return line[:500]
    return lines[-1][:500]
