"""Reading and analysing XRD patterns and DSC curves (pure numpy/scipy; no Django).

Two-column text files (x, y) come from many instruments: comma, semicolon, tab or
whitespace separated, with header lines of all kinds. ``read_two_column`` accepts
those and refuses anything it cannot read with one sentence saying what is wrong
(and on which line), so a form can show it and save nothing.

XRD analysis (``analyse_xrd``), in order:

1. q = 4π sin θ / λ for every point (θ is half of 2θ; λ in Å, Cu Kα = 1.5406 Å).
2. The pattern is resampled onto a uniform q grid at its finest original spacing
   (at most 20,000 points), so every width below is in Å⁻¹ directly.
3. Light Savitzky–Golay smoothing (window ≈ 0.006 Å⁻¹, at least 5 points, cubic):
   keeps Bragg peaks (≥ 0.01 Å⁻¹ wide) intact and takes the edge off counting noise.
4. Background: asymmetric least squares (Eilers & Boelens 2005; p = 0.01) on a
   300-bin copy of the smoothed pattern, with a stiffness that stops it bending on
   scales shorter than ~1.5 Å⁻¹, so it runs under a glass halo (FWHM up to ~1 Å⁻¹)
   instead of eating it. The residual r = smoothed − background is the signal.
5. Sharp (Bragg) peaks: a broad component of r is estimated by repeated heavy
   Savitzky–Golay smoothing (window 0.25 Å⁻¹, quartic) with the points that stick
   out clipped each round; d = r − broad holds the narrow features. A peak of d
   (scipy.signal.find_peaks) is a sharp Bragg peak when
     * its FWHM (width at half its prominence) is below 0.10 Å⁻¹. By Scherrer,
       Δq ≈ 2πK/D with K = 0.9, so 0.10 Å⁻¹ means coherent domains of about 6 nm
       or more, i.e. crystals; metallic-glass halos are 0.2–1.0 Å⁻¹ wide; and
     * its height in d is at least max(8 σ_local, 2 % of the strongest feature),
       σ_local being the noise of d near the peak (running median absolute
       deviation over ±0.25 Å⁻¹). Smoothed, resampled counting noise is
       correlated and Poisson-skewed: on synthetic glasses its largest wiggles
       reach 6–7 σ_local, never 8 in 300 patterns, while weak Bragg peaks of
       a partly crystalline pattern stand at 10–30 σ. 2 % ignores specks on a
       huge peak. Its prominence within ±0.1 Å⁻¹ must be at least half that.
6. Main peak: the most prominent maximum of r. If it is one of the sharp peaks its
   FWHM is that peak's width in d. Otherwise (a halo) the sharp peaks are cut out
   and bridged, r is smoothed more heavily (Savitzky–Golay, quadratic, window a
   quarter of the FWHM, refined twice), and the FWHM is the distance between the
   half-maximum crossings found by linear interpolation either side of the top (in q).
   If one side never falls to half maximum (peak at the edge of the scan) the FWHM
   is twice the other half width, and the reason says so.
7. Verdict: amorphous when the main peak's FWHM (rounded to 0.01) is within
   0.20–1.00 Å⁻¹, it stands at least 5σ (counting noise) above the background, and no sharp Bragg peak was found. Anything
   else is crystalline, with a reason a person can check (and override).

A typical Cu Kα metallic-glass halo sits at 2θ ≈ 36–40° (q ≈ 2.5–2.8 Å⁻¹) with a
FWHM of 0.3–0.5 Å⁻¹.

DSC curves (``read_dsc_file``) are read the same way and converted to K; temperatures
outside 100–2600 K are refused with a hint about the other unit.

Realistic synthetic test files: ``tests/lab/patterns_fixtures.py``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.ndimage import median_filter
from scipy.signal import find_peaks, peak_widths, savgol_filter
from scipy.sparse.linalg import spsolve

from ml.rules import C_TO_K, temperature_unit

CU_KALPHA_A = 1.5406
MO_KALPHA_A = 0.7107
MAX_PATTERN_BYTES = 20 * 1024 * 1024
MIN_POINTS = 10

# Analysis thresholds (Å⁻¹ unless stated); the module docstring says why.
SHARP_PEAK_MAX_FWHM = 0.10
HALO_MIN_FWHM = 0.20
HALO_MAX_FWHM = 1.00
NOISE_SIGMAS = 8.0  # sharp peak: height above the broad component, in local noise σ
MAIN_PEAK_MIN_SIGMAS = 5.0  # main peak: height above background, in counting noise σ
SHARP_MIN_RELATIVE = 0.02
MAX_GRID_POINTS = 20_000
ANALYSIS_VERSION = 1

# DSC temperatures a file may plausibly contain (K).
DSC_MIN_K = 100.0
DSC_MAX_K = 2600.0
KELVIN_OFFSET = C_TO_K  # ml.rules


class PatternError(ValueError):
    """A pattern or curve file that cannot be used; the message says why (and where)."""


# --------------------------------------------------------------------------- reading

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_COMMENT_PREFIXES = ("#", "'", ";", "%", "!", "//")
_ALLOWED_CONTROL = {"\t", "\n", "\r", "\f", "\v"}


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise PatternError("This is a binary file (it contains NUL bytes), not a two-column text file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Some instruments write Latin-1 headers ("2Theta (°)"); accept those, but not
        # random bytes, which are mostly non-ASCII.
        non_ascii = sum(1 for b in data[:65536] if b >= 0x80)
        if non_ascii > 0.02 * min(len(data), 65536):
            raise PatternError("This is not a text file (it cannot be read as UTF-8 or Latin-1 text).") from None
        text = data.decode("latin-1")
    bad = next((c for c in text[:65536] if ord(c) < 32 and c not in _ALLOWED_CONTROL), None)
    if bad is not None:
        raise PatternError(f"This is a binary file (it contains control character {ord(bad):#04x}), not text.")
    return text


def _tokens(line: str) -> list[str]:
    """Split one line into fields: ';', tab, ',' or whitespace separated (decimal commas allowed)."""
    if ";" in line:
        parts = [p.strip().replace(",", ".") for p in line.split(";")]
    elif "\t" in line:
        parts = [p.strip() for p in line.split("\t")]
        if any("," in p for p in parts) and not any("." in p for p in parts):
            parts = [p.replace(",", ".") for p in parts]  # "20,02<TAB>153,1": decimal commas
    elif "," in line:
        parts = [p.strip() for p in line.split(",")]
    else:
        parts = line.split()
    while parts and parts[-1] == "":  # trailing separator
        parts.pop()
    return parts


def _is_number(token: str) -> bool:
    return bool(_NUMBER.fullmatch(token) or _NONFINITE.fullmatch(token))


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PatternError(
            f"The file is {size / 1024 / 1024:.1f} MB; the limit is {max_bytes / 1024 / 1024:.0f} MB. "
            "A diffraction pattern or DSC curve is normally well under 1 MB."
        )


def read_two_column(data: bytes, *, name: str = "", max_bytes: int = MAX_PATTERN_BYTES,
                    min_points: int = MIN_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Read (x, y) from a two-column text file, sorted by x.

    Accepts comma, semicolon (decimal commas allowed), tab or whitespace separated
    columns; header lines before the data (comments starting with #, ', ;, %, ! or
    //, or any line whose first two fields are not numbers) are skipped, as are
    blank and comment lines later on. Columns beyond the second are ignored.
    Raises PatternError for: an empty file, a binary or undecodable file, a file
    over ``max_bytes``, one column only, a non-numeric or one-column line inside the
    data (with its line number), NaN or infinite values, fewer than 10 points.
    ``name`` is only used to make messages friendlier; callers add it to the message.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = bytes(data)
    _check_size(len(data), max_bytes)
    if not data.strip():
        raise PatternError("The file is empty.")
    text = _decode(data)

    xs: list[float] = []
    ys: list[float] = []
    data_started = False
    one_column_lines = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(_COMMENT_PREFIXES):
            continue
        parts = _tokens(line)
        numeric = [_is_number(p) for p in parts[:2]]
        if len(parts) >= 2 and all(numeric):
            a, b = parts[0], parts[1]
            if _NONFINITE.fullmatch(a) or _NONFINITE.fullmatch(b):
                raise PatternError(f"Line {lineno} contains a NaN or infinite value ({a}, {b}); every point needs two finite numbers.")
            xs.append(float(a))
            ys.append(float(b))
            data_started = True
            continue
        if not data_started:
            if parts and numeric and numeric[0] and len(parts) == 1:
                one_column_lines += 1
            continue  # header line
        shown = raw.strip()[:60]
        if len(parts) == 1 and numeric[0]:
            raise PatternError(f"Line {lineno} has only one column ({shown!r}); every data line needs two numbers (x, y).")
        if len(parts) >= 2 and parts[1] == "" or len(parts) == 1:
            raise PatternError(f"Line {lineno} is missing its second value ({shown!r}).")
        raise PatternError(f"Line {lineno} is not numeric data ({shown!r}); only header lines may contain text, at the top.")

    if not xs:
        if one_column_lines:
            raise PatternError(
                f"The file has only one column of numbers ({one_column_lines} lines); two are needed: x (2θ or temperature) and y (intensity or heat flow)."
            )
        raise PatternError("No numeric data found: no line starts with two numbers (x, y). Is this the right file?")
    if len(xs) < min_points:
        raise PatternError(f"Only {len(xs)} data points; at least {min_points} are needed.")
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):  # e.g. 1e999 overflows to inf
        raise PatternError("The file contains a value too large to be a number.")
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


# The request looks at this much of an uploaded pattern; the whole file is read on the worker.
PEEK_BYTES = 64 * 1024


def check_pattern_head(head: bytes, *, size: int, max_bytes: int = MAX_PATTERN_BYTES) -> None:
    """The cheap checks a web request makes of a pattern upload (issue 16: reading and
    analysing a whole 7.2 MB pattern took seconds there): its ``size``, and ``head`` (at most its
    first ``PEEK_BYTES``) read as read_two_column reads a file, so a binary file, one without
    two numeric columns or with a NaN near the top is refused at once with the reader's
    sentence. PatternError otherwise. The whole file is read and analysed on the worker."""
    _check_size(size, max_bytes)
    head = bytes(head[:PEEK_BYTES])
    whole = size <= len(head)
    if not whole and b"\n" in head:  # whole lines only: no line or character cut in two
        head = head[:head.rfind(b"\n") + 1]
    # A prefix may hold fewer than MIN_POINTS points (a long header); the worker counts them all.
    read_two_column(head, max_bytes=max_bytes, min_points=MIN_POINTS if whole else 1)


# --------------------------------------------------------------------------- XRD


def two_theta_to_q(two_theta_deg, wavelength_a: float = CU_KALPHA_A):
    """q = 4π sin(θ)/λ in Å⁻¹, θ = 2θ/2."""
    return 4.0 * np.pi * np.sin(np.radians(np.asarray(two_theta_deg, dtype=float) / 2.0)) / wavelength_a


def q_to_two_theta(q_inv_a, wavelength_a: float = CU_KALPHA_A):
    """Inverse of ``two_theta_to_q`` (NaN where q is beyond 4π/λ)."""
    s = np.asarray(q_inv_a, dtype=float) * wavelength_a / (4.0 * np.pi)
    with np.errstate(invalid="ignore"):
        return np.degrees(2.0 * np.arcsin(np.where(np.abs(s) <= 1, s, np.nan)))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _json_float(v, ndigits=5):
    return None if v is None or not math.isfinite(v) else round(float(v), ndigits)


@dataclass(frozen=True, eq=False)
class XRDAnalysis:
    """The result of ``analyse_xrd``: q, main peak, FWHM, sharp peaks and verdict."""

    two_theta_deg: np.ndarray
    intensity: np.ndarray
    q_inv_a: np.ndarray
    wavelength_a: float
    peak_q_inv_a: float
    peak_two_theta_deg: float
    fwhm_inv_a: float
    is_amorphous: bool
    reason: str
    sharp_peaks_q_inv_a: tuple[float, ...]
    half_max_left_q: float
    half_max_right_q: float
    # For plotting: background on the original points, and the raw-intensity levels
    # of the main peak's top and of its half maximum (background + half height).
    background: np.ndarray = field(default_factory=lambda: np.zeros(0))
    peak_intensity: float = math.nan
    half_max_intensity: float = math.nan
    noise_sigma: float = math.nan
    main_peak_is_sharp: bool = False

    @property
    def verdict(self) -> str:
        return "amorphous" if self.is_amorphous else "crystalline"

    def as_dict(self) -> dict:
        """JSON-safe summary (no arrays) for a JSONField."""
        return {
            "version": ANALYSIS_VERSION,
            "verdict": self.verdict,
            "is_amorphous": bool(self.is_amorphous),
            "reason": self.reason,
            "wavelength_a": _json_float(self.wavelength_a),
            "peak_q_inv_a": _json_float(self.peak_q_inv_a),
            "peak_two_theta_deg": _json_float(self.peak_two_theta_deg),
            "fwhm_inv_a": _json_float(self.fwhm_inv_a),
            "half_max_left_q": _json_float(self.half_max_left_q),
            "half_max_right_q": _json_float(self.half_max_right_q),
            "main_peak_is_sharp": bool(self.main_peak_is_sharp),
            "sharp_peaks_q_inv_a": [_json_float(q) for q in self.sharp_peaks_q_inv_a],
            "n_points": int(len(self.two_theta_deg)),
            "two_theta_range_deg": [_json_float(float(self.two_theta_deg[0]), 3), _json_float(float(self.two_theta_deg[-1]), 3)],
            "q_range_inv_a": [_json_float(float(self.q_inv_a[0])), _json_float(float(self.q_inv_a[-1]))],
            "noise_sigma": _json_float(self.noise_sigma, 4),
            "thresholds": {
                "sharp_peak_max_fwhm_inv_a": SHARP_PEAK_MAX_FWHM,
                "halo_fwhm_range_inv_a": [HALO_MIN_FWHM, HALO_MAX_FWHM],
                "min_prominence_noise_sigmas": NOISE_SIGMAS,
                "min_prominence_fraction_of_main": SHARP_MIN_RELATIVE,
            },
        }


def _odd_window(width_q: float, h: float, n: int, *, minimum: int, polyorder: int) -> int:
    w = int(round(width_q / h))
    w = max(w, minimum, polyorder + 2)
    if w % 2 == 0:
        w += 1
    limit = n if n % 2 == 1 else n - 1
    return max(min(w, limit), polyorder + 1 if (polyorder + 1) % 2 == 1 else polyorder + 2)


def _smooth(y: np.ndarray, width_q: float, h: float, *, polyorder: int, minimum: int = 5) -> np.ndarray:
    w = _odd_window(width_q, h, len(y), minimum=minimum, polyorder=polyorder)
    if w <= polyorder:
        return y.copy()
    return savgol_filter(y, w, polyorder, mode="interp")


def _als_baseline(y: np.ndarray, lam: float, p: float = 0.01, n_iter: int = 15) -> np.ndarray:
    """Asymmetric least squares baseline (Eilers & Boelens): a stiff curve under the data."""
    n = len(y)
    d = sparse.diags([1.0, -2.0, 1.0], [0, -1, -2], shape=(n, n - 2))
    penalty = lam * (d @ d.T)
    w = np.ones(n)
    z = y
    for _ in range(n_iter):
        z = spsolve((sparse.diags(w) + penalty).tocsc(), w * y)
        w_new = np.where(y > z, p, 1.0 - p)
        if np.array_equal(w_new, w):
            break
        w = w_new
    return z


def _background(q: np.ndarray, y: np.ndarray, *, stiffness_q: float = 1.5, bins: int = 300) -> np.ndarray:
    n = len(q)
    nb = min(bins, n)
    edges = np.linspace(0, n, nb + 1).astype(int)
    qb = np.array([q[a:b].mean() for a, b in zip(edges[:-1], edges[1:]) if b > a])
    yb = np.array([y[a:b].mean() for a, b in zip(edges[:-1], edges[1:]) if b > a])
    if len(qb) < 5:
        return np.full_like(y, float(np.min(y)))
    hb = (qb[-1] - qb[0]) / (len(qb) - 1)
    lam = (stiffness_q / hb) ** 4 / 16.0
    zb = _als_baseline(yb, lam)
    return np.interp(q, qb, zb)


def _noise_sigma(y: np.ndarray) -> float:
    """Counting-noise estimate from point-to-point differences (robust to peaks)."""
    dy = np.diff(y)
    if len(dy) == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(dy - np.median(dy))) / math.sqrt(2.0))


def _broad_component(r: np.ndarray, h: float, sigma: np.ndarray, *, window_q: float = 0.25, rounds: int = 6) -> np.ndarray:
    """Heavy smoothing of r with narrow spikes clipped away each round (peak stripping)."""
    work = r.copy()
    broad = _smooth(work, window_q, h, polyorder=4, minimum=7)
    for _ in range(rounds):
        work = np.minimum(work, broad + 2.0 * sigma)
        broad = _smooth(work, window_q, h, polyorder=4, minimum=7)
    return broad


def _local_sigma(d: np.ndarray, h: float, *, window_q: float = 0.5) -> np.ndarray:
    size = max(3, int(round(window_q / h)))
    # Median filter on a decimated copy keeps this fast on long patterns.
    step = max(1, size // 50)
    dev = np.abs(d - np.median(d))[::step]
    local = median_filter(dev, size=max(3, size // step), mode="reflect") * 1.4826
    local = np.interp(np.arange(len(d)), np.arange(0, len(d), step)[: len(local)], local)
    floor = 1e-12 + 1e-9 * float(np.max(np.abs(d)) if len(d) else 0.0)
    return np.maximum(local, floor)


def _crossings(c: np.ndarray, q: np.ndarray, i: int, level: float) -> tuple[float | None, float | None]:
    """q where c falls below ``level`` left and right of index i (linear interpolation)."""
    left = right = None
    j = i
    while j > 0 and c[j] >= level:
        j -= 1
    if c[j] < level:
        left = q[j] + (level - c[j]) * (q[j + 1] - q[j]) / (c[j + 1] - c[j])
    j = i
    n = len(c)
    while j < n - 1 and c[j] >= level:
        j += 1
    if c[j] < level:
        right = q[j - 1] + (c[j - 1] - level) * (q[j] - q[j - 1]) / (c[j - 1] - c[j])
    return left, right


def _fmt_q(q: float) -> str:
    return f"{q:.2f} Å⁻¹"


def analyse_xrd(two_theta_deg, intensity, *, wavelength_a: float = CU_KALPHA_A) -> XRDAnalysis:
    """Main peak, FWHM (Å⁻¹), sharp Bragg peaks and amorphous verdict of a pattern.

    The method and its thresholds are described in the module docstring.
    Raises PatternError for patterns that cannot be analysed (bad 2θ range, flat pattern, no peak).
    """
    if not (isinstance(wavelength_a, (int, float)) and math.isfinite(wavelength_a) and wavelength_a > 0):
        raise PatternError(f"The wavelength must be a positive number of Å (Cu Kα is {CU_KALPHA_A} Å).")
    tt = np.asarray(two_theta_deg, dtype=float).ravel()
    inten = np.asarray(intensity, dtype=float).ravel()
    if tt.shape != inten.shape:
        raise PatternError("2θ and intensity must have the same number of points.")
    if len(tt) < MIN_POINTS:
        raise PatternError(f"Only {len(tt)} data points; at least {MIN_POINTS} are needed.")
    if not (np.isfinite(tt).all() and np.isfinite(inten).all()):
        raise PatternError("The pattern contains NaN or infinite values.")
    order = np.argsort(tt, kind="stable")
    tt, inten = tt[order], inten[order]
    if tt[0] <= 0 or tt[-1] >= 180:
        raise PatternError(
            f"2θ runs from {tt[0]:g}° to {tt[-1]:g}°; it must lie between 0° and 180°. "
            "Is the first column 2θ in degrees (not q, d-spacing or radians)?"
        )
    if tt[-1] - tt[0] < 2.0:
        raise PatternError(f"The scan covers only {tt[-1] - tt[0]:.2g}° of 2θ; at least 2° are needed to find a peak.")
    if np.ptp(inten) == 0:
        raise PatternError("The intensity is the same at every point: there is no pattern to analyse.")

    q_all = two_theta_to_q(tt, wavelength_a)
    # Repeated 2θ values (merged scans) are averaged.
    q_u, inverse = np.unique(q_all, return_inverse=True)
    y_u = np.bincount(inverse, weights=inten) / np.bincount(inverse)
    if len(q_u) < MIN_POINTS:
        raise PatternError(f"Only {len(q_u)} distinct 2θ values; at least {MIN_POINTS} are needed.")
    sigma_raw = _noise_sigma(y_u)

    # 2. uniform q grid at the finest original spacing
    span = q_u[-1] - q_u[0]
    finest = float(np.min(np.diff(q_u)))
    n = int(min(MAX_GRID_POINTS, max(len(q_u), math.ceil(span / max(finest, span / MAX_GRID_POINTS)) + 1)))
    q = np.linspace(q_u[0], q_u[-1], n)
    h = q[1] - q[0]
    y = np.interp(q, q_u, y_u)

    # 3.-4. light smoothing, background
    y_light = _smooth(y, 0.006, h, polyorder=3, minimum=5)
    bg = _background(q, y_light)
    r = y_light - bg

    # 5. sharp peaks in d = r - broad
    sigma_flat = np.full(n, max(sigma_raw, 1e-12))
    broad = _broad_component(r, h, sigma_flat)
    d = r - broad
    sigma_d = _local_sigma(d, h)
    strongest = float(np.max(r))
    # Prominence is measured within ±SHARP_PEAK_MAX_FWHM so that a wiggle's base is not the
    # deepest noise dip far away; the test is the height above the broad component.
    wlen = max(3, int(round(2 * SHARP_PEAK_MAX_FWHM / h)) | 1)
    peaks, props = find_peaks(d, prominence=0, wlen=wlen)
    sharp_idx: list[int] = []
    sharp_width: dict[int, tuple[float, float, float, float]] = {}
    if len(peaks):
        widths, width_heights, lips, rips = peak_widths(
            d, peaks, rel_height=0.5, prominence_data=(props["prominences"], props["left_bases"], props["right_bases"])
        )
        for k, idx in enumerate(peaks):
            fwhm_q = widths[k] * h
            threshold = max(NOISE_SIGMAS * sigma_d[idx], SHARP_MIN_RELATIVE * strongest)
            if fwhm_q < SHARP_PEAK_MAX_FWHM and d[idx] >= threshold and props["prominences"][k] >= 0.5 * threshold and widths[k] >= 1.0:
                sharp_idx.append(int(idx))
                sharp_width[int(idx)] = (fwhm_q, width_heights[k], lips[k], rips[k])
    sharp_idx.sort(key=lambda i: -d[i])
    sharp_idx = sorted(sharp_idx[:50])

    # 6. main peak: most prominent maximum of r
    main_peaks, main_props = find_peaks(r, prominence=0)
    if len(main_peaks) == 0:
        raise PatternError("No peak found: the background-corrected intensity has no maximum inside the scan.")
    i_main = int(main_peaks[int(np.argmax(main_props["prominences"]))])
    main_sharp = None
    for i in sharp_idx:
        fwhm_q = sharp_width[i][0]
        if abs(i - i_main) * h <= max(fwhm_q, 3 * h):
            main_sharp = i
            break
    # A tall sharp peak may sit on a halo: take it as the main peak if it is the highest point.
    if main_sharp is None and sharp_idx:
        tallest = max(sharp_idx, key=lambda i: r[i])
        if r[tallest] >= r[i_main]:
            main_sharp = tallest

    one_sided = ""
    if main_sharp is not None:
        fwhm_q, level_d, lip, rip = sharp_width[main_sharp]
        i_peak = main_sharp
        q_peak = q[i_peak]
        left_q = float(np.interp(lip, np.arange(n), q))
        right_q = float(np.interp(rip, np.arange(n), q))
        fwhm = right_q - left_q
        peak_level = y_light[i_peak]
        half_level = level_d + broad[i_peak] + bg[i_peak]
        height = r[i_peak]
    else:
        # Cut the sharp peaks out (bridge them linearly) and smooth the halo more heavily.
        halo = r.copy()
        for i in sharp_idx:
            fw = sharp_width[i][0]
            a = max(0, i - int(2 * fw / h) - 2)
            b = min(n - 1, i + int(2 * fw / h) + 2)
            halo[a : b + 1] = np.linspace(broad[a], broad[b], b - a + 1)
        window = 0.05
        fwhm = math.nan
        left = right = None
        i_peak = i_main
        for _ in range(3):
            smooth = _smooth(halo, window, h, polyorder=2, minimum=5)
            lo = max(0, i_main - int(0.3 / h))
            hi = min(n, i_main + int(0.3 / h) + 1)
            i_peak = lo + int(np.argmax(smooth[lo:hi]))
            height = smooth[i_peak]
            if height <= 0:
                break
            left, right = _crossings(smooth, q, i_peak, height / 2.0)
            if left is None and right is None:
                break
            if left is None:
                left = q[i_peak] - (right - q[i_peak])
                one_sided = " (half maximum not reached on the low-q side; FWHM taken as twice the high-q half width)"
            elif right is None:
                right = q[i_peak] + (q[i_peak] - left)
                one_sided = " (half maximum not reached on the high-q side; FWHM taken as twice the low-q half width)"
            else:
                one_sided = ""
            fwhm = right - left
            window = min(max(fwhm / 4.0, 0.02), 0.3)
        if height <= 0 or left is None or right is None or not math.isfinite(fwhm):
            raise PatternError(
                "No peak found: the intensity never falls to half of its maximum on either side. "
                "Does the scan cover the main peak?"
            )
        # Parabolic refinement of the top position.
        q_peak = q[i_peak]
        if 0 < i_peak < n - 1:
            a, b, c = smooth[i_peak - 1], smooth[i_peak], smooth[i_peak + 1]
            denom = a - 2 * b + c
            if denom < 0:
                q_peak = q[i_peak] + 0.5 * h * (a - c) / denom
        left_q, right_q = float(left), float(right)
        peak_level = height + bg[i_peak]
        half_level = height / 2.0 + bg[i_peak]

    q_peak = float(q_peak)
    two_theta_peak = float(q_to_two_theta(q_peak, wavelength_a))
    sharp_q = tuple(float(q[i]) for i in sharp_idx)
    noise_here = float(sigma_d[i_peak]) if main_sharp is not None else max(sigma_raw, 1e-12)
    where = f"q = {_fmt_q(q_peak)} (2θ = {two_theta_peak:.1f}°)"

    # 7. verdict
    if sharp_q:
        shown = ", ".join(f"{v:.2f}" for v in sharp_q[:6]) + (" …" if len(sharp_q) > 6 else "")
        peaks_text = f"{len(sharp_q)} sharp Bragg peak{'s' if len(sharp_q) > 1 else ''} (FWHM < {SHARP_PEAK_MAX_FWHM:.2f} Å⁻¹) at q = {shown} Å⁻¹"
        if main_sharp is not None:
            reason = f"Crystalline: {peaks_text}; the strongest at {where} has FWHM {_fmt_q(fwhm)}."
        else:
            reason = f"Crystalline: a broad halo at {where} with FWHM {_fmt_q(fwhm)}, but {peaks_text}."
        amorphous = False
    elif height < MAIN_PEAK_MIN_SIGMAS * noise_here:
        amorphous = False
        reason = (
            f"No clear peak: the strongest feature, at {where}, is only {height / noise_here:.1f}× the noise level; "
            "cannot call it amorphous."
        )
    elif round(fwhm, 2) < HALO_MIN_FWHM:  # compare what the reason shows
        amorphous = False
        reason = (
            f"Crystalline (likely nanocrystalline): the main peak at {where} has FWHM {_fmt_q(fwhm)}{one_sided}, "
            f"narrower than a glass halo ({HALO_MIN_FWHM:.1f}–{HALO_MAX_FWHM:.1f} Å⁻¹)."
        )
    elif round(fwhm, 2) > HALO_MAX_FWHM:
        amorphous = False
        reason = (
            f"Not a glass halo: the main feature at {where} has FWHM {_fmt_q(fwhm)}{one_sided}, broader than "
            f"{HALO_MAX_FWHM:.1f} Å⁻¹; check the scan range and background."
        )
    else:
        amorphous = True
        reason = f"Broad halo at {where} with FWHM {_fmt_q(fwhm)}{one_sided} and no sharp Bragg peaks."

    bg_orig = np.interp(q_all, q, bg)
    return XRDAnalysis(
        two_theta_deg=_readonly(tt),
        intensity=_readonly(inten),
        q_inv_a=_readonly(q_all),
        wavelength_a=float(wavelength_a),
        peak_q_inv_a=q_peak,
        peak_two_theta_deg=two_theta_peak,
        fwhm_inv_a=float(fwhm),
        is_amorphous=amorphous,
        reason=reason,
        sharp_peaks_q_inv_a=sharp_q,
        half_max_left_q=float(left_q),
        half_max_right_q=float(right_q),
        background=_readonly(bg_orig),
        peak_intensity=float(peak_level),
        half_max_intensity=float(half_level),
        noise_sigma=float(sigma_raw),
        main_peak_is_sharp=main_sharp is not None,
    )


def analyse_xrd_file(data: bytes, *, name: str = "", wavelength_a: float = CU_KALPHA_A) -> XRDAnalysis:
    """Read a two-column 2θ/intensity file and analyse it. PatternError on bad input."""
    two_theta, intensity = read_two_column(data, name=name)
    return analyse_xrd(two_theta, intensity, wavelength_a=wavelength_a)


# --------------------------------------------------------------------------- DSC


@dataclass(frozen=True, eq=False)
class DSCCurve:
    """A DSC curve with temperatures in K (sorted) and heat flow as in the file."""

    temperature_k: np.ndarray
    heat_flow: np.ndarray

    def as_dict(self) -> dict:
        return {
            "n_points": int(len(self.temperature_k)),
            "temperature_range_k": [_json_float(float(self.temperature_k[0]), 2), _json_float(float(self.temperature_k[-1]), 2)],
        }


def normalise_temperature_unit(unit: str) -> str:
    """"K" or "C" for a unit as written (ml.rules.temperature_unit); PatternError for any other."""
    which = temperature_unit(unit)
    if which is None:
        raise PatternError(f"Unknown temperature unit {unit!r}; use K or C.")
    return which


def read_dsc_file(data: bytes, *, name: str = "", temperature_unit: str = "K") -> DSCCurve:
    """Read a two-column DSC curve (temperature, heat flow); temperatures in K or °C ("K"/"C").

    Temperatures are converted to K and must lie within 100–2600 K; otherwise the
    message suggests the other unit when that would fit.
    """
    unit = normalise_temperature_unit(temperature_unit)
    t, heat = read_two_column(data, name=name)
    t_k = t + KELVIN_OFFSET if unit == "C" else t
    lo, hi = float(t_k[0]), float(t_k[-1])
    if lo < DSC_MIN_K or hi > DSC_MAX_K:
        shown = f"{t[0]:g} to {t[-1]:g} {'°C' if unit == 'C' else 'K'}"
        msg = f"Temperatures run from {shown}, outside the plausible {DSC_MIN_K:g}–{DSC_MAX_K:g} K for a DSC scan."
        other = t + KELVIN_OFFSET if unit == "K" else t  # the file's numbers read in the other unit, in K
        if DSC_MIN_K <= other[0] and other[-1] <= DSC_MAX_K:
            msg += " Is the file in °C? Choose °C as the temperature unit." if unit == "K" else " Is the file in K? Choose K as the temperature unit."
        else:
            msg += " Is the first column the temperature?"
        raise PatternError(msg)
    return DSCCurve(temperature_k=_readonly(t_k), heat_flow=_readonly(heat))


def fwhm_two_theta_deg(left_q, right_q, wavelength_a):
    """The FWHM in degrees 2θ: 2θ at the right half-maximum crossing minus 2θ at the left one
    (q = 4π sin θ / λ), at the pattern's wavelength. None when unknown or a crossing lies beyond
    2θ = 180°."""
    if left_q is None or right_q is None or not wavelength_a:
        return None
    lo, hi = (float(v) for v in q_to_two_theta(np.asarray([left_q, right_q], dtype=float), wavelength_a))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return hi - lo
