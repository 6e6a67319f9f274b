# SPDX-License-Identifier: BSD-3-Clause
"""A real headless Chromium for the dashboard's browser tests: Debian's `chromium` driven by
playwright (its own browser download needs the internet), pages that record their script
errors and Content-Security-Policy violations, and screenshots kept as test artefacts."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.conftest import REPOSITORY

ARTIFACTS = REPOSITORY / "test-artifacts"
"""Where screenshots go (git-ignored)."""

VIEWPORT = {"width": 1400, "height": 900}

# A violation is also logged by Chromium, but not always as a console message playwright
# reports: the page's own event says it for sure.
_REPORT_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless chromium (apt-get install chromium), as root: without its sandbox."""
    executable = shutil.which("chromium")
    assert executable, "chromium is missing: apt-get install chromium (Debian's package)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class WatchedPage:
    """A page in its own browser context (its own cookies) whose script errors, console
    errors and CSP violations are kept, to be asserted away."""

    def __init__(self, browser: Browser) -> None:
        self.context: BrowserContext = browser.new_context(viewport=VIEWPORT)
        self.context.add_init_script(_REPORT_CSP)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def assert_no_errors(self) -> None:
        assert not self.errors, "\n".join(self.errors)

    def close(self) -> None:
        self.context.close()


def screenshot(page: Page, test: str, step: str, *, full_page: bool = True) -> Path:
    """Save what the page shows now as test-artifacts/<test>/<step>.png; print the path."""
    path = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test) / f"{step}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")  # for the person running the tests: where to look
    return path
