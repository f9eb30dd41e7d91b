"""Real-browser helpers for tests: Debian's Chromium driven by Python Playwright.

``playwright install`` cannot download here, so the tests use ``/usr/bin/chromium``
(installed by ``scripts/ensure_chromium.sh`` when missing).

Use in a test module::

    from tests.browser import chromium, new_page, axe_violations  # noqa: F401  (chromium is a fixture)

    def test_page(chromium):
        page = new_page(chromium)
        page.goto(url)
        assert axe_violations(page) == []

``chromium`` is a module-scoped fixture (one browser per test module); give each
test its own context via :func:`new_page` so storage and cookies never leak
between tests.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
]
WCAG21_AA_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
DEFAULT_TIMEOUT_MS = 20_000


def ensure_chromium() -> str:
    """Path of Chromium; installs Debian's package (scripts/ensure_chromium.sh) when missing."""
    if not Path(CHROMIUM).exists():
        script = ROOT / "scripts" / "ensure_chromium.sh"
        if shutil.which("apt-get") and script.exists():
            subprocess.run(["bash", str(script)], check=True, timeout=900)
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}; run scripts/ensure_chromium.sh")
    return CHROMIUM


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    path = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium per test module."""
    with launch_chromium() as browser:
        yield browser


def new_page(browser: Any, *, viewport: Optional[Dict[str, int]] = None, locale: str = "nl-NL",
             timeout_ms: int = DEFAULT_TIMEOUT_MS, **context_args: Any) -> Any:
    """A page in a fresh browser context (own storage). Page errors are collected in ``page.errors``.

    Close it with ``page.context.close()``.
    """
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800},
                                  locale=locale, **context_args)
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    errors: List[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    dialogs: List[str] = []

    def _dismiss(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", _dismiss)
    page.dialogs = dialogs  # type: ignore[attr-defined]
    return page


def axe_violations(page: Any, tags: Sequence[str] = WCAG21_AA_TAGS,
                   context: Optional[Any] = None) -> List[Dict[str, Any]]:
    """axe-core (bundled by axe-playwright-python) violations for ``tags`` on the current page."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    results = Axe().run(page, context=context, options=options)
    return results.response["violations"]


def describe_violations(violations: Sequence[Dict[str, Any]]) -> str:
    """Readable summary of axe violations for assertion messages."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation.get('impact')}): {violation.get('help')}")
        for node in violation.get("nodes", [])[:5]:
            lines.append(f"    {', '.join(map(str, node.get('target', [])))}: "
                         f"{(node.get('failureSummary') or '').strip()}")
    return "\n".join(lines)


def small_targets(page: Any, selector: str, minimum: float = 44.0) -> List[str]:
    """Visible elements matching ``selector`` smaller than ``minimum`` CSS px in width or height."""
    return page.evaluate(
        """([selector, minimum]) => Array.from(document.querySelectorAll(selector))
            .filter((el) => el.getClientRects().length > 0)
            .map((el) => [el, el.getBoundingClientRect()])
            .filter(([el, r]) => r.width > 0 && r.height > 0 && (r.width < minimum - 0.5 || r.height < minimum - 0.5))
            .map(([el, r]) => `${el.className || el.tagName} "${(el.textContent || '').trim().slice(0, 30)}" ${Math.round(r.width)}x${Math.round(r.height)}`)""",
        [selector, minimum])


def horizontal_overflow(page: Any) -> int:
    """How many CSS px the page scrolls sideways (0 = it fits the viewport)."""
    return page.evaluate(
        "() => Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth)")


def tab_to(page: Any, predicate_js: str, max_presses: int = 60, shift: bool = False) -> bool:
    """Press Tab (or Shift+Tab) until ``predicate_js`` (a JS function of the focused element) is true."""
    key = "Shift+Tab" if shift else "Tab"
    for _ in range(max_presses):
        page.keyboard.press(key)
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!(({predicate_js})(el)); }}"):
            return True
    return False


# -- the chat widget (website and Digitaal Hulpplein) ---------------------------

def wait_idle(page: Any) -> None:
    """Until the bot finished answering (the widget got the server's typing=false)."""
    page.wait_for_selector('.gc-root[data-busy="false"]', state="attached")


def say(page: Any, text: str) -> None:
    page.fill("#gc-input", text)
    page.press("#gc-input", "Enter")
    wait_idle(page)


def click_reply(page: Any, title: str) -> None:
    page.locator(".gc-replies").get_by_role("button", name=title, exact=True).click()
    wait_idle(page)


def bot_texts(page: Any) -> List[str]:
    return page.locator(".gc-msg--bot .gc-bubble").all_inner_texts()
