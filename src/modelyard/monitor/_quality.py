"""Ground truth: reading label files, and model quality per time bucket (pure).

A label file has a ``request_id`` column (the id the gateway answered with in
``x-request-id``, or the OIP body's ``id``), a ``label`` column and, for requests of
several rows, an optional ``row`` column (the row's index in its request; 0 otherwise).

Quality of the joined rows (logged prediction, label):

* classification (labels that are whole numbers, booleans or strings): accuracy, and
  for two classes with numeric predictions ROC AUC (the Mann-Whitney statistic, ties
  counted half);
* regression (labels with fractions): MAE and RMSE.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np

from modelyard.core.errors import InvalidInput

MAX_LABEL_ROWS = 5_000_000
_PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")


def read_labels(data: bytes, content_type: str) -> Any:
    """A label upload as a table ``(request_id: string, row: int32, label)``.

    Parquet (``application/vnd.apache.parquet`` or the file's magic bytes), CSV
    (``text/csv``) or JSON (``{"labels": [{"request_id": ..., "label": ..., "row": 0}]}``).

    Raises:
        InvalidInput: an unreadable file, a missing column, an empty or null id, too
            many rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not data:
        raise InvalidInput("the label file is empty")
    kind = content_type.split(";")[0].strip().lower()
    try:
        if data[:4] == b"PAR1" or kind in (
            "application/vnd.apache.parquet",
            "application/x-parquet",
        ):
            table = pq.read_table(io.BytesIO(data))
        elif kind == "application/json":
            doc = json.loads(data)
            rows = doc.get("labels") if isinstance(doc, dict) else None
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise InvalidInput(
                    'JSON labels must be {"labels": [{"request_id": ..., "label": ...}]}'
                )
            table = pa.Table.from_pylist(rows)
        else:
            table = pacsv.read_csv(
                io.BytesIO(data),
                convert_options=pacsv.ConvertOptions(column_types={"request_id": pa.string()}),
            )
    except InvalidInput:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, OSError) as exc:
        raise InvalidInput(f"the label file could not be read: {str(exc)[:300]}") from None
    names = table.schema.names
    for needed in ("request_id", "label"):
        if needed not in names:
            raise InvalidInput(f"the label file has no {needed!r} column (it has {names})")
    if table.num_rows == 0:
        raise InvalidInput("the label file has no rows")
    if table.num_rows > MAX_LABEL_ROWS:
        raise InvalidInput(f"at most {MAX_LABEL_ROWS} labels per upload, got {table.num_rows}")
    try:
        ids = pc.cast(table.column("request_id"), pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidInput("request_id must be text") from None
    if ids.null_count or pc.any(pc.equal(pc.utf8_length(ids), 0)).as_py():
        first = _first_bad(ids)
        raise InvalidInput(f"request_id is empty or missing on line {first + 1} of the labels")
    if "row" in names:
        try:
            rows_col = pc.cast(table.column("row"), pa.int32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidInput("row must be a whole number >= 0") from None
        if rows_col.null_count or pc.any(pc.less(rows_col, 0)).as_py():
            raise InvalidInput("row must be a whole number >= 0 on every line")
    else:
        rows_col = pa.array(np.zeros(table.num_rows, np.int32))
    label = table.column("label")
    if label.null_count:
        first = _first_bad(label)
        raise InvalidInput(f"label is missing on line {first + 1} of the labels")
    return pa.table({"request_id": ids, "row": rows_col, "label": label})


def _first_bad(column: Any) -> int:
    values = column.to_pylist()
    for i, v in enumerate(values):
        if v is None or v == "":
            return i
    return 0


def quality_buckets(joined: Any, *, bucket_s: float) -> list[dict[str, Any]]:
    """Quality per time bucket of joined rows (``_ts``, ``_prediction``, ``label``).

    ``bucket_s`` 0 puts every row in one bucket. Buckets are aligned to multiples of
    ``bucket_s`` since the epoch, oldest first.
    """
    import pyarrow as pa

    if joined is None or joined.num_rows == 0:
        return []
    ts_ms = joined.column("_ts").cast(pa.int64()).to_numpy()
    prediction = joined.column("_prediction")
    label = joined.column("label")
    if bucket_s > 0:
        width = int(bucket_s * 1000)
        keys = (ts_ms // width) * width
    else:
        keys = np.zeros(len(ts_ms), np.int64)
    pred_values = _values(prediction)
    label_values = _values(label)
    out = []
    for key in np.unique(keys):
        mask = keys == key
        entry: dict[str, Any] = {"start_ms": int(key) if bucket_s > 0 else int(ts_ms.min()),
                                 "rows": int(mask.sum())}  # fmt: skip
        entry.update(quality(pred_values[mask], label_values[mask]))
        out.append(entry)
    return out


def _values(column: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
        # Per-class scores: the predicted class is the arg-max (labels are 0..k-1).
        rows = column.to_pylist()
        return np.array([int(np.argmax(r)) if r else -1 for r in rows])
    return column.to_numpy(zero_copy_only=False)


def quality(prediction: Any, label: Any) -> dict[str, float | None]:
    """Accuracy (and AUC for two classes), or MAE and RMSE for fractional labels."""
    if len(label) == 0:
        return {}
    numeric = label.dtype.kind in "iufb" and prediction.dtype.kind in "iufb"
    if numeric and label.dtype.kind == "f" and not np.all(np.mod(label, 1) == 0):
        error = prediction.astype(np.float64) - label.astype(np.float64)
        return {"mae": float(np.mean(np.abs(error))), "rmse": float(math.sqrt(np.mean(error**2)))}
    if numeric:
        same = prediction.astype(np.float64) == label.astype(np.float64)
    else:
        same = prediction.astype(str) == label.astype(str)
    result: dict[str, float | None] = {"accuracy": float(np.mean(same))}
    classes = np.unique(label)
    if numeric and len(classes) == 2:
        result["auc"] = roc_auc(prediction.astype(np.float64), label == classes[1])
    return result


def roc_auc(score: Any, positive: Any) -> float | None:
    """The probability a random positive scores above a random negative (ties: half)."""
    from scipy.stats import rankdata

    n_pos = int(np.sum(positive))
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
