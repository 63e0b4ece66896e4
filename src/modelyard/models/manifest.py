"""``modelyard.yaml``: the manifest of a model package, and verifying a package against it.

The manifest is written as indented JSON, which is also valid YAML, so the file reads
the same with or without PyYAML installed; a hand-written YAML manifest is read too
when PyYAML is available.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelyard.artifacts import validate_digest, validate_logical_path
from modelyard.core.errors import IntegrityError, InvalidInput, NotFound
from modelyard.models.signature import JSONValue, Signature

MANIFEST_NAME = "modelyard.yaml"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PackageFile:
    """One file of a package: its relative POSIX path, SHA-256 and size in bytes."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelManifest:
    """The parsed ``modelyard.yaml`` of a model package.

    ``flavor_config`` holds the flavor's own fields (file names, serialization format...);
    ``libraries`` maps distribution names to the versions installed at save time.
    """

    flavor: str
    files: tuple[PackageFile, ...]
    created_at: str
    python_version: str
    libraries: Mapping[str, str] = field(default_factory=dict)
    signature: Signature | None = None
    source_run: str | None = None
    input_example: str | None = None
    flavor_config: Mapping[str, JSONValue] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def digests(self) -> dict[str, str]:
        """Each file's path mapped to its SHA-256 (the form ``expected_files`` takes)."""
        return {f.path: f.sha256 for f in self.files}

    def to_json(self) -> dict[str, JSONValue]:
        """The document written to ``modelyard.yaml``."""
        files: list[JSONValue] = [
            {"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files
        ]
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "signature": None if self.signature is None else self.signature.to_json(),
            "python_version": self.python_version,
            "libraries": dict(self.libraries),
            "files": files,
            "source_run": self.source_run,
            "created_at": self.created_at,
            "input_example": self.input_example,
            "flavor_config": dict(self.flavor_config),
        }

    @classmethod
    def from_json(cls, doc: object) -> ModelManifest:
        """Parse :meth:`to_json` output.

        Raises:
            InvalidInput: a field is missing or malformed; the message names it.
        """
        if not isinstance(doc, dict):
            raise InvalidInput(f"invalid {MANIFEST_NAME}: expected a mapping")
        version = doc.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise InvalidInput(f"unsupported {MANIFEST_NAME} format_version {version!r}")
        for key in ("flavor", "created_at", "python_version"):
            if not isinstance(doc.get(key), str):
                raise InvalidInput(f"invalid {MANIFEST_NAME}: {key!r} must be a string")
        libraries = doc.get("libraries") or {}
        config = doc.get("flavor_config") or {}
        if not isinstance(libraries, dict) or not isinstance(config, dict):
            raise InvalidInput(
                f"invalid {MANIFEST_NAME}: 'libraries' and 'flavor_config' must be mappings"
            )
        signature = doc.get("signature")
        return cls(
            format_version=FORMAT_VERSION,
            flavor=doc["flavor"],
            files=_parse_files(doc.get("files")),
            created_at=doc["created_at"],
            python_version=doc["python_version"],
            libraries={str(k): str(v) for k, v in libraries.items()},
            signature=None if signature is None else Signature.from_json(signature),
            source_run=_optional_str(doc, "source_run"),
            input_example=_optional_str(doc, "input_example"),
            flavor_config=config,
        )


def _optional_str(doc: Mapping[str, object], key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"invalid {MANIFEST_NAME}: {key!r} must be a string or null")
    return value


def _parse_files(raw: object) -> tuple[PackageFile, ...]:
    if not isinstance(raw, list):
        raise InvalidInput(f"invalid {MANIFEST_NAME}: 'files' must be a list")
    files = []
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidInput(f"invalid {MANIFEST_NAME}: file entry {item!r} is not a mapping")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"invalid size {size!r} for file {item.get('path')!r}")
        path = validate_logical_path(item.get("path"))  # type: ignore[arg-type]
        if path == MANIFEST_NAME:
            raise InvalidInput(f"invalid {MANIFEST_NAME}: it may not list itself")
        files.append(PackageFile(path, validate_digest(item.get("sha256")), size))  # type: ignore[arg-type]
    if len({f.path for f in files}) != len(files):
        raise InvalidInput(f"invalid {MANIFEST_NAME}: a file is listed twice")
    return tuple(sorted(files, key=lambda f: f.path))


def encode_manifest(manifest: ModelManifest) -> bytes:
    """The bytes of ``modelyard.yaml`` (indented JSON, valid YAML)."""
    text = json.dumps(manifest.to_json(), indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def read_manifest(path: Path) -> ModelManifest:
    """Read the manifest of the package directory ``path``.

    Args:
        path: The package directory.

    Returns:
        The parsed manifest. Nothing is verified against the files yet.

    Raises:
        NotFound: ``path`` has no ``modelyard.yaml``.
        InvalidInput: the manifest is malformed.
    """
    manifest_path = Path(path) / MANIFEST_NAME
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFound(f"{path} is not a model package: no {MANIFEST_NAME}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"invalid {MANIFEST_NAME}: not UTF-8") from exc
    try:
        doc = json.loads(text)
    except ValueError:
        doc = _yaml_load(text)
    return ModelManifest.from_json(doc)


def _yaml_load(text: str) -> object:
    try:
        import yaml
    except ImportError as exc:
        raise InvalidInput(f"invalid {MANIFEST_NAME}: not JSON, and PyYAML is missing") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"invalid {MANIFEST_NAME}: {exc}") from exc


def sha256_file(path: Path) -> tuple[str, int]:
    """The SHA-256 and size of the file at ``path``."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def list_package_files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a relative POSIX path, sorted, manifest excluded.

    Raises:
        IntegrityError: the package contains a symbolic link or a special file.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink() or not (full.is_dir() or full.is_file()):
                raise IntegrityError(f"model package file {rel!r} is a link or special file")
            if full.is_file() and rel != MANIFEST_NAME:
                found.append(rel)
    return sorted(found)


def verify_package(
    path: Path, manifest: ModelManifest, *, expected_files: Mapping[str, str] | None = None
) -> None:
    """Check that the package's files are exactly those of the manifest, byte for byte.

    Args:
        path: The package directory.
        manifest: Its manifest (see :func:`read_manifest`).
        expected_files: Digests recorded elsewhere (at registration), path → SHA-256.
            Each listed file must match; every file of the package other than
            ``modelyard.yaml`` must be listed; ``modelyard.yaml`` is checked when listed.

    Raises:
        IntegrityError: naming the first (in path order) file that is missing, is not
            in the manifest, or whose content does not match its digest.
    """
    root = Path(path)
    on_disk = list_package_files(root)
    listed = {f.path: f for f in manifest.files}
    for rel in sorted(set(on_disk) | set(listed)):
        if rel not in listed:
            raise IntegrityError(f"model package file {rel!r} is not in {MANIFEST_NAME}")
        if rel not in on_disk:
            raise IntegrityError(f"model package file {rel!r} is missing")
        digest, size = sha256_file(root / rel)
        if digest != listed[rel].sha256 or size != listed[rel].size:
            raise IntegrityError(
                f"model package file {rel!r} does not match its recorded digest (tampered?)"
            )
    if expected_files is not None:
        _verify_expected(root, manifest, expected_files)


def _verify_expected(root: Path, manifest: ModelManifest, expected: Mapping[str, str]) -> None:
    recorded = manifest.digests()
    for rel in sorted(set(recorded) | set(expected)):
        if rel not in expected:
            raise IntegrityError(f"model package file {rel!r} was not recorded at registration")
        if rel == MANIFEST_NAME:
            continue
        if rel not in recorded:
            raise IntegrityError(f"model package file {rel!r} recorded at registration is missing")
        if recorded[rel] != expected[rel]:
            raise IntegrityError(
                f"model package file {rel!r} does not match the digest recorded at registration"
            )
    if (
        MANIFEST_NAME in expected
        and sha256_file(root / MANIFEST_NAME)[0] != expected[MANIFEST_NAME]
    ):
        raise IntegrityError(
            f"model package file {MANIFEST_NAME!r} does not match the digest recorded at "
            "registration"
        )


class VerifiedFiles:
    """Read access to a verified package's files for a flavor's loader.

    :meth:`read_bytes` checks the digest again on the bytes it returns, so what a loader
    unpickles is exactly what was verified, even if the file changed in between.
    """

    def __init__(self, root: Path, manifest: ModelManifest) -> None:
        self.root = root
        self.manifest = manifest
        self._digests = manifest.digests()

    def path(self, rel: str) -> Path:
        """The absolute path of a package file (for loaders that take a path).

        Raises:
            IntegrityError: the file is not in the manifest.
        """
        rel = validate_logical_path(rel)
        if rel not in self._digests:
            raise IntegrityError(f"model package file {rel!r} is not in {MANIFEST_NAME}")
        return self.root / rel

    def read_bytes(self, rel: str) -> bytes:
        """The content of a package file, checked against its digest.

        Raises:
            IntegrityError: the file is not in the manifest or does not match it.
        """
        data = self.path(rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != self._digests[validate_logical_path(rel)]:
            raise IntegrityError(f"model package file {rel!r} does not match its recorded digest")
        return data
