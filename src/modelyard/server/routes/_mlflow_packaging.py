"""Turning an MLflow model directory already in the artifact store into a registry version.

``model-versions/create`` names its source as MLflow does: ``models:/<model_id>`` (an
MLflow 3 logged model), ``runs:/<run_id>/<path>``, or an ``mlflow-artifacts:/`` URI of
a run's folder or of a logged model. The source's files are already content-addressed
blobs, so nothing is copied: the version's files are the MLflow model directory under
``mlflow_model/`` plus a synthesized ``modelyard.yaml`` (flavor ``mlflow``, the SHA-256
and size of every file, the signature mapped from ``MLmodel``). The version is then an
ordinary modelyard version, verified file by file before anything is unpickled when
``my.load_model`` loads it.

``modelyard.models`` imports pandas and scikit-learn; it is imported on the first
registration only, keeping the server's start light.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from modelyard.auth import Principal
from modelyard.core.entities import ArtifactEntry, Role
from modelyard.core.errors import InvalidInput
from modelyard.core.models import ModelVersion
from modelyard.core.tracking import run_artifact_namespace
from modelyard.server._context import AppContext
from modelyard.server._resources import parse_mlflow_artifact_path
from modelyard.store.logged_model_repo import logged_model_namespace

if TYPE_CHECKING:
    from modelyard.models.signature import JSONValue

MANIFEST_FILE = "modelyard.yaml"
_LOGGED_MODEL_URI = re.compile(r"^models:/(?P<id>m-[0-9a-f]{32})/?$")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})(?:/(?P<path>.*))?$")
_ARTIFACTS_URI = re.compile(r"^mlflow-artifacts:(?://[^/]*)?/(?P<path>.+)$")


@dataclass(frozen=True)
class ModelSource:
    """Where an MLflow model directory lives in the artifact index."""

    project: str
    namespace: str
    prefix: str
    run_id: str | None
    logged_model_id: str | None


def resolve_source(ctx: AppContext, source: str, model_id: str = "") -> ModelSource:
    """Find the MLflow model directory ``source`` (or the logged model ``model_id``) names.

    Raises:
        InvalidInput: the source has an unsupported shape.
        NotFound: the run or logged model does not exist.
    """
    logged = _LOGGED_MODEL_URI.match(source.strip())
    if model_id or logged:
        return _logged_model_source(ctx, model_id or (logged["id"] if logged else ""))
    runs = _RUNS_URI.match(source.strip())
    if runs:
        return _run_source(ctx, runs["run"], (runs["path"] or "").strip("/"))
    artifacts = _ARTIFACTS_URI.match(source.strip())
    if artifacts:
        where = parse_mlflow_artifact_path(artifacts["path"])
        if where.kind == "logged_model":
            return _logged_model_source(ctx, where.owner)
        if where.kind == "run":
            return _run_source(ctx, where.owner, where.relative.strip("/"))
    raise InvalidInput(
        f"unsupported model version source {source!r}: use models:/<model_id>, "
        "runs:/<run_id>/<path> or an mlflow-artifacts:/ URI of a run's or logged model's files"
    )


def _logged_model_source(ctx: AppContext, model_id: str) -> ModelSource:
    model = ctx.store.logged_models.get(model_id)
    return ModelSource(
        model.project, logged_model_namespace(model_id), "", model.source_run_id, model_id
    )


def _run_source(ctx: AppContext, run_id: str, path: str) -> ModelSource:
    project = ctx.store.tracking.project_of_run(run_id)
    prefix = f"{path}/" if path else ""
    listed = ctx.store.artifacts.list(run_artifact_namespace(run_id), prefix + "MLmodel")
    if any(e.path == prefix + "MLmodel" for e in listed):
        return ModelSource(project, run_artifact_namespace(run_id), prefix, run_id, None)
    # MLflow 3 keeps a model logged "in" a run as a logged model named after the path.
    run = ctx.store.tracking.get_run(run_id)
    found, _more = ctx.store.logged_models.search(
        [run.experiment_id], equals={"name": path, "source_run_id": run_id}, limit=1
    )
    if not found:
        raise InvalidInput(f"run {run_id} has no MLflow model at {path!r}: no MLmodel file")
    return _logged_model_source(ctx, found[0].id)


def register_mlflow_model(
    ctx: AppContext,
    caller: Principal,
    project: str,
    name: str,
    source_uri: str,
    *,
    model_id: str = "",
    description: str = "",
    tags: dict[str, str] | None = None,
) -> ModelVersion:
    """Register the MLflow model at ``source_uri`` as the next version of ``name``.

    The caller needs EDITOR in ``project`` and VIEWER where the source lives.

    Raises:
        InvalidInput: the source has no ``MLmodel`` or no flavor modelyard can load.
        NotFound: the source does not exist.
    """
    caller.require(project, Role.EDITOR)
    source = resolve_source(ctx, source_uri, model_id)
    caller.require(source.project, Role.VIEWER)
    entries = ctx.store.artifacts.list(source.namespace, source.prefix)
    model_files = {e.path[len(source.prefix) :]: e for e in entries}
    mlmodel = model_files.get("MLmodel")
    if mlmodel is None:
        raise InvalidInput(f"{source_uri} is not an MLflow model: it has no MLmodel file")
    manifest = build_manifest(
        _parse_mlmodel(ctx.blobs.read_bytes(mlmodel.digest)),
        sorted(model_files.items()),
        source.run_id,
    )
    stored = ctx.blobs.put_bytes(manifest)
    from modelyard.models.mlflow import MODEL_DIR

    files = [ArtifactEntry(MANIFEST_FILE, stored.digest, stored.size)] + [
        ArtifactEntry(f"{MODEL_DIR}/{rel}", e.digest, e.size)
        for rel, e in sorted(model_files.items())
    ]
    signature = json.loads(manifest)["signature"]
    version_source = f"models:/{source.logged_model_id}" if source.logged_model_id else source_uri
    return ctx.store.registry.create_version(
        project,
        name,
        source_run_id=source.run_id,
        source_uri=version_source,
        flavor="mlflow",
        signature_json="" if signature is None else json.dumps(signature),
        package_digest=stored.digest,
        files=files,
        user=caller.user,
        description=description,
        tags=tags,
    )


def _parse_mlmodel(data: bytes) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"invalid MLmodel file: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("flavors"), dict):
        raise InvalidInput("invalid MLmodel file: no 'flavors' mapping")
    return doc


def build_manifest(
    mlmodel: dict[str, Any], files: list[tuple[str, ArtifactEntry]], run_id: str | None
) -> bytes:
    """The ``modelyard.yaml`` of an ``mlflow``-flavor package over an MLflow model directory.

    The same document ``modelyard.models.import_mlflow_model`` writes: the loader chosen
    from the MLmodel's flavors, the mapped signature, and each file under ``mlflow_model/``.

    Args:
        mlmodel: The parsed ``MLmodel`` file.
        files: ``(path in the MLflow model directory, its index entry)`` pairs.
        run_id: The run that produced the model, if any.

    Returns:
        The manifest's bytes.
    """
    from modelyard.models.manifest import ModelManifest, PackageFile, encode_manifest
    from modelyard.models.mlflow import MODEL_DIR, mlflow_signature, pyfunc_loader

    flavors: dict[str, Any] = mlmodel["flavors"]
    config: dict[str, JSONValue] = pyfunc_loader(flavors)
    config["model_dir"] = MODEL_DIR
    config["mlflow_flavors"] = [str(k) for k in sorted(flavors)]
    config["mlflow_version"] = str(mlmodel.get("mlflow_version", "unknown"))
    pyfunc = flavors.get("python_function")
    python_version = pyfunc.get("python_version") if isinstance(pyfunc, dict) else None
    libraries = {"mlflow": config["mlflow_version"]}
    sklearn = flavors.get("sklearn")
    if isinstance(sklearn, dict) and sklearn.get("sklearn_version"):
        libraries["scikit-learn"] = str(sklearn["sklearn_version"])
    manifest = ModelManifest(
        flavor="mlflow",
        files=tuple(
            PackageFile(f"{MODEL_DIR}/{rel}", entry.digest, entry.size) for rel, entry in files
        ),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        python_version=str(python_version or platform.python_version()),
        libraries={k: str(v) for k, v in libraries.items()},
        signature=mlflow_signature(mlmodel),
        source_run=run_id,
        flavor_config=config,
    )
    return encode_manifest(manifest)
