"""XRD/DSC file reading and analysis on synthetic patterns and bad files (no Django needed)."""

import json
import math

import numpy as np
import pytest

from lab.patterns import (
    MAX_PATTERN_BYTES,
    PatternError,
    analyse_xrd,
    analyse_xrd_file,
    q_to_two_theta,
    read_dsc_file,
    read_two_column,
    two_theta_to_q,
)
from tests.lab.patterns_fixtures import synthetic_dsc_curve, synthetic_xrd_pattern


def _lines(n=20, sep=" ", start=20.0):
    return "\n".join(f"{start + i * 0.5:.2f}{sep}{100 + i}" for i in range(n)) + "\n"


# ----------------------------------------------------------------- q conversion


def test_q_of_38_degrees_cu_kalpha_by_hand():
    # θ = 19°, sin 19° = 0.3255682, 4π·0.3255682/1.5406 = 2.65562 Å⁻¹
    assert two_theta_to_q(38.0) == pytest.approx(2.65562, abs=1e-4)


def test_q_with_mo_kalpha_by_hand():
    # θ = 8.5°, sin 8.5° = 0.1478094, 4π·0.1478094/0.7107 = 2.61346 Å⁻¹
    assert two_theta_to_q(17.0, 0.7107) == pytest.approx(2.61346, abs=1e-4)
    assert q_to_two_theta(2.61346, 0.7107) == pytest.approx(17.0, abs=1e-3)


def test_analysis_uses_the_given_wavelength():
    tt, y = read_two_column(synthetic_xrd_pattern("amorphous", wavelength_a=0.7107))
    mo = analyse_xrd(tt, y, wavelength_a=0.7107)
    assert mo.wavelength_a == 0.7107
    assert mo.q_inv_a == pytest.approx(4 * np.pi * np.sin(np.radians(tt / 2)) / 0.7107)
    assert mo.peak_q_inv_a == pytest.approx(2.65, abs=0.05)  # same glass, same q
    assert mo.peak_two_theta_deg == pytest.approx(17.2, abs=0.4)  # but a much smaller angle
    assert mo.is_amorphous


# ----------------------------------------------------------------- verdicts


@pytest.mark.parametrize("fwhm", [0.30, 0.40, 0.60])
def test_fwhm_of_gaussian_halo_within_a_few_percent(fwhm):
    a = analyse_xrd_file(synthetic_xrd_pattern("amorphous", seed=3, halo_fwhm_inv_a=fwhm))
    assert a.fwhm_inv_a == pytest.approx(fwhm, rel=0.06)
    assert a.peak_q_inv_a == pytest.approx(2.65, abs=0.03)
    assert a.half_max_right_q - a.half_max_left_q == pytest.approx(a.fwhm_inv_a)
    assert a.half_max_left_q < a.peak_q_inv_a < a.half_max_right_q


def test_amorphous_halo_is_amorphous_with_a_readable_reason():
    a = analyse_xrd_file(synthetic_xrd_pattern("amorphous"))
    assert a.is_amorphous
    assert a.sharp_peaks_q_inv_a == ()
    assert a.peak_two_theta_deg == pytest.approx(38.0, abs=0.6)
    assert a.reason.startswith("Broad halo at q = 2.6")
    assert "no sharp Bragg peaks" in a.reason


def test_amorphous_verdict_is_stable_across_noise_seeds():
    verdicts = [analyse_xrd_file(synthetic_xrd_pattern("amorphous", seed=s, counts=300)).is_amorphous for s in range(8)]
    assert all(verdicts)


def test_sharp_peaks_are_crystalline():
    a = analyse_xrd_file(synthetic_xrd_pattern("crystalline"))
    assert not a.is_amorphous
    assert a.main_peak_is_sharp
    assert a.peak_q_inv_a == pytest.approx(2.78, abs=0.005)
    assert a.fwhm_inv_a < 0.03  # 0.15° in 2θ ≈ 0.01 Å⁻¹
    assert [round(q, 2) for q in a.sharp_peaks_q_inv_a] == [2.78, 3.21, 4.54, 5.06]
    assert "sharp Bragg peak" in a.reason


def test_partly_crystalline_is_crystalline():
    a = analyse_xrd_file(synthetic_xrd_pattern("partly_crystalline"))
    assert not a.is_amorphous
    assert a.sharp_peaks_q_inv_a == pytest.approx((2.45, 2.98, 3.55), abs=0.01)
    # The halo is still the main peak and its width is still measured.
    assert a.fwhm_inv_a == pytest.approx(0.40, rel=0.08)
    assert "but 3 sharp Bragg peaks" in a.reason


def test_nanocrystalline_width_is_not_a_halo():
    tt = np.arange(20, 80, 0.02)
    q = two_theta_to_q(tt)
    y = 200 + 1000 * np.exp(-4 * np.log(2) * ((q - 2.7) / 0.14) ** 2)
    a = analyse_xrd(tt, y)
    assert not a.is_amorphous
    assert "narrower than a glass halo" in a.reason


def test_noise_only_is_not_called_amorphous():
    rng = np.random.default_rng(1)
    tt = np.arange(20, 80, 0.02)
    a = analyse_xrd(tt, rng.poisson(100, len(tt)))
    assert not a.is_amorphous
    assert a.reason.startswith("No clear peak")


def test_as_dict_is_json_safe_and_complete():
    a = analyse_xrd_file(synthetic_xrd_pattern("partly_crystalline"))
    d = json.loads(json.dumps(a.as_dict()))
    assert d["verdict"] == "crystalline"
    assert d["peak_q_inv_a"] == pytest.approx(a.peak_q_inv_a, abs=1e-4)
    assert len(d["sharp_peaks_q_inv_a"]) == len(a.sharp_peaks_q_inv_a)
    assert d["n_points"] == 3001


def test_analysis_arrays_are_read_only():
    a = analyse_xrd_file(synthetic_xrd_pattern("amorphous"))
    with pytest.raises(ValueError):
        a.intensity[0] = 1.0


@pytest.mark.parametrize(
    "tt, message",
    [(np.linspace(-5, 20, 50), "between 0° and 180°"), (np.linspace(30, 31, 50), "at least 2°")],
)
def test_bad_two_theta_range(tt, message):
    with pytest.raises(PatternError, match=message):
        analyse_xrd(tt, np.arange(len(tt), dtype=float))


def test_flat_pattern_is_refused():
    with pytest.raises(PatternError, match="same at every point"):
        analyse_xrd(np.arange(20, 80, 0.5), np.full(120, 5.0))


# ----------------------------------------------------------------- reading


@pytest.mark.parametrize("sep", [" ", "  ", "\t", ",", ";", ", ", " ; "])
def test_separators(sep):
    x, y = read_two_column(_lines(sep=sep).encode())
    assert len(x) == 20 and x[1] == 20.5 and y[1] == 101


def test_decimal_commas_with_semicolons_and_tabs():
    text = "".join(f"{20 + i},5;{100 + i},25\n" for i in range(12))
    x, y = read_two_column(text.encode())
    assert x[0] == 20.5 and y[0] == 100.25
    x, y = read_two_column(text.replace(";", "\t").encode())
    assert x[0] == 20.5 and y[0] == 100.25


def test_header_lines_and_comments_are_skipped():
    text = "# Bruker export\n'Sample S-1\n; wavelength 1.5406\n2Theta,Intensity\n\n" + _lines(sep=",") + "# end\n"
    x, y = read_two_column(text.encode())
    assert len(x) == 20


def test_latin1_header_and_utf8_bom_are_accepted():
    body = _lines().encode()
    assert len(read_two_column("2θ (°) intensité\n".encode("latin-1", "replace") + body)[0]) == 20
    assert len(read_two_column(b"\xef\xbb\xbf" + "2θ (°) counts\n".encode() + body)[0]) == 20


def test_extra_columns_are_ignored_and_data_is_sorted():
    text = "".join(f"{30 - i} {i} {i * 7} x\n" for i in range(15))
    x, y = read_two_column(text.encode())
    assert list(x) == sorted(x)
    assert y[0] == 14 and x[0] == 16


def test_empty_file():
    for data in (b"", b"   \n\n"):
        with pytest.raises(PatternError, match="empty"):
            read_two_column(data)


def test_one_column():
    with pytest.raises(PatternError, match="only one column"):
        read_two_column(b"intensity\n" + b"".join(b"%d\n" % i for i in range(50)))


def test_one_column_line_inside_data_names_the_line():
    text = _lines(5) + "23.0\n" + _lines(10, start=30)
    with pytest.raises(PatternError, match="Line 6 has only one column"):
        read_two_column(text.encode())


def test_empty_field_in_csv_names_the_line():
    text = _lines(5, sep=",") + "22.5,,7\n" + _lines(10, sep=",", start=30)
    with pytest.raises(PatternError, match="Line 6"):
        read_two_column(text.encode())


def test_text_only():
    with pytest.raises(PatternError, match="No numeric data"):
        read_two_column(b"This is my lab notebook.\nNothing numeric, sorry.\n")


def test_text_inside_data_names_the_line():
    text = "2theta intensity\n" + _lines(5) + "oops, bad line\n" + _lines(10, start=30)
    with pytest.raises(PatternError, match="Line 7 is not numeric"):
        read_two_column(text.encode())


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "-Infinity"])
def test_nan_and_inf_are_refused_with_the_line(bad):
    text = _lines(5) + f"22.5 {bad}\n" + _lines(10, start=30)
    with pytest.raises(PatternError, match="Line 6 contains a NaN or infinite value"):
        read_two_column(text.encode())


def test_fifty_megabytes_are_refused_quickly():
    data = b"20.00 100\n" * (5 * 1024 * 1024 + 1)  # 50 MB, built in memory
    assert len(data) > 50 * 1024 * 1024
    with pytest.raises(PatternError, match=r"50\.0 MB; the limit is 20 MB"):
        read_two_column(data)
    assert MAX_PATTERN_BYTES == 20 * 1024 * 1024


def test_binary_with_nul_bytes():
    with pytest.raises(PatternError, match="binary file"):
        read_two_column(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))


def test_random_bytes():
    rng = np.random.default_rng(7)
    data = rng.integers(1, 256, 4096, dtype=np.uint8).tobytes()  # no NUL bytes at all
    with pytest.raises(PatternError, match="not a text file|binary file"):
        read_two_column(data)


def test_too_few_points():
    with pytest.raises(PatternError, match="Only 9 data points; at least 10"):
        read_two_column(_lines(9).encode())


def test_analyse_file_raises_pattern_error_for_bad_files():
    with pytest.raises(PatternError):
        analyse_xrd_file(b"")
    assert issubclass(PatternError, ValueError)


# ----------------------------------------------------------------- DSC


def test_dsc_in_kelvin():
    c = read_dsc_file(synthetic_dsc_curve(650, 720, 1050), temperature_unit="K")
    assert c.temperature_k[0] == pytest.approx(500.0)
    assert len(c.temperature_k) == len(c.heat_flow)
    # the crystallisation exotherm peaks just after Tx
    assert c.temperature_k[int(np.argmax(c.heat_flow))] == pytest.approx(730, abs=5)


def test_dsc_in_celsius_is_converted_to_kelvin():
    data = synthetic_dsc_curve(650, 720, 1050, unit="C")
    assert data.splitlines()[1].startswith(b"226.85")
    c = read_dsc_file(data, temperature_unit="C")
    assert c.temperature_k[0] == pytest.approx(500.0, abs=0.01)
    assert read_dsc_file(data, temperature_unit="°C").temperature_k[0] == pytest.approx(500.0, abs=0.01)


def test_celsius_file_read_as_kelvin_suggests_celsius():
    text = "T(C) heatflow\n" + "".join(f"{t} {0.01 * t}\n" for t in range(25, 600, 5))
    with pytest.raises(PatternError, match="Is the file in °C"):
        read_dsc_file(text.encode(), temperature_unit="K")


def test_kelvin_file_read_as_celsius_suggests_kelvin():
    text = "".join(f"{t} {0.01 * t}\n" for t in range(300, 2500, 10))
    with pytest.raises(PatternError, match="Is the file in K"):
        read_dsc_file(text.encode(), temperature_unit="C")


def test_dsc_unknown_unit_and_bad_file():
    with pytest.raises(PatternError, match="Unknown temperature unit"):
        read_dsc_file(synthetic_dsc_curve(650, 720), temperature_unit="F")
    with pytest.raises(PatternError, match="empty"):
        read_dsc_file(b"")


def test_synthetic_generators_check_their_input():
    with pytest.raises(ValueError):
        synthetic_xrd_pattern("glassy")
    with pytest.raises(ValueError):
        synthetic_dsc_curve(720, 650)
    assert synthetic_xrd_pattern("amorphous", seed=1) == synthetic_xrd_pattern("amorphous", seed=1)
    assert not math.isnan(analyse_xrd_file(synthetic_xrd_pattern("amorphous", seed=1)).fwhm_inv_a)
