"""Journey 2: a reviewer works through the review queue of a batch with the keyboard.

The batch comes from mining's own import service (a tiny CSV): one clean record, one
flagged (Tg and Tx swapped) and one to reject. The reviewer approves the clean one (key a),
opens the flagged one (key e), corrects it and approves it, rejects the third (key r, with a
reason in the prompt), and then finds the approved alloys in the alloy list.
"""

import io
import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.browser

from lab.models import Alloy, PropertyValue
from mining import services as mining_services
from mining.models import ExtractedRecord

from .conftest import main_text

CLEAN = "Cu47Zr45Al8"
FLAGGED = "Zr60Cu25Al10Ni5"
TO_REJECT = "Pd41Ni41P18"
CSV = f"""composition,Tg_K,Tx_K,Tl_K,source,snippet
{CLEAN},700,775,1150,Smith 2020,"{CLEAN} shows Tg = 700 K, Tx = 775 K and Tl = 1150 K"
{FLAGGED},760,690,1150,Jones 2019,"{FLAGGED}: Tx = 760 K, Tg = 690 K"
{TO_REJECT},575,640,990,Lee 2018,"the ribbon of {TO_REJECT} (Tg 575 K, Tx 640 K, Tl 990 K) was crystalline"
"""


def queue_rows(page):
    return page.locator("tr.qrow")


def select_row(page, composition):
    """Move the queue's current row (keys j/k) to the row of ``composition``; returns that row."""
    rows = queue_rows(page)
    texts = rows.all_inner_texts()
    index = next(i for i, t in enumerate(texts) if composition in t)
    page.locator("h1").click()  # focus on the page, not on a filter input
    for _ in range(index):
        page.keyboard.press("j")
    row = rows.nth(index)
    assert "current" in (row.get_attribute("class") or "")
    return row


def strict_csp(settings):
    """The site's own policy (GLASSLOOP_CSP=on): nothing inline runs, no inline style applies."""
    settings.GLASSLOOP_CSP = "on"


def test_reviewer_approves_edits_and_rejects_in_the_queue(page, live_server, login, make_user, settings):
    strict_csp(settings)  # the queue's and record page's keys work from their static scripts
    reviewer = make_user("rhys", "viewer", "reviewer")
    summary = mining_services.import_extracted(io.StringIO(CSV), batch_name="J2 batch", user=reviewer)
    batch_id = summary["batch_id"]
    clean = ExtractedRecord.objects.get(batch_id=batch_id, composition_raw=CLEAN)
    flagged = ExtractedRecord.objects.get(batch_id=batch_id, composition_raw=FLAGGED)
    to_reject = ExtractedRecord.objects.get(batch_id=batch_id, composition_raw=TO_REJECT)
    assert clean.flags == [] and to_reject.flags == []
    assert "order" in flagged.flag_names
    assert not Alloy.objects.exists()

    login("rhys")
    queue_url = f"{live_server.url}/mining/review/?batch={batch_id}"
    page.goto(queue_url)
    assert queue_rows(page).count() == 3
    assert "order" in select_row(page, FLAGGED).inner_text()

    # a: approve the clean record.
    select_row(page, CLEAN)
    with page.expect_navigation():
        page.keyboard.press("a")
    assert f"Record {clean.pk} approved." in main_text(page)
    assert queue_rows(page).count() == 2

    # e: open the flagged record, swap Tg and Tx back, approve.
    select_row(page, FLAGGED)
    with page.expect_navigation():
        page.keyboard.press("e")
    assert re.search(rf"/mining/records/{flagged.pk}/$", page.url)
    assert "order" in main_text(page)
    page.fill("#id_tg_k", "690")
    page.fill("#id_tx_k", "760")
    with page.expect_navigation():
        page.click("#approve-btn")
    assert f"Record {flagged.pk} approved." in main_text(page)

    # r: reject the last one; the page asks for the reason.
    page.goto(queue_url)
    assert queue_rows(page).count() == 1
    select_row(page, TO_REJECT)
    page.once("dialog", lambda dialog: dialog.accept("Ribbon was crystalline: not a glass"))
    with page.expect_navigation():
        page.keyboard.press("r")
    assert f"Record {to_reject.pk} rejected." in main_text(page)
    assert "Nothing to review" in main_text(page)

    # The approved alloys appear in the alloy list, the rejected one does not.
    page.click("nav >> text=Alloys")
    page.wait_for_url(re.compile(r"/lab/alloys/"))
    page.fill("#id_elements", "Cu Zr")
    with page.expect_navigation():
        page.click("button:has-text('Search')")
    listed = page.locator("table.alloys tbody tr").all_inner_texts()
    assert any(CLEAN in row and "700.0" in row for row in listed), listed
    assert any("Zr60Cu25Al10Ni5" in row and "690.0" in row for row in listed), listed
    page.click(f"table.alloys a:has-text('{FLAGGED}')")
    page.wait_for_url(re.compile(r"/lab/alloys/\d+/$"))
    detail = main_text(page)
    assert "Literature" in detail and "690.0" in detail and "760.0" in detail
    assert page.console_errors == []

    # The database agrees.
    for record in (clean, flagged, to_reject):
        record.refresh_from_db()
    assert (clean.status, flagged.status, to_reject.status) == ("approved", "approved", "rejected")
    assert clean.reviewer == flagged.reviewer == to_reject.reviewer == reviewer
    assert to_reject.reject_reason == "Ribbon was crystalline: not a glass"
    assert (flagged.tg_k, flagged.tx_k) == (690.0, 760.0)
    assert sorted(Alloy.objects.values_list("formula", flat=True)) == sorted([CLEAN, FLAGGED])
    values = PropertyValue.objects.filter(origin="literature")
    assert values.count() == 2
    assert flagged.property_value.tg_k == 690.0 and flagged.property_value.alloy.formula == FLAGGED
    assert not Alloy.objects.filter(composition_key__contains="Pd").exists()


def test_reviewer_types_celsius_and_approves_all_clean_records_in_the_background(page, live_server, login, make_user, memory_broker, settings):
    """The record editor's K/°C toggle converts what is typed; "Approve all clean records" is a
    job whose progress the batch page follows and whose summary it shows. With the site's
    Content-Security-Policy on: the pages' scripts are static files, and nothing is refused."""
    strict_csp(settings)
    reviewer = make_user("rhys", "viewer", "reviewer")
    batch_id = mining_services.import_extracted(io.StringIO(CSV), batch_name="J2b batch", user=reviewer)["batch_id"]
    flagged = ExtractedRecord.objects.get(batch_id=batch_id, composition_raw=FLAGGED)
    login("rhys")

    response = page.goto(f"{live_server.url}/mining/records/{flagged.pk}/")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert page.input_value("#id_tg_k") == "760.0"
    page.check("#unit-toggle input[value='C']")
    assert page.input_value("#id_tg_k") == "486.85" and page.input_value("#id_tx_k") == "416.85"
    assert page.locator("[data-unit-label]").first.inner_text() == "°C"
    page.fill("#id_tg_k", "416.85")  # Tg and Tx swapped back, in °C
    page.fill("#id_tx_k", "486.85")
    with page.expect_navigation():
        page.click("button[value=save]")
    assert f"Record {flagged.pk} saved and re-validated." in main_text(page)
    flagged.refresh_from_db()
    # In order now; its Tl is not in its snippet, so it stays for a person.
    assert (round(flagged.tg_k, 6), round(flagged.tx_k, 6)) == (690.0, 760.0) and flagged.flag_names == ["ungrounded"]
    assert page.input_value("#id_tg_k") == "690.0"  # shown again in K

    page.goto(f"{live_server.url}/mining/batches/{batch_id}/")
    with page.expect_navigation():
        page.click("button:has-text('Approve all clean records (2)')")
    assert "Approving the clean records in the background" in main_text(page)
    assert page.get_attribute("#bulk-approval", "data-status") == "queued"
    from mining.models import BulkApproval

    job = BulkApproval.objects.get(batch_id=batch_id)
    mining_services.run_bulk_approval(job.pk)  # the worker's part; the page notices and reloads
    page.wait_for_selector("#bulk-summary", timeout=15000)
    assert page.inner_text("#bulk-summary") == "Approved 2 clean records (2 new alloys); 1 left for review: 1 flagged: ungrounded."
    assert ExtractedRecord.objects.filter(batch_id=batch_id, status="approved").count() == 2
    assert page.console_errors == [], "\n".join(page.console_errors)


def test_a_reviewer_only_user_reviews_from_the_home_page(page, live_server, login, make_user, settings):
    """Issue 18: a user given only the reviewer role (no viewer group) lands on the dashboard,
    follows its review link to the queue and approves a record: no 403 on the way."""
    strict_csp(settings)
    reviewer = make_user("rita", "reviewer")
    summary = mining_services.import_extracted(io.StringIO(CSV), batch_name="home batch", user=reviewer)
    clean = ExtractedRecord.objects.get(batch_id=summary["batch_id"], composition_raw=CLEAN)

    login("rita")
    response = page.goto(f"{live_server.url}/")
    assert response.status == 200
    link = page.locator("#dash-review a", has_text="waiting for review")
    assert link.locator(".count").inner_text() == "3"
    with page.expect_navigation():
        link.click()
    assert page.url == f"{live_server.url}{reverse('mining:review_queue')}" and queue_rows(page).count() == 3
    select_row(page, CLEAN)
    with page.expect_navigation():
        page.keyboard.press("a")
    assert f"Record {clean.pk} approved." in main_text(page)
    assert ExtractedRecord.objects.get(pk=clean.pk).status == ExtractedRecord.Status.APPROVED
    assert not page.console_errors, page.console_errors
