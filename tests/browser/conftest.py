"""Playwright driving Debian's Chromium against pages served on 127.0.0.1.

Never a downloaded browser: the executable is /usr/bin/chromium (``.ci/run`` installs the
Debian packages). Every page's console errors are collected and a test fails on them.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("GLASSLOOP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Playwright's sync API runs an event loop; Django refuses ORM calls from such a thread
# unless told it is safe (the tests are synchronous code, so it is).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# pytest-django's live_server listens on this address (its default is "localhost").
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    # The browser asks for /favicon.ico by itself when a page names no icon (base.html names
    # none); that implicit request is not the page's doing, so it is answered here.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    page.console_errors = []

    def on_console(msg):
        if msg.type == "error":
            where = (msg.location or {}).get("url", "")
            page.console_errors.append(f"{msg.text} [{where}]" if where else msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def login(page, live_server):
    def do_login(username, password="pw-glassloop-1"):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()

    return do_login


# ---------------------------------------------------------------- helpers added for the journeys

PASSWORD = "pw-glassloop-1"


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(username="sudo", password=PASSWORD, email="")


def main_text(page):
    """The visible text of the page's <main> (what a person reads)."""
    return page.inner_text("main")


def images_loaded(page, selector="main img"):
    """Scroll every image (lazy ones too) into view and report those that failed to load."""
    failed = []
    for img in page.locator(selector).all():
        img.scroll_into_view_if_needed()
        img.evaluate(
            "el => el.complete ? null : new Promise(r => { el.addEventListener('load', r); el.addEventListener('error', r); })"
        )
        if not img.evaluate("el => el.naturalWidth > 0"):
            failed.append(img.get_attribute("src"))
    return failed


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def small_models(settings, models_root):
    """Small models so a training takes seconds; artefacts in a per-session folder."""
    settings.MODEL_ARTEFACT_ROOT = models_root
    settings.GLASSLOOP_TRAINING_EPOCHS = 10
    settings.GLASSLOOP_FORWARD_PARAMS = {"n_estimators": 40, "n_members": 2}
    settings.GLASSLOOP_GAN_PARAMS = {"val_every": 5, "hidden": 64}


@pytest.fixture
def memory_broker(settings):
    """Celery publishes to kombu's in-memory transport: queued work is recorded, nothing runs
    and no broker server (nor the SQLite broker file under var/) is touched."""
    from tests.celery_broker import use_broker

    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with use_broker("memory://"):
        yield


@pytest.fixture(autouse=True)
def _xrd_analysed_at_once(xrd_analysed_at_once):
    """Recorded patterns are analysed at once (tests/lab/xrd_helpers.py); ``xrd_on_worker`` undoes it."""
