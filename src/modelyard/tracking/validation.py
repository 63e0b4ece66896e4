"""What a key, a value and a batch may be; every message names the field (MLflow's limits)."""

from __future__ import annotations

import math
import re

from modelyard.core.errors import InvalidInput
from modelyard.core.tracking import DatasetInput, Metric

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_NAME_LENGTH = 256
MAX_INT64 = 2**63 - 1
_KEY_RE = re.compile(r"^[\w./\- :]+$")


def validate_key(kind: str, key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{kind} key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"{kind} key {key[:40]!r}… is longer than {MAX_KEY_LENGTH} characters")
    if not _KEY_RE.match(key):
        raise InvalidInput(
            f"invalid {kind} key {key!r}: use letters, digits, and _ - . / : or space"
        )
    if any(part == ".." for part in key.split("/")):
        raise InvalidInput(f"invalid {kind} key {key!r}: '..' is not allowed")
    return key


def validate_param(key: str, value: str) -> tuple[str, str]:
    validate_key("param", key)
    if len(value) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidInput(
            f"param {key!r} value is {len(value)} characters; the limit is {MAX_PARAM_VALUE_LENGTH}"
        )
    return key, value


def validate_tag(key: str, value: str) -> tuple[str, str]:
    validate_key("tag", key)
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInput(
            f"tag {key!r} value is {len(value)} characters; the limit is {MAX_TAG_VALUE_LENGTH}"
        )
    return key, value


def validate_metric(metric: Metric) -> Metric:
    validate_key("metric", metric.key)
    if isinstance(metric.value, bool) or not isinstance(metric.value, int | float):
        raise InvalidInput(f"metric {metric.key!r} value must be a number")
    for field, number in (("step", metric.step), ("timestamp", metric.timestamp_ms)):
        if isinstance(number, bool) or not isinstance(number, int) or abs(number) > MAX_INT64:
            raise InvalidInput(f"metric {metric.key!r} {field} must be a 64-bit integer")
    return metric


def validate_name(kind: str, name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput(f"{kind} name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{kind} name is longer than {MAX_NAME_LENGTH} characters")
    return name


def parse_metric_value(raw: float | int | str) -> float:
    """Numbers, or the strings ``NaN``, ``Infinity``, ``-Infinity`` (JSON has no NaN)."""
    if isinstance(raw, bool):
        raise InvalidInput("metric value must be a number, not a boolean")
    if isinstance(raw, int | float):
        return float(raw)
    text = raw.strip().lower()
    special = {"nan": math.nan, "infinity": math.inf, "inf": math.inf}
    if text in special:
        return special[text]
    if text in ("-infinity", "-inf"):
        return -math.inf
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"metric value {raw!r} is not a number") from None


# MLflow's limits on a logged dataset (``mlflow/utils/validation.py``).
MAX_DATASET_NAME_LENGTH = 500
MAX_DATASET_DIGEST_LENGTH = 36
MAX_DATASET_SOURCE_TYPE_LENGTH = 36
MAX_DATASET_SOURCE_LENGTH = 65535
MAX_DATASET_SCHEMA_LENGTH = 1048575
MAX_DATASET_PROFILE_LENGTH = 16384
MAX_INPUT_TAG_KEY_LENGTH = 255
MAX_INPUT_TAG_VALUE_LENGTH = 500


def validate_dataset_input(item: DatasetInput) -> DatasetInput:
    """Check one MLflow dataset input against MLflow's limits.

    Raises:
        InvalidInput: an empty name or digest, or a field over its limit (named).
    """
    ds = item.dataset
    if not ds.name or not ds.digest:
        raise InvalidInput("a dataset input needs a non-empty dataset name and digest")
    limits = (
        ("dataset name", ds.name, MAX_DATASET_NAME_LENGTH),
        ("dataset digest", ds.digest, MAX_DATASET_DIGEST_LENGTH),
        ("dataset source_type", ds.source_type, MAX_DATASET_SOURCE_TYPE_LENGTH),
        ("dataset source", ds.source, MAX_DATASET_SOURCE_LENGTH),
        ("dataset schema", ds.schema, MAX_DATASET_SCHEMA_LENGTH),
        ("dataset profile", ds.profile, MAX_DATASET_PROFILE_LENGTH),
    )
    for what, value, limit in limits:
        if len(value) > limit:
            raise InvalidInput(f"{what} is {len(value)} characters; the limit is {limit}")
    for key, value in item.tags:
        if not key or len(key) > MAX_INPUT_TAG_KEY_LENGTH:
            raise InvalidInput(
                f"input tag key {key[:40]!r} must be 1 to {MAX_INPUT_TAG_KEY_LENGTH} characters"
            )
        if len(value) > MAX_INPUT_TAG_VALUE_LENGTH:
            raise InvalidInput(
                f"input tag {key!r} value is {len(value)} characters; "
                f"the limit is {MAX_INPUT_TAG_VALUE_LENGTH}"
            )
    return item
