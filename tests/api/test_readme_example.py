"""README's "Drive the loop from a notebook" example, run as written against a live server.

The block after ``<!-- notebook-example -->`` in README.md is read, its settings at the top
(BASE_URL, USERNAME, PASSWORD, XRD_FILE) pointed at this test's server, user and pattern, and
run with exec: every request goes over HTTP to pytest-django's live_server with a token, as from
a person's notebook. Jobs run eagerly in the server's request thread (Celery's eager mode, once
the request commits), on a small synthetic Zr–Cu–Al–Ni literature set with small, fast models.
"""

import re
from pathlib import Path

import pytest

from tests.celery_broker import use_broker
from tests.design.conftest import add_gfa_literature, add_literature, synthetic_gfa_rows, synthetic_rows
from tests.lab.patterns_fixtures import synthetic_xrd_pattern

README = Path(__file__).resolve().parents[2] / "README.md"
MARK = "<!-- notebook-example -->"
PASSWORD = "pw-glassloop-1"


def notebook_example():
    """The python block right after the marker (fails if the README lost it)."""
    text = README.read_text()
    assert MARK in text, f"README.md has no {MARK} block"
    match = re.search(re.escape(MARK) + r"\s*```python\n(.*?)\n```", text, re.S)
    assert match, f"no ```python block right after {MARK}"
    return match.group(1)


def pointed_at(code, **values):
    """The code with each ``NAME = ...`` line at its top replaced by NAME = value."""
    for name, value in values.items():
        code, n = re.subn(rf"^{name} = .*$", lambda _m: f"{name} = {value!r}", code, count=1, flags=re.M)
        assert n == 1, f"the README example sets no {name} at its top"
    return code


@pytest.fixture
def fast_models(settings, tmp_path):
    settings.MODEL_ARTEFACT_ROOT = tmp_path / "models"
    settings.GLASSLOOP_TRAINING_EPOCHS = 10
    settings.GLASSLOOP_FORWARD_PARAMS = {"n_estimators": 20, "n_members": 2}
    settings.GLASSLOOP_GAN_PARAMS = {"val_every": 5, "hidden": 32}
    settings.GLASSLOOP_GFA_PARAMS = {"n_estimators": 30, "dmax_n_estimators": 30}


def test_readme_notebook_example_runs_the_loop(live_server, django_user_model, tmp_path, fast_models, capsys, xrd_on_worker):
    # xrd_on_worker: the posted pattern is analysed by its job, as every other job here (eagerly)
    from design.models import Candidate, DesignCampaign
    from lab.models import DSCMeasurement, XRDMeasurement
    from mining.models import ExtractedRecord
    from training.models import ModelVersion, TrainingRun

    add_literature(synthetic_rows(40))
    add_gfa_literature(synthetic_gfa_rows())
    django_user_model.objects.create_superuser("nb-admin", password=PASSWORD, email="")
    pattern = tmp_path / "rod.xy"
    pattern.write_bytes(synthetic_xrd_pattern("amorphous"))
    code = pointed_at(notebook_example(), BASE_URL=live_server.url, USERNAME="nb-admin", PASSWORD=PASSWORD,
                      XRD_FILE=str(pattern))

    notebook = {"__name__": "notebook"}
    with use_broker(eager=True):
        try:
            exec(compile(code, "README.md (notebook example)", "exec"), notebook)
        finally:
            if "api" in notebook:  # its kept-alive connection holds a server thread and its database connection
                notebook["api"].close()

    # Review: one approved as extracted, one corrected then approved, one rejected with the reason.
    records = {r.composition_raw: r for r in ExtractedRecord.objects.all()}
    assert len(records) == 3
    first, second, third = (records[k] for k in sorted(records))
    assert first.status == second.status == ExtractedRecord.Status.APPROVED
    assert second.tl_k == 1141.0 and first.tl_k != 1141.0
    assert third.status == ExtractedRecord.Status.REJECTED and "bulk" in third.reject_reason
    # The training ran on that data and its model is the active one the round used.
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.DONE, run.error
    version = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
    assert version.training_run == run
    campaign = DesignCampaign.objects.get()
    assert campaign.rounds.get().status == "done"
    # The candidate was approved and cast, and its sample holds the XRD and the DSC posted.
    best = Candidate.objects.exclude(status__in=[Candidate.Status.PROPOSED, Candidate.Status.REJECTED]).get()
    assert best.status in (Candidate.Status.VALIDATED, Candidate.Status.MISSED_TARGETS), best.status
    assert best.sample.diameter_mm == 2.0
    assert XRDMeasurement.objects.get(sample=best.sample).verdict == "amorphous"
    dsc = DSCMeasurement.objects.get(sample=best.sample)
    assert (dsc.tg_k, dsc.tx_k, dsc.tl_k) == (690.0, 765.0, 1120.0)
    assert best.tg_k_measured == 690.0
    printed = capsys.readouterr().out
    assert best.label in printed and "amorphous" in printed
