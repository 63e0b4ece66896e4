"""The dataset side of the SDK: ``my.use_dataset`` and ``my.log_dataset``.

Inside a run, ``use_dataset`` records an ``input`` edge (dataset version → run) and
``log_dataset`` an ``output`` edge (run → dataset version). Files are materialized once
per content under ``$MODELYARD_HOME/cache/datasets/<manifest digest>/``, each verified
against its recorded digest on download.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelyard.core.datasets import DatasetVersion
from modelyard.core.errors import InvalidInput
from modelyard.data.add import add_dataset, get_dataset
from modelyard.data.hashing import hash_cache_path
from modelyard.tracking import fluent

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

COMPLETE_MARKER = ".modelyard-complete"


def use_dataset(ref: str, *, as_: Literal["path", "pandas", "arrow"] = "path") -> Any:
    """Materialize a dataset version locally and, inside a run, record it as an input.

    Args:
        ref: ``name@vN``, ``name@latest`` or ``name`` (the latest version).
        as_: ``path`` — the local file for a one-file version, else the directory;
            ``pandas`` / ``arrow`` — the version's one CSV/Parquet table, read.

    Returns:
        A :class:`pathlib.Path`, a ``pandas.DataFrame`` or a ``pyarrow.Table``.

    Raises:
        InvalidInput: a bad reference, or ``as_`` is a table type but the version does
            not hold exactly one CSV/Parquet file.
        NotFound: no such dataset or version.
    """
    if as_ not in ("path", "pandas", "arrow"):
        raise InvalidInput(f"as_ must be 'path', 'pandas' or 'arrow', not {as_!r}")
    session = fluent._get()
    client, project = session.client, session.settings.project
    version = client.get_dataset_version(project, ref)
    active = session.active()
    if active is not None:
        client.record_dataset_input(project, version.ref, active.id)
    root = materialize(client, version, session.settings.home / "cache" / "datasets")
    if as_ == "path":
        return root / version.files[0].path if version.file_count == 1 else root
    return _read_table(root, version, as_)


def log_dataset(
    path: str | Path, name: str, *, message: str = "", verify: bool = False
) -> DatasetVersion:
    """Add a file or directory as a version of ``name``, as the active run's output.

    Starts a run if none is active (as ``log_metric`` does). Content identical to the
    latest version makes no new version; the run is still recorded as producing it.
    """
    active = fluent._run_or_start()
    session = fluent._get()
    result = add_dataset(
        session.client,
        session.settings.project,
        Path(path),
        name,
        message=message,
        verify=verify,
        cache_path=hash_cache_path(session.settings.home),
        run_id=active.id,
    )
    return result.version


def materialize(client: ModelyardClient, version: DatasetVersion, cache_root: Path) -> Path:
    """The directory holding ``version``'s files, downloading them on first use."""
    final = cache_root / version.manifest_digest
    if (final / COMPLETE_MARKER).exists():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version.manifest_digest[:12]}.", dir=cache_root))
    try:
        get_dataset(client, version, staging)
        (staging / COMPLETE_MARKER).touch()
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / COMPLETE_MARKER).exists():  # not a concurrent winner: replace
                shutil.rmtree(final, ignore_errors=True)
                os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _read_table(root: Path, version: DatasetVersion, as_: str) -> Any:
    from modelyard.data.profile import table_format

    tables = [f.path for f in version.files if table_format(f.path) is not None]
    if len(tables) != 1:
        raise InvalidInput(
            f"{version.ref} holds {len(tables)} CSV/Parquet files; as_={as_!r} needs exactly "
            "one (use as_='path' and read them yourself)"
        )
    path = root / tables[0]
    if as_ == "pandas":
        import pandas as pd

        if table_format(tables[0]) == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    return pq.read_table(path) if table_format(tables[0]) == "parquet" else pacsv.read_csv(path)
