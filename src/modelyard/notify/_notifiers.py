"""Notification targets: a signed webhook and a registered command (the closed loop).

:func:`check_webhook_url` is the check a webhook URL passes before it is stored (an
alert rule's or a budget's); :class:`WebhookNotifier` checks it again when it is built.
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import MappingProxyType
from typing import IO, Final
from urllib.parse import urlsplit

import httpx

from modelyard.core.clock import Clock, SystemClock
from modelyard.core.errors import InvalidInput
from modelyard.notify._notification import (
    DeliveryResult,
    Notification,
    _secret_bytes,
    sign,
)

#: Bytes of a webhook's response body or a command's output kept in a result.
_OUTPUT_LIMIT: Final = 4096
#: The longest per-attempt timeout a notifier accepts.
_MAX_TIMEOUT_S: Final = 3600.0


def _check_timeout(what: str, timeout_s: float) -> float:
    if not (math.isfinite(timeout_s) and 0 < timeout_s <= _MAX_TIMEOUT_S):
        raise InvalidInput(
            f"{what} timeout must be between 0 and {_MAX_TIMEOUT_S:g} s, got {timeout_s!r}"
        )
    return float(timeout_s)


def check_webhook_url(url: str) -> None:
    """Refuse anything but an absolute http(s) URL with a host.

    Raises:
        InvalidInput: naming the URL and what is wrong with it.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"webhook {url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook {url!r}: use an absolute http:// or https:// URL")
    if len(url) > 2048 or any(ord(c) < 33 for c in url):
        raise InvalidInput(f"webhook {url[:80]!r}: too long or has spaces/control characters")


def _check_url(url: str) -> httpx.URL:
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        raise InvalidInput(f"webhook URL {url!r} is not a valid URL")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidInput(f"webhook URL '{url}' is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidInput(
            f"webhook URL '{url}': only http and https URLs are allowed"
            f" (got scheme '{parsed.scheme}')"
        )
    if not parsed.host:
        raise InvalidInput(f"webhook URL '{url}' has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise InvalidInput(f"webhook URL '{url}' has an invalid port {parsed.port}")
    return parsed


def _redact(url: httpx.URL) -> str:
    """The URL without user info, query or fragment (they may hold tokens)."""
    port = f":{url.port}" if url.port is not None else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}{url.path}"


def _retry_after(value: str | None, now_s: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_s)


class WebhookNotifier:
    """POSTs notifications as signed JSON to an ``http``/``https`` URL.

    Each attempt sends ``Content-Type: application/json``, ``X-Modelyard-Event: <event>``
    (``alert`` for alert rules, ``budget`` for budgets),
    ``X-Modelyard-Delivery: <notification id>``, ``X-Modelyard-Timestamp: <unix s>`` and
    ``X-Modelyard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``.
    Redirects are not followed. Connecting, sending and each wait for the answer are
    bounded by ``timeout_s``, and at most ``timeout_s`` more is spent reading the
    answer's body (of which 4 KiB are kept).

    A 2xx answer is success; 5xx, 408, 429, connection errors and timeouts are
    retryable failures; other answers are final failures.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        timeout_s: float = 5.0,
        *,
        clock: Clock | None = None,
        trust_env: bool = True,
    ) -> None:
        """
        Args:
            url: where to POST; only ``http`` and ``https``.
            secret: the HMAC key shared with the receiver; not empty.
            timeout_s: bound on connecting, sending and each wait for the answer.
            clock: where the timestamp comes from (the system clock by default).
            trust_env: whether proxy settings from the environment apply.

        Raises:
            InvalidInput: a bad URL (named in the message), an empty secret, or a
                timeout that is not a positive number of seconds.
        """
        self._url = _check_url(url)
        self.url = str(url)
        self._secret = _secret_bytes(secret)
        if not self._secret:
            raise InvalidInput("webhook secret must not be empty")
        self.timeout_s = _check_timeout("webhook", timeout_s)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._trust_env = trust_env

    @property
    def target(self) -> str:
        """``webhook <url>`` without credentials, query or fragment."""
        return f"webhook {_redact(self._url)}"

    def __repr__(self) -> str:
        return f"WebhookNotifier({_redact(self._url)!r}, timeout_s={self.timeout_s:g})"

    def headers(self, notification: Notification, timestamp: int, body: bytes) -> dict[str, str]:
        """The headers of one attempt."""
        return {
            "Content-Type": "application/json",
            "User-Agent": "modelyard-alerts/1",
            "X-Modelyard-Event": notification.event,
            "X-Modelyard-Delivery": notification.id,
            "X-Modelyard-Timestamp": str(timestamp),
            "X-Modelyard-Signature": sign(self._secret, timestamp, body),
        }

    def deliver(self, notification: Notification) -> DeliveryResult:
        """Make one POST; never raises for network or HTTP failures."""
        body = notification.body()
        now_s = self._clock.now()
        timestamp = int(now_s)
        headers = self.headers(notification, timestamp, body)
        timeout = httpx.Timeout(self.timeout_s)
        start = time.perf_counter()
        try:
            with (
                httpx.Client(
                    timeout=timeout, follow_redirects=False, trust_env=self._trust_env
                ) as client,
                client.stream("POST", self._url, content=body, headers=headers) as response,
            ):
                output = self._read_some(response, start + 2 * self.timeout_s)
                status = response.status_code
                retry_after = _retry_after(response.headers.get("retry-after"), now_s)
        except httpx.TimeoutException as exc:
            return DeliveryResult(
                ok=False,
                code=None,
                error=f"timed out after {self.timeout_s:g} s ({type(exc).__name__})",
                duration_s=time.perf_counter() - start,
                retryable=True,
            )
        except httpx.TransportError as exc:
            return DeliveryResult(
                ok=False,
                code=None,
                error=f"{type(exc).__name__}: {exc}",
                duration_s=time.perf_counter() - start,
                retryable=True,
            )
        except httpx.HTTPError as exc:
            return DeliveryResult(
                ok=False,
                code=None,
                error=f"{type(exc).__name__}: {exc}",
                duration_s=time.perf_counter() - start,
            )
        duration = time.perf_counter() - start
        if 200 <= status < 300:
            return DeliveryResult(
                ok=True, code=status, error=None, duration_s=duration, output=output
            )
        retryable = status >= 500 or status in (408, 429)
        reason = "redirects are not followed" if 300 <= status < 400 else output[:200]
        return DeliveryResult(
            ok=False,
            code=status,
            error=f"HTTP {status}" + (f": {reason}" if reason else ""),
            duration_s=duration,
            retryable=retryable,
            output=output,
            retry_after_s=retry_after if retryable else None,
        )

    @staticmethod
    def _read_some(response: httpx.Response, deadline: float) -> str:
        kept = bytearray()
        for chunk in response.iter_raw():
            kept += chunk[: _OUTPUT_LIMIT - len(kept)]
            if len(kept) >= _OUTPUT_LIMIT or time.perf_counter() > deadline:
                break
        return kept.decode("utf-8", errors="replace")


# --- command actions ------------------------------------------------------------------


class CommandAction:
    """Runs a registered command when an alert fires or resolves: the closed loop.

    The command runs without a shell, with the notification's JSON on stdin and in the
    environment variable ``MODELYARD_ALERT`` (plus the server's environment and ``env``).
    Exit code 0 is success; a non-zero exit, or running past ``timeout_s`` (the command
    and everything in its process group is then killed), is a failure. The last 4 KiB of
    its combined stdout and stderr are kept in the result.

    Failures are not retried unless ``retry=True``: a command such as a retrain job is
    usually not safe to run twice.
    """

    def __init__(
        self,
        argv: Sequence[str],
        timeout_s: float = 300.0,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        retry: bool = False,
        check_exists: bool = True,
    ) -> None:
        """
        Raises:
            InvalidInput: an empty ``argv``, an argument that is not a string or holds a
                NUL, a bad timeout, or (with ``check_exists``) a program that is not an
                executable file or on ``PATH``.
        """
        if isinstance(argv, str | bytes) or not argv:
            raise InvalidInput("action command must be a non-empty list of arguments")
        for arg in argv:
            if not isinstance(arg, str) or "\x00" in arg:
                raise InvalidInput(f"action command argument {arg!r} must be a string without NUL")
        self.argv: tuple[str, ...] = tuple(argv)
        self.timeout_s = _check_timeout("action", timeout_s)
        self.env: Mapping[str, str] = MappingProxyType(dict(env or {}))
        self.cwd = None if cwd is None else Path(cwd)
        self.retry = retry
        if check_exists and shutil.which(self.argv[0]) is None:
            raise InvalidInput(
                f"action command '{self.argv[0]}' is not an executable file or on PATH"
            )

    @property
    def target(self) -> str:
        """``command <argv>``, shell-quoted."""
        return f"command {shlex.join(self.argv)}"

    def __repr__(self) -> str:
        return f"CommandAction({list(self.argv)!r}, timeout_s={self.timeout_s:g})"

    def deliver(self, notification: Notification) -> DeliveryResult:
        """Run the command once; never raises for a failing or missing command."""
        payload = notification.body()
        env = {**os.environ, **self.env, "MODELYARD_ALERT": payload.decode()}
        start = time.perf_counter()
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                return DeliveryResult(
                    ok=False,
                    code=None,
                    error=f"cannot run '{self.argv[0]}': {exc.strerror or exc}",
                    duration_s=time.perf_counter() - start,
                )
            timed_out = False
            try:
                proc.communicate(payload, timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                proc.wait()
            duration = time.perf_counter() - start
            output = _tail(out)
        code = proc.returncode
        if timed_out:
            return DeliveryResult(
                ok=False,
                code=code,
                error=f"timed out after {self.timeout_s:g} s; killed",
                duration_s=duration,
                retryable=self.retry,
                output=output,
            )
        if code != 0:
            return DeliveryResult(
                ok=False,
                code=code,
                error=f"exit code {code}",
                duration_s=duration,
                retryable=self.retry,
                output=output,
            )
        return DeliveryResult(ok=True, code=0, error=None, duration_s=duration, output=output)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    killpg = getattr(os, "killpg", None)
    try:
        if killpg is not None:
            killpg(proc.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _tail(out: IO[bytes]) -> str:
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - _OUTPUT_LIMIT))
    return out.read().decode("utf-8", errors="replace")
