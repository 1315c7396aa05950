"""Corrections with an audit trail (issue 18): edit and retract samples, XRD and DSC
measurements and property values, each with a reason; the alloy's means, the history and the
next training rows follow; retracted and stale records are refused."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from lab import services
from lab.models import Alloy, Correction, DSCMeasurement, PropertyValue, Reference, Sample, XRDMeasurement, conflicts_leave_means
from tests.lab.patterns_fixtures import synthetic_xrd_pattern
from training.selectors import count_new_lab_results, training_rows

pytestmark = pytest.mark.django_db

COMPOSITION = "Cu46Zr46Al8"


def BEFORE_MEAN():  # noqa: N802
    """The mean Tg of the two_dscs alloy before its typo is corrected: both values, or none of
    them when values in an unresolved conflict leave the means (GLASSLOOP_CONFLICTS_OUT_OF_MEANS)."""
    return None if conflicts_leave_means() else pytest.approx((705 + 978) / 2)


def tg_rows(formula):
    return sorted(float(r["Tg_K"]) for r in training_rows() if r["composition"] == formula and r["Tg_K"])


@pytest.fixture
def olga(make_user):
    return make_user("olga", "experimenter")


@pytest.fixture
def two_dscs(olga):
    """An alloy with a correct DSC (Tg 705 K) and a mistyped one (Tg 978 K: °C typed as K... the
    other way round), on two samples."""
    good = services.log_experiment(user=olga, composition=COMPOSITION, label="S-1", dsc={"tg_k": 705.0, "tx_k": 780.0, "tl_k": 1160.0})
    bad = services.log_experiment(user=olga, composition=COMPOSITION, label="S-2", dsc={"tg_k": 978.0, "tx_k": 1053.0, "tl_k": 1433.0})
    return good.dsc_measurements.get(), bad.dsc_measurements.get()


def test_correcting_a_mistyped_tg_changes_the_mean_the_history_and_the_training_rows(olga, two_dscs):
    good, bad = two_dscs
    alloy = Alloy.objects.get()
    assert alloy.tg_mean_k == BEFORE_MEAN()  # the typo is averaged in (or left out, in conflict)
    assert alloy.has_conflict
    assert tg_rows(alloy.formula) == ([] if conflicts_leave_means() else [705.0, 978.0])

    correction = services.correct_dsc(dsc=bad, user=olga, reason="typed in °C", version=1, tg_k=706.0, tx_k=781.0, tl_k=1161.0)

    alloy.refresh_from_db()
    assert alloy.tg_mean_k == pytest.approx((705 + 706) / 2)
    assert alloy.tx_mean_k == pytest.approx((780 + 781) / 2)
    assert not alloy.has_conflict  # the conflict was the typo; recomputed
    assert tg_rows(alloy.formula) == [705.0, 706.0]
    bad.refresh_from_db()
    assert bad.version == 2 and bad.corrected_at is not None
    assert bad.property_value.tg_k == 706.0 and not bad.property_value.conflict
    # who, when, reason, before → after
    assert correction.by == olga and correction.reason == "typed in °C"
    assert correction.changes[0] == {"field": "tg_k", "label": "Tg", "before": 978.0, "after": 706.0, "unit": "K"}
    assert correction.line.endswith("· olga · Tg 978.0 → 706.0 K, Tx 1053.0 → 781.0 K, Tl 1433.0 → 1161.0 K · reason: typed in °C")
    assert correction.record_label == f"DSC #{bad.pk}"
    assert list(alloy.corrections.all()) == [correction]
    assert list(bad.sample.corrections.all()) == [correction]
    # simple-history has it too (the admin's record of every save)
    last = bad.history.order_by("-history_id").first()
    assert last.tg_k == 706.0 and last.history_user == olga and last.history_change_reason == "typed in °C"


def test_a_correction_counts_as_a_new_lab_result(olga, two_dscs):
    from django.utils import timezone

    _, bad = two_dscs
    since = timezone.now()
    assert count_new_lab_results(since) == 0
    services.correct_dsc(dsc=bad, user=olga, reason="typo", tg_k=706.0, tx_k=781.0, tl_k=1161.0)
    assert count_new_lab_results(since) == 1


def test_a_retracted_dsc_leaves_the_mean_and_the_training_rows(olga, two_dscs):
    good, bad = two_dscs
    correction = services.retract_dsc(dsc=bad, user=olga, reason="wrong sample in the pan", version=1)
    alloy = Alloy.objects.get()
    assert alloy.tg_mean_k == pytest.approx(705.0)
    assert alloy.n_values == 1 and not alloy.has_conflict
    assert tg_rows(alloy.formula) == [705.0]
    bad.refresh_from_db()
    assert bad.retracted_at is not None and bad.retracted_by == olga and bad.retraction_reason == "wrong sample in the pan"
    assert bad.property_value.retracted_at is not None  # the value follows its measurement
    assert DSCMeasurement.objects.count() == 2 and PropertyValue.objects.count() == 2  # kept, never deleted
    assert correction.action == Correction.Action.RETRACT and "retracted · reason: wrong sample in the pan" in correction.line
    assert count_new_lab_results(None) == 1  # S-2's only measurement is retracted


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_an_empty_reason_is_refused(olga, two_dscs, reason):
    _, bad = two_dscs
    for call in (lambda: services.correct_dsc(dsc=bad, user=olga, reason=reason, tg_k=706.0),
                 lambda: services.retract_dsc(dsc=bad, user=olga, reason=reason)):
        with pytest.raises(ValidationError) as exc:
            call()
        assert "reason" in exc.value.message_dict
    bad.refresh_from_db()
    assert bad.tg_k == 978.0 and bad.retracted_at is None and not Correction.objects.exists()


def test_editing_a_retracted_record_is_refused(olga, two_dscs):
    _, bad = two_dscs
    services.retract_dsc(dsc=bad, user=olga, reason="bad scan")
    with pytest.raises(ValidationError, match="retracted .bad scan.; a retracted record cannot be edited"):
        services.correct_dsc(dsc=bad, user=olga, reason="fix", tg_k=706.0)
    with pytest.raises(ValidationError, match="cannot be edited"):
        services.retract_dsc(dsc=bad, user=olga, reason="again")
    with pytest.raises(ValidationError, match="cannot be edited"):
        services.correct_property_value(value=bad.property_value, user=olga, reason="fix", note="x")
    assert Correction.objects.count() == 1


def test_a_correction_that_breaks_the_order_is_refused_with_the_reason(olga, two_dscs):
    _, bad = two_dscs
    with pytest.raises(ValidationError) as exc:
        services.correct_dsc(dsc=bad, user=olga, reason="fix", tg_k=1100.0)
    assert "Tg < Tx < Tl" in " ".join(exc.value.messages) or "Tx" in " ".join(exc.value.messages)
    bad.refresh_from_db()
    assert bad.tg_k == 978.0 and bad.version == 1 and not Correction.objects.exists()
    assert Alloy.objects.get().tg_mean_k == BEFORE_MEAN()


def test_a_concurrent_edit_is_refused_with_who_changed_it(olga, make_user, two_dscs):
    _, bad = two_dscs
    piotr = make_user("piotr", "experimenter")
    services.correct_dsc(dsc=bad, user=piotr, reason="typo", version=1, tg_k=706.0, tx_k=781.0, tl_k=1161.0)
    with pytest.raises(ValidationError) as exc:  # olga loaded the form at version 1 too
        services.correct_dsc(dsc=bad, user=olga, reason="mine", version=1, tg_k=707.0, tx_k=781.0, tl_k=1161.0)
    message = exc.value.message_dict["version"][0]
    assert "changed by piotr at " in message and "Reload" in message
    assert exc.value.error_dict["version"][0].code == "stale"
    bad.refresh_from_db()
    assert bad.tg_k == 706.0 and bad.version == 2


def test_nothing_changed_is_refused(olga, two_dscs):
    good, _ = two_dscs
    with pytest.raises(ValidationError, match="Nothing to correct"):
        services.correct_dsc(dsc=good, user=olga, reason="check", tg_k=705.0)


def test_correct_and_retract_a_sample_with_its_measurements(olga, two_dscs):
    good, bad = two_dscs
    sample = bad.sample
    xrd = services.record_xrd(sample, user=olga, uploaded_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")))
    correction = services.correct_sample(sample=sample, user=olga, reason="rod was 3 mm", version=1, diameter_mm=3.0)
    assert correction.changes == [{"field": "diameter_mm", "label": "diameter", "before": None, "after": 3.0, "unit": "mm"}]
    alloy = Alloy.objects.get()
    assert alloy.dmax_mm == 3.0 and alloy.n_samples == 2
    services.retract_sample(sample=sample, user=olga, reason="contaminated ingot", version=2)
    alloy.refresh_from_db()
    assert alloy.n_samples == 1 and alloy.dmax_mm is None and alloy.tg_mean_k == pytest.approx(705.0)
    xrd.refresh_from_db()
    bad.refresh_from_db()
    assert xrd.retracted_at and bad.retracted_at and bad.property_value.retracted_at
    assert not [r for r in training_rows() if r["origin"] == "xrd"]
    with pytest.raises(ValidationError, match="cannot be edited"):  # no new measurement on a retracted sample
        services.record_dsc(sample, user=olga, tg_k=700.0, tx_k=780.0)
    assert Sample.objects.count() == 2


def test_retracting_an_xrd_takes_it_out_of_the_gfa_evidence(olga):
    sample = services.log_experiment(user=olga, composition=COMPOSITION, label="R-1", diameter_mm=2.0,
                                     xrd_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")))
    xrd = sample.xrd_measurements.get()
    assert Alloy.objects.get().dmax_mm == 2.0
    services.retract_xrd(xrd=xrd, user=olga, reason="wrong file", version=1)
    assert Alloy.objects.get().dmax_mm is None and Alloy.objects.get().gfa_class == ""
    with pytest.raises(ValidationError, match="cannot be edited"):
        services.override_xrd_verdict(xrd, user=olga, verdict="crystalline", reason="x")
    assert XRDMeasurement.objects.count() == 1


def test_the_alloy_page_and_api_castings_leave_out_a_retracted_xrd_or_sample(client, olga):
    """The castings listed with an alloy are the evidence its GFA summary uses: before, the page
    and the API still listed a retracted pattern (or a retracted rod's) as "amorphous 2 mm rod"
    beside a summary that no longer counted it."""
    from django.urls import reverse

    client.force_login(olga)
    rods = [
        services.log_experiment(user=olga, composition=COMPOSITION, label=label, diameter_mm=2.0,
                                xrd_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")))
        for label in ("R-1", "R-2")
    ]
    alloy = Alloy.objects.get()

    def castings():
        page = client.get(reverse("lab:alloy_detail", args=[alloy.pk])).context["castings"]
        api = client.get(f"/api/alloys/{alloy.pk}/").json()["castings"]
        return sorted(c.sample.label for c in page), sorted(c["label"] for c in api)

    assert castings() == (["R-1", "R-2"], ["R-1", "R-2"])
    services.retract_xrd(xrd=rods[0].xrd_measurements.get(), user=olga, reason="wrong file")
    services.retract_sample(sample=Sample.objects.get(label="R-2"), user=olga, reason="lost rod")
    assert castings() == ([], [])
    assert Alloy.objects.get().dmax_mm is None


def test_literature_values_are_corrected_and_retracted_experimental_ones_through_their_dsc(olga, two_dscs):
    good, _ = two_dscs
    alloy = Alloy.objects.get()
    ref = Reference.objects.create(label="Paper")
    value = PropertyValue.objects.create(alloy=alloy, origin="literature", reference=ref, tg_k=700.0, tx_k=770.0)
    services.correct_property_value(value=value, user=olga, reason="Table 2, not Table 1", version=1, tg_k=702.0,
                                    gfa_class="BMG")
    value.refresh_from_db()
    assert value.tg_k == 702.0 and value.gfa_class == "bmg" and value.version == 2
    with pytest.raises(ValidationError, match="DSC #%d's measurement: correct the DSC" % good.pk):
        services.correct_property_value(value=good.property_value, user=olga, reason="x", tg_k=700.0)
    with pytest.raises(ValidationError):
        services.correct_property_value(value=value, user=olga, reason="x", tg_k=900.0)  # Tg > Tx
    services.retract_property_value(value=value, user=olga, reason="retracted paper")
    assert 702.0 not in tg_rows(alloy.formula)
    services.retract_property_value(value=good.property_value, user=olga, reason="bad pan")
    good.refresh_from_db()
    assert good.retracted_at is not None


# ---------------------------------------------------------------- pages


def test_an_experimenter_corrects_a_dsc_on_the_page_and_the_alloy_page_and_history_change(client, olga, two_dscs):
    from django.urls import reverse

    _, bad = two_dscs
    client.force_login(olga)
    sample_page = client.get(reverse("lab:sample_detail", args=[bad.sample_id])).content.decode()
    assert reverse("lab:correct_dsc", args=[bad.pk]) in sample_page and reverse("lab:retract_dsc", args=[bad.pk]) in sample_page
    url = reverse("lab:correct_dsc", args=[bad.pk])
    form = client.get(url)
    assert form.status_code == 200 and 'name="version" value="1"' in form.content.decode()
    # °C ticked: 432.85 °C = 706.0 K
    response = client.post(url, {"tg": "432.85", "tx": "507.85", "tl": "887.85", "temperature_unit": "C",
                                 "heating_rate_k_min": "20", "reason": "typed in °C", "version": "1"})
    assert response.status_code == 302, response.content.decode()[:3000]
    alloy = Alloy.objects.get()
    page = client.get(reverse("lab:alloy_detail", args=[alloy.pk])).content.decode()
    assert "705.5 K" in page  # the mean of 705 and 706
    assert "· olga · Tg 978.0 → 706.0 K, Tx 1053.0 → 781.0 K, Tl 1433.0 → 1161.0 K · reason: typed in °C" in page
    sample_page = client.get(reverse("lab:sample_detail", args=[bad.sample_id])).content.decode()
    assert "Tg 978.0 → 706.0 K" in sample_page


def test_the_page_refuses_an_empty_reason_and_a_stale_version_keeping_what_was_typed(client, olga, make_user, two_dscs):
    from django.urls import reverse

    _, bad = two_dscs
    client.force_login(olga)
    url = reverse("lab:correct_dsc", args=[bad.pk])
    data = {"tg": "706", "tx": "781", "tl": "1161", "temperature_unit": "K", "heating_rate_k_min": "20", "reason": " ",
            "version": "1"}
    response = client.post(url, data)
    assert response.status_code == 200 and "a reason is required" in response.content.decode()
    services.correct_dsc(dsc=bad, user=make_user("piotr", "experimenter"), reason="typo", tg_k=707.0, tx_k=781.0, tl_k=1161.0)
    response = client.post(url, {**data, "tg": "706.5", "reason": "mine"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "was changed by piotr at " in html and "Reload" in html
    assert 'value="706.5"' in html  # the typed value is shown again
    bad.refresh_from_db()
    assert bad.tg_k == 707.0


def test_a_page_correction_that_breaks_the_order_is_refused_in_the_unit_typed(client, olga, two_dscs):
    from django.urls import reverse

    _, bad = two_dscs
    client.force_login(olga)
    response = client.post(reverse("lab:correct_dsc", args=[bad.pk]), {
        "tg": "600", "tx": "500", "tl": "900", "temperature_unit": "C", "heating_rate_k_min": "20", "reason": "x", "version": "1"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "You typed Tg = 600 °C, Tx = 500 °C, Tl = 900 °C" in html
    bad.refresh_from_db()
    assert bad.tg_k == 978.0


def test_retract_and_resolve_pages(client, olga, two_dscs):
    from django.urls import reverse

    good, bad = two_dscs
    client.force_login(olga)
    alloy = Alloy.objects.get()
    page = client.get(reverse("lab:alloy_detail", args=[alloy.pk])).content.decode()
    assert reverse("lab:resolve_conflict", args=[bad.property_value.pk]) in page
    response = client.post(reverse("lab:resolve_conflict", args=[good.property_value.pk]),
                           {"how": "keep_one", "reason": "S-2 was typed in °C", "version": "1"})
    assert response.status_code == 302
    bad.refresh_from_db()
    assert bad.retracted_at is not None and Alloy.objects.get().tg_mean_k == pytest.approx(705.0)
    response = client.post(reverse("lab:retract_sample", args=[good.sample_id]), {"reason": "", "version": "1"})
    assert response.status_code == 200 and "a reason is required" in response.content.decode()
    response = client.post(reverse("lab:retract_sample", args=[good.sample_id]), {"reason": "lost", "version": "1"})
    assert response.status_code == 302
    alloy.refresh_from_db()
    assert alloy.n_samples == 1 and alloy.n_values == 0 and alloy.tg_mean_k is None  # S-2 is left, its DSC retracted


def test_viewers_see_the_history_but_no_buttons_and_cannot_correct(client, viewer, olga, two_dscs):
    from django.urls import reverse

    _, bad = two_dscs
    services.correct_dsc(dsc=bad, user=olga, reason="typo", tg_k=706.0, tx_k=781.0, tl_k=1161.0)
    client.force_login(viewer)
    page = client.get(reverse("lab:sample_detail", args=[bad.sample_id])).content.decode()
    assert "Tg 978.0 → 706.0 K" in page and reverse("lab:correct_dsc", args=[bad.pk]) not in page
    for name in ("correct_dsc", "retract_dsc"):
        assert client.post(reverse(f"lab:{name}", args=[bad.pk]), {"reason": "x", "version": "2"}).status_code == 403


def test_an_admin_edit_is_a_correction_that_refreshes_the_summary(admin_client, two_dscs):
    from django.urls import reverse

    _, bad = two_dscs
    url = reverse("admin:lab_dscmeasurement_change", args=[bad.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if k in form.fields}
    data.update({"sample": bad.sample_id, "tg_k": "706", "tx_k": "781", "tl_k": "1161", "curve": "",
                 "measured_on": "", "operator": bad.operator_id})
    response = admin_client.post(url, {**data, "correction_reason": ""})
    assert response.status_code == 200 and "a reason is required for an admin edit" in response.content.decode()
    response = admin_client.post(url, {**data, "correction_reason": "typed in °C"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    alloy = Alloy.objects.get()
    assert alloy.tg_mean_k == pytest.approx(705.5) and not alloy.has_conflict
    correction = alloy.corrections.get()
    assert correction.reason == "typed in °C" and correction.by.username == "admin"
    assert "Tg 978.0 → 706.0 K" in correction.line
    assert PropertyValue.objects.get(dsc=bad).tg_k == 706.0
    assert admin_client.post(reverse("admin:lab_dscmeasurement_delete", args=[bad.pk])).status_code == 403


# ---------------------------------------------------------------- values in conflict


@pytest.fixture
def conflicts_out(settings):
    settings.GLASSLOOP_CONFLICTS_OUT_OF_MEANS = True


def test_values_in_conflict_stay_visible_but_out_of_the_mean_until_resolved(conflicts_out, client, olga):
    from django.urls import reverse

    good = services.log_experiment(user=olga, composition=COMPOSITION, label="S-1", dsc={"tg_k": 705.0, "tx_k": 780.0, "tl_k": 1160.0})
    alloy = Alloy.objects.get()
    ref = Reference.objects.create(label="Paper")
    literature = PropertyValue.objects.create(alloy=alloy, origin="literature", reference=ref, tg_k=708.0, tx_k=782.0)
    services.refresh_alloy_summaries([alloy.pk])
    bad = services.log_experiment(user=olga, composition=COMPOSITION, label="S-2", dsc={"tg_k": 978.0, "tx_k": 1053.0, "tl_k": 1433.0})
    bad_value = bad.dsc_measurements.get().property_value
    alloy.refresh_from_db()
    assert alloy.has_conflict and PropertyValue.objects.filter(conflict=True).count() == 3
    assert alloy.tg_mean_k is None and tg_rows(alloy.formula) == []  # all three clash with 978: none counts yet
    client.force_login(olga)
    page = client.get(reverse("lab:alloy_detail", args=[alloy.pk])).content.decode()
    assert "978.0" in page and "out of the mean until resolved" in page  # visible
    assert client.get(reverse("lab:alloy_list"), {"has_conflict": "yes"}).context["page"].paginator.count == 1

    # keep both of the agreeing ones, with a reason: they count again; 978 stays out
    services.resolve_conflict(value=literature, user=olga, reason="agrees with our S-1", how="keep_one")
    alloy.refresh_from_db()
    bad_value.refresh_from_db()
    assert bad_value.retracted_at is not None
    assert alloy.tg_mean_k == pytest.approx((705 + 708) / 2) and not alloy.has_conflict
    assert tg_rows(alloy.formula) == [705.0, 708.0]
    assert good.dsc_measurements.get().property_value.counts


def test_keep_both_with_a_reason(conflicts_out, olga, two_dscs):
    good, bad = two_dscs
    alloy = Alloy.objects.get()
    assert alloy.tg_mean_k is None
    with pytest.raises(ValidationError, match="reason"):
        services.resolve_conflict(value=good.property_value, user=olga, reason="", how="keep_all")
    services.resolve_conflict(value=good.property_value, user=olga, reason="two different glasses: S-2 relaxed", how="keep_all")
    alloy.refresh_from_db()
    assert alloy.tg_mean_k == pytest.approx((705 + 978) / 2)
    assert tg_rows(alloy.formula) == [705.0, 978.0]
    assert [c.action for c in alloy.corrections.all()] == ["resolve", "resolve"]


def test_the_xrd_page_shows_a_retraction_and_its_history(client, olga):
    from django.urls import reverse

    sample = services.log_experiment(user=olga, composition=COMPOSITION, label="X-1",
                                     xrd_file=SimpleUploadedFile("p.xy", synthetic_xrd_pattern("amorphous")))
    xrd = sample.xrd_measurements.get()
    client.force_login(olga)
    assert reverse("lab:retract_xrd", args=[xrd.pk]) in client.get(reverse("lab:xrd_detail", args=[xrd.pk])).content.decode()
    response = client.post(reverse("lab:retract_xrd", args=[xrd.pk]), {"reason": "wrong sample on the stage", "version": "1"})
    assert response.status_code == 302
    html = client.get(reverse("lab:xrd_detail", args=[xrd.pk])).content.decode()
    assert "Retracted" in html and "wrong sample on the stage" in html and "· olga · retracted · reason: wrong sample on the stage" in html
    assert reverse("lab:retract_xrd", args=[xrd.pk]) not in html
