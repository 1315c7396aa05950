"""Every page renders without JavaScript errors in the console.

A superuser starts at the site root and follows links: everything in the top navigation and,
from each page, the first link to every kind of page not yet seen (a kind is a URL pattern),
so one alloy, sample, XRD, import, batch, record, source, campaign... page is visited each.
Each page must answer < 400, log no console error, and load its images.

The crawl runs with the site's Content-Security-Policy on (GLASSLOOP_CSP=on, as in the
containers): a page carries the policy, and anything it blocks (an inline script, an onclick,
a javascript: link, a style attribute or <style> element, a foreign request) is a problem, from
Chromium's console error and from the page's own securitypolicyviolation event (recorded by an
init script). Only Swagger UI may use inline styles: INLINE_STYLES_POLICY (the admin's pages are
crawled under the site's policy in test_admin_csp.py).
"""

from urllib.parse import urljoin, urlparse

import pytest
from django.core.files.base import ContentFile
from django.urls import Resolver404, resolve

from core.middleware import INLINE_STYLES_PATHS, INLINE_STYLES_POLICY, SITE_POLICY
from lab import importing, services
from lab.models import AlloyImport
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern

from .conftest import ARTIFACTS, images_loaded

pytestmark = pytest.mark.browser

MAX_PAGES = 60
# Links that are not pages to render: downloads, images, JSON endpoints, Django's admin beyond its index.
SKIP_SUFFIXES = (".svg", ".json", ".csv", ".xlsx", ".png")
SKIP_VIEWS = {"logout", "lab:alloy_export"}


# The entry page of each app; the crawl starts from these and from the nav.
APP_INDEXES = ("/mining/", "/mining/batches/", "/mining/sources/", "/design/", "/ml/")


# Recorded in every page before its own scripts run; read back by csp_violations().
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile || "?"}:${e.lineNumber}`));
"""


@pytest.fixture
def site_csp(settings, page):
    """The site's policy on every response, and each page recording what the policy blocks."""
    settings.GLASSLOOP_CSP = "on"
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    return SITE_POLICY


def csp_violations(page):
    return page.evaluate("window.__cspViolations || []")


def policy_problems(page, response, policy):
    """What is wrong with a visited page under the CSP: the header missing or different, violations.
    Under the site's policy, Swagger UI carries its inline-styles variant."""
    problems = []
    if policy == SITE_POLICY and urlparse(response.url).path.startswith(INLINE_STYLES_PATHS):
        policy = INLINE_STYLES_POLICY
    if response.headers.get("content-security-policy") != policy:
        problems.append(f"policy header {response.headers.get('content-security-policy')!r}")
    problems += [f"CSP: {v}" for v in csp_violations(page)]
    return problems


def seed_lab(user):
    services.log_experiment(
        user=user,
        composition="Zr42Ti14Cu12Ni10Be22",
        alloy_name="Zr glass A",
        label="EP-001",
        diameter_mm=3,
        xrd_file=ContentFile(synthetic_xrd_pattern("amorphous"), name="halo.xy"),
        dsc={
            "tg_k": 625,
            "tx_k": 705,
            "tl_k": 993,
            "curve_file": ContentFile(synthetic_dsc_curve(625, 705, 993), name="dsc.txt"),
        },
    )
    services.log_experiment(
        user=user,
        composition="Cu50Hf50",
        label="EP-002",
        xrd_file=ContentFile(synthetic_xrd_pattern("crystalline"), name="sharp.xy"),
    )
    table = b"composition,Tg_K,Tx_K,Tl_K,source\nCu46Zr46Al8,705,780,1160,Every page 2024\nPd41Ni41P18,575,640,990,Every page 2024\n"
    done = AlloyImport.objects.create(upload=ContentFile(table, name="ok.csv"), original_name="ok.csv", created_by=user)
    importing.run_alloy_import(done.pk)
    failed = AlloyImport.objects.create(
        upload=ContentFile(b"PK\x03\x04garbage", name="bad.xlsx"), original_name="bad.xlsx", created_by=user
    )
    importing.run_alloy_import(failed.pk)
    AlloyImport.objects.create(upload=ContentFile(table, name="waiting.csv"), original_name="waiting.csv", created_by=user)


def seed_mining(user):
    try:
        from mining import services as mining_services
    except ImportError:
        return
    import io

    csv = (
        "composition,Tg_K,Tx_K,Tl_K,source,doi,snippet\n"
        'Cu47Zr45Al8,700,775,1150,Smith 2020,,"Tg = 700 K"\n'
        'Zr60Cu25Al10Ni5,760,690,1150,Jones 2019,,"Tx = 690 K"\n'
        'Xx12Yy3,600,700,900,Odd 2001,,"garbled"\n'
    )
    mining_services.import_extracted(io.StringIO(csv), batch_name="every page batch", user=user)
    if hasattr(mining_services, "create_source"):
        mining_services.create_source(
            text="The glass Cu47Zr45Al8 has Tg = 700 K and Tx = 775 K.", title="A paper", year=2020, user=user
        )


def seed_design(user):
    from .design_fixtures import seed

    seed(user)


def database_state():
    """Row counts of every model of the project's apps, and the statuses of queued work."""
    from django.apps import apps

    counts = {
        m._meta.label: m.objects.count()
        for app in ("lab", "mining", "design", "ml") if apps.is_installed(app)
        for m in apps.get_app_config(app).get_models()
    }
    counts["imports by status"] = sorted(AlloyImport.objects.values_list("pk", "status"))
    return counts


def view_name(path):
    try:
        return resolve(path).view_name
    except Resolver404:
        return None


def is_page_link(base, href):
    if not href or href.startswith(("#", "mailto:", "javascript:")):
        return None
    url = urlparse(urljoin(base + "/", href))
    if f"{url.scheme}://{url.netloc}" != base:
        return None
    if url.path.endswith(SKIP_SUFFIXES) or url.path.startswith(("/media/", "/static/")):
        return None
    name = view_name(url.path)
    if name is None or name in SKIP_VIEWS or (name.startswith("admin:") and name != "admin:index"):
        return None
    return name, url.path + (f"?{url.query}" if url.query else "")


def test_every_page_renders_without_console_errors(page, live_server, login, superuser, small_models, memory_broker,
                                                   site_csp):
    seed_design(superuser)  # first: its training data is then journey 3's, so the trained model is reused
    seed_lab(superuser)
    seed_mining(superuser)
    before = database_state()
    login("sudo")
    base = live_server.url

    nav = [is_page_link(base, a.get_attribute("href")) for a in page.locator("header nav a").all()]
    queue = [link for link in nav if link]
    assert {"lab:alloy_list", "lab:sample_list", "lab:log_experiment", "lab:import_list"} <= {n for n, _ in queue}
    # Each app's index too, in case the nav does not (yet) link it (test_nav_reaches_every_app checks that).
    queue += [(view_name(path), path) for path in APP_INDEXES if view_name(path)]
    seen_kinds, visited, problems = set(), [], []
    while queue and len(visited) < MAX_PAGES:
        name, path = queue.pop(0)
        if name in seen_kinds:
            continue
        seen_kinds.add(name)
        page.console_errors.clear()
        response = page.goto(base + path)
        page.wait_for_load_state("load")
        visited.append(path)
        if response is None or response.status >= 400:
            problems.append(f"{path}: HTTP {response.status if response else 'no response'}")
            continue
        failed_images = images_loaded(page)
        page.wait_for_timeout(50)  # let late console messages (from scripts on load) arrive
        problems += [f"{path}: {p}" for p in policy_problems(page, response, site_csp)]
        if page.console_errors:
            problems.append(f"{path}: console errors {page.console_errors}")
        if failed_images:
            problems.append(f"{path}: images that did not load {failed_images}")
        for a in page.locator("a[href]").all():
            link = is_page_link(base, a.get_attribute("href"))
            if link and link[0] not in seen_kinds:
                queue.append(link)

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "every_page_visited.txt").write_text("\n".join(visited) + "\n")
    assert problems == [], "\n".join(problems)
    expected = {
        "lab:alloy_list", "lab:alloy_detail", "lab:sample_list", "lab:sample_detail", "lab:xrd_detail",
        "lab:log_experiment", "lab:import_list", "lab:import_detail", "lab:add_xrd", "lab:add_dsc", "admin:index",
    }
    if view_name("/mining/") is not None:
        expected |= {"mining:review_queue", "mining:batch_list", "mining:batch_detail", "mining:record_detail",
                     "mining:source_list", "mining:source_detail"}
    if view_name("/design/") is not None:
        expected |= {"design:campaign_list", "design:campaign_detail", "design:candidate_detail", "design:campaign_create"}
    if view_name("/ml/") is not None:
        expected |= {"ml:model_list", "ml:run_detail"}
    missing = expected - seen_kinds
    assert not missing, f"pages never reached by links: {sorted(missing)}; visited {visited}"
    # Reading pages changed nothing in the database.
    assert database_state() == before


def test_nav_reaches_every_app(page, live_server, login, superuser):
    """The top navigation links into each app that has pages (lab, mining, design, ml)."""
    login("sudo")
    names = [is_page_link(live_server.url, a.get_attribute("href")) for a in page.locator("header nav a").all()]
    namespaces = {link[0].split(":")[0] for link in names if link and ":" in link[0]}
    apps_with_pages = {path.strip("/").split("/")[0] for path in APP_INDEXES if view_name(path)} | {"lab"}
    missing = apps_with_pages - namespaces
    assert not missing, f"the nav (templates/base.html) has no link into: {sorted(missing)}"
    assert page.console_errors == []


def test_a_blocked_script_is_a_problem(page, live_server, site_csp):
    """The crawl's check sees what a strict policy blocks (so a page's inline script cannot slip by)."""
    strict = "default-src 'self'; script-src 'self'"
    html = '<!doctype html><title>probe</title><script>document.title = "ran"</script><a href="javascript:void(0)">x</a>'
    page.route(f"{live_server.url}/csp-probe/", lambda route: route.fulfill(
        status=200, body=html, headers={"Content-Type": "text/html", "Content-Security-Policy": strict}))
    response = page.goto(f"{live_server.url}/csp-probe/")
    page.wait_for_timeout(50)
    assert page.title() == "probe"  # the inline script did not run
    problems = policy_problems(page, response, strict)
    assert any("script-src" in p for p in problems), problems
    assert page.console_errors, "Chromium reports the blocked script in the console"


def test_pages_outside_the_crawl_pass_the_policy(page, live_server, login, make_user, superuser, site_csp):
    """The login, 400, 403 and 404 pages and the API docs (Swagger UI) under the site's policy."""
    problems = []

    def visit(path, status):
        page.console_errors.clear()
        response = page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(50)
        if response.status != status:
            problems.append(f"{path}: HTTP {response.status}, expected {status}")
        problems.extend(f"{path}: {p}" for p in policy_problems(page, response, site_csp))
        own = f"the server responded with a status of {status} "  # the page's own status, as expected
        problems.extend(f"{path}: console {e}" for e in page.console_errors
                        if not (own in e and e.endswith(f"[{live_server.url}{path}]")))

    visit("/accounts/login/", 200)
    make_user("no-role-yet")
    login("no-role-yet")
    visit("/", 403)
    page.context.clear_cookies()
    login("sudo")
    visit("/lab/samples/?q=%00", 400)
    visit("/lab/no-such-page/", 404)
    visit("/api/docs/", 200)
    page.wait_for_selector("#swagger-ui .information-container", timeout=15_000)  # Swagger UI ran
    assert problems == [], "\n".join(problems)


def test_campaign_page_follows_a_live_round_under_the_policy(page, live_server, login, superuser, site_csp):
    """The campaign page's poll (static/js/design-campaign.js, no inline script) shows a running
    round's status and progress without a reload, and reloads once the round finishes."""
    from design import services as design_services
    from design.models import GenerationRound

    campaign = design_services.create_campaign(owner=superuser, name="Live round", targets={"tg_k": {"min": 650}},
                                               base_element="Zr", max_elements=4, batch_size=3, n_draws=1000)
    gen_round = GenerationRound.objects.create(campaign=campaign, number=1, status="queued")
    login("sudo")
    response = page.goto(f"{live_server.url}{campaign.get_absolute_url()}")
    assert page.inner_text("#round-status") == "Queued"
    GenerationRound.objects.filter(pk=gen_round.pk).update(status="running", progress=0.4, message="scoring draws")
    page.wait_for_function("() => document.getElementById('round-status').textContent === 'Running'", timeout=10_000)
    assert page.inner_text("#round-message") == "scoring draws"
    assert page.eval_on_selector("#round-progress", "el => [el.value, el.textContent]") == [0.4, "40 %"]
    with page.expect_navigation(timeout=10_000):  # finished: the page reloads to show the candidates
        GenerationRound.objects.filter(pk=gen_round.pk).update(status="done", progress=1.0, message="done")
    assert page.inner_text("#round-status") == "Done"
    assert policy_problems(page, response, site_csp) == [] and page.console_errors == []


def test_the_site_policy_runs_no_inline_script():
    """What the crawl above holds the pages to: scripts and styles from the site's files only."""
    directives = dict(d.strip().split(" ", 1) for d in SITE_POLICY.split(";"))
    assert directives["script-src"].split() == ["'self'"]
    assert directives["style-src"].split() == ["'self'"]
    assert "unsafe-eval" not in SITE_POLICY and "unsafe-inline" not in SITE_POLICY


def test_a_blocked_style_attribute_is_a_problem(page, live_server, site_csp):
    """The crawl's check sees a style attribute that the site's policy blocks (a progress bar
    that sets its width in the markup would be one)."""
    html = '<!doctype html><title>probe</title><div id="bar" style="width: 40%">x</div>'
    page.route(f"{live_server.url}/csp-style-probe/", lambda route: route.fulfill(
        status=200, body=html, headers={"Content-Type": "text/html", "Content-Security-Policy": SITE_POLICY}))
    response = page.goto(f"{live_server.url}/csp-style-probe/")
    page.wait_for_timeout(50)
    assert page.eval_on_selector("#bar", "el => getComputedStyle(el).width") != "40%"
    problems = policy_problems(page, response, SITE_POLICY)
    assert any("style-src" in p for p in problems), problems


def test_a_plot_opened_on_its_own_shows_its_styles(page, live_server, login, superuser, settings, site_csp):
    """The candidate page links its campaign's map (an SVG): opened as a page, matplotlib's inline
    styles apply (its type gets INLINE_STYLES_POLICY) and nothing is blocked."""
    from design import services as design_services

    campaign = design_services.create_campaign(owner=superuser, name="Map", targets={"tg_k": {"min": 650}},
                                               base_element="Zr", max_elements=4, batch_size=3, n_draws=1000)
    login("sudo")
    response = page.goto(f"{live_server.url}/design/{campaign.pk}/map.svg")
    page.wait_for_timeout(50)
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers.get("content-security-policy") == INLINE_STYLES_POLICY
    assert csp_violations(page) == [] and page.console_errors == []
    # The strict policy everywhere (a policy of one's own, verbatim) blocks the plot's styles.
    settings.GLASSLOOP_CSP = SITE_POLICY
    page.goto(f"{live_server.url}/design/{campaign.pk}/map.svg")
    page.wait_for_timeout(50)
    blocked = csp_violations(page)
    assert blocked and all(v.startswith("style-src") for v in blocked), blocked
    page.goto("about:blank")  # the fixture's full-page screenshot of an SVG document hangs


def test_admin_export_select_all_works_under_the_policy(page, live_server, login, superuser, site_csp):
    """django-import-export's 'Select all' box calls its handler from an inline onchange, which
    the policy blocks; templates/admin/import_export/export.html binds it from a static file."""
    services.get_or_create_alloy("Cu50Zr50", user=superuser)
    login("sudo")
    response = page.goto(f"{live_server.url}/admin/lab/alloy/export/")
    page.wait_for_load_state("load")
    toggle = page.locator("input.select-toggle").first
    assert toggle.get_attribute("onchange") is None  # no inline handler for the policy to block
    fields = page.locator(".selectable-field-export-row:visible input[type=checkbox]")
    assert fields.count() > 1 and all(fields.nth(i).is_checked() for i in range(fields.count()))
    toggle.uncheck()
    assert not any(fields.nth(i).is_checked() for i in range(fields.count()))  # the handler ran
    assert policy_problems(page, response, site_csp) == []
    assert page.console_errors == []


def test_run_and_batch_pages_follow_live_progress_under_the_policy(page, live_server, login, superuser, site_csp):
    """The training run's and the extraction batch's bars (<progress>, no style attribute) move
    with the polled status (static/js/training-run.js, mining-batch.js) under the strict policy."""
    from django.utils import timezone

    from mining.models import ExtractionBatch
    from training.models import TrainingRun

    run = TrainingRun.objects.create(status="running", phase="training", epoch=10, total_epochs=100,
                                     snapshot_hash="0" * 64, snapshot_path="x.csv", snapshot_taken_at=timezone.now())
    batch = ExtractionBatch.objects.create(name="live", extractor=ExtractionBatch.RULES, status="running",
                                           sources_total=4, sources_done=1)
    login("sudo")
    response = page.goto(f"{live_server.url}/ml/runs/{run.pk}/")
    assert page.eval_on_selector("#progress", "el => [el.tagName, el.value]") == ["PROGRESS", 0.1]
    TrainingRun.objects.filter(pk=run.pk).update(epoch=60)
    page.wait_for_function("() => document.getElementById('progress').value === 0.6", timeout=10_000)
    assert page.eval_on_selector("#progress", "el => el.textContent") == "60 %"  # its fallback text
    assert policy_problems(page, response, site_csp) == [] and page.console_errors == []

    response = page.goto(f"{live_server.url}/mining/batches/{batch.pk}/")
    assert page.eval_on_selector("#st-bar", "el => [el.max, el.value]") == [4, 1]
    ExtractionBatch.objects.filter(pk=batch.pk).update(sources_done=3)
    page.wait_for_function("() => document.getElementById('st-bar').value === 3", timeout=10_000)
    assert policy_problems(page, response, site_csp) == [] and page.console_errors == []
