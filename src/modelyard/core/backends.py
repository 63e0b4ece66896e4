"""Where a deployment's replicas run: the backend spec, and Kubernetes-style quantities.

A deployment has one :class:`BackendSpec`, chosen at creation and kept for its life:

- ``local`` (the default): replica processes on the server's machine, behind the
  gateway, scaled by modelyard's own autoscaler.
- ``kubernetes``: the same runtime as a container image, as a Deployment per revision
  with a Service, an autoscaler object (``hpa``: HorizontalPodAutoscaler; ``keda``: a
  KEDA ScaledObject, which can scale to zero; ``knative``: a Knative Service instead of
  Deployment + Service + autoscaler), a PodDisruptionBudget, a NetworkPolicy and a
  ServiceMonitor, in ``namespace``.
- ``ray``: a Ray Serve application on the Ray cluster at ``address``, scaled by Serve's
  own autoscaler (``serve``) or by modelyard's policy (``modelyard``).

Pure values, no I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from modelyard.core._json_settings import JsonSettings
from modelyard.core._json_settings import check as _check
from modelyard.core.errors import InvalidInput

BackendKind = Literal["local", "kubernetes", "ray"]
BACKEND_KINDS: tuple[BackendKind, ...] = ("local", "kubernetes", "ray")
Autoscaler = Literal["", "modelyard", "hpa", "keda", "knative", "serve"]
KUBERNETES_AUTOSCALERS = ("hpa", "keda", "knative")
RAY_AUTOSCALERS = ("serve", "modelyard")
DEFAULT_IMAGE = "ghcr.io/modelyard/runtime:0.1.0"

# RFC 1123 label, as Kubernetes requires of namespace names.
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# An OCI image reference: [registry[:port]/]path[:tag][@digest], no spaces.
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")
_RAY_ADDRESS = re.compile(r"^(auto|ray://[^\s/:]+:\d{1,5}|[^\s/:]+:\d{1,5})$")


@dataclass(frozen=True)
class BackendSpec(JsonSettings):
    """Where a deployment runs; see the module docstring.

    Attributes:
        kind: ``local``, ``kubernetes`` or ``ray``.
        namespace: the Kubernetes namespace (kubernetes only).
        autoscaler: ``hpa``, ``keda`` or ``knative`` (kubernetes), ``serve`` or
            ``modelyard`` (ray); empty for local, and "choose for me" on input:
            :meth:`resolved` picks ``keda`` when the deployment scales to zero, else
            ``hpa``, and ``serve`` on Ray.
        address: the Ray cluster (``ray://host:port``, ``host:port`` or ``auto``).
        image: the runtime's container image (kubernetes).
    """

    settings_kind: ClassVar[str] = "backend"

    kind: BackendKind = "local"
    namespace: str = ""
    autoscaler: Autoscaler = ""
    address: str = ""
    image: str = ""

    def __post_init__(self) -> None:
        _check(
            self.kind in BACKEND_KINDS,
            f"backend must be one of {', '.join(BACKEND_KINDS)}, got {self.kind!r}",
        )
        if self.kind == "local":
            for name in ("namespace", "autoscaler", "address", "image"):
                _check(
                    not getattr(self, name),
                    f"--{name} applies only to the kubernetes or ray backend",
                )
        if self.kind == "kubernetes":
            _check(
                self.autoscaler in ("", *KUBERNETES_AUTOSCALERS),
                f"autoscaler on kubernetes must be hpa, keda or knative, got {self.autoscaler!r}",
            )
            _check(not self.address, "--address applies only to the ray backend")
            _check(
                not self.namespace or bool(_DNS_LABEL.fullmatch(self.namespace)),
                f"namespace {self.namespace!r}: use 1-63 lower-case letters, digits and '-'",
            )
            _check(
                not self.image or bool(_IMAGE.fullmatch(self.image)),
                f"image {self.image!r} is not an image reference (registry/name:tag)",
            )
        if self.kind == "ray":
            _check(
                self.autoscaler in ("", *RAY_AUTOSCALERS),
                f"autoscaler on ray must be serve or modelyard, got {self.autoscaler!r}",
            )
            _check(bool(self.address), "the ray backend needs --address (ray://host:port or auto)")
            _check(
                bool(_RAY_ADDRESS.fullmatch(self.address)),
                f"ray address {self.address!r}: use ray://host:port, host:port or auto",
            )
            _check(
                not self.namespace and not self.image,
                "--namespace and --image apply only to kubernetes",
            )

    def resolved(self, min_replicas: int) -> BackendSpec:
        """The spec with defaults filled in for a deployment scaling from ``min_replicas``.

        Raises:
            InvalidInput: ``hpa`` with ``min_replicas == 0`` (a HorizontalPodAutoscaler
                cannot scale to zero).
        """
        if self.kind == "kubernetes":
            autoscaler = self.autoscaler or ("keda" if min_replicas == 0 else "hpa")
            if autoscaler == "hpa" and min_replicas == 0:
                raise InvalidInput(
                    "a HorizontalPodAutoscaler cannot scale to zero: use --autoscaler keda or "
                    "knative, or --min 1"
                )
            return BackendSpec(
                kind="kubernetes",
                namespace=self.namespace or "default",
                autoscaler=autoscaler,
                image=self.image or DEFAULT_IMAGE,
            )
        if self.kind == "ray":
            return BackendSpec(
                kind="ray", autoscaler=self.autoscaler or "serve", address=self.address
            )
        return self


# --- Kubernetes quantities -------------------------------------------------------------

_CPU = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)(m?)$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNIT_MB = {
    None: 1 / 2**20,
    "Ki": 1 / 1024,
    "Mi": 1.0,
    "Gi": 1024.0,
    "Ti": 1024.0**2,
    "k": 1e3 / 2**20,
    "M": 1e6 / 2**20,
    "G": 1e9 / 2**20,
    "T": 1e12 / 2**20,
}


def parse_cpu(text: str) -> float:
    """``"500m"`` -> 0.5, ``"2"`` -> 2.0, ``"0.25"`` -> 0.25 (vCPU).

    Raises:
        InvalidInput: not a positive CPU quantity.
    """
    match = _CPU.fullmatch(text.strip())
    if not match:
        raise InvalidInput(f"cpu {text!r}: use cores (0.5, 2) or millicores (500m)")
    value = float(match.group(1)) / (1000 if match.group(2) else 1)
    if not (value > 0 and math.isfinite(value)):
        raise InvalidInput(f"cpu {text!r} must be more than 0")
    return value


def parse_memory_mb(text: str) -> int:
    """``"1Gi"`` -> 1024, ``"512Mi"`` -> 512, ``"1G"`` -> 954 (MiB, rounded up).

    Raises:
        InvalidInput: not a positive memory quantity.
    """
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        raise InvalidInput(f"memory {text!r}: use a quantity such as 512Mi, 1Gi or 1G")
    mb = math.ceil(float(match.group(1)) * _MEMORY_UNIT_MB[match.group(2)])
    if mb <= 0:
        raise InvalidInput(f"memory {text!r} must be at least 1Mi")
    return mb


def format_cpu(cores: float) -> str:
    """0.5 -> ``"500m"``, 2.0 -> ``"2"`` (millicores rounded up)."""
    milli = math.ceil(round(cores * 1000, 6))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def format_memory(mb: int) -> str:
    """1024 -> ``"1Gi"``, 512 -> ``"512Mi"``."""
    return f"{mb // 1024}Gi" if mb % 1024 == 0 else f"{mb}Mi"
