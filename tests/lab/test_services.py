"""Services that log experiments: all or nothing, provenance, history, files on disk."""

import math
import os

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from lab import services
from lab.models import Alloy, DSCMeasurement, PropertyValue, Reference, Sample, XRDMeasurement
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern

pytestmark = pytest.mark.django_db



def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def counts():
    return (
        Alloy.objects.count(),
        Sample.objects.count(),
        XRDMeasurement.objects.count(),
        DSCMeasurement.objects.count(),
        PropertyValue.objects.count(),
    )


def xrd_upload(kind="amorphous", name="pattern.xy", seed=0):
    return SimpleUploadedFile(name, synthetic_xrd_pattern(kind, seed=seed), content_type="text/plain")


BAD_FILES = {
    "empty": b"",
    "one column": b"# 2theta\n" + b"".join(f"{20 + i * 0.1:.2f}\n".encode() for i in range(200)),
    "text": b"This is my lab notebook.\nNo numbers here, only words about the sample.\n" * 20,
    "nan": b"".join(f"{20 + i * 0.1:.2f} {'nan' if i == 50 else 100 + i}\n".encode() for i in range(200)),
    "binary": bytes(range(256)) * 40,
}


def test_log_experiment_creates_sample_xrd_dsc_and_value_with_provenance(experimenter, media_root):
    sample = services.log_experiment(
        user=experimenter,
        composition="Zr42Ti14Cu12Ni10Be22",
        alloy_name="Zr glass A",
        label="VIT-001",
        diameter_mm=3.0,
        xrd_file=xrd_upload(),
        dsc={"tg_k": 625.0, "tx_k": 705.0, "tl_k": 993.0, "heating_rate_k_min": 20.0},
    )
    assert sample.alloy.formula == "Zr42Be22Ti14Cu12Ni10"
    assert sample.alloy.name == "Zr glass A"
    assert sample.operator == experimenter

    xrd = sample.xrd_measurements.get()
    assert xrd.computed_verdict == XRDMeasurement.Verdict.AMORPHOUS
    assert xrd.is_amorphous
    assert 2.5 < xrd.peak_q_inv_a < 2.8
    assert 0.3 < xrd.fwhm_inv_a < 0.5
    assert xrd.analysis["verdict"] == "amorphous"
    assert xrd.verdict_reason
    assert files_under(media_root) == [xrd.pattern.name]

    dsc = sample.dsc_measurements.get()
    assert (dsc.tg_k, dsc.tx_k, dsc.tl_k) == (625.0, 705.0, 993.0)
    value = PropertyValue.objects.get()
    assert value.origin == PropertyValue.Origin.EXPERIMENT
    assert value.dsc == dsc and value.alloy == sample.alloy
    assert value.provenance == "DSC of sample VIT-001 (Tg, Tx, Tl typed)"
    assert value.reduced_glass_transition == pytest.approx(625 / 993)
    assert value.gamma == pytest.approx(705 / (625 + 993))

    # Who did it is in the history of every row.
    assert sample.history.get().history_user == experimenter
    # stored "pending", then analysed: both under the person who uploaded it
    assert [h.history_user for h in xrd.history.all()] == [experimenter, experimenter]
    assert sample.alloy.history.get().history_user == experimenter
    assert value.history.get().history_user == experimenter


def test_same_composition_in_another_order_is_the_same_alloy(experimenter):
    a = services.log_experiment(user=experimenter, composition="Ca40Cu30Mg30", label="S1")
    b = services.log_experiment(user=experimenter, composition="Ca40Mg30Cu30", label="S2")
    assert a.alloy_id == b.alloy_id
    assert Alloy.objects.count() == 1


def test_refused_composition_saves_nothing_and_says_why(experimenter):
    with pytest.raises(ValidationError) as err:
        services.log_experiment(user=experimenter, composition="(Cu52Zr40Al8)0.98Si2", label="S1", xrd_file=xrd_upload())
    assert "add up to" in " ".join(err.value.message_dict["composition"])
    assert counts() == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "tg, tx, tl",
    [(700, 700, 1000), (720, 700, 1000), (600, 700, 650), (150, 700, 1000), (600, 700, 2600)],
    ids=["tg=tx", "tg>tx", "tl<tx", "tg too low", "tl too high"],
)
def test_transition_temperature_rules_refuse_everything(experimenter, media_root, tg, tx, tl):
    with pytest.raises(ValidationError):
        services.log_experiment(
            user=experimenter,
            composition="Cu46Zr46Al8",
            label="S1",
            xrd_file=xrd_upload(),
            dsc={"tg_k": tg, "tx_k": tx, "tl_k": tl},
        )
    assert counts() == (0, 0, 0, 0, 0)
    assert files_under(media_root) == []


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_xrd_file_saves_nothing(experimenter, media_root, kind):
    upload = SimpleUploadedFile("bad.xy", BAD_FILES[kind])
    with pytest.raises(ValidationError) as err:
        services.log_experiment(
            user=experimenter, composition="Cu46Zr46Al8", label="S1", xrd_file=upload, dsc={"tg_k": 700, "tx_k": 750}
        )
    assert err.value.message_dict["xrd_file"][0]
    assert counts() == (0, 0, 0, 0, 0)
    assert files_under(media_root) == []


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_dsc_curve_saves_nothing(experimenter, media_root, kind):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1")
    before = counts()
    with pytest.raises(ValidationError) as err:
        services.record_dsc(
            sample, user=experimenter, tg_k=700, tx_k=750, curve_file=SimpleUploadedFile("bad.txt", BAD_FILES[kind])
        )
    assert err.value.message_dict["curve_file"][0]
    assert counts() == before
    assert files_under(media_root) == []


def test_fifty_megabyte_file_is_refused_before_reading(experimenter, media_root):
    big = SimpleUploadedFile("big.xy", b"0" * (50 * 1024 * 1024))
    with pytest.raises(ValidationError) as err:
        services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1", xrd_file=big)
    assert "limit" in err.value.message_dict["xrd_file"][0]
    assert counts() == (0, 0, 0, 0, 0)
    assert files_under(media_root) == []


def test_upload_limit_comes_from_settings(experimenter, settings):
    settings.GLASSLOOP_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(ValidationError, match="limit"):
        services.prepare_xrd(xrd_upload())


def test_duplicate_label_refused_before_any_file_is_written(experimenter, media_root):
    services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1")
    with pytest.raises(ValidationError) as err:
        services.log_experiment(user=experimenter, composition="Pd41Ni41P18", label="S1", xrd_file=xrd_upload())
    assert "label" in err.value.message_dict
    assert Alloy.objects.count() == 1  # the new alloy was rolled back with the sample
    assert files_under(media_root) == []


def test_files_written_in_a_failed_transaction_are_removed(media_root):
    with pytest.raises(RuntimeError):
        with services._files_removed_on_failure() as written:
            name = default_storage.save("xrd/test.xy", ContentFile(b"1 2\n"))
            written.append((default_storage, name))
            assert files_under(media_root)
            raise RuntimeError("database went away")
    assert files_under(media_root) == []


def test_record_xrd_crystalline_and_long_file_name(experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1")
    xrd = services.record_xrd(
        sample, user=experimenter, uploaded_file=xrd_upload("crystalline", name="x" * 150 + ".xy"), wavelength_a=1.5406
    )
    assert xrd.computed_verdict == XRDMeasurement.Verdict.CRYSTALLINE
    assert xrd.analysis["sharp_peaks_q_inv_a"]
    assert len(xrd.pattern.name) <= 100
    assert xrd.pattern.name.endswith(".xy")


def test_record_xrd_refuses_implausible_wavelength(experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1")
    with pytest.raises(ValidationError) as err:
        services.record_xrd(sample, user=experimenter, uploaded_file=xrd_upload(), wavelength_a=15.4)
    assert "wavelength_a" in err.value.message_dict
    assert XRDMeasurement.objects.count() == 0


def test_record_dsc_with_celsius_curve_keeps_the_unit(experimenter, media_root):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1")
    curve = SimpleUploadedFile("c.txt", synthetic_dsc_curve(700, 760, 1150, unit="C"))
    dsc = services.record_dsc(sample, user=experimenter, tg_k=700, tx_k=760, tl_k=1150, curve_file=curve, curve_unit="C")
    assert dsc.curve_temperature_unit == "C"
    assert files_under(media_root) == [dsc.curve.name]
    assert dsc.property_value.origin == PropertyValue.Origin.EXPERIMENT


def test_record_dsc_tl_optional(experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1")
    dsc = services.record_dsc(sample, user=experimenter, tg_k=700, tx_k=760)
    assert dsc.tl_k is None and dsc.reduced_glass_transition is None
    assert dsc.supercooled_liquid_region_k == 60


def test_values_more_than_10_k_apart_are_flagged_as_conflicts(experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1")
    literature = PropertyValue.objects.create(
        alloy=sample.alloy,
        origin=PropertyValue.Origin.LITERATURE,
        reference=Reference.objects.create(authors="Someone", year=2004),
        tg_k=700,
        tx_k=760,
    )
    services.record_dsc(sample, user=experimenter, tg_k=705, tx_k=765)  # within 10 K
    assert not PropertyValue.objects.filter(conflict=True).exists()
    services.record_dsc(sample, user=experimenter, tg_k=730, tx_k=770)  # Tg 30 K off
    flagged = set(PropertyValue.objects.filter(conflict=True).values_list("tg_k", flat=True))
    assert flagged == {700, 705, 730}
    literature.refresh_from_db()
    assert literature.conflict


def test_override_verdict_needs_a_reason_and_is_in_history(experimenter):
    sample = services.log_experiment(user=experimenter, composition="Cu46Zr46Al8", label="S1", xrd_file=xrd_upload())
    xrd = sample.xrd_measurements.get()
    with pytest.raises(ValidationError):
        services.override_xrd_verdict(xrd, user=experimenter, verdict="crystalline", reason="   ")
    xrd.refresh_from_db()
    assert xrd.verdict == "amorphous" and xrd.history.count() == 2  # stored, analysed

    services.override_xrd_verdict(xrd, user=experimenter, verdict="crystalline", reason="TEM shows nanocrystals")
    xrd.refresh_from_db()
    assert xrd.verdict == "crystalline" and xrd.computed_verdict == "amorphous"
    latest = xrd.history.first()
    assert latest.history_user == experimenter
    assert latest.override_verdict == "crystalline"
    assert "TEM shows nanocrystals" in latest.history_change_reason

    services.override_xrd_verdict(xrd, user=experimenter, verdict="", reason="TEM was of another rod")
    xrd.refresh_from_db()
    assert xrd.verdict == "amorphous"
    assert xrd.history.count() == 4


def test_nan_peak_values_are_stored_as_unknown():
    assert services._finite_or_none(math.nan) is None
    assert services._finite_or_none(2.5) == 2.5
