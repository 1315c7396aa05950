"""Samples, XRD and DSC measurements (uploads through lab.services), property values.

Bad input gets the same message as on the web pages, as JSON, and then nothing is saved.
"""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from lab import services
from lab.models import Alloy, DSCMeasurement, PropertyValue, Sample, XRDMeasurement
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern
from tests.lab.xrd_helpers import run_xrd_analyses

pytestmark = pytest.mark.django_db

SAMPLES = "/api/samples/"
XRD = "/api/xrd-measurements/"
DSC = "/api/dsc-measurements/"

BAD_XRD_FILES = {
    "empty": b"",
    "one column": b"".join(f"{20 + i * 0.1:.2f}\n".encode() for i in range(200)),
    "text": b"Notes from the beamtime, not a pattern.\n" * 30,
    "nan": b"".join(f"{20 + i * 0.1:.2f} {'NaN' if i == 100 else 100 + i}\n".encode() for i in range(200)),
    "binary": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20,
}


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def upload(data, name="pattern.xy"):
    return SimpleUploadedFile(name, data, content_type="text/plain")


@pytest.fixture
def sample(experimenter):
    return services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="CZA-1")


# ---------------------------------------------------------------- samples


def test_create_a_sample_of_a_new_alloy(experimenter_api, experimenter):
    response = experimenter_api.post(
        SAMPLES,
        {"composition": "Zr42Ti14Cu12Ni10Be22", "alloy_name": "Zr glass A", "label": "VIT-1",
         "method": "copper_mold", "diameter_mm": 3, "cast_on": "2026-11-20"},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    sample = Sample.objects.get()
    assert body["id"] == sample.pk and body["label"] == "VIT-1" and body["operator"] == "erin"
    assert body["formula"] == "Zr42Be22Ti14Cu12Ni10" and sample.alloy.name == "Zr glass A"
    assert body["method"] == "copper_mold" and body["diameter_mm"] == 3 and body["cast_on"] == "2026-11-20"
    assert body["xrd_measurements"] == [] and body["latest_verdict"] is None
    assert sample.history.first().history_user == experimenter


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"composition": "Cu50Zr40", "label": "S-1"}, "composition", None),  # the parser's message
        ({"composition": "Cu50Hf50", "label": "S-1", "diameter_mm": 500}, "diameter_mm", "A rod diameter must be between 0 and 100 mm."),
        ({"composition": "Cu50Hf50", "label": "S-1", "method": "forged"}, "method", '"forged" is not a valid choice.'),
        ({"label": "S-1"}, "composition", "Give the composition or the id of an existing alloy."),
        ({"composition": "Cu50Hf50"}, "label", "This field is required."),
    ],
)
def test_bad_sample_is_refused_and_nothing_saved(experimenter_api, data, field, message):
    if message is None:
        from ml.composition import CompositionError, parse_composition

        with pytest.raises(CompositionError) as error:
            parse_composition(data["composition"])
        message = str(error.value)
    response = experimenter_api.post(SAMPLES, data)
    assert response.status_code == 400
    assert response.json()["detail"][field] == [message]
    assert message in response.json()["error"]
    assert not Alloy.objects.exists() and not Sample.objects.exists()


def test_duplicate_label_is_refused(experimenter_api, sample):
    response = experimenter_api.post(SAMPLES, {"alloy": sample.alloy_id, "label": "CZA-1"})
    assert response.status_code == 400
    assert "label" in response.json()["detail"]
    assert Sample.objects.count() == 1


def test_samples_filter_by_alloy_and_method(viewer_api, experimenter):
    a = services.log_experiment(user=experimenter, composition="Cu50Hf50", label="A-1", method="melt_spinning")
    services.log_experiment(user=experimenter, composition="Cu50Hf50", label="A-2")
    services.log_experiment(user=experimenter, composition="Mg65Cu25Y10", label="M-1")
    labels = lambda r: sorted(s["label"] for s in r.json()["results"])  # noqa: E731
    assert labels(viewer_api.get(SAMPLES, {"alloy": a.alloy_id})) == ["A-1", "A-2"]
    assert labels(viewer_api.get(SAMPLES, {"method": "melt_spinning"})) == ["A-1"]
    assert labels(viewer_api.get(SAMPLES, {"q": "Mg65"})) == ["M-1"]
    assert [s["label"] for s in viewer_api.get(SAMPLES, {"ordering": "label"}).json()["results"]] == ["A-1", "A-2", "M-1"]
    assert viewer_api.get(SAMPLES, {"method": "forged"}).status_code == 400


# ---------------------------------------------------------------- XRD


def test_upload_an_xrd_pattern(experimenter_api, experimenter, sample, media_root, xrd_on_worker):
    response = experimenter_api.post(
        XRD, {"sample": sample.pk, "xrd_file": upload(synthetic_xrd_pattern("amorphous", seed=3)), "wavelength_a": "1.5406"},
        format="multipart",
    )
    # Stored at once, analysed on the worker: 202 with the pending measurement and where to follow it.
    assert response.status_code == 202, response.content
    body = response.json()
    xrd = XRDMeasurement.objects.get()
    assert body["id"] == xrd.pk and body["sample"] == sample.pk and body["sample_label"] == "CZA-1"
    assert body["analysis_status"] == "pending" and body["analysis_state"] == "Analysing the pattern…"
    assert body["verdict"] is None and body["is_amorphous"] is None and body["computed_verdict"] == ""
    job_url = f"http://testserver/api/jobs/xrd-analyses/{xrd.xrd_analysis.pk}/"
    assert body["progress_url"] == job_url == body["analysis_job"]["status_url"]
    assert experimenter_api.get(job_url).json()["status"] == "queued"
    assert experimenter_api.get(f"{SAMPLES}{sample.pk}/").json()["latest_verdict"] is None  # pending: no verdict

    assert [job.status for job in run_xrd_analyses()] == ["done"]  # the worker's part
    assert experimenter_api.get(job_url).json()["status"] == "done"
    body = experimenter_api.get(body["url"]).json()
    assert body["analysis_status"] == "done" and body["analysis_job"]["status"] == "done"
    assert body["computed_verdict"] == "amorphous" and body["verdict"] == "amorphous" and body["is_amorphous"] is True
    assert 0.3 < body["fwhm_inv_a"] < 0.5 and 2.5 < body["peak_q_inv_a"] < 2.8
    assert body["verdict_reason"] and body["analysis"]["n_points"] > 100
    assert xrd.operator == experimenter
    assert len(files_under(media_root)) == 1
    # The file comes back as it was uploaded.
    download = experimenter_api.get(body["pattern_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == synthetic_xrd_pattern("amorphous", seed=3)
    # ...and the sample shows it.
    sample_body = experimenter_api.get(f"{SAMPLES}{sample.pk}/").json()
    assert sample_body["xrd_measurements"] == [xrd.pk] and sample_body["latest_verdict"] == "amorphous"


def test_a_crystalline_pattern_is_called_crystalline(experimenter_api, sample):
    response = experimenter_api.post(XRD, {"sample": sample.pk, "xrd_file": upload(synthetic_xrd_pattern("crystalline"))}, format="multipart")
    assert response.status_code == 202
    assert response.json()["verdict"] == "crystalline"  # analysed at once here (tests/lab/xrd_helpers.py)


@pytest.mark.parametrize("kind", sorted(BAD_XRD_FILES))
def test_bad_xrd_file_is_a_json_error_identical_to_the_web_form_and_saves_nothing(
    experimenter_api, experimenter_client, sample, media_root, kind
):
    response = experimenter_api.post(XRD, {"sample": sample.pk, "xrd_file": upload(BAD_XRD_FILES[kind], "bad.xy")}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    api_message = body["detail"]["xrd_file"][0]
    assert api_message and api_message in body["error"]
    assert XRDMeasurement.objects.count() == 0 and files_under(media_root) == []

    web = experimenter_client.post(reverse("lab:add_xrd", args=[sample.pk]), {"xrd_file": upload(BAD_XRD_FILES[kind], "bad.xy")})
    assert web.status_code == 200
    web_messages = web.context["form"].errors["xrd_file"]
    assert web_messages[0] == api_message  # (for an empty file the form adds "Choose an XRD pattern file.")
    assert XRDMeasurement.objects.count() == 0 and files_under(media_root) == []


def test_xrd_over_the_size_limit_and_bad_wavelength(experimenter_api, sample, media_root, settings):
    response = experimenter_api.post(XRD, {"sample": sample.pk, "xrd_file": upload(synthetic_xrd_pattern()), "wavelength_a": 9}, format="multipart")
    assert response.status_code == 400 and "implausible" in response.json()["detail"]["wavelength_a"][0]
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = 10_000
    response = experimenter_api.post(XRD, {"sample": sample.pk, "xrd_file": upload(synthetic_xrd_pattern())}, format="multipart")
    assert response.status_code == 400 and "limit" in response.json()["detail"]["xrd_file"][0]
    assert XRDMeasurement.objects.count() == 0 and files_under(media_root) == []


def test_xrd_upload_needs_a_file_and_an_existing_sample(experimenter_api, sample):
    response = experimenter_api.post(XRD, {"sample": sample.pk}, format="multipart")
    assert response.status_code == 400 and response.json()["detail"]["xrd_file"] == ["No file was submitted."]
    response = experimenter_api.post(XRD, {"sample": 9999, "xrd_file": upload(synthetic_xrd_pattern())}, format="multipart")
    assert response.status_code == 400 and "9999" in response.json()["detail"]["sample"][0]


def test_viewer_cannot_upload(viewer_api, sample):
    response = viewer_api.post(XRD, {"sample": sample.pk, "xrd_file": upload(synthetic_xrd_pattern())}, format="multipart")
    assert response.status_code == 403
    assert XRDMeasurement.objects.count() == 0


def test_override_the_verdict_with_a_reason(experimenter_api, experimenter, sample):
    xrd = services.record_xrd(sample, user=experimenter, uploaded_file=upload(synthetic_xrd_pattern()))
    url = f"{XRD}{xrd.pk}/override-verdict/"
    response = experimenter_api.post(url, {"verdict": "crystalline", "reason": " "})
    assert response.status_code == 400 and response.json()["detail"] == {"reason": ["Say why the verdict is overridden."]}
    response = experimenter_api.post(url, {"verdict": "crystalline", "reason": "Sharp peak at 44° in a slower scan"})
    assert response.status_code == 200
    assert response.json()["verdict"] == "crystalline" and response.json()["computed_verdict"] == "amorphous"
    record = XRDMeasurement.objects.get().history.first()
    assert record.history_user == experimenter and "slower scan" in record.history_change_reason
    assert experimenter_api.get(XRD, {"verdict": "crystalline"}).json()["count"] == 1
    assert experimenter_api.get(XRD, {"verdict": "amorphous"}).json()["count"] == 0


def test_viewer_cannot_override(viewer_api, experimenter, sample):
    xrd = services.record_xrd(sample, user=experimenter, uploaded_file=upload(synthetic_xrd_pattern()))
    response = viewer_api.post(f"{XRD}{xrd.pk}/override-verdict/", {"verdict": "crystalline", "reason": "because"})
    assert response.status_code == 403
    xrd.refresh_from_db()
    assert xrd.override_verdict == ""


# ---------------------------------------------------------------- DSC and property values


def test_record_a_dsc_with_its_curve(experimenter_api, sample, media_root):
    curve = upload(synthetic_dsc_curve(700, 770, 1150, unit="C"), "scan.txt")
    response = experimenter_api.post(
        DSC, {"sample": sample.pk, "tg_k": 700, "tx_k": 770, "tl_k": 1150, "heating_rate_k_min": 40, "curve_file": curve, "curve_unit": "C"},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    dsc = DSCMeasurement.objects.get()
    assert body["tg_k"] == 700 and body["trg"] == pytest.approx(700 / 1150) and body["gamma"] == pytest.approx(770 / 1850)
    assert body["dtx_k"] == 70 and body["has_curve"] is True and body["curve_temperature_unit"] == "C"
    value = PropertyValue.objects.get()
    assert body["property_value"] == value.pk and value.dsc == dsc and value.origin == "experiment"
    assert len(files_under(media_root)) == 1

    pv = experimenter_api.get(f"/api/property-values/{value.pk}/").json()
    assert pv["provenance"] == "DSC of sample CZA-1 (Tg, Tx, Tl typed)"
    assert pv["sample"] == {"id": sample.pk, "label": "CZA-1"} and pv["dsc"] == dsc.pk and pv["reference"] is None


def test_dsc_as_json_without_a_curve(experimenter_api, sample):
    response = experimenter_api.post(DSC, {"sample": sample.pk, "tg_k": 690, "tx_k": 750})
    assert response.status_code == 201
    assert response.json()["has_curve"] is False and response.json()["tl_k"] is None


def test_dsc_rules_give_the_web_forms_messages_and_save_nothing(experimenter_api, experimenter_client, sample, media_root):
    response = experimenter_api.post(DSC, {"sample": sample.pk, "tg_k": 800, "tx_k": 700})
    assert response.status_code == 400
    api_errors = response.json()["detail"]["non_field_errors"]
    assert "Tg < Tx < Tl" in api_errors[0]
    web = experimenter_client.post(reverse("lab:add_dsc", args=[sample.pk]), {"tg": "800", "tx": "700", "temperature_unit": "K"})
    assert web.context["form"].errors["__all__"] == api_errors

    response = experimenter_api.post(DSC, {"sample": sample.pk, "tg_k": 30, "tx_k": 700})
    assert response.status_code == 400 and "was it entered in °C?" in response.json()["detail"]["tg_k"][0]
    response = experimenter_api.post(DSC, {"sample": sample.pk, "tx_k": 700})
    assert response.json()["detail"] == {"tg_k": ["A DSC measurement needs at least Tg and Tx."]}
    # A curve read in the wrong unit does not contain Tg and Tx.
    curve = upload(synthetic_dsc_curve(700, 770, 1150, unit="K"), "scan.txt")
    response = experimenter_api.post(DSC, {"sample": sample.pk, "tg_k": 700, "tx_k": 770, "curve_file": curve, "curve_unit": "C"}, format="multipart")
    assert response.status_code == 400 and "unit" in response.json()["detail"]["curve_file"][0]
    assert DSCMeasurement.objects.count() == 0 and PropertyValue.objects.count() == 0 and files_under(media_root) == []


def test_property_values_are_read_only_and_filterable(viewer_api, experimenter_api, experimenter, sample):
    services.record_dsc(sample, user=experimenter, tg_k=700, tx_k=770)
    services.record_dsc(sample, user=experimenter, tg_k=720, tx_k=790)  # 20 K apart: both flagged
    other, _ = services.get_or_create_alloy("Mg65Cu25Y10")
    PropertyValue.objects.create(alloy=other, origin="literature", source_label="Inoue 1991", tg_k=420, tx_k=470)
    rows = viewer_api.get("/api/property-values/", {"ordering": "tg_k"}).json()["results"]
    assert [r["tg_k"] for r in rows] == [420, 700, 720]
    assert rows[0]["provenance"] == "Inoue 1991" and rows[0]["origin"] == "literature" and rows[0]["sample"] is None
    assert viewer_api.get("/api/property-values/", {"conflict": "true"}).json()["count"] == 2
    assert viewer_api.get("/api/property-values/", {"origin": "literature"}).json()["count"] == 1
    assert viewer_api.get("/api/property-values/", {"tg_min": 710}).json()["count"] == 1
    assert viewer_api.get("/api/property-values/", {"alloy": other.pk}).json()["count"] == 1
    pk = rows[0]["id"]
    for method in ("put", "patch", "delete"):
        assert getattr(experimenter_api, method)(f"/api/property-values/{pk}/", {"tg_k": 1}).status_code in (403, 405)
    assert PropertyValue.objects.get(pk=pk).tg_k == 420


# ------------------------------------------------------------------ DSC trace proposals


def _flat_trace():
    import numpy as np

    rng = np.random.default_rng(3)
    t = np.arange(500.0, 1200.0, 0.5)
    flow = -0.05 + 0.0001 * (t - 500) + rng.normal(0, 0.003, len(t))
    return "\n".join(f"{a:.2f}\t{b:.5f}" for a, b in zip(t, flow)).encode()


@pytest.fixture
def traced_dsc(sample, experimenter):
    data = synthetic_dsc_curve(650.0, 725.0, 1050.0, shape="sharp", noise=0.002)
    return services.record_dsc(sample, user=experimenter, tg_k=655.0, tx_k=722.0, tl_k=1045.0,
                               curve_file=upload(data, "trace.txt"))


def test_dsc_serializer_gives_the_stored_proposals(viewer_api, traced_dsc):
    body = viewer_api.get(f"{DSC}{traced_dsc.pk}/").json()
    rows = {r["key"]: r for r in body["proposals"]}
    assert set(rows) == {"tg_k", "tx_k", "melting_onset_k", "tl_k", "heating_rate_k_min"}
    assert abs(rows["tg_k"]["value"] - 650.0) <= 3.0 and rows["tg_k"]["method"].startswith("tangent onset")
    assert rows["tg_k"]["recorded"] == 655.0 and rows["tg_k"]["acceptable"] is True
    assert rows["heating_rate_k_min"]["value"] is None and "header" in rows["heating_rate_k_min"]["reason"]
    assert body["value_methods"] == {"tg_k": "typed", "tx_k": "typed", "tl_k": "typed", "heating_rate_k_min": "typed"}


def test_accept_proposals_through_the_api(experimenter_api, viewer_api, traced_dsc):
    url = f"{DSC}{traced_dsc.pk}/accept-proposals/"
    assert viewer_api.post(url, {"fields": ["tg_k"]}, format="json").status_code == 403
    bad = experimenter_api.post(url, {"fields": ["tg_k", "gamma"]}, format="json")
    assert bad.status_code == 400 and "fields" in bad.json()["detail"]
    response = experimenter_api.post(url, {"fields": ["tg_k", "tl_k"], "version": 1}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    proposed = {r["key"]: r["value"] for r in body["proposals"]}
    assert body["tg_k"] == pytest.approx(proposed["tg_k"]) and body["tx_k"] == 722.0
    assert body["tl_k"] == pytest.approx(proposed["tl_k"]) and body["version"] == 2
    assert body["value_methods"]["tg_k"] == "accepted the trace's proposal (tangent onset)"
    assert body["value_methods"]["tl_k"] == "accepted the trace's proposal (tangent end)"
    assert body["value_methods"]["tx_k"] == "typed"
    history = experimenter_api.get(f"{DSC}{traced_dsc.pk}/history/").json()
    assert history[0]["reason"] == "Tg: accepted the trace's proposal (tangent onset); Tl: accepted the trace's proposal (tangent end)"
    assert history[0]["changes"][0]["before"] == 655.0
    pv = experimenter_api.get(f"/api/property-values/{body['property_value']}/").json()
    assert "Tg: accepted the trace's proposal (tangent onset)" in pv["provenance"]
    alloy = experimenter_api.get(f"/api/alloys/{body['alloy']}/").json()
    assert alloy["tg_mean_k"] == pytest.approx(proposed["tg_k"])
    # the version read is stale now: 409 with "changed by"
    stale = experimenter_api.post(url, {"fields": ["tx_k"], "version": 1}, format="json")
    assert stale.status_code == 409 and "after you loaded it" in stale.json()["error"]
    # accepting all (tx_k is left) then nothing is left to accept: 409 with the reason
    assert experimenter_api.post(url, {}, format="json").status_code == 200
    again = experimenter_api.post(url, {}, format="json")
    assert again.status_code == 409 and "Nothing to accept" in again.json()["error"]


def test_accept_proposals_of_a_flat_trace_is_409_with_the_reason(experimenter_api, sample, experimenter):
    dsc = services.record_dsc(sample, user=experimenter, tg_k=655.0, tx_k=722.0, curve_file=upload(_flat_trace(), "flat.txt"))
    body = experimenter_api.get(f"{DSC}{dsc.pk}/").json()
    assert all(r["value"] is None and not r["acceptable"] for r in body["proposals"])
    response = experimenter_api.post(f"{DSC}{dsc.pk}/accept-proposals/", {"fields": ["tg_k"]}, format="json")
    assert response.status_code == 409 and "flat" in response.json()["error"]
    none = services.record_dsc(sample, user=experimenter, tg_k=655.0, tx_k=722.0)  # no curve
    response = experimenter_api.post(f"{DSC}{none.pk}/accept-proposals/", {}, format="json")
    assert response.status_code == 409 and "no analysed curve" in response.json()["error"]
    assert DSCMeasurement.objects.get(pk=dsc.pk).version == 1


def test_a_dsc_with_a_curve_and_blank_tg_tx_through_the_api(experimenter_api, sample):
    data = synthetic_dsc_curve(650.0, 725.0, 1050.0, shape="sharp", noise=0.002)
    response = experimenter_api.post(DSC, {"sample": sample.pk, "curve_file": upload(data, "trace.txt")}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert abs(body["tg_k"] - 650.0) <= 3.0 and body["value_methods"]["tg_k"] == "left blank: the trace's proposal (tangent onset)"
