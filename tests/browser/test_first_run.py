"""The first run, in the browser: a fresh database gets a small starter corpus, the dashboard
shows the first training's progress (polling the job API), the model becomes active, and a
campaign designs candidates whose page shows P(glass), P(BMG) and Dmax.

The corpus is written here (made-up, smooth values; not rows of any data set): ~40 Zr–Cu–Al
bulk glasses with Tg/Tx/Tl and a Dmax, and ~40 crystals and ribbons of the same system. It is
loaded through ``load_starter_set --corpus`` when the command takes a path, else the records
are created with the lab's own service. The training and the generation round run in-process
(as in the other journeys); Celery publishes to kombu's in-memory transport.
"""

import csv
import re

import pytest
from django.core.management import call_command, load_command_class

pytestmark = pytest.mark.browser

from training.models import ModelVersion, TrainingRun

from .conftest import ARTIFACTS, main_text


def corpus_rows():
    """(glasses, crystals and ribbons) of Zr–Cu–Al, made up from smooth formulas."""
    from tests.design.conftest import synthetic_values

    glasses, others = [], []
    for i in range(40):  # the glass-forming middle: Zr 45–65, Al 5–12
        zr, al = 45 + (i % 8) * 2.5, 5 + (i // 8) * 1.5
        cu = round(100 - zr - al, 1)
        tg, tx, tl = synthetic_values(zr / 100, cu / 100, al / 100, 0.0)
        dmax = round(1.5 + 0.25 * (al - 5) + 0.05 * (zr - 45), 2)
        glasses.append({"composition": f"Zr{zr:g}Cu{cu:g}Al{al:g}", "gfa_class": "BMG", "dmax_mm": dmax,
                        "Tg_K": tg, "Tx_K": tx, "Tl_K": tl})
    for i in range(20):  # far from the middle: crystals (Zr- or Al-rich) and ribbons (Cu-rich)
        zr, al = (80 + i % 10, 2 + i // 10) if i < 10 else (20 + i % 10, 30 + (i // 10) * 5)
        cu = round(100 - zr - al, 1)
        others.append({"composition": f"Zr{zr:g}Cu{cu:g}Al{al:g}", "gfa_class": "Crystal", "dmax_mm": 0,
                       "Tg_K": "", "Tx_K": "", "Tl_K": ""})
    for i in range(20):
        zr, al = 30 + (i % 10), 2 + (i // 10) * 2
        cu = round(100 - zr - al, 1)
        others.append({"composition": f"Zr{zr:g}Cu{cu:g}Al{al:g}", "gfa_class": "Ribbon", "dmax_mm": 0.1,
                       "Tg_K": "", "Tx_K": "", "Tl_K": ""})
    return glasses, others


def load_small_corpus(tmp_path):
    glasses, others = corpus_rows()
    options = {action.dest for action in load_command_class("lab", "load_starter_set").create_parser("manage.py", "x")._actions}
    if "corpus" in options:
        path = tmp_path / "corpus.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(glasses[0]))
            writer.writeheader()
            writer.writerows(glasses + others)
        call_command("load_starter_set", "--if-empty", "--corpus", str(path))
    else:  # the loader takes no path yet: the lab's own records, temperatures only
        from tests.design.conftest import add_literature

        add_literature(glasses, label="first-run test corpus")
    return glasses, others


def test_first_run_trains_then_designs(page, live_server, login, make_user, tmp_path, small_models, memory_broker,
                                       settings):
    settings.GLASSLOOP_CSP = "on"  # as the containers run it: the pages' scripts are static files
    from design import services as design_services
    from design.models import Candidate, GenerationRound
    from lab.models import Alloy
    from training import services as ml_services

    make_user("ada", "approver", "experimenter")
    assert not Alloy.objects.exists() and not ModelVersion.objects.exists()
    glasses, _ = load_small_corpus(tmp_path)
    assert Alloy.objects.filter(tg_mean_k__isnull=False).count() >= len(glasses) - 2

    # make run: the first training is queued (no worker runs it yet).
    call_command("queue_first_training")
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.QUEUED and run.trigger == TrainingRun.Trigger.BOOTSTRAP

    # The dashboard shows the run with a progress bar that polls the job API.
    login("ada")
    page.goto(f"{live_server.url}/")
    box = page.locator("#training-progress")
    assert box.get_attribute("data-job-url") == f"/api/jobs/training-runs/{run.pk}/"
    assert page.locator("#training-progress progress.job-progress").count() == 1
    assert page.locator("#design-candidates").count() == 0
    assert "Queued" in box.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "first_run_dashboard_training.png"), full_page=True)

    # What a worker's heartbeat writes shows without a reload: the bar follows the job API.
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING, progress=0.4, message="training the CGAN")
    page.wait_for_function("() => document.querySelector('#training-progress progress').value > 0.39", timeout=10_000)
    assert "training the CGAN" in box.inner_text() and "40 %" in box.inner_text()
    assert "Running" in box.inner_text()
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.QUEUED, progress=0.0, message="")

    # The worker trains it (here: in-process, while the page keeps polling).
    run = ml_services.run_training(run.pk)
    assert run.status == TrainingRun.Status.DONE, run.error
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists()

    # The page notices by itself (the poll sees "finished" and reloads): the model is active.
    page.wait_for_selector("#design-candidates", timeout=20_000)
    assert "Active model v" in page.inner_text("#dash-model")
    assert page.locator("#training-progress").count() == 0
    page.screenshot(path=str(ARTIFACTS / "first_run_dashboard_active.png"), full_page=True)
    assert page.console_errors == []

    # Design candidates: a campaign, one generation round.
    with page.expect_navigation():
        page.click("#design-candidates")
    assert page.url.endswith("/design/new/")
    page.fill("#id_name", "First run: Zr-based BMG")
    page.fill("#id_tg_k_min", "600")
    page.fill("#id_base_element", "Zr")
    page.fill("#id_max_elements", "3")
    page.fill("#id_min_p_glass", "0")
    page.fill("#id_min_novelty", "0.01")
    page.fill("#id_batch_size", "3")
    page.fill("#id_n_draws", "500")
    with page.expect_navigation():
        page.click("button:has-text('Create campaign')")
    assert re.search(r"/design/\d+/$", page.url), main_text(page)
    with page.expect_navigation():
        page.click("main button:has-text('Generate the first round')")
    gen_round = GenerationRound.objects.get()
    gen_round = design_services.run_generation(gen_round.pk, seed=0)
    assert gen_round.status == "done", gen_round.error
    candidate = Candidate.objects.order_by("rank").first()
    assert candidate is not None

    page.goto(f"{live_server.url}/design/candidates/{candidate.pk}/")
    assert candidate.formula in main_text(page)
    missing = [name for name in ("p_glass", "p_bmg", "dmax_mm_pred") if getattr(candidate, name, None) is None]
    fit = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE).metrics.get("fit") or {}
    assert not missing, f"candidate has no {', '.join(missing)}: {_find(fit, 'skipped') or 'no GFA model in the bundle'}"
    p_glass, p_bmg, dmax = (page.inner_text(s).strip() for s in ("#pred-p-glass", "#pred-p-bmg", "#pred-dmax"))
    assert re.fullmatch(r"[01]\.\d\d", p_glass) and float(p_glass) == pytest.approx(candidate.p_glass, abs=0.006)
    assert re.fullmatch(r"[01]\.\d\d", p_bmg) and float(p_bmg) == pytest.approx(candidate.p_bmg, abs=0.006)
    assert "mm" in dmax and re.search(r"\d", dmax)
    assert page.console_errors == []


def _find(tree, key):
    """The first value under ``key`` anywhere in a nested dict (the reason a model was skipped)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for value in tree.values():
            found = _find(value, key)
            if found:
                return found
    return None
