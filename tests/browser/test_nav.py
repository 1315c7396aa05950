"""The top navigation fits on one line at 1280 px for every role (issue 18: it wrapped).

Each role's nav is measured in Chromium at 1280×800: every link of the nav, the brand and the
user box sit on one line (the same offsetTop), and the header is no taller than one line of
it. A superuser holds every role and so has the most links (the admin's too); the longest
username the site is likely to show stands in for a real one.
"""

import pytest

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

PASSWORD = "pw-glassloop-1"
ROLES = {
    "viewer": ("viewer",),
    "experimenter": ("experimenter",),
    "reviewer": ("reviewer",),
    "approver": ("approver",),
    "every role": ("viewer", "experimenter", "reviewer", "approver"),
}

MEASURE = """() => {
  const header = document.querySelector("header.topbar");
  const box = el => el.getBoundingClientRect();
  const links = [...header.querySelectorAll("nav a")];
  const others = [...header.querySelectorAll(".brand, .who")];
  return {
    names: links.map(el => el.textContent.trim()),
    linkTops: links.map(el => Math.round(box(el).top)),
    // The brand and the user box: each one line, level with the links.
    others: others.map(el => ({name: el.textContent.trim().replace(/\\s+/g, " "), top: box(el).top,
                               bottom: box(el).bottom, height: box(el).height})),
    linkHeight: Math.max(...links.map(el => box(el).height)),
    headerHeight: box(header).height,
    padding: parseFloat(getComputedStyle(header).paddingTop) + parseFloat(getComputedStyle(header).paddingBottom),
    scrollWidth: document.documentElement.scrollWidth,
    logOutVisible: (() => { const b = box(header.querySelector(".who button")); return b.width > 0 && b.right <= 1280; })(),
  };
}"""


def measure_nav(browser, live_server, username):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("header.topbar").screenshot(path=str(ARTIFACTS / f"nav_1280_{username}.png"))
        return page.evaluate(MEASURE)
    finally:
        context.close()


def assert_one_line(found, who):
    tops = found["linkTops"]
    assert len(set(tops)) == 1, f"{who}: the nav wraps at 1280 px: {list(zip(found['names'], tops))}"
    line_top, line_bottom = tops[0], tops[0] + found["linkHeight"]
    for item in found["others"]:
        middle = (item["top"] + item["bottom"]) / 2
        assert line_top <= middle <= line_bottom and item["height"] < 1.6 * found["linkHeight"], (
            f"{who}: {item['name']!r} is not on the nav's line: {item}, links at {line_top}–{line_bottom}")
    assert found["headerHeight"] <= found["linkHeight"] + found["padding"] + 8, f"{who}: header of {found['headerHeight']} px: {found}"
    assert found["scrollWidth"] <= 1280, f"{who}: the page scrolls sideways ({found['scrollWidth']} px)"
    assert found["logOutVisible"], f"{who}: Log out is off the screen"


@pytest.mark.parametrize("role", list(ROLES))
def test_nav_is_one_line_at_1280(browser, live_server, make_user, role):
    username = f"{role.replace(' ', '-')}-of-the-lab"
    make_user(username, *ROLES[role], password=PASSWORD)
    found = measure_nav(browser, live_server, username)
    assert_one_line(found, role)
    assert "Alloys" in found["names"]


def test_superuser_nav_is_one_line_at_1280(browser, live_server, django_user_model):
    django_user_model.objects.create_superuser("superuser-of-the-lab", password=PASSWORD, email="")
    found = measure_nav(browser, live_server, "superuser-of-the-lab")
    assert {"Log an experiment", "Imports", "Review", "Admin"} <= set(found["names"])  # the most links
    assert_one_line(found, "superuser")
