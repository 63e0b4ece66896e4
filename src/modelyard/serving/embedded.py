"""The runtime inside another server's process: the app of ``modelyard serve``, no uvicorn.

Why this exists: a host that brings its own HTTP server and process model (a Ray Serve
replica, see ``docs/ray-serve.md``) must answer with the same routes, validation,
batching and errors as ``modelyard serve``, so it gets the very same ASGI app
(:class:`~modelyard.serving._app.ServingApp` over a
:class:`~modelyard.serving._runtime.ModelRuntime`) instead of a second predictor. The
host calls :meth:`EmbeddedApp.start` once (warm-up, batching) and :meth:`EmbeddedApp.stop`
when it shuts down; the model is verified against its registered digests when loaded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from modelyard.serving.options import RuntimeOptions
from modelyard.serving.server import ResolvedModel

AsgiApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


@dataclass(frozen=True)
class EmbeddedApp:
    """One loaded model and the ASGI app answering for it.

    Attributes:
        app: The ASGI callable (OIP v2, ``/invocations``, ``/predict``, ``/metrics``…).
        name: The OIP model name it answers under.
        version: The OIP model version.
    """

    app: AsgiApp
    name: str
    version: str
    _runtime: Any

    @property
    def ready(self) -> bool:
        """Whether :meth:`start` finished and :meth:`stop` has not begun."""
        return bool(self._runtime.ready)

    async def start(self) -> None:
        """Warm the model up and start batching (on the running event loop)."""
        await self._runtime.start()

    async def stop(self) -> None:
        """Finish queued and running requests, then release the inference threads."""
        await self._runtime.stop()


def load_app(
    resolved: ResolvedModel,
    runtime: RuntimeOptions | None = None,
    *,
    max_body_bytes: int = 8 * 1024 * 1024,
) -> EmbeddedApp:
    """Verify and load ``resolved`` and build its app (not started yet).

    Raises:
        NotFound: ``resolved.path`` is not a package.
        IntegrityError: a file is missing, extra or does not match its digest.
        InvalidInput: the manifest is malformed or the flavor cannot load here.
    """
    from modelyard.models import load_model
    from modelyard.serving._app import ServingApp
    from modelyard.serving._metrics import ServingMetrics
    from modelyard.serving._runtime import ModelRuntime

    loaded = load_model(resolved.path, expected_files=resolved.expected_files)
    holder: list[ModelRuntime] = []
    metrics = ServingMetrics(resolved.name, resolved.version, lambda: holder[0].queue_depth)
    model_runtime = ModelRuntime(
        loaded,
        resolved.name,
        resolved.version,
        runtime or RuntimeOptions(),
        on_batch=metrics.observe_batch,
    )
    holder.append(model_runtime)
    app = ServingApp(model_runtime, metrics, max_body_bytes=max_body_bytes)
    return EmbeddedApp(app, resolved.name, resolved.version, model_runtime)
