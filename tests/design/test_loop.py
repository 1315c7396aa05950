"""The whole design loop on a small synthetic fixture: generate, approve, enter XRD + DSC through
the lab services (real uploads), the candidate follows, and the loop retrains by itself."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from design import services
from design.generation import meets_constraints
from design.models import Candidate, CandidateEvent, GenerationRound
from lab import services as lab_services
from tests.lab.patterns_fixtures import synthetic_dsc_curve
from lab.models import Alloy, PropertyValue, Sample
from training import selectors as ml_selectors
from ml.composition import parse_composition
from training.models import ModelVersion, TrainingRun

from .conftest import synthetic_gfa_rows, synthetic_values, xrd_upload


@pytest.fixture
def eager_celery():
    """Tasks queued on commit run in this process (the real-worker test is test_worker.py)."""
    from tests.celery_broker import use_broker

    with use_broker(eager=True) as app:
        yield app


def generate_round(campaign):
    gen_round = services.create_round(campaign)
    gen_round = services.run_generation(gen_round.pk, seed=1)
    assert gen_round.status == GenerationRound.Status.DONE, gen_round.error
    return gen_round


def assert_constraints(campaign):
    """Every stored candidate parses and meets the campaign's element constraints."""
    spec = services.spec_for(campaign)
    ranges = {el: (lo / 100, hi / 100) for el, (lo, hi) in spec.element_ranges.items()}
    known = set(Alloy.objects.filter(design_candidates__isnull=True).values_list("composition_key", flat=True))
    for c in campaign.candidates.all():
        comp = parse_composition(c.formula)
        assert comp.key == c.composition_key
        assert meets_constraints(comp, spec.max_elements, spec.base_element, set(spec.allowed_elements),
                                 set(spec.forbidden_elements), ranges), c.formula
        assert c.nearest_distance >= campaign.min_novelty
        assert c.p_glass is None or c.p_glass >= campaign.min_p_glass  # None: no GFA model
        assert c.composition_key not in known


def test_whole_loop(active_model, campaign_factory, approver, experimenter, client, eager_celery,
                    django_capture_on_commit_callbacks):
    campaign = campaign_factory()
    first = generate_round(campaign)
    candidates = list(first.candidates.order_by("rank"))
    assert len(candidates) >= 3, first.counts
    assert first.model_version == active_model
    assert_constraints(campaign)
    for c in candidates:  # the stored predictions meet the targets (optimistically, κ = 1)
        assert c.tg_k_pred + campaign.kappa * c.tg_k_std >= 680
        assert c.score_terms["margin_tg_k"] >= 0 and c.score_terms["margin_trg"] >= 0
        assert c.model_version == active_model
        assert c.events.get().to_status == Candidate.Status.PROPOSED

    # Approve three: each gets its lab sample, pre-filled.
    approved = [services.approve_candidate(c, user=approver, note="worth a rod") for c in candidates[:3]]
    for c in approved:
        assert c.status == Candidate.Status.APPROVED
        assert c.sample.label == f"C{campaign.pk}-{c.number}"
        assert c.sample.alloy.composition_key == c.composition_key
        assert "worth a rod" in c.sample.notes
        assert c.events.last().user == approver

    # Results come back through the experiment services: two amorphous with DSC, one crystalline.
    measured = {}
    with django_capture_on_commit_callbacks(execute=True):
        for i, c in enumerate(approved):
            services.update_synthesis_sample(c, user=experimenter, diameter_mm=2.0)  # a rod of stated diameter
            sample = Sample.objects.get(pk=c.sample_id)
            kind = "crystalline" if i == 2 else "amorphous"
            lab_services.record_xrd(sample, user=experimenter, uploaded_file=xrd_upload(kind, seed=i))
            if kind == "amorphous":
                comp = parse_composition(c.formula)
                tg, tx, tl = synthetic_values(*(comp.get(el, 0.0) for el in ("Zr", "Cu", "Al", "Ni")))
                curve = SimpleUploadedFile(f"dsc-{i}.txt", synthetic_dsc_curve(tg, tx, tl, seed=i), content_type="text/plain")
                lab_services.record_dsc(sample, user=experimenter, tg_k=tg, tx_k=tx, tl_k=tl, curve_file=curve)
                measured[c.pk] = (tg, tx, tl)
    statuses = {c.pk: Candidate.objects.get(pk=c.pk).status for c in approved}
    for c in approved[:2]:  # glass ✓ (amorphous 2 mm rod): validated when the DSC meets the targets
        tg, tx, tl = measured[c.pk]
        meets = tg >= 680 and tg / tl >= 0.58
        assert statuses[c.pk] == (Candidate.Status.VALIDATED if meets else Candidate.Status.MISSED_TARGETS)
    assert statuses[approved[2].pk] == Candidate.Status.FAILED
    # Every step is recorded with who did it.
    steps = list(CandidateEvent.objects.filter(candidate=approved[0]).values_list("to_status", flat=True))
    assert steps == ["proposed", "approved_for_synthesis", "in_synthesis", statuses[approved[0].pk]]

    # The candidate page shows predicted vs measured with relative errors.
    validated = Candidate.objects.get(pk=approved[0].pk)
    tg, tx, tl = measured[validated.pk]
    assert validated.tg_k_measured == tg
    err = 100 * abs(validated.tg_k_pred - tg) / tg
    client.force_login(approver)
    page = client.get(validated.get_absolute_url()).content.decode()
    assert f"{err:.2f} %" in page
    campaign_page = client.get(campaign.get_absolute_url()).content.decode()
    assert validated.formula in campaign_page and "predicted-vs-measured" in campaign_page

    # Three new lab results: the loop retrained by itself (eager worker) and trained on them.
    loop_run = TrainingRun.objects.get(trigger=TrainingRun.Trigger.LOOP)
    assert loop_run.status == TrainingRun.Status.DONE, loop_run.error
    assert loop_run.n_lab_results == 3
    new_version = ModelVersion.objects.get(training_run=loop_run)
    assert new_version.status in (ModelVersion.Status.ACTIVE, ModelVersion.Status.CANDIDATE)
    assert new_version.status_reason
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).count() == 1
    gfa = new_version.metrics["fit"]["gfa_report"]
    assert gfa["rows_in"] > len(synthetic_gfa_rows())  # the lab's XRD rows reached the GFA model
    assert new_version.metrics["validation"]["gfa"] is None or "glass" in new_version.metrics["validation"]["gfa"]
    # No further result: nothing more to retrain.
    assert services_retrain_check() is None

    # Round 2 uses the active model and never repeats a candidate of round 1.
    second = generate_round(campaign)
    assert second.number == 2
    keys = list(campaign.candidates.values_list("composition_key", flat=True))
    assert len(keys) == len(set(keys))
    assert_constraints(campaign)
    history = client.get(campaign.get_absolute_url()).content.decode()
    assert f"v{new_version.pk}" in history and f"v{active_model.pk}" in history
    assert client.get(reverse("design:campaign_map", args=[campaign.pk])).content.startswith(b"<svg")


def _diameter(sample):
    return "" if sample.diameter_mm is None else repr(round(float(sample.diameter_mm), 6))


def services_retrain_check():
    from training.services import maybe_retrain_for_new_results

    return maybe_retrain_for_new_results()


def test_crystalline_sample_is_a_negative_label(active_model, campaign_factory, approver, experimenter):
    """A failed casting enters the training rows as label 0 and as a Dmax bound below the rod's
    diameter (none when the diameter is unknown) for the GFA model."""
    campaign = campaign_factory()
    c = generate_round(campaign).candidates.order_by("rank").first()
    c = services.approve_candidate(c, user=approver)
    lab_services.record_xrd(c.sample, user=experimenter, uploaded_file=xrd_upload("crystalline", seed=3))
    rows = [r for r in ml_selectors.training_rows() if r["origin"] == "xrd"]
    assert rows == [{"composition": c.sample.alloy.formula, "Tg_K": "", "Tx_K": "", "Tl_K": "", "gfa_class": "",
                     "dmax_mm": _diameter(c.sample), "dmax_kind": "below", "label": "0", "weight": "3.0",
                     "origin": "xrd"}]
    assert Candidate.objects.get(pk=c.pk).status == Candidate.Status.FAILED
    assert not PropertyValue.objects.filter(alloy=c.sample.alloy).exists()
