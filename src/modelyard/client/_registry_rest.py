"""REST calls of the model registry API, decoded into frozen entities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from modelyard.core.entities import ArtifactEntry
from modelyard.core.models import AliasChange, ModelVersion, RegisteredModel


class _Requester(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def download_to(
        self, url: str, dest: Path, expected_digest: str | None = None
    ) -> ArtifactEntry: ...


def _base(project: str, name: str | None = None) -> str:
    url = f"/api/v1/projects/{quote(project, safe='')}/models"
    return url if name is None else f"{url}/{quote(name, safe='')}"


def model_of(d: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=d["name"],
        project=d["project"],
        description=d["description"],
        created_at_ms=d["created_at_ms"],
        updated_at_ms=d["updated_at_ms"],
        tags=dict(d.get("tags", {})),
        aliases={k: int(v) for k, v in d.get("aliases", {}).items()},
        latest_version=d.get("latest_version"),
    )


def version_of(d: dict[str, Any]) -> ModelVersion:
    signature = d.get("signature")
    return ModelVersion(
        model=d["model"],
        project=d["project"],
        version=int(d["version"]),
        source_run_id=d.get("source_run_id"),
        source_uri=d["source_uri"],
        flavor=d["flavor"],
        signature_json=json.dumps(signature) if signature is not None else "",
        package_digest=d["package_digest"],
        status=d["status"],
        description=d["description"],
        user=d["user"],
        created_at_ms=d["created_at_ms"],
        aliases=tuple(d.get("aliases", [])),
        tags=dict(d.get("tags", {})),
        files=tuple(ArtifactEntry(f["path"], f["digest"], f["size"]) for f in d.get("files", [])),
    )


def change_of(d: dict[str, Any]) -> AliasChange:
    return AliasChange(
        d["model"], d["alias"], d.get("from_version"), d.get("to_version"), d["user"],
        d["timestamp_ms"],
    )  # fmt: skip


class RegistryCalls:
    """Mixed into ModelyardClient: registered models, versions, aliases, version files."""

    def create_model(
        self: _Requester, project: str, name: str, description: str = ""
    ) -> RegisteredModel:
        body = {"name": name, "description": description}
        return model_of(self.request("POST", _base(project), json=body))

    def list_models(self: _Requester, project: str) -> list[RegisteredModel]:
        return [model_of(d) for d in self.request("GET", _base(project))]

    def get_model(
        self: _Requester, project: str, name: str
    ) -> tuple[RegisteredModel, list[ModelVersion]]:
        data = self.request("GET", _base(project, name))
        return model_of(data), [version_of(v) for v in data["versions"]]

    def register_version(
        self: _Requester,
        project: str,
        name: str,
        run_id: str,
        artifact_path: str = "model",
        description: str = "",
    ) -> ModelVersion:
        body = {"run_id": run_id, "artifact_path": artifact_path, "description": description}
        return version_of(self.request("POST", f"{_base(project, name)}/versions", json=body))

    def get_version(self: _Requester, project: str, name: str, ref: str | int) -> ModelVersion:
        url = f"{_base(project, name)}/versions/{quote(str(ref), safe='')}"
        return version_of(self.request("GET", url))

    def delete_version(self: _Requester, project: str, name: str, version: int) -> None:
        self.request("DELETE", f"{_base(project, name)}/versions/{int(version)}")

    def set_alias(
        self: _Requester, project: str, name: str, alias: str, version: int
    ) -> AliasChange:
        url = f"{_base(project, name)}/aliases/{quote(alias, safe='')}"
        return change_of(self.request("PUT", url, json={"version": int(version)}))

    def delete_alias(self: _Requester, project: str, name: str, alias: str) -> AliasChange:
        url = f"{_base(project, name)}/aliases/{quote(alias, safe='')}"
        return change_of(self.request("DELETE", url))

    def alias_history(self: _Requester, project: str, name: str) -> list[AliasChange]:
        return [change_of(d) for d in self.request("GET", f"{_base(project, name)}/history")]

    def download_version_file(
        self: _Requester, version: ModelVersion, entry: ArtifactEntry, dest: Path
    ) -> ArtifactEntry:
        """Download one file of a version; refused unless it has the registered digest."""
        url = (
            f"{_base(version.project, version.model)}/versions/{version.version}"
            f"/files/{quote(entry.path)}"
        )
        return self.download_to(url, dest, entry.digest)
