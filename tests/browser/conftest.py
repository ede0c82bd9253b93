"""Playwright in Debian's chromium, against the live site and the sandbox.

Browsers are never downloaded: without /usr/bin/chromium these tests are
skipped, or fail when REQUIRE_ALL_TESTS is set (as CI sets it, having
installed chromium).
"""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.web.sandbox_oauth import site_point_at_sandbox

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        reason = (
            f"Debian's chromium is not installed at {CHROMIUM} "
            "(apt-get install chromium)"
        )
        if os.environ.get("REQUIRE_ALL_TESTS"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps an event loop running in this thread,
        # and Django's ORM refuses to run beside one unless told that it is
        # safe. It is: the loop only drives the browser.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def site(live_server, settings, sandbox):
    """The live site, its Klaviyo calls and its callback on the sandbox."""
    site_point_at_sandbox(settings, sandbox, site_url=live_server.url)
    return live_server


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
