"""The three stages of the video example as pyfunc models: decode -> detect -> encode.

Each is a plain class with ``predict(self, data)`` (the ``pyfunc`` flavor, see
``docs/models.md``), saved by value with cloudpickle (``run.py`` registers this module
for that), so a replica needs only numpy, pandas and scikit-learn, not this file.

- :class:`Decode` turns frame ids (and the size of each compressed frame) into four
  features of the frame. The "video" is synthetic and deterministic: frame ``i``'s bytes
  come from a generator seeded with ``i``, so every run sees the same frames. Decoding is
  the expensive stage: ``cost_ms`` per frame of simulated work (a sleep, so a small
  machine can run several replicas side by side: the point is the queue, not the CPU).
- :class:`Detect` is the "AI" stage: a small scikit-learn classifier on those features
  (is there something in the frame?), ``cost_ms`` per frame.
- :class:`Encode` turns a detection into the output record: frame id, label, score in
  thousandths and a checksum tying them together, ``cost_ms`` per frame.

Every stage answers one row per input row, and carries the frame id through, so the
driver can check that every frame came out exactly once.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

FEATURES = ["brightness", "contrast", "edges", "saturation"]
MAX_FRAME_BYTES = 8192


def frame_bytes(frame_id: int, nbytes: int) -> NDArray[np.uint8]:
    """The (synthetic) decoded pixels of frame ``frame_id``: ``nbytes`` bytes, the same
    on every run. Every fourth frame has a bright object in it."""
    rng = np.random.default_rng(frame_id)
    pixels = rng.integers(0, 160, size=max(16, min(nbytes, MAX_FRAME_BYTES)), dtype=np.uint8)
    if frame_id % 4 == 0:
        start = len(pixels) // 4
        pixels[start : start + len(pixels) // 4] = 255
    return pixels


def features_of(pixels: NDArray[np.uint8]) -> list[float]:
    """Four numbers that describe a frame: mean level, spread, edge energy, top share."""
    values = pixels.astype(np.float64) / 255.0
    edges = float(np.abs(np.diff(values)).mean())
    return [float(values.mean()), float(values.std()), edges, float((values > 0.9).mean())]


def _rows(data: Any, columns: list[str]) -> NDArray[np.float64]:
    """The model's input as a float array in ``columns`` order (a DataFrame or an array)."""
    if isinstance(data, pd.DataFrame):
        return data[columns].to_numpy(dtype=np.float64)
    return np.asarray(data, dtype=np.float64).reshape(-1, len(columns))


def _work(cost_ms: float, rows: int) -> None:
    """Simulated work: ``cost_ms`` per row of the batch."""
    if cost_ms > 0 and rows > 0:
        time.sleep(cost_ms * rows / 1000.0)


class Decode:
    """``frame_id, nbytes`` -> ``frame_id, brightness, contrast, edges, saturation``."""

    columns = ["frame_id", "nbytes"]

    def __init__(self, cost_ms: float = 40.0) -> None:
        self.cost_ms = cost_ms

    def predict(self, data: Any) -> NDArray[np.float64]:
        rows = _rows(data, self.columns)
        _work(self.cost_ms, len(rows))
        out = [[fid, *features_of(frame_bytes(int(fid), int(n)))] for fid, n in rows]
        return np.asarray(out, dtype=np.float64).reshape(-1, 1 + len(FEATURES))


class Detect:
    """``frame_id`` + the four features -> ``frame_id, label, score`` (the classifier's
    probability that the frame holds an object)."""

    columns = ["frame_id", *FEATURES]

    def __init__(self, classifier: Any, cost_ms: float = 10.0) -> None:
        self.classifier = classifier
        self.cost_ms = cost_ms

    def predict(self, data: Any) -> NDArray[np.float64]:
        rows = _rows(data, self.columns)
        _work(self.cost_ms, len(rows))
        if len(rows) == 0:
            return np.zeros((0, 3))
        frame = pd.DataFrame(rows[:, 1:], columns=FEATURES)
        score = self.classifier.predict_proba(frame)[:, 1]
        label = (score >= 0.5).astype(np.float64)
        return np.column_stack([rows[:, 0], label, score])


class Encode:
    """``frame_id, label, score`` -> the output record ``frame_id, label, score_milli,
    checksum`` (CRC-32 of the other three: the consumer can check the record)."""

    columns = ["frame_id", "label", "score"]

    def __init__(self, cost_ms: float = 3.0) -> None:
        self.cost_ms = cost_ms

    def predict(self, data: Any) -> NDArray[np.float64]:
        rows = _rows(data, self.columns)
        _work(self.cost_ms, len(rows))
        out = []
        for fid, label, score in rows:
            milli = round(float(score) * 1000)
            out.append([fid, label, milli, record_checksum(int(fid), int(label), milli)])
        return np.asarray(out, dtype=np.float64).reshape(-1, 4)


def record_checksum(frame_id: int, label: int, score_milli: int) -> int:
    """The checksum :class:`Encode` puts in a record."""
    return zlib.crc32(f"{frame_id}:{label}:{score_milli}".encode())


def train_detector(frames: int = 400, seed: int = 0) -> Any:
    """A tiny logistic regression on the features of ``frames`` synthetic frames
    (labels: whether the frame has the bright object), fitted on a DataFrame so it
    keeps the feature names."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    ids = np.arange(10_000 + seed, 10_000 + seed + frames)
    x = pd.DataFrame([features_of(frame_bytes(int(i), 2048)) for i in ids], columns=FEATURES)
    y = (ids % 4 == 0).astype(int)
    return LogisticRegression(max_iter=1000).fit(x, y)


def examples() -> dict[str, pd.DataFrame]:
    """An input example per stage (it gives each package its signature)."""
    decode = pd.DataFrame({"frame_id": [0, 1, 2], "nbytes": [2048, 2048, 4096]}, dtype="float64")
    detect = pd.DataFrame(Decode(cost_ms=0).predict(decode), columns=["frame_id", *FEATURES])
    encode = pd.DataFrame(
        {"frame_id": [0.0, 1.0, 2.0], "label": [1.0, 0.0, 0.0], "score": [0.9, 0.2, 0.1]}
    )
    return {"decode": decode, "detect": detect, "encode": encode}
