"""A step's output: a dataset version, or a cloudpickled value stored as a run artifact.

Recorded on the step's run as the ``modelyard.step.output`` tag::

    {"kind": "dataset", "ref": "features@v3", "digest": "<manifest digest>"}
    {"kind": "artifact", "path": "outputs/train.pkl", "sha256": "...", "run_id": "..."}

``run_id`` names the run holding the artifact: a CACHED step points at its origin's.
Artifacts are verified against their recorded sha256 before they are unpickled.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle  # type: ignore[import-untyped]

from modelyard.core.entities import ArtifactEntry
from modelyard.core.errors import IntegrityError, InvalidInput, ModelyardError
from modelyard.data import DatasetRef, parse_ref

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient


@dataclass(frozen=True)
class StepOutput:
    """Where a step's output is and the digest that identifies its content."""

    kind: str  # "dataset" | "artifact"
    digest: str  # manifest digest of the dataset version, or sha256 of the pickle
    ref: str | None = None  # dataset: name@vN
    path: str | None = None  # artifact: outputs/<step>.pkl
    run_id: str | None = None  # artifact: the run holding it

    def to_json(self) -> str:
        if self.kind == "dataset":
            return json.dumps({"kind": "dataset", "ref": self.ref, "digest": self.digest})
        return json.dumps(
            {"kind": "artifact", "path": self.path, "sha256": self.digest, "run_id": self.run_id}
        )

    @classmethod
    def from_json(cls, text: str) -> StepOutput:
        """Parse the tag.

        Raises:
            InvalidInput: it is not an output document.
        """
        try:
            d = json.loads(text)
            if d["kind"] == "dataset":
                return cls("dataset", str(d["digest"]), ref=str(d["ref"]))
            if d["kind"] == "artifact":
                return cls("artifact", str(d["sha256"]), path=str(d["path"]), run_id=d["run_id"])
        except (ValueError, KeyError, TypeError):
            pass
        raise InvalidInput(f"invalid step output record {text[:200]!r}")

    def __str__(self) -> str:
        return str(self.ref) if self.kind == "dataset" else f"{self.path} ({self.digest[:12]})"


def artifact_path(step: str) -> str:
    return f"outputs/{step}.pkl"


def store_output(
    client: ModelyardClient, project: str, step: str, run_id: str, value: Any
) -> StepOutput:
    """Record ``value`` as the output of ``step``'s run ``run_id``.

    A :class:`DatasetRef` is resolved to a concrete version (``@latest`` included);
    anything else is cloudpickled and uploaded as ``outputs/<step>.pkl``.
    """
    if isinstance(value, DatasetRef):
        version = client.get_dataset_version(project, str(value))
        return StepOutput("dataset", version.manifest_digest, ref=version.ref)
    data = cloudpickle.dumps(value)
    entry = client.log_run_artifact(run_id, artifact_path(step), data)
    return StepOutput("artifact", entry.digest, path=entry.path, run_id=run_id)


def load_output(client: ModelyardClient, output: StepOutput) -> Any:
    """The value of an output: a :class:`DatasetRef`, or the unpickled artifact.

    Raises:
        IntegrityError: the bytes received differ from the recorded sha256.
        Unavailable: the download failed (a server refuses to send a blob that fails
            its own digest check by breaking off the transfer).
    """
    if output.kind == "dataset":
        return parse_ref(str(output.ref))
    if output.path is None or output.run_id is None:
        raise InvalidInput(f"artifact output without a path or run: {output}")
    with tempfile.TemporaryDirectory(prefix="modelyard-step-") as tmp:
        dest = Path(tmp) / "value.pkl"
        entry = ArtifactEntry(output.path, output.digest, 0)
        try:
            client.download_run_artifact(output.run_id, entry, dest)
        except ModelyardError as exc:  # e.g. the server refusing a blob that fails its digest
            where = f"step output {output.path} of run {output.run_id}"
            raise type(exc)(f"{where} could not be loaded: {exc.message}") from exc
        data = dest.read_bytes()
    if hashlib.sha256(data).hexdigest() != output.digest:  # never unpickle unverified bytes
        raise IntegrityError(f"output {output.path} of run {output.run_id} failed verification")
    return cloudpickle.loads(data)
