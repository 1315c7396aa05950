"""Lab pages through Django's test client, with real uploads of synthetic patterns."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lab import services
from lab.models import Alloy, DSCMeasurement, PropertyValue, Reference, Sample, XRDMeasurement
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern

pytestmark = pytest.mark.django_db

LOG = reverse("lab:log_experiment")



def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def counts():
    return (Alloy.objects.count(), Sample.objects.count(), XRDMeasurement.objects.count(), DSCMeasurement.objects.count())


def xrd_upload(kind="amorphous", name="halo.xy"):
    return SimpleUploadedFile(name, synthetic_xrd_pattern(kind), content_type="text/plain")


def experiment(**overrides):
    data = {
        "composition": "Zr42Ti14Cu12Ni10Be22",
        "alloy_name": "Zr glass A",
        "label": "VIT-001",
        "method": "arc_suction",
        "diameter_mm": "3",
        "cast_on": "2026-11-20",
        "notes": "",
        "xrd_file": xrd_upload(),
        "wavelength_a": "1.5406",
        "tg": "625",
        "tx": "705",
        "tl": "993",
        "temperature_unit": "K",
        "heating_rate_k_min": "20",
        "dsc_curve_unit": "K",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def form_errors(response, field=None):
    form = response.context["form"]
    return form.errors.get(field or "__all__", []) if field else form.errors


# ---------------------------------------------------------------- log an experiment


def test_log_experiment_end_to_end(experimenter_client, experimenter, media_root):
    response = experimenter_client.post(LOG, experiment())
    sample = Sample.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("lab:sample_detail", args=[sample.pk])

    page = experimenter_client.get(response["Location"])
    html = page.content.decode()
    assert "Logged sample + XRD + DSC for VIT-001" in html  # the success message
    assert 'class="badge amorphous"' in html
    xrd = sample.xrd_measurements.get()
    assert f"{xrd.fwhm_inv_a:.3f}" in html and 0.3 < xrd.fwhm_inv_a < 0.5
    assert f"{xrd.peak_q_inv_a:.3f}" in html
    for shown in ("625.0", "705.0", "993.0", f"{625 / 993:.3f}", f"{705 / (625 + 993):.3f}", "80.0"):
        assert shown in html, shown
    assert reverse("lab:xrd_plot", args=[xrd.pk]) in html

    value = PropertyValue.objects.get()
    assert value.origin == PropertyValue.Origin.EXPERIMENT
    assert value.dsc.sample == sample
    assert sample.operator == experimenter
    assert sample.alloy.name == "Zr glass A"
    assert sample.diameter_mm == 3.0
    assert files_under(media_root) == [xrd.pattern.name]


def test_log_experiment_sample_only(experimenter_client):
    response = experimenter_client.post(LOG, experiment(xrd_file=None, tg="", tx="", tl=""))
    assert response.status_code == 302
    assert counts() == (1, 1, 0, 0)


def test_celsius_is_converted_to_kelvin(experimenter_client):
    response = experimenter_client.post(LOG, experiment(tg="352", tx="432", tl="720", temperature_unit="C"))
    assert response.status_code == 302
    dsc = DSCMeasurement.objects.get()
    assert dsc.tg_k == pytest.approx(625.15)
    assert dsc.tx_k == pytest.approx(705.15)
    assert dsc.tl_k == pytest.approx(993.15)
    assert PropertyValue.objects.get().tg_k == pytest.approx(625.15)


def test_dsc_curve_in_celsius_is_stored_and_plotted(experimenter_client, media_root):
    curve = SimpleUploadedFile("curve.txt", synthetic_dsc_curve(625, 705, 993, unit="C"))
    response = experimenter_client.post(LOG, experiment(dsc_curve=curve, dsc_curve_unit="C"))
    assert response.status_code == 302
    dsc = DSCMeasurement.objects.get()
    assert dsc.curve and dsc.curve_temperature_unit == "C"
    plot = experimenter_client.get(reverse("lab:dsc_plot", args=[dsc.pk]))
    assert plot.status_code == 200
    assert plot["Content-Type"] == "image/svg+xml"
    assert b"<svg" in plot.content
    # The trace's own reading is drawn beside the recorded values (tangent onsets).
    assert b'id="tg-proposal"' in plot.content and b'id="tx-proposal"' in plot.content


def test_dsc_curve_in_the_wrong_unit_is_refused(experimenter_client, media_root):
    # A curve in K declared as °C no longer passes through Tg and Tx.
    curve = SimpleUploadedFile("curve.txt", synthetic_dsc_curve(625, 705, 993, unit="K"))
    response = experimenter_client.post(LOG, experiment(dsc_curve=curve, dsc_curve_unit="C"))
    assert response.status_code == 200
    assert "unit" in form_errors(response, "dsc_curve")[0]
    assert counts() == (0, 0, 0, 0)
    assert files_under(media_root) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("(Cu52Zr40Al8)0.98Si2", "add up to"),
        ("TI2Cu98", "Ti"),
        ("(Cu,Ni)21Zr79", ""),
        ("Ag2?", ""),
        ("", "required"),
    ],
)
def test_refused_composition_shows_the_parsers_message_and_saves_nothing(experimenter_client, media_root, text, expected):
    from ml.composition import CompositionError, parse_composition

    response = experimenter_client.post(LOG, experiment(composition=text))
    assert response.status_code == 200
    errors = form_errors(response, "composition")
    assert errors and expected in errors[0]
    if text:
        with pytest.raises(CompositionError) as parser_error:
            parse_composition(text)
        assert errors[0] == str(parser_error.value)
        assert str(parser_error.value) in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert counts() == (0, 0, 0, 0)
    assert files_under(media_root) == []


@pytest.mark.parametrize(
    "tg, tx, tl, field",
    [("705", "705", "993", "__all__"), ("720", "705", "993", "__all__"), ("625", "705", "700", "__all__"), ("100", "705", "993", "tg")],
    ids=["tg=tx", "tg>tx", "tl<tx", "tg<200K"],
)
def test_transition_rules_refuse_and_save_nothing(experimenter_client, media_root, tg, tx, tl, field):
    response = experimenter_client.post(LOG, experiment(tg=tg, tx=tx, tl=tl))
    assert response.status_code == 200
    assert form_errors(response, field)
    assert counts() == (0, 0, 0, 0)
    assert PropertyValue.objects.count() == 0
    assert files_under(media_root) == []


def test_tg_without_tx_is_refused(experimenter_client):
    response = experimenter_client.post(LOG, experiment(tx="", tl=""))
    assert form_errors(response, "tx")
    assert counts() == (0, 0, 0, 0)


BAD_FILES = {
    "empty": b"",
    "one column": b"".join(f"{20 + i * 0.1:.2f}\n".encode() for i in range(200)),
    "text": b"Notes from the beamtime, not a pattern.\n" * 30,
    "nan": b"".join(f"{20 + i * 0.1:.2f} {'NaN' if i == 100 else 100 + i}\n".encode() for i in range(200)),
    "binary": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20,
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_xrd_file_gives_a_form_error_and_saves_nothing(experimenter_client, media_root, kind):
    upload = SimpleUploadedFile("bad.xy", BAD_FILES[kind])
    response = experimenter_client.post(LOG, experiment(xrd_file=upload))
    assert response.status_code == 200
    errors = form_errors(response, "xrd_file")
    assert errors and errors[0]
    assert counts() == (0, 0, 0, 0)
    assert PropertyValue.objects.count() == 0
    assert files_under(media_root) == []


def test_file_above_the_size_limit_is_refused(experimenter_client, media_root, settings):
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = 10_000  # the synthetic pattern is ~36 kB
    response = experimenter_client.post(LOG, experiment())
    assert "limit" in form_errors(response, "xrd_file")[0]
    assert counts() == (0, 0, 0, 0)
    assert files_under(media_root) == []


def test_duplicate_sample_label_refused(experimenter_client, experimenter):
    services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="VIT-001")
    response = experimenter_client.post(LOG, experiment())
    assert form_errors(response, "label")
    assert counts() == (1, 1, 0, 0)


def test_log_form_prefills_the_composition(experimenter_client):
    response = experimenter_client.get(LOG + "?composition=Cu46Zr46Al8")
    assert response.status_code == 200
    assert 'value="Cu46Zr46Al8"' in response.content.decode()


# ---------------------------------------------------------------- add XRD / DSC


@pytest.fixture
def sample(experimenter):
    return services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="CZA-1")


def test_add_xrd_to_a_sample(experimenter_client, sample):
    url = reverse("lab:add_xrd", args=[sample.pk])
    assert experimenter_client.get(url).status_code == 200
    response = experimenter_client.post(url, {"xrd_file": xrd_upload("crystalline"), "wavelength_a": "1.5406"})
    assert response.status_code == 302
    xrd = sample.xrd_measurements.get()
    assert xrd.computed_verdict == "crystalline"
    page = experimenter_client.get(reverse("lab:sample_detail", args=[sample.pk])).content.decode()
    assert 'class="badge crystalline"' in page


def test_add_xrd_needs_a_file(experimenter_client, sample):
    response = experimenter_client.post(reverse("lab:add_xrd", args=[sample.pk]), {"wavelength_a": "1.5406"})
    assert form_errors(response, "xrd_file")
    assert XRDMeasurement.objects.count() == 0


def test_add_xrd_bad_file(experimenter_client, sample, media_root):
    upload = SimpleUploadedFile("bad.csv", BAD_FILES["nan"])
    response = experimenter_client.post(reverse("lab:add_xrd", args=[sample.pk]), {"xrd_file": upload})
    assert form_errors(response, "xrd_file")
    assert XRDMeasurement.objects.count() == 0
    assert files_under(media_root) == []


def test_add_dsc_to_a_sample_in_celsius(experimenter_client, sample):
    url = reverse("lab:add_dsc", args=[sample.pk])
    assert experimenter_client.get(url).status_code == 200
    response = experimenter_client.post(
        url, {"tg": "427", "tx": "477", "tl": "", "temperature_unit": "C", "heating_rate_k_min": "40"}
    )
    assert response.status_code == 302
    dsc = sample.dsc_measurements.get()
    assert dsc.tg_k == pytest.approx(700.15) and dsc.tl_k is None and dsc.heating_rate_k_min == 40
    assert dsc.property_value.origin == PropertyValue.Origin.EXPERIMENT


def test_add_dsc_refuses_tg_above_tx(experimenter_client, sample):
    response = experimenter_client.post(reverse("lab:add_dsc", args=[sample.pk]), {"tg": "800", "tx": "700", "temperature_unit": "K"})
    assert response.status_code == 200
    assert "Tg < Tx < Tl" in " ".join(form_errors(response, "__all__"))
    assert DSCMeasurement.objects.count() == 0


# ---------------------------------------------------------------- XRD detail, override, plots


@pytest.fixture
def xrd(experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="CZA-2", xrd_file=xrd_upload())
    return sample.xrd_measurements.get()


def test_override_requires_a_reason(experimenter_client, xrd):
    url = reverse("lab:xrd_detail", args=[xrd.pk])
    response = experimenter_client.post(url, {"verdict": "crystalline", "reason": "  "})
    assert response.status_code == 200
    assert form_errors(response, "reason")
    xrd.refresh_from_db()
    assert xrd.verdict == "amorphous"


def test_override_is_shown_and_kept_in_history(experimenter_client, experimenter, xrd):
    url = reverse("lab:xrd_detail", args=[xrd.pk])
    response = experimenter_client.post(url, {"verdict": "crystalline", "reason": "Sharp peak at 2θ = 44° seen in a slower scan"})
    assert response.status_code == 302 and response["Location"] == url
    xrd.refresh_from_db()
    assert xrd.verdict == "crystalline" and xrd.computed_verdict == "amorphous"
    record = xrd.history.first()
    assert record.history_user == experimenter and "slower scan" in record.history_change_reason
    html = experimenter_client.get(url).content.decode()
    assert "overridden (computed: amorphous)" in html
    assert "slower scan" in html


def test_override_from_the_sample_page_comes_back_there(experimenter_client, xrd):
    back = reverse("lab:sample_detail", args=[xrd.sample_id])
    response = experimenter_client.post(
        reverse("lab:xrd_detail", args=[xrd.pk]), {"verdict": "crystalline", "reason": "TEM", "next": back}
    )
    assert response["Location"] == back
    evil = experimenter_client.post(
        reverse("lab:xrd_detail", args=[xrd.pk]), {"verdict": "", "reason": "TEM redo", "next": "https://evil.example/"}
    )
    assert evil["Location"] == reverse("lab:xrd_detail", args=[xrd.pk])


def test_xrd_plot_is_svg(viewer_client, xrd):
    response = viewer_client.get(reverse("lab:xrd_plot", args=[xrd.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.lstrip().startswith((b"<svg", b"<?xml"))


def test_plot_of_a_dsc_without_curve_is_404(viewer_client, experimenter, sample):
    dsc = services.record_dsc(sample, user=experimenter, tg_k=700, tx_k=760)
    assert viewer_client.get(reverse("lab:dsc_plot", args=[dsc.pk])).status_code == 404


# ---------------------------------------------------------------- alloy pages


def make_alloy(composition, *, tg=None, tx=None, tl=None, samples=0, name="", source="Paper"):
    alloy, _ = services.get_or_create_alloy(composition, name=name)
    if tg or tx or tl:
        PropertyValue.objects.create(
            alloy=alloy, origin=PropertyValue.Origin.LITERATURE, source_label=source, tg_k=tg, tx_k=tx, tl_k=tl
        )
    for i in range(samples):
        Sample.objects.create(alloy=alloy, label=f"{alloy.formula}-{i}")
    return alloy


def listed(response):
    return {a.formula for a in response.context["alloys"]}


def test_alloy_search_by_elements(viewer_client):
    make_alloy("Zr42Ti14Cu12Ni10Be22")
    make_alloy("Cu46Zr46Al8")
    make_alloy("Pd41Ni41P18")
    make_alloy("Cu60Ti40")
    url = reverse("lab:alloy_list")
    assert listed(viewer_client.get(url, {"elements": "Zr Cu"})) == {"Zr42Be22Ti14Cu12Ni10", "Cu46Zr46Al8"}
    assert listed(viewer_client.get(url, {"elements": "zr, cu, al"})) == {"Cu46Zr46Al8"}
    assert listed(viewer_client.get(url, {"elements": "Ni"})) == {"Zr42Be22Ti14Cu12Ni10", "Ni41Pd41P18"}
    # Cu46Zr46Al8: a tie between Cu and Zr goes to the alphabetically first element.
    assert listed(viewer_client.get(url, {"base_element": "cu"})) == {"Cu46Zr46Al8", "Cu60Ti40"}
    assert listed(viewer_client.get(url, {"base_element": "Zr"})) == {"Zr42Be22Ti14Cu12Ni10"}
    assert listed(viewer_client.get(url, {"q": "Pd41"})) == {"Ni41Pd41P18"}


def test_unknown_element_is_a_form_error_and_not_applied(viewer_client):
    make_alloy("Cu46Zr46Al8")
    response = viewer_client.get(reverse("lab:alloy_list"), {"elements": "Zr Qq"})
    assert response.context["form"].errors["elements"]
    assert listed(response) == {"Cu46Zr46Al8"}


def test_alloy_search_by_property_ranges(viewer_client):
    make_alloy("Zr42Ti14Cu12Ni10Be22", tg=625, tx=705, tl=993)
    make_alloy("Pd41Ni41P18", tg=576, tx=678, tl=991)
    make_alloy("Mg65Cu25Y10", tg=424, tx=474, tl=730)
    make_alloy("Cu60Ti40")  # no values: never inside a range
    url = reverse("lab:alloy_list")
    assert listed(viewer_client.get(url, {"tg_min": "500", "tg_max": "600"})) == {"Ni41Pd41P18"}
    assert listed(viewer_client.get(url, {"tg_min": "570"})) == {"Zr42Be22Ti14Cu12Ni10", "Ni41Pd41P18"}
    assert listed(viewer_client.get(url, {"tx_max": "700"})) == {"Ni41Pd41P18", "Mg65Cu25Y10"}
    assert listed(viewer_client.get(url, {"tl_min": "900", "tl_max": "992"})) == {"Ni41Pd41P18"}
    # Trg: 0.629 (Vit1), 0.581 (Pd), 0.581 (Mg)
    assert listed(viewer_client.get(url, {"trg_min": "0.6"})) == {"Zr42Be22Ti14Cu12Ni10"}
    assert listed(viewer_client.get(url, {"elements": "Ni", "tg_max": "600"})) == {"Ni41Pd41P18"}


def test_alloy_list_shows_means_and_derived_values(viewer_client):
    alloy = make_alloy("Pd41Ni41P18", tg=570, tx=670, tl=990, samples=2)
    # A conflict a person resolved by keeping both values: counted in the mean, still marked.
    PropertyValue.objects.create(alloy=alloy, origin=PropertyValue.Origin.LITERATURE, tg_k=580, tx_k=680, tl_k=992,
                                 conflict=True, conflict_resolution="both measured")
    response = viewer_client.get(reverse("lab:alloy_list"))
    (row,) = response.context["alloys"]
    assert row.n_samples == 2 and row.n_values == 2
    assert row.tg_mean_k == pytest.approx(575) and row.tl_mean_k == pytest.approx(991)
    assert row.trg == pytest.approx(575 / 991)
    assert row.gamma == pytest.approx(675 / (575 + 991))
    assert row.dtx_k == pytest.approx(100)
    html = response.content.decode()
    assert f"{575 / 991:.3f}" in html and "conflict" in html


def test_alloy_list_query_count_does_not_grow_with_rows(viewer_client):
    url = reverse("lab:alloy_list")

    def queries_for_page():
        with CaptureQueriesContext(connection) as ctx:
            assert viewer_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    for i in range(5):
        make_alloy(f"Cu{50 - i}Zr{50 + i}", tg=600 + i, tx=680 + i, tl=1000 + i, samples=2)
    few = queries_for_page()
    for i in range(5, 30):
        make_alloy(f"Cu{50 - i}Zr{50 + i}", tg=600 + i, tx=680 + i, tl=1000 + i, samples=2)
    many = queries_for_page()
    assert len(viewer_client.get(url).context["alloys"]) == 30
    assert many == few


def test_alloy_list_paginates_50_per_page(viewer_client):
    for i in range(55):
        make_alloy(f"Cu{20 + i}Zr{80 - i}")
    url = reverse("lab:alloy_list")
    first = viewer_client.get(url)
    assert len(first.context["alloys"]) == 50
    second = viewer_client.get(url, {"page": 2})
    assert len(second.context["alloys"]) == 5


def test_alloy_detail_shows_composition_values_provenance_samples_plots_history(viewer_client, experimenter):
    sample = services.log_experiment(
        user=experimenter,
        composition="Cu46Zr46Al8",
        label="CZA-9",
        xrd_file=xrd_upload(),
        dsc={"tg_k": 701.0, "tx_k": 773.0, "tl_k": 1163.0, "curve_file": SimpleUploadedFile("c.txt", synthetic_dsc_curve(701, 773, 1163))},
    )
    ref = Reference.objects.create(authors="Inoue A.", year=2004, journal="Mater. Trans.", doi="10.2320/matertrans.45.1234")
    PropertyValue.objects.create(alloy=sample.alloy, origin=PropertyValue.Origin.LITERATURE, reference=ref, tg_k=721, tx_k=793)
    PropertyValue.objects.create(alloy=sample.alloy, origin=PropertyValue.Origin.LITERATURE, source_label="Handbook 2011", tg_k=702)

    response = viewer_client.get(reverse("lab:alloy_detail", args=[sample.alloy_id]))
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Cu46Zr46Al8", "46.00", "8.00", "DSC of sample CZA-9", "Inoue A. (2004)", "10.2320/matertrans.45.1234", "Handbook 2011"):
        assert text in html, text
    assert f"{701 / 1163:.3f}" in html and f"{773 / (701 + 1163):.3f}" in html and "72.0" in html
    xrd = sample.xrd_measurements.get()
    dsc = sample.dsc_measurements.get()
    assert reverse("lab:xrd_plot", args=[xrd.pk]) in html
    assert reverse("lab:dsc_plot", args=[dsc.pk]) in html
    assert 'class="badge amorphous"' in html
    assert "erin" in html  # the history names who logged it
    assert len(response.context["history"]) >= 2


def test_alloy_detail_query_count_does_not_grow_with_samples(viewer_client, experimenter):
    alloy = make_alloy("Cu46Zr46Al8", tg=700, tx=770, tl=1160)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert viewer_client.get(reverse("lab:alloy_detail", args=[alloy.pk])).status_code == 200
        return len(ctx.captured_queries)

    def add_samples(start, stop):
        for i in range(start, stop):
            s = Sample.objects.create(alloy=alloy, label=f"S{i}")
            services.record_dsc(s, user=experimenter, tg_k=700 + i % 5, tx_k=770)

    add_samples(0, 2)
    few = queries()
    add_samples(2, 8)
    assert queries() == few


def test_sample_list_and_search(viewer_client, experimenter):
    services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="CZA-1", dsc={"tg_k": 700, "tx_k": 770})
    services.log_experiment(user=experimenter, composition="Pd41Ni41P18", label="PNP-1")
    url = reverse("lab:sample_list")
    response = viewer_client.get(url)
    assert {s.label for s in response.context["samples"]} == {"CZA-1", "PNP-1"}
    assert {s.label for s in viewer_client.get(url, {"q": "Pd41"}).context["samples"]} == {"PNP-1"}
    assert "770.0" in response.content.decode()


def test_sample_list_query_count_does_not_grow_with_rows(viewer_client, experimenter):
    url = reverse("lab:sample_list")

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            viewer_client.get(url)
        return len(ctx.captured_queries)

    for i in range(3):
        services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label=f"A{i}", dsc={"tg_k": 700, "tx_k": 770})
    few = queries()
    for i in range(3, 15):
        services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label=f"A{i}", dsc={"tg_k": 700, "tx_k": 770})
    assert queries() == few


def test_missing_objects_are_404(viewer_client):
    for name in ("lab:alloy_detail", "lab:sample_detail", "lab:xrd_detail", "lab:xrd_plot", "lab:dsc_plot"):
        assert viewer_client.get(reverse(name, args=[999])).status_code == 404, name
