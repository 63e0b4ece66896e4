"""Drive a real headless Chromium from end-to-end tests: Playwright with the system browser.

Playwright for Python cannot download its own browsers here, so the Debian ``chromium``
package is launched through ``executable_path`` with flags that keep it quiet and
sandbox-free (tests run as root in containers). :class:`PageWatch` records what a test
must never see (alert/prompt dialogs, uncaught script errors, Content-Security-Policy
violations), and :class:`Screenshots` writes numbered full-page PNGs for review.

Playwright is a development dependency; import this module from tests only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

SYSTEM_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
)
SCREENSHOTS_ENV = "MODELYARD_SCREENSHOTS"


def chromium_executable() -> str | None:
    """The system Chromium (``MODELYARD_CHROMIUM`` overrides), or None when there is none."""
    configured = os.environ.get("MODELYARD_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    if Path(SYSTEM_CHROMIUM).is_file():
        return SYSTEM_CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def headless_chromium(executable: str | None = None) -> Iterator[Browser]:
    """A headless Chromium for the block; closed (with Playwright's driver) afterwards."""
    path = executable or chromium_executable()
    if path is None:
        raise RuntimeError("no system Chromium: install the Debian package 'chromium'")
    with sync_playwright() as p:
        browser = _launch(p, path)
        try:
            yield browser
        finally:
            browser.close()


def _launch(p: Playwright, path: str) -> Browser:
    return p.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))


@dataclass
class PageWatch:
    """What the pages of one browser context did that a test should fail on.

    Confirm dialogs (``hx-confirm``) are accepted and listed in ``confirms``; any other
    dialog (``alert``, ``prompt``, ``beforeunload``) is dismissed and listed in ``dialogs``:
    in a UI with no such dialogs, one means injected script ran. ``errors`` holds uncaught
    script errors and console messages about Content-Security-Policy violations.
    """

    dialogs: list[str] = field(default_factory=list)
    confirms: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> BrowserContext:
        """Watch every page of ``context``, those open now and those opened later."""
        context.on("page", self.watch)
        for page in context.pages:
            self.watch(page)
        return context

    def watch(self, page: Page) -> None:
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on("console", lambda msg: self._on_console(page, msg))

    def _on_dialog(self, dialog: Dialog) -> None:
        with contextlib.suppress(PlaywrightError):  # two watchers on one page: handled
            if dialog.type == "confirm":
                self.confirms.append(dialog.message)
                dialog.accept()
                return
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

    def _on_console(self, page: Page, msg: ConsoleMessage) -> None:
        if msg.type == "error" and "Content Security Policy" in msg.text:
            self.errors.append(f"{page.url}: {msg.text}")


def screenshot_dir(repo_root: Path) -> Path:
    """``$MODELYARD_SCREENSHOTS``, else ``build/ui-screenshots`` (gitignored) in the repo."""
    configured = os.environ.get(SCREENSHOTS_ENV)
    return Path(configured) if configured else repo_root / "build" / "ui-screenshots"


class Screenshots:
    """Numbered full-page PNGs, ``NN-name.png``, in the order the test takes them.

    The folder's earlier ``NN-*.png`` files are removed first so that a review never
    mixes two runs.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("[0-9][0-9]-*.png"):
            old.unlink()
        self.taken: list[Path] = []

    def take(self, page: Page, name: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "page"
        path = self.folder / f"{len(self.taken) + 1:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path
