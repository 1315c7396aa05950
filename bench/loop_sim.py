"""A simulated lab running the design loop; prints one JSON object.

    .venv/bin/python bench/loop_sim.py [--data CSV] [--rounds 5] [--batch 20] [--draws 10000]
                                       [--tg-min 700] [--trg-min 0.62] [--base Zr] [--epochs 600]

* Data: ``--data`` or env GLASSLOOP_DATASET, else ../shared/data/bmg_literature_dev.csv.
* Oracle ("the experiment"): a forward model (ml.forward.ForwardModel, default settings)
  fitted on ALL the cleaned data; a candidate's measured Tg/Tx/Tl are its predictions.
* The lab starts knowing part of the data: a seeded 60 % of the alloys, minus every alloy of
  the base element that already meets the target (the lab does not know an answer yet).
* Each round: train the bundle (ml.pipeline through training.services' adapter — the site's code),
  generate ``--batch`` candidates from ``--draws`` CGAN draws with design.generation.generate
  (the site's code: constraints, novelty, thresholds, UCB ranking), "cast" them (oracle),
  and add the results to the training data for the next round.
* hit_rate: share of the round's candidates whose oracle properties meet the target.
  mean_distance: mean L1 distance (atomic fractions) from each candidate to the nearest
  alloy of the FULL data set; novel_share: share with that distance > 0.05.
  generate_s: wall time of generation; retrain_s: wall time of the training before the round.
* baseline_hit_rate: the same budget (rounds × batch) sampled from the first round's CGAN
  with conditions in the target region, keeping only compositions that meet the element
  constraints and are not known — no scoring, no ranking, no loop.

Runs without a database: Django is configured only so that training.services can be imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ml.datasets import literature_dataset_path  # noqa: E402
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="the literature CSV (default: $GLASSLOOP_DATASET, else ../shared/data/…)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--draws", type=int, default=10_000)
    p.add_argument("--tg-min", type=float, default=700.0)
    p.add_argument("--trg-min", type=float, default=0.62)
    p.add_argument("--base", default="Zr")
    p.add_argument("--epochs", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--known-share", type=float, default=0.6)
    p.add_argument("--fill", action="store_true", help="fill short batches with near misses (campaign option)")
    args = p.parse_args(argv)
    args.data = str(literature_dataset_path(args.data))
    if not Path(args.data).exists():
        print(json.dumps({"error": f"data set not found: {args.data} (pass --data or set GLASSLOOP_DATASET)"}))
        return 2

    import django

    django.setup()
    from design import generation
    from training import bundles
    from ml.dataprep import prepare, read_csv
    from ml.forward import ForwardModel
    from ml.metrics import nearest_distances

    full = prepare(read_csv(args.data))
    oracle = ForwardModel(seed=args.seed).fit(full.compositions, full.y)
    vocab_all = sorted({e for c in full.compositions for e in c})
    X_full = generation.fractions_matrix(full.compositions, vocab_all)

    def measure(comps):
        pred = oracle.predict(comps)
        return np.column_stack([pred["tg_k"], pred["tx_k"], pred["tl_k"]])

    def hits(y):
        return (y[:, 0] >= args.tg_min) & (y[:, 0] / y[:, 2] >= args.trg_min)

    rng = np.random.default_rng(args.seed)
    known_hit = hits(full.y) & np.array([c.base_element == args.base for c in full.compositions])
    start = (rng.random(len(full)) < args.known_share) & ~known_hit
    rows = [
        {"composition": full.compositions[i].formula, "Tg_K": repr(float(full.y[i, 0])), "Tx_K": repr(float(full.y[i, 1])),
         "Tl_K": repr(float(full.y[i, 2])), "label": "", "weight": "", "origin": "literature"}
        for i in np.flatnonzero(start)
    ]
    spec = generation.DesignSpec(
        targets={"tg_k": {"min": args.tg_min}, "trg": {"min": args.trg_min}},
        base_element=args.base, max_elements=6, min_p_glass=0.5, min_novelty=0.05,
        batch_size=args.batch, n_draws=args.draws, kappa=1.0, novelty_weight=1.0, fill_with_near_misses=args.fill,
    )
    out = {"rounds": [], "settings": {**vars(args), "start_alloys": int(start.sum()), "full_alloys": len(full),
                                       "hidden_target_hits": int(known_hit.sum())}}
    proposed: set[str] = set()
    first_bundle = None
    work = Path(tempfile.mkdtemp(prefix="loop_sim_"))
    for r in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        bundle_dir = work / f"round{r}"
        bundles.fit_bundle(rows, bundle_dir, epochs=args.epochs, seed=args.seed)
        bundle = bundles.load_bundle(bundle_dir)
        retrain_s = time.perf_counter() - t0
        first_bundle = first_bundle or bundle
        train = prepare([{k: v for k, v in row.items() if k in ("composition", "Tg_K", "Tx_K", "Tl_K")} for row in rows])
        t1 = time.perf_counter()
        result = generation.generate(
            spec,
            sample=lambda cond, s: bundles.sample(bundle, cond, s),
            predict=lambda comps: bundles.predict(bundle, comps),
            train_y=train.y,
            train_compositions=train.compositions,
            known=[dict(c) for c in train.compositions],
            known_keys=set(train.keys),
            earlier_keys=proposed,
            seed=args.seed + r,
        )
        generate_s = time.perf_counter() - t1
        comps = [pick.composition for pick in result.picks]
        entry = {"round": r, "n_candidates": len(comps), "generate_s": round(generate_s, 2), "retrain_s": round(retrain_s, 1),
                 "training_alloys": len(train), "counts": result.counts}
        if comps:
            y = measure(comps)
            dist, _ = nearest_distances(generation.fractions_matrix(comps, vocab_all), X_full, metric="l1")
            entry.update(hit_rate=round(float(hits(y).mean()), 3), mean_distance=round(float(dist.mean()), 4),
                         novel_share=round(float((dist > 0.05).mean()), 3),
                         oracle_tg_mean=round(float(y[:, 0].mean()), 1),
                         oracle_trg_mean=round(float((y[:, 0] / y[:, 2]).mean()), 4))
            for c, yy in zip(comps, y):
                proposed.add(c.key)
                rows.append({"composition": c.formula, "Tg_K": repr(float(yy[0])), "Tx_K": repr(float(yy[1])),
                             "Tl_K": repr(float(yy[2])), "label": "", "weight": "", "origin": "experiment"})
        else:
            entry.update(hit_rate=0.0, mean_distance=None, novel_share=None)
        out["rounds"].append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)

    # Baseline: the same budget straight from the first CGAN, no scoring, ranking or loop.
    budget = args.rounds * args.batch
    first_train = prepare([{k: v for k, v in row.items() if k in ("composition", "Tg_K", "Tx_K", "Tl_K")}
                           for row in rows if row["origin"] == "literature"])
    cond, _ = generation.draw_conditions(generation.condition_rows(first_train.y, first_train.compositions, spec), spec.targets, 20 * budget, np.random.default_rng(args.seed + 99))
    pool = bundles.sample(first_bundle, cond, args.seed + 99)
    ok = generation.constraint_mask(pool, spec)
    known_keys = set(first_train.keys)
    pool = [c for c, k in zip(pool, ok) if k and c.key not in known_keys]
    pick = np.random.default_rng(args.seed).permutation(len(pool))[:budget]
    base = [pool[i] for i in pick]
    out["baseline_n"] = len(base)
    out["baseline_hit_rate"] = round(float(hits(measure(base)).mean()), 3) if base else 0.0
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
