"""Fixtures of the design-loop tests: a synthetic Zr–Cu–Al–Ni literature set, small fast
models, and an active model version trained through the real service.

The synthetic set has smooth, made-up Tg/Tx/Tl (not from any data set) so that the models
have something learnable: ~80 Zr-based alloys with Trg spread around the 0.60 criterion.
"""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lab.models import PropertyValue
from lab.services import get_or_create_alloy

N_ALLOYS = 80


def synthetic_values(zr, cu, al, ni):
    tg = 560 + 250 * cu + 700 * al + 300 * ni - 50 * zr
    tx = tg + 35 + 250 * al + 80 * ni
    tl = 1000 + 250 * zr + 150 * cu - 300 * al
    return round(tg, 1), round(tx, 1), round(tl, 1)


def synthetic_rows(n=N_ALLOYS, seed=0):
    rng = np.random.default_rng(seed)
    rows, seen = [], set()
    while len(rows) < n:
        zr, al, ni = rng.uniform(0.45, 0.70), rng.uniform(0.05, 0.15), rng.uniform(0.0, 0.12)
        cu = 1 - zr - al - ni
        if cu < 0.08:
            continue
        at = {"Zr": zr * 100, "Cu": cu * 100, "Al": al * 100, "Ni": ni * 100}
        at = {k: round(v, 1) for k, v in at.items() if round(v, 1) > 0}
        at["Zr"] = round(at["Zr"] + 100 - sum(at.values()), 1)
        text = "".join(f"{k}{v:g}" for k, v in at.items())
        if text in seen:
            continue
        seen.add(text)
        tg, tx, tl = synthetic_values(*(at.get(k, 0) / 100 for k in ("Zr", "Cu", "Al", "Ni")))
        rows.append({"composition": text, "Tg_K": tg, "Tx_K": tx, "Tl_K": tl})
    return rows


def add_literature(rows, label="synthetic test set"):
    for r in rows:
        alloy, _ = get_or_create_alloy(r["composition"])
        PropertyValue.objects.create(
            alloy=alloy, origin=PropertyValue.Origin.LITERATURE, tg_k=r["Tg_K"], tx_k=r["Tx_K"], tl_k=r["Tl_K"],
            source_label=label,
        )


def synthetic_gfa_rows(seed=0):
    """Made-up GFA labels in the same elements: the Zr-based alloys of ``synthetic_rows`` are
    BMGs (Dmax growing with Al, invented), and Cu-, Ni- and Al-rich alloys are crystals, so the
    GFA model has both classes to learn from."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in synthetic_rows()[::2]:
        al = float(r["composition"].split("Al")[1].split("Ni")[0]) if "Al" in r["composition"] else 5.0
        rows.append({"composition": r["composition"], "gfa_class": "bmg", "dmax_mm": round(1 + 0.5 * (al - 5), 1)})
    for base, other in (("Cu", "Al"), ("Ni", "Al"), ("Al", "Cu"), ("Cu", "Ni")):
        for x in sorted({round(float(v), 1) for v in rng.uniform(65, 92, 8)}):
            rows.append({"composition": f"{base}{x:g}{other}{round(100 - x, 1):g}", "gfa_class": "crystal",
                         "dmax_mm": None})
    return rows


def add_gfa_literature(rows, label="synthetic GFA set"):
    for r in rows:
        alloy, _ = get_or_create_alloy(r["composition"])
        PropertyValue.objects.create(alloy=alloy, origin=PropertyValue.Origin.LITERATURE, gfa_class=r["gfa_class"],
                                     dmax_mm=r["dmax_mm"], source_label=label)


@pytest.fixture
def literature(db):
    rows = synthetic_rows()
    add_literature(rows)
    add_gfa_literature(synthetic_gfa_rows())
    return rows


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def fast_models(settings, models_root):
    """Small models so a training takes seconds; artefacts in a per-session folder."""
    settings.MODEL_ARTEFACT_ROOT = models_root
    settings.GLASSLOOP_TRAINING_EPOCHS = 10
    settings.GLASSLOOP_FORWARD_PARAMS = {"n_estimators": 40, "n_members": 2}
    settings.GLASSLOOP_GAN_PARAMS = {"val_every": 5, "hidden": 64}
    settings.GLASSLOOP_GFA_PARAMS = {"n_estimators": 60, "dmax_n_estimators": 60}
    settings.GLASSLOOP_RETRAIN_MIN_NEW_RESULTS = 3
    settings.GLASSLOOP_JOB_STALE_SECONDS = 300


_TRAINED = {}  # snapshot hash -> (artefact dir, metrics, curves), so each session trains a data set once


def train_active_model():
    """An active version trained on the literature in the database through request_retrain +
    run_training. The first call of the session on given data really trains; later calls
    on the same data reuse the artefacts (a copy of the run and version rows pointing at them).
    """
    from training import services
    from training.models import ModelVersion, TrainingRun

    result = services.request_retrain(trigger=TrainingRun.Trigger.BOOTSTRAP, enqueue=False)
    run = result.run
    cached = _TRAINED.get(run.snapshot_hash)
    if cached is None:
        run = services.run_training(run.pk)
        assert run.status == TrainingRun.Status.DONE, run.error
        version = ModelVersion.objects.get(training_run=run)
        _TRAINED[run.snapshot_hash] = (version.artefact_dir, version.metrics, run.curves)
    else:
        artefact_dir, metrics, curves = cached
        TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.DONE, curves=curves, phase="done")
        ModelVersion.objects.create(
            training_run=run, artefact_dir=artefact_dir, snapshot_hash=run.snapshot_hash, data_size=run.data_size,
            n_lab_results=run.n_lab_results, snapshot_taken_at=run.snapshot_taken_at, metrics=metrics,
            status=ModelVersion.Status.ACTIVE, status_reason="First model: nothing to compare with.",
        )
    version = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
    assert version.path.is_dir()
    return version


@pytest.fixture
def active_model(literature, models_root):
    """An active version trained on the synthetic literature (see train_active_model)."""
    return train_active_model()


def xrd_upload(kind, seed=0):
    from tests.lab.patterns_fixtures import synthetic_xrd_pattern

    return SimpleUploadedFile(f"{kind}-{seed}.xy", synthetic_xrd_pattern(kind, seed=seed), content_type="text/plain")


@pytest.fixture
def campaign_factory(db, make_user):
    from design.services import create_campaign

    owner = make_user("olga", "viewer", "experimenter")

    def make(**overrides):
        fields = dict(
            name="Zr-based, high Tg",
            targets={"tg_k": {"min": 680}, "trg": {"min": 0.58}},
            base_element="Zr",
            forbidden_elements=["Be"],
            max_elements=4,
            element_ranges={"Zr": [45, 70]},
            min_p_glass=0.0,
            min_novelty=0.02,
            batch_size=5,
            n_draws=3000,
        )
        fields.update(overrides)
        return create_campaign(owner=owner, **fields)

    return make


@pytest.fixture(autouse=True)
def _xrd_analysed_at_once(xrd_analysed_at_once):
    """Recorded patterns are analysed at once (tests/lab/xrd_helpers.py); ``xrd_on_worker`` undoes it."""
