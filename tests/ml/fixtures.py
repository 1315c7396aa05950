"""Small synthetic fixtures for the ML tests (NOT rows of the shared literature data).

Zr–Cu–Al–Ni ternaries/quaternaries (and a few Cu–Zr–Ti) with smooth, made-up Tg/Tx/Tl
so models have something learnable; ~60 alloys.
"""

from __future__ import annotations

import numpy as np


def synthetic_rows(n: int = 60, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    seen = set()
    while len(rows) < n:
        zr = rng.uniform(40, 65)
        al = rng.uniform(5, 15)
        ni = rng.choice([0.0, rng.uniform(2, 10)])
        ti = rng.choice([0.0, 0.0, 0.0, rng.uniform(3, 8)])
        cu = 100 - zr - al - ni - ti
        parts = {"Zr": zr, "Cu": cu, "Al": al, "Ni": ni, "Ti": ti}
        parts = {k: round(v, 1) for k, v in parts.items() if v > 0}
        parts["Cu"] = round(100 - sum(v for k, v in parts.items() if k != "Cu"), 1)
        text = "".join(f"{k}{v:g}" for k, v in parts.items())
        if text in seen:
            continue
        seen.add(text)
        x = {k: v / 100 for k, v in parts.items()}
        tg = 650 + 120 * x.get("Al", 0) + 80 * x.get("Ni", 0) - 60 * (x["Zr"] - 0.5) + 30 * x.get("Ti", 0)
        tx = tg + 50 + 200 * x.get("Al", 0) - 100 * x.get("Ni", 0)
        tl = 1100 + 150 * (x["Zr"] - 0.5) + 300 * x.get("Ni", 0) - 100 * x.get("Al", 0)
        rows.append({"composition": text, "Tg_K": round(tg, 1), "Tx_K": round(tx, 1), "Tl_K": round(tl, 1)})
    return rows


def write_csv(path, rows, columns=None) -> None:
    import csv

    columns = columns or list(rows[0].keys())
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def synthetic_gfa_rows(n: int = 160, seed: int = 0) -> list[dict]:
    """A made-up GFA table (composition, gfa_class, dmax_mm) over several chemical systems:
    Zr–Cu–X alloys (X = Al, Ni, Ti, Ag) near Zr50 are BMGs whose Dmax grows with X, further
    out ribbons; Fe/Ag/Co–Cu(–X) alloys are crystals. The source codes 0 (crystal) and 0.15
    (ribbon) appear as in the real table."""
    rng = np.random.default_rng(seed)
    rows, seen = [], set()
    while len(rows) < n:
        kind = rng.choice(["bmg", "ribbon", "crystal"])
        if kind == "crystal":
            a = rng.uniform(40, 80)
            third = rng.choice(["", "Al", "Ni"])
            b = rng.uniform(2, 10) if third else 0.0
            parts = {rng.choice(["Fe", "Ag", "Co"]): a, "Cu": 100 - a - b}
            if third:
                parts[third] = b
        else:
            zr = rng.uniform(45, 58) if kind == "bmg" else rng.uniform(25, 40)
            x = rng.uniform(5, 15)
            parts = {"Zr": zr, rng.choice(["Al", "Ni", "Ti", "Ag"]): x}
            parts["Cu"] = 100 - sum(parts.values())
        parts = {k: round(float(v), 1) for k, v in parts.items()}
        first = next(iter(parts))
        parts[first] = round(100 - sum(v for k, v in parts.items() if k != first), 1)
        text = "".join(f"{k}{v:g}" for k, v in parts.items())
        if text in seen:
            continue
        seen.add(text)
        if kind == "bmg":
            x = sum(v for k, v in parts.items() if k not in ("Zr", "Cu"))
            dmax = round(1.0 + 0.8 * (x - 5), 2)
        else:
            dmax = 0.15 if kind == "ribbon" else 0
        rows.append({"composition": text, "gfa_class": {"bmg": "BMG", "ribbon": "Ribbon", "crystal": "Crystal"}[kind],
                     "dmax_mm": dmax})
    return rows
