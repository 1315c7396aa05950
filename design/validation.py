"""What the lab's results say about a candidate, in two parts, and the status they lead to.

* **Glass formation** — an amorphous XRD (the latest, a person's override included) of a rod of
  stated diameter; when the campaign asks Dmax ≥ d, the rod must be at least d thick. A
  crystalline XRD fails it whatever the diameter.
* **Thermal targets** — a DSC (the latest): its Tg, Tx, Tl and what derives from them (Trg, γ,
  ΔTx) meet every thermal target of the campaign (a value the DSC did not give — e.g. Tl — leaves
  its targets open).

The candidate's status follows (``status_for``): crystalline → failed; glass ✓ and thermal ✓ →
validated; glass ✓ and a thermal target missed → "glass, misses thermal targets"; anything still
open → in synthesis (the two parts say what is missing).
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.rules import display_k

from .generation import PROPERTIES, derived

PENDING, OK, INCOMPLETE, MISSED, FAILED = "pending", "ok", "incomplete", "missed", "failed"
_SYMBOL = {PENDING: "…", OK: "✓", INCOMPLETE: "?", MISSED: "✗", FAILED: "✗"}
_BADGE = {PENDING: "", OK: "ok", INCOMPLETE: "warn", MISSED: "bad", FAILED: "bad"}
_LABELS = {"tg_k": "Tg", "tx_k": "Tx", "tl_k": "Tl", "trg": "Trg", "gamma": "γ", "delta_tx_k": "ΔTx"}


@dataclass(frozen=True)
class Part:
    name: str  # "glass" | "thermal"
    state: str
    detail: str

    @property
    def text(self):
        """"glass ✓ (amorphous 3 mm rod)", "thermal … (awaiting DSC)"."""
        return f"{self.name} {_SYMBOL[self.state]} ({self.detail})"

    @property
    def badge(self):
        return _BADGE[self.state]

    def as_dict(self):
        return {"state": self.state, "text": self.text}


def _mm(d):
    return f"{d:g} mm"


def glass_part(xrd_verdict, diameter_mm, targets) -> Part:
    rod = f"{_mm(diameter_mm)} rod" if diameter_mm is not None else "rod diameter not stated"
    if not xrd_verdict:
        return Part("glass", PENDING, "awaiting XRD")
    if xrd_verdict != "amorphous":
        return Part("glass", FAILED, f"{xrd_verdict} XRD, {rod}")
    if diameter_mm is None:
        return Part("glass", INCOMPLETE, "amorphous XRD, rod diameter not stated: state it on the sample")
    dmax_min = ((targets or {}).get("dmax_mm") or {}).get("min")
    if dmax_min is not None and diameter_mm < dmax_min:
        return Part("glass", INCOMPLETE, f"amorphous {rod}, thinner than the Dmax target ≥ {_mm(dmax_min)}")
    return Part("glass", OK, f"amorphous {rod}")


def _fmt(name, value):
    return f"{value:.3f}" if name in ("trg", "gamma") else f"{display_k(value, 0)} K"


def thermal_part(tg, tx, tl, targets) -> Part:
    if tg is None and tx is None and tl is None:
        return Part("thermal", PENDING, "awaiting DSC")
    nan = float("nan")
    trg, gamma, dtx = (float(v) for v in derived(*(nan if v is None else v for v in (tg, tx, tl))))
    measured = {"tg_k": tg, "tx_k": tx, "tl_k": tl, "trg": trg, "gamma": gamma, "delta_tx_k": dtx}
    measured = {k: (None if v is None or v != v else float(v)) for k, v in measured.items()}
    stored = targets or {}
    thermal = {k: stored[k] for k in PROPERTIES if k in stored}  # PROPERTIES' order (jsonb reorders keys)
    misses, open_, met = [], [], []
    for name, b in thermal.items():
        v, label = measured[name], _LABELS[name]
        if v is None:
            open_.append(label)
        elif b.get("min") is not None and v < b["min"]:
            misses.append(f"{label} {_fmt(name, v)} < {b['min']:g}")
        elif b.get("max") is not None and v > b["max"]:
            misses.append(f"{label} {_fmt(name, v)} > {b['max']:g}")
        else:
            met.append(f"{label} {_fmt(name, v)}")
    if misses:
        return Part("thermal", MISSED, "DSC: " + ", ".join(misses))
    if open_:
        return Part("thermal", INCOMPLETE, f"DSC without the values for {', '.join(open_)}")
    shown = met or ([f"Tg {_fmt('tg_k', tg)}"] if tg is not None else [])
    return Part("thermal", OK, "DSC: " + ", ".join(shown) + ("" if thermal else "; no thermal target"))


def status_for(glass: Part, thermal: Part, statuses):
    """The status the two parts lead to (``statuses``: Candidate.Status), or None: nothing measured."""
    if glass.state == FAILED:
        return statuses.FAILED
    if glass.state == OK and thermal.state == OK:
        return statuses.VALIDATED
    if glass.state == OK and thermal.state == MISSED:
        return statuses.MISSED_TARGETS
    if glass.state == PENDING and thermal.state == PENDING:
        return None
    return statuses.IN_SYNTHESIS
