"""Proposing Tg, Tx, melting onset and Tl from a DSC heating trace (pure numpy/scipy; no Django).

``analyse_dsc(curve)`` works on a ``lab.patterns.DSCCurve`` (temperatures in K):

* the trace is put on a uniform grid and smoothed with Savitzky–Golay filters whose
  windows are set in kelvin and converted to points from the sampling step;
* the sign convention is detected (or taken from ``exo_up``): crystallisation is the
  sharp exotherm, melting the broader endotherm(s) at higher temperature; the analysis
  then runs in the exo-up frame;
* each temperature is a tangent construction: the line fitted to the baseline just
  before (or, for Tl, just after) the event meets the line fitted to the steepest part
  of its edge (the inflection tangent):

  - Tg: onset of the endothermic heat-capacity step before crystallisation;
  - Tx: onset of the first crystallisation exotherm;
  - melting onset: onset of the first endotherm after crystallisation;
  - Tl (liquidus): end of the last endotherm, on the liquid baseline.

A feature that cannot be found is ``None`` with a reason (flat trace, scan ends before
it, no baseline), never a guess. The heating rate is read from a file's header when it
states one (``heating_rate_from_header``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import find_peaks, peak_widths, savgol_filter

TANGENT_ONSET = "tangent onset (pre-event baseline tangent ∩ inflection tangent)"
TANGENT_END = "tangent end (inflection tangent of the trailing edge ∩ post-event baseline tangent)"

SMOOTH_K = 4.0  # Savitzky–Golay window for the heat flow (K)
DERIV_K = 6.0  # window for the derivative (K)
BASELINE_K = 15.0  # length of a baseline fitting window (K)
MIN_BASELINE_K = 4.0  # a baseline needs at least this much clean trace
STEEP_FRACTION = 0.7  # the inflection tangent is fitted where |slope| ≥ this × the steepest
QUIET_FRACTION = 0.1  # an event starts/ends where |slope| falls below this × the steepest
PEAK_SNR = 12.0  # peaks must stand this many noise σ above their surroundings
SHARP_FRACTION = 0.05  # an event's prominence/FWHM must be ≥ this × the sharpest event's
STEP_SNR = 4.0  # the Tg step must be this many noise σ high


@dataclass(frozen=True)
class Proposal:
    """One proposed temperature: value in K or None with the reason it was not found."""

    name: str
    value_k: float | None
    method: str = ""
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.value_k is not None

    def as_dict(self) -> dict:
        value = None if self.value_k is None else round(float(self.value_k), 2)
        return {"value_k": value, "method": self.method, "reason": self.reason}


@dataclass(frozen=True)
class DSCAnalysis:
    tg_k: Proposal
    tx_k: Proposal
    melting_onset_k: Proposal
    tl_k: Proposal
    exo_up: bool | None  # None: no event to tell from
    sign_source: str  # "given", "detected" or "undetermined"
    heating_rate_k_min: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def proposals(self) -> tuple[Proposal, ...]:
        return (self.tg_k, self.tx_k, self.melting_onset_k, self.tl_k)

    def plot_proposals(self) -> dict:
        """{"Tg": (value, method), ...} for ``lab.plots.dsc_plot_svg(proposals=...)``."""
        labels = {"tg_k": "Tg", "tx_k": "Tx", "melting_onset_k": "Tm", "tl_k": "Tl"}
        return {labels[p.name]: (p.value_k, p.method) for p in self.proposals if p.found}

    def as_dict(self) -> dict:
        return {
            **{p.name: p.as_dict() for p in self.proposals},
            "exo_up": self.exo_up,
            "sign_source": self.sign_source,
            "heating_rate_k_min": self.heating_rate_k_min,
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- header

_RATE = re.compile(
    r"(?P<value>\d+(?:[.,]\d+)?)\s*(?P<unit>K|°\s*C|deg\s*C|C|℃)\s*/\s*(?P<per>min|s|sec|h)\b", re.IGNORECASE
)


def heating_rate_from_header(data: bytes | str) -> float | None:
    """The heating rate stated in a DSC file's header lines (K/min), or None.

    Looks at the text lines before the numeric data for e.g. "Heating rate: 20 K/min",
    "10 °C/min", "0.33 K/s". A °C/min rate equals the K/min rate.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
    for line in text.splitlines()[:200]:
        stripped = line.strip().lstrip("#;%!'/ ")
        if not stripped:
            continue
        if re.match(r"^[-+]?\d", stripped) and len(re.findall(r"[-+]?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?", stripped)) >= 2 and not _RATE.search(stripped):
            break  # the data have started
        m = _RATE.search(stripped)
        if m:
            value = float(m.group("value").replace(",", "."))
            per = m.group("per").lower()
            factor = {"min": 1.0, "s": 60.0, "sec": 60.0, "h": 1.0 / 60.0}[per]
            rate = value * factor
            if 0 < rate < 1e4:
                return rate
    return None


def analyse_dsc_file(data: bytes, *, name: str = "", temperature_unit: str = "K", exo_up: bool | None = None) -> DSCAnalysis:
    """Read a DSC file (``lab.patterns.read_dsc_file``) and analyse it, with the header's
    heating rate and, unless ``exo_up`` is given, its stated "exo up"/"endo up" convention."""
    from .patterns import read_dsc_file

    curve = read_dsc_file(data, name=name, temperature_unit=temperature_unit)
    if exo_up is None:
        exo_up = _stated_convention(data)
    return analyse_dsc(curve, exo_up=exo_up, heating_rate_k_min=heating_rate_from_header(data))


def _stated_convention(data: bytes) -> bool | None:
    head = data[:4000].decode("utf-8", "replace").lower()
    exo = re.search(r"exo\w*\s*(up|↑|down|↓)", head)
    endo = re.search(r"endo\w*\s*(up|↑|down|↓)", head)
    if exo and not endo:
        return exo.group(1) in ("up", "↑")
    if endo and not exo:
        return endo.group(1) in ("down", "↓")
    return None


# --------------------------------------------------------------------------- helpers


def _odd_points(width_k: float, h: float, n: int, *, minimum: int = 5) -> int:
    w = max(minimum, int(round(width_k / h)))
    if w % 2 == 0:
        w += 1
    limit = n if n % 2 == 1 else n - 1
    return max(3, min(w, limit))


def _noise_sigma(y: np.ndarray) -> float:
    """White-noise σ from second differences (robust to smooth features)."""
    d2 = np.diff(y, 2)
    if len(d2) < 3:
        return 0.0
    mad = float(np.median(np.abs(d2 - np.median(d2))))
    return mad / 0.6745 / math.sqrt(6.0)


def _line(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(t, y, 1)
    return float(slope), float(intercept)


@dataclass
class _Trace:
    t: np.ndarray
    y: np.ndarray  # raw, exo-up frame
    ys: np.ndarray  # smoothed
    d: np.ndarray  # smoothed derivative (per K)
    h: float
    sigma: float

    def index(self, temp: float) -> int:
        return int(np.clip(np.searchsorted(self.t, temp), 0, len(self.t) - 1))


def _steep_segment(tr: _Trace, i: int, lo: int, hi: int) -> tuple[int, int]:
    """The contiguous run around i (within lo..hi) where |d| ≥ STEEP_FRACTION·|d[i]|."""
    level = STEEP_FRACTION * abs(tr.d[i])
    sign = np.sign(tr.d[i])
    a = i
    while a - 1 >= lo and sign * tr.d[a - 1] >= level:
        a -= 1
    b = i
    while b + 1 <= hi and sign * tr.d[b + 1] >= level:
        b += 1
    if b - a < 4:
        a, b = max(lo, i - 2), min(hi, i + 2)
    return a, b


def _quiet_edge(tr: _Trace, i: int, step: int, limit: int) -> int | None:
    """Walk from the inflection i (direction ``step``) to where |d| < QUIET_FRACTION·|d[i]|;
    None when the trace ends (at ``limit``) first."""
    level = QUIET_FRACTION * abs(tr.d[i])
    sign = np.sign(tr.d[i])
    j = i
    while sign * tr.d[j] >= level:
        j += step
        if (step < 0 and j < limit) or (step > 0 and j > limit):
            return None
    return j


def _tangent_intersection(tr: _Trace, i: int, seg_lo: int, seg_hi: int, base_lo: int, base_hi: int) -> float | None:
    """Where the baseline line (fitted on points base_lo..base_hi) meets the inflection
    line (fitted on the steep run around i within seg_lo..seg_hi)."""
    a, b = _steep_segment(tr, i, seg_lo, seg_hi)
    s1, c1 = _line(tr.t[a : b + 1], tr.y[a : b + 1])
    s0, c0 = _line(tr.t[base_lo : base_hi + 1], tr.y[base_lo : base_hi + 1])
    if abs(s1 - s0) < 1e-12:
        return None
    return (c0 - c1) / (s1 - s0)


def _baseline_window(tr: _Trace, edge: int, *, before: bool, bound: int) -> tuple[int, int] | None:
    """Indices of a baseline window just before (or after) ``edge``, not crossing ``bound``."""
    n_base = max(5, int(round(BASELINE_K / tr.h)))
    gap = max(1, int(round(1.0 / tr.h)))
    if before:
        hi = edge - gap
        lo = max(bound, hi - n_base)
    else:
        lo = edge + gap
        hi = min(bound, lo + n_base)
    if hi - lo + 1 < max(5, int(round(MIN_BASELINE_K / tr.h))):
        return None
    return lo, hi


# --------------------------------------------------------------------------- analysis


def _prepare(curve) -> _Trace | None:
    t = np.asarray(curve.temperature_k, dtype=float)
    y = np.asarray(curve.heat_flow, dtype=float)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    t, idx = np.unique(t, return_index=True)
    y = y[idx]
    if len(t) < 20:
        return None
    h = float(np.median(np.diff(t)))
    if not h > 0:
        return None
    grid = np.arange(t[0], t[-1] + h / 2, h)
    yg = np.interp(grid, t, y)
    n = len(grid)
    ys = savgol_filter(yg, _odd_points(SMOOTH_K, h, n), 2)
    d = savgol_filter(yg, _odd_points(DERIV_K, h, n), 2, deriv=1, delta=h)
    return _Trace(t=grid, y=yg, ys=ys, d=d, h=h, sigma=_noise_sigma(yg))


def _peaks(tr: _Trace, ys: np.ndarray) -> list[dict]:
    """Significant upward peaks of ``ys`` with their prominence and FWHM (K)."""
    scale = float(np.ptp(tr.ys)) or 1.0
    floor = max(PEAK_SNR * tr.sigma, 0.02 * scale)
    idx, props = find_peaks(ys, prominence=floor, distance=max(1, int(round(5.0 / tr.h))))
    if not len(idx):
        return []
    widths = peak_widths(ys, idx, rel_height=0.5, prominence_data=(props["prominences"], props["left_bases"], props["right_bases"]))[0]
    out = []
    for i, p, w in zip(idx, props["prominences"], widths):
        out.append({"i": int(i), "t": float(tr.t[i]), "prom": float(p), "width_k": float(w * tr.h),
                    "sharp": float(p) / max(float(w * tr.h), tr.h)})
    return out


def _significant(up: list[dict], down: list[dict]) -> tuple[list[dict], list[dict]]:
    """Drop the broad humps a drifting baseline or the Tg step makes between events:
    real exo/endotherms are both prominent and sharp compared with the largest event."""
    both = up + down
    if not both:
        return up, down
    top = max(p["prom"] for p in both)
    sharpest = max(p["sharp"] for p in both)

    def keep(p):
        return p["prom"] >= 0.1 * top and p["sharp"] >= SHARP_FRACTION * sharpest

    return [p for p in up if keep(p)], [p for p in down if keep(p)]


def _detect_sign(up: list[dict], down: list[dict]) -> bool | None:
    """True when exotherms point up. Crystallisation is the sharp exotherm below the
    (broader) melting endotherms."""
    if not up and not down:
        return None
    if not down:
        return True
    if not up:
        return False
    top_up = max(up, key=lambda p: p["prom"])
    top_down = max(down, key=lambda p: p["prom"])
    sharp_up = top_up["prom"] / max(top_up["width_k"], 1e-9)
    sharp_down = top_down["prom"] / max(top_down["width_k"], 1e-9)
    lower_up = top_up["t"] < top_down["t"]
    if lower_up:
        return not sharp_down > 3.0 * sharp_up
    return sharp_up > 3.0 * sharp_down


def analyse_dsc(curve, *, exo_up: bool | None = None, heating_rate_k_min: float | None = None) -> DSCAnalysis:
    """Propose Tg, Tx, melting onset and Tl (K) for a DSC heating trace; see the module doc."""
    notes: list[str] = []
    tr = _prepare(curve)
    if tr is None:
        reason = "The trace has too few distinct points to analyse."
        return _nothing(reason, exo_up, "given" if exo_up is not None else "undetermined", heating_rate_k_min)

    up, down = _significant(_peaks(tr, tr.ys), _peaks(tr, -tr.ys))
    if exo_up is None:
        detected = _detect_sign(up, down)
        sign_source = "detected" if detected is not None else "undetermined"
    else:
        detected, sign_source = bool(exo_up), "given"
    if not up and not down:
        reason = "The trace is flat within its noise: no exotherm or endotherm stands out."
        tg = _find_tg(tr, len(tr.t) - 1, "")
        if tg.found:  # a glass-transition step alone (e.g. a scan stopped before crystallisation)
            return DSCAnalysis(tg, Proposal("tx_k", None, reason="No crystallisation exotherm found in the trace."),
                               Proposal("melting_onset_k", None, reason="No melting endotherm found in the trace."),
                               Proposal("tl_k", None, reason="No melting endotherm found in the trace."),
                               detected if exo_up is not None else None, sign_source, heating_rate_k_min, tuple(notes))
        return _nothing(reason, detected, sign_source, heating_rate_k_min)

    if not detected:  # work in the exo-up frame
        tr = _Trace(t=tr.t, y=-tr.y, ys=-tr.ys, d=-tr.d, h=tr.h, sigma=tr.sigma)
        up, down = down, up
    n = len(tr.t)

    # crystallisation: upward peaks; the first one that precedes any melting endotherm
    # crystallisation exotherms: the strong upward peaks below the main endotherm; melting:
    # the endotherms after the last of them (dips between exotherms, humps between
    # endotherms are neither)
    top_down = max(down, key=lambda p: p["prom"]) if down else None
    top_up = max((p["prom"] for p in up), default=0.0)
    exo = sorted((p for p in up if p["prom"] >= 0.3 * top_up and (top_down is None or p["t"] < top_down["t"])), key=lambda p: p["t"])
    first_x = exo[0] if exo else None
    melt = [p for p in sorted(down, key=lambda p: p["t"]) if not exo or p["t"] > exo[-1]["t"]]

    # --- Tx
    tg_limit = n - 1
    if first_x is not None:
        tx, x_start = _find_onset_up(tr, first_x["i"])
        if x_start is not None:
            tg_limit = x_start
    else:
        tx = Proposal("tx_k", None, reason="No crystallisation exotherm found in the trace.")
        if melt:
            tg_limit = max(0, melt[0]["i"] - int(round(melt[0]["width_k"] / tr.h)))

    # --- Tg
    tg = _find_tg(tr, tg_limit, "before the crystallisation exotherm" if first_x is not None else "")

    # --- melting onset and liquidus
    if first_x is not None:
        last_exo = exo[-1]
        lo_bound = _quiet_edge(tr, _trailing_inflection(tr, last_exo["i"]), +1, n - 1) or last_exo["i"]
    else:
        lo_bound = 0
    melting_onset, tl = _find_melting(tr, melt, lo_bound)
    return DSCAnalysis(tg, tx, melting_onset, tl, detected, sign_source, heating_rate_k_min, tuple(notes))


def _nothing(reason: str, exo_up, sign_source: str, rate) -> DSCAnalysis:
    return DSCAnalysis(
        Proposal("tg_k", None, reason=reason),
        Proposal("tx_k", None, reason=reason),
        Proposal("melting_onset_k", None, reason=reason),
        Proposal("tl_k", None, reason=reason),
        exo_up,
        sign_source,
        rate,
    )


def _walk(tr: _Trace, i: int, step: int, cond, stop: int | None = None) -> int:
    """Move from i in ``step`` direction while cond(d[next]) holds, within the trace."""
    n = len(tr.t)
    lo = 0 if stop is None or step > 0 else stop
    hi = n - 1 if stop is None or step < 0 else stop
    while lo <= i + step <= hi and cond(tr.d[i + step]):
        i += step
    return i


def _trailing_inflection(tr: _Trace, peak: int) -> int:
    """Steepest descent after an upward peak (exo-up frame), within its own fall."""
    peak = _walk(tr, peak, +1, lambda d: d > 0)
    j = _walk(tr, peak, +1, lambda d: d <= 0)
    return peak + int(np.argmin(tr.d[peak : j + 1]))


def _find_onset_up(tr: _Trace, peak: int) -> tuple[Proposal, int | None]:
    """Onset of the exotherm peaking at ``peak``; also the index where its rise starts."""
    peak = _walk(tr, peak, -1, lambda d: d < 0)
    j = _walk(tr, peak, -1, lambda d: d >= 0)
    infl = j + int(np.argmax(tr.d[j : peak + 1]))
    start = _quiet_edge(tr, infl, -1, 0)
    if start is None:
        return Proposal("tx_k", None, reason="The scan starts during the crystallisation exotherm: no baseline before it."), None
    # the supercooled-liquid baseline must not reach back into the Tg step
    bound = start
    level = QUIET_FRACTION * abs(tr.d[infl])
    while bound - 1 >= 0 and abs(tr.d[bound - 1]) < level and tr.t[start] - tr.t[bound - 1] <= BASELINE_K + 1.0:
        bound -= 1
    win = _baseline_window(tr, start, before=True, bound=bound)
    if win is None:
        return Proposal("tx_k", None, reason="Too little flat trace before the crystallisation exotherm for a baseline."), start
    value = _tangent_intersection(tr, infl, j, peak, *win)
    if value is None or not tr.t[win[0]] <= value <= tr.t[peak]:
        return Proposal("tx_k", None, reason="The tangents of the crystallisation onset do not meet sensibly."), start
    return Proposal("tx_k", float(value), TANGENT_ONSET), start


def _find_tg(tr: _Trace, limit: int, where: str) -> Proposal:
    """Tg: onset of the endothermic (downward, exo-up frame) step before ``limit``."""
    where = f" {where}" if where else ""
    margin = max(3, int(round(DERIV_K / tr.h)))
    lo, hi = margin, limit - margin
    if hi - lo < 10:
        return Proposal("tg_k", None, reason=f"Too little trace{where} to look for a glass transition.")
    infl = lo + int(np.argmin(tr.d[lo : hi + 1]))
    if tr.d[infl] >= 0:
        return Proposal("tg_k", None, reason=f"No endothermic glass-transition step{where}.")
    start = _quiet_edge(tr, infl, -1, 0)
    end = _quiet_edge(tr, infl, +1, limit)
    if start is None:
        return Proposal("tg_k", None, reason="The scan starts during the glass transition: no baseline before it.")
    if end is None:
        end = limit
    before = _baseline_window(tr, start, before=True, bound=0)
    after = _baseline_window(tr, end, before=False, bound=limit)
    if before is None:
        return Proposal("tg_k", None, reason="Too little flat trace before the glass transition for a baseline.")
    # significance: the step height between the baselines before and after, against noise
    s0, c0 = _line(tr.t[before[0] : before[1] + 1], tr.y[before[0] : before[1] + 1])
    if after is not None:
        s2, c2 = _line(tr.t[after[0] : after[1] + 1], tr.y[after[0] : after[1] + 1])
        t_mid = tr.t[infl]
        height = (s0 * t_mid + c0) - (s2 * t_mid + c2)
    else:
        height = float(tr.ys[start] - tr.ys[end])
    steep = abs(tr.d[infl]) * (tr.t[end] - tr.t[start])
    if height < STEP_SNR * tr.sigma or height < 0.3 * steep:
        return Proposal("tg_k", None, reason=f"No glass-transition step{where} stands out of the noise.")
    value = _tangent_intersection(tr, infl, start, end, *before)
    if value is None or not tr.t[before[0]] <= value <= tr.t[infl]:
        return Proposal("tg_k", None, reason="The tangents of the glass-transition step do not meet sensibly.")
    return Proposal("tg_k", float(value), TANGENT_ONSET)


def _find_melting(tr: _Trace, melt: list[dict], lo_bound: int) -> tuple[Proposal, Proposal]:
    n = len(tr.t)
    end_t = f"{tr.t[-1]:.0f} K"
    if not melt:
        # an endotherm cut off by the end of the scan has no peak; look for its edge
        tail = tr.ys[lo_bound:]
        if len(tail) > 20:
            drop = float(np.max(tail[: max(5, len(tail) // 3)]) - tail[-1])
            if drop > PEAK_SNR * tr.sigma and tr.d[-3] < 0:
                infl = lo_bound + int(np.argmin(tr.d[lo_bound:]))
                onset = _onset_down(tr, infl, lo_bound, n - 1)
                return onset, Proposal("tl_k", None, reason=f"Liquidus not reached: the scan ends at {end_t} during melting.")
        reason = f"No melting endotherm: the scan ends at {end_t} before melting (liquidus not reached)."
        return Proposal("melting_onset_k", None, reason=reason), Proposal("tl_k", None, reason=reason)
    first, last = melt[0], melt[-1]
    p1 = _walk(tr, first["i"], -1, lambda d: d > 0, stop=lo_bound)
    j = _walk(tr, p1, -1, lambda d: d <= 0, stop=lo_bound)
    infl = j + int(np.argmin(tr.d[j : p1 + 1]))
    onset = _onset_down(tr, infl, lo_bound, p1)
    # liquidus: the trailing (rising) edge after the last endotherm
    p2 = _walk(tr, last["i"], +1, lambda d: d < 0)
    k = _walk(tr, p2, +1, lambda d: d >= 0)
    infl2 = p2 + int(np.argmax(tr.d[p2 : k + 1]))
    if tr.d[infl2] <= 0:
        return onset, Proposal("tl_k", None, reason=f"Liquidus not reached: the scan ends at {end_t} during melting.")
    end = _quiet_edge(tr, infl2, +1, n - 1)
    if end is None:
        return onset, Proposal("tl_k", None, reason=f"Liquidus not reached: the scan ends at {end_t} before the trace returns to the liquid baseline.")
    win = _baseline_window(tr, end, before=False, bound=n - 1)
    if win is None:
        return onset, Proposal("tl_k", None, reason=f"Liquidus not reached: too little liquid baseline before the scan ends at {end_t}.")
    value = _tangent_intersection(tr, infl2, p2, end, *win)
    if value is None or not tr.t[p2] <= value <= tr.t[win[1]]:
        return onset, Proposal("tl_k", None, reason="The tangents at the end of melting do not meet sensibly.")
    return onset, Proposal("tl_k", float(value), TANGENT_END)


def _onset_down(tr: _Trace, infl: int, lo_bound: int, hi: int) -> Proposal:
    start = _quiet_edge(tr, infl, -1, lo_bound)
    if start is None:
        return Proposal("melting_onset_k", None, reason="Melting follows crystallisation too closely: no baseline between them.")
    win = _baseline_window(tr, start, before=True, bound=lo_bound)
    if win is None:
        return Proposal("melting_onset_k", None, reason="Too little flat trace before melting for a baseline.")
    value = _tangent_intersection(tr, infl, lo_bound, hi, *win)
    if value is None or not tr.t[win[0]] <= value <= tr.t[infl]:
        return Proposal("melting_onset_k", None, reason="The tangents of the melting onset do not meet sensibly.")
    return Proposal("melting_onset_k", float(value), TANGENT_ONSET)


TRACE_ANALYSIS_VERSION = 1
HEADER_RATE_METHOD = "stated in the file's header"


def stored_proposals(curve, data: bytes | None = None) -> dict:
    """The analysis of a trace as stored on its DSC measurement (JSON-safe): each proposal
    (value, method, or None with the reason), the sign convention, and the heating rate the
    file's header states (``heating_rate_method``), with the analysis version. The header's
    "exo up"/"endo up" is used when it states one."""
    exo_up = _stated_convention(data) if data else None
    rate = heating_rate_from_header(data) if data else None
    try:
        analysis = analyse_dsc(curve, exo_up=exo_up, heating_rate_k_min=rate)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:  # say so rather than fail the upload
        reason = f"The trace could not be analysed: {exc}"
        analysis = _nothing(reason, exo_up, "given" if exo_up is not None else "undetermined", rate)
    out = analysis.as_dict()
    out["version"] = TRACE_ANALYSIS_VERSION
    out["heating_rate_method"] = HEADER_RATE_METHOD
    return out


def plot_proposals_of(stored: dict) -> dict:
    """{"Tg": (value, method), ...} of a stored analysis, for ``lab.plots.dsc_plot_svg``."""
    labels = {"tg_k": "Tg", "tx_k": "Tx", "melting_onset_k": "Tm", "tl_k": "Tl"}
    out = {}
    for key, label in labels.items():
        item = (stored or {}).get(key) or {}
        if item.get("value_k") is not None:
            out[label] = (item["value_k"], item.get("method") or "")
    return out
