"""modelyard: a self-hosted ML platform from versioned data to autoscaled endpoints."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
