"""Browser fixtures: one Chromium per module of browser tests, a fresh context per person.

Pages talk to the session's server process (`app_server`), which reads the same test
database, so browser tests use `transactional_db`: their data must be committed to be seen.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator

import pytest

from accounts.models import User
from conftest import client_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Calls and recordings (issue 8): a fake camera and microphone, permission prompts
    # answered yes, media that plays without a click.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def browser(app_server):
    """Chromium, shared by the browser tests of one module.

    Playwright's sync API keeps its event loop registered as running on this thread for as
    long as it is started. Django then refuses ORM calls (SynchronousOnlyOperation) and
    pytest-asyncio cannot run its own loops, so the browser lives for one module, not the
    whole session, and Django's check is lifted only meanwhile: the test code between
    Playwright calls is plain synchronous code. The server is started first, so that its
    process keeps the check.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian package `chromium`)")
    with pytest.MonkeyPatch.context() as patch:
        with sync_api.sync_playwright() as playwright:
            patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
        assert asyncio._get_running_loop() is None, "Playwright left its event loop running"


@pytest.fixture(autouse=True)
def _no_live_events_from_the_test_process(request):
    """In browser tests, writes made by the test itself publish no live events.

    Publishing needs `async_to_sync`, which cannot run beside Playwright's loop. Nothing is
    lost: only the server process's sockets reach a browser, and with the in-memory layer
    the test process's events never got there anyway. Data made in the test is in the
    database before a page loads; anything that must arrive live is done in a browser.
    """
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.CHANNEL_LAYERS = {}
    yield


@pytest.fixture
def open_page(browser, app_server, transactional_db) -> Iterator[Callable]:
    """`open_page(user, path="/")`: that person's own browser, logged in, showing `path`.

    With `user=None` the browser is logged out. A logged-in page is returned once its live
    socket is connected, so nothing published after that is missed. A JavaScript error in
    any page fails the test.
    """
    from playwright.sync_api import expect

    contexts = []
    errors: list[str] = []

    def open_page(user: User | None, path: str = "/"):
        context = browser.new_context(base_url=app_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        if user is not None:
            session = client_for(user).cookies["sessionid"].value
            context.add_cookies([{"name": "sessionid", "value": session, "url": app_server.url}])
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{user}: {error}"))
        page.goto(path)
        if user is not None:
            expect(page.locator("body")).to_have_attribute("data-live", "connected")
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # What the server said is most of what a failed browser test can tell.
    server = item.funcargs.get("app_server") if hasattr(item, "funcargs") else None
    if report.failed and server is not None and item.get_closest_marker("browser"):
        report.sections.append(("Server log (tail)", server.log()))


@pytest.fixture
def server_media_root(settings, app_server):
    """Make this process store files where the `app_server` process reads them.

    Both derive MEDIA_ROOT from the environment (`MEDIA_ROOT`, else `PARLEY_DATA_DIR`/media),
    and the server's environment is this one plus the fixture's; a file stored under any other
    MEDIA_ROOT (a `tmp_path`, say) would be a 404 from the server. The test deletes the files
    it stored.
    """
    from pathlib import Path

    env = app_server.env
    data_dir = Path(env.get("PARLEY_DATA_DIR") or Path(settings.BASE_DIR) / "var")
    settings.MEDIA_ROOT = Path(env.get("MEDIA_ROOT") or data_dir / "media").resolve()
    return settings.MEDIA_ROOT
