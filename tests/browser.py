"""Headless Chromium (Debian's, driven by Playwright) with only the local server reachable.

Shared by the browser tests: every request that does not go to the server under test is
aborted and recorded, and script errors are collected (a console error about a refused
request is not one).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Feature names that would run script in a page that pasted them as HTML or into a
#: ``<script>`` unescaped: each sets ``window.__xss`` if it runs, or breaks the page.
HOSTILE_NAMES = (
    "</script><script>window.__xss='script'</script>",
    "<img src=x onerror=\"window.__xss='img'\">",
    "<!--<script>",
    "Salle <b>des</b> fêtes & \"co\" <!--",
    "=HYPERLINK(\"https://evil.example\",\"clic\")",
)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def require_browser() -> None:
    """Skip without Chromium (fail when ``GEOCOMMUNS_REQUIRE_BROWSER=1``)."""
    if CHROMIUM.is_file():
        return
    if os.environ.get("GEOCOMMUNS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GEOCOMMUNS_REQUIRE_BROWSER=1 but {CHROMIUM} is absent (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium to run the browser tests)")


class OfflinePage:
    """A page of ``url`` opened at ``path``, the network blocked except for ``url``.

    ``aborted`` lists the refused requests, ``requests`` the local ones, ``errors`` the
    script errors and console errors not caused by a refused request.
    """

    def __init__(self, browser: Any, url: str, path: str, **context: Any) -> None:
        self.context = browser.new_context(locale="fr-FR", **context)
        self.page = self.context.new_page()
        self.aborted: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        local = url + "/"

        def route(r: Any) -> None:
            if r.request.url.startswith(local):
                self.requests.append(r.request.url)
                r.continue_()
            else:
                self.aborted.append(r.request.url)
                r.abort()

        def console(msg: Any) -> None:
            where = (msg.location or {}).get("url", "")
            if msg.type == "error" and where not in self.aborted:
                self.errors.append(f"{msg.text} ({where})")

        self.page.route("**/*", route)
        self.page.on("console", console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.response = self.page.goto(url + path)

    def js(self, expression: str, arg: Any = None) -> Any:
        """Evaluate ``expression`` in the page."""
        return self.page.evaluate(expression, arg)

    def close(self) -> None:
        """Close the page's browser context."""
        self.context.close()


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
#: The axe-core impacts that fail a page (WCAG problems that block or seriously hinder).
BLOCKING_IMPACTS = ("serious", "critical")


def axe_violations(page: Any, impacts: tuple[str, ...] = BLOCKING_IMPACTS) -> list[str]:
    """Run the vendored axe-core in ``page`` (a Playwright page) and list its violations.

    Returns one line per violation of the given impacts: rule id, impact, help text and
    the first offending elements, so an assertion failure says what to fix.
    """
    # colours are measured as drawn: let fades (a Leaflet popup opening) finish first, or
    # a half-transparent link reads as a contrast failure
    with contextlib.suppress(Exception):
        page.wait_for_function(
            "() => document.getAnimations().every(a => a.playState !== 'running')", timeout=5_000
        )
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(str(node["target"][0]) if node["target"] else "?" for node in v["nodes"][:3])
        for v in result
        if v.get("impact") in impacts
    ]
