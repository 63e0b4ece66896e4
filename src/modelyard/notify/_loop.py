"""The background pass shared by the monitor and budget loops: tick every interval in a
daemon thread, and own the dispatcher that delivers what the passes decide."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

from modelyard.notify._dispatch import Dispatcher, OnResult

logger = logging.getLogger(__name__)


class NotifyingLoop(ABC):
    """Calls :meth:`tick` every ``interval_s`` seconds in a daemon thread named ``name``.

    A pass that raises is logged and the next one runs as planned. The dispatcher is the
    one given, or one with default retries reporting to ``on_result``, which the loop
    then owns and closes on :meth:`stop`.
    """

    name = "notifying-loop"

    def __init__(
        self, interval_s: float, dispatcher: Dispatcher | None, on_result: OnResult
    ) -> None:
        self.interval_s = interval_s
        self._dispatcher = dispatcher or Dispatcher(on_result)
        self._own_dispatcher = dispatcher is None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def tick(self) -> None:
        """One pass; it should return soon after ``self._stop`` is set."""

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and close an owned dispatcher.

        A pass stops between items; one stuck in a long item is left to finish alone (a
        daemon thread) rather than hold up the server's shutdown.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._own_dispatcher:
            self._dispatcher.close(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:
                logger.exception("%s pass failed", self.name)
