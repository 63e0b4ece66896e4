"""The flavor contract: how one kind of model is written into a package and read back.

A flavor is stateless. :meth:`Flavor.save` writes the model's files into a fresh
directory (that later becomes the package) and returns the flavor's own manifest fields;
:meth:`Flavor.load` receives the files only after every digest was verified and returns
a :class:`Predictor`.

Contract for implementations:
    * ``save`` writes only inside ``dest`` and returns JSON-serializable fields.
    * ``load`` reads package files through :class:`VerifiedFiles` — ``read_bytes`` for
      anything it deserializes, so what is unpickled is exactly what was verified.
    * ``Predictor.predict`` receives data already validated against the input
      signature (a DataFrame for a column schema, an ndarray for a tensor schema, or the
      caller's data normalized to one of these when there is no signature) and returns a
      numpy array with one entry (row) per input row.
    * Heavy libraries are imported inside methods, never at module import.
"""

from __future__ import annotations

import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import pandas as pd

from modelyard.models.manifest import VerifiedFiles
from modelyard.models.signature import Array, JSONValue, Signature, TensorSchema


class Predictor(Protocol):
    """A loaded model, ready to predict."""

    def predict(self, data: pd.DataFrame | Array) -> Array:
        """Predict on validated input; return one entry (or row) per input row."""
        ...


@dataclass(frozen=True)
class SavedFlavor:
    """What :meth:`Flavor.save` reports: the flavor's manifest fields, and a signature
    the model itself declares (an ONNX graph, an MLmodel file), if any."""

    config: Mapping[str, JSONValue] = field(default_factory=dict)
    signature: Signature | None = None


class Flavor(ABC):
    """One way of packaging a model (``sklearn``, ``onnx``, ``pyfunc``, ``mlflow``)."""

    name: ClassVar[str]
    distributions: ClassVar[tuple[str, ...]] = ()
    """Installed distributions whose versions the manifest records."""

    @abstractmethod
    def accepts(self, model: object) -> bool:
        """Whether auto-detection should pick this flavor for ``model``."""

    @abstractmethod
    def save(self, model: object, dest: Path) -> SavedFlavor:
        """Write ``model``'s files into the existing, empty directory ``dest``.

        Raises:
            InvalidInput: the model cannot be saved with this flavor.
        """

    @abstractmethod
    def load(self, files: VerifiedFiles, config: Mapping[str, JSONValue]) -> Predictor:
        """Load a verified package.

        Raises:
            InvalidInput: the package is not loadable here (a missing library, an
                unsupported serialization format); the message says what to install.
        """


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of the named distributions; those not installed are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def as_output(result: object, outputs: object = None) -> Array:
    """Turn whatever a model's ``predict`` returned into a numpy array.

    A ``(n, 1)`` result is flattened to ``(n,)`` when the output signature says the output
    is one-dimensional, so converted models answer in the same shape as the original.
    """
    if isinstance(result, pd.DataFrame | pd.Series):
        array = result.to_numpy()
    else:
        array = np.asarray(result)
    if (
        isinstance(outputs, TensorSchema)
        and len(outputs.shape) == 1
        and array.ndim == 2
        and array.shape[-1] == 1
    ):
        array = array.ravel()
    return array
