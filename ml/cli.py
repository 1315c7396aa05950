"""``python -m ml fit | predict | generate`` (progress bars on stderr).

Errors a user can cause (missing columns, empty file, unknown model directory, bad
``--target``) print one line ``error: ...`` on stderr and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

ERROR_EXIT = 2


class CliError(Exception):
    pass


def _read_table(path: str, required: tuple[str, ...]):
    from ml.dataprep import DataError, read_csv

    try:
        df = read_csv(path)
    except DataError as exc:
        raise CliError(str(exc)) from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CliError(f"{path}: missing column(s): {', '.join(missing)}")
    if len(df) == 0:
        raise CliError(f"{path}: no data rows")
    return df


def _load(model_dir: str):
    from ml.artefacts import ArtefactError
    from ml.pipeline import load_bundle

    try:
        return load_bundle(model_dir)
    except ArtefactError as exc:
        raise CliError(str(exc)) from None


def cmd_fit(args) -> int:
    from tqdm import tqdm

    from ml.dataprep import DataError, summarize_report
    from ml.pipeline import fit_bundle

    df = _read_table(args.data, ("composition", "Tg_K", "Tx_K", "Tl_K"))
    gfa_df = _read_table(args.gfa_data, ("composition", "gfa_class")) if args.gfa_data else None
    bar = tqdm(total=args.epochs, desc="CGAN epochs", file=sys.stderr, disable=args.quiet)
    stages = tqdm(total=6, desc="fit", file=sys.stderr, disable=args.quiet, position=1)

    def progress(stage, info):
        if stage == "cgan-epoch":
            bar.update(1)
            if info.get("val_wasserstein") is not None:
                bar.set_postfix(W=f"{info['val_wasserstein']:.3f}")
        else:
            stages.set_postfix_str(stage)
            stages.update(1)

    try:
        bundle = fit_bundle(df, args.out, epochs=args.epochs, seed=args.seed, descriptors=args.descriptors,
                            progress=progress, gfa_df=gfa_df)
    except DataError as exc:
        raise CliError(str(exc)) from None
    finally:
        bar.close()
        stages.close()
    meta = bundle.metadata
    print(summarize_report(meta["cleaning_report"]))
    m = meta["metrics"]
    vs = m["validation_split"]
    print(f"validation (grouped split, {vs['n_train']} train / {vs['n_validation']} held-out alloys):")
    for name in ("Tg_K", "Tx_K", "Tl_K"):
        print(f"  {name}: MAE {m[name]['mae']:.1f} K, MAPE {m[name]['mape']:.2f} %, R² {m[name]['r2']:.3f}")
    print(f"  Trg R² {m['Trg']['r2']:.3f}, gamma R² {m['gamma']['r2']:.3f}")
    iv = {h: v for h, v in (m.get("interval") or {}).items() if isinstance(v, dict)}
    if iv:
        print("  80 % interval coverage (goal 0.75–0.85): " +
              ", ".join(f"{h} {v['coverage']:.2f}" for h, v in iv.items() if h in ("tg", "tx", "tl")))
    g = m.get("gfa") or {}
    if "skipped" in g:
        print(f"  GFA model: not fitted — {g['skipped']}")
    elif "validation_skipped" in g:
        print(f"  GFA model: fitted, not validated — {g['validation_skipped']}")
    else:
        split = g.get("validation_split") or {}
        print(f"  GFA model, {split.get('n_validation', '?')} rows of held-out chemical systems:")
        for part, label in (("glass", "glass vs crystal"), ("bmg", "BMG vs rest")):
            if g.get(part):
                print(f"    {label}: ROC-AUC {g[part]['roc_auc']:.3f}, F1 {g[part]['f1']:.3f}")
        if g.get("dmax"):
            print(f"    Dmax: MAE {g['dmax']['mae_log10_mm']:.3f} log10 mm, "
                  f"80 % interval coverage {g['dmax']['coverage_80']:.2f}")
    c = m["cgan"]
    print(f"  CGAN: validation Wasserstein {c['best_val_wasserstein']:.4f} at epoch {c['best_epoch']} "
          f"({c['epochs_run']} run{', stopped early' if c['stopped_early'] else ''})")
    print(f"model written to {args.out} in {meta['fit_seconds']:.1f} s")
    return 0


# the forward model's calibrated 80 % intervals in predict and generate: (column, prediction key)
INTERVAL_COLUMNS = (("Tg_low_K", "tg_low"), ("Tg_high_K", "tg_high"), ("Tx_low_K", "tx_low"),
                    ("Tx_high_K", "tx_high"), ("Tl_low_K", "tl_low"), ("Tl_high_K", "tl_high"))

# GFA output columns of predict and generate: (column, prediction key)
GFA_COLUMNS = (("p_glass", "p_glass"), ("p_bmg", "p_bmg"), ("dmax_pred_mm", "dmax_mm"),
               ("dmax_low_mm", "dmax_low_mm"), ("dmax_high_mm", "dmax_high_mm"))


def _fmt(x):
    return "" if x != x else f"{x:.4g}" if abs(x) < 10 else f"{x:.1f}"


def _round(x, digits=4):
    return "" if x is None or x != x else round(float(x), digits)


def cmd_predict(args) -> int:
    from tqdm import tqdm

    bundle = _load(args.model)
    df = _read_table(args.input, ("composition",))
    texts = df["composition"].tolist()
    chunk = 5000
    parts, errors = [], []
    for s in tqdm(range(0, len(texts), chunk), desc="predict", file=sys.stderr, disable=args.quiet):
        pred, err = bundle.predict_texts(texts[s:s + chunk])
        parts.append(pred)
        errors += err
    import numpy as np

    cols = {"Tg_pred_K": "tg_k", "Tg_pred_std_K": "tg_std", "Tx_pred_K": "tx_k", "Tx_pred_std_K": "tx_std",
            "Tl_pred_K": "tl_k", "Tl_pred_std_K": "tl_std", "Trg_pred": "trg", "gamma_pred": "gamma",
            **dict(GFA_COLUMNS), **dict(INTERVAL_COLUMNS)}
    out = df.copy()
    for col, key in cols.items():
        vals = np.concatenate([p[key] for p in parts])
        out[col] = [_fmt(v) for v in vals]
    out["error"] = [e or "" for e in errors]
    out.to_csv(args.output, index=False)
    n_err = sum(e is not None for e in errors)
    print(f"{len(out)} rows written to {args.output} ({n_err} with an error)", file=sys.stderr)
    return 0


def cmd_generate(args) -> int:
    from tqdm import tqdm

    from ml.inverse_design import TargetError, make_target, parse_target

    targets = []
    try:
        if args.target:
            targets.append(parse_target(args.target))
        else:
            df = _read_table(args.targets, ("Tg_K", "Tx_K", "Tl_K"))
            for i, row in df.iterrows():
                tid = str(row["id"]) if "id" in df.columns else ""
                try:
                    targets.append(make_target({"Tg": row["Tg_K"], "Tx": row["Tx_K"], "Tl": row["Tl_K"]}, tid))
                except TargetError as exc:
                    raise CliError(f"{args.targets} row {i + 1}: {exc}") from None
    except TargetError as exc:
        raise CliError(str(exc)) from None
    if args.n < 1:
        raise CliError("-n must be at least 1")
    bundle = _load(args.model)
    import numpy as np
    import pandas as pd

    rows = []
    for k, t in enumerate(tqdm(targets, desc="generate", file=sys.stderr, disable=args.quiet)):
        res = bundle.generate([t], args.n, seed=args.seed + k)[0]
        sh = res["shares"]
        print(f"target {t.id or k + 1} {json.dumps(t.as_dict())}: {res['selected']['n_returned']} returned; raw "
              f"samples {sh['n_raw']}: plausible {sh['raw_plausible']:.2f}, novel {sh['raw_novel']:.2f}, "
              f"unique {sh['raw_unique']:.2f} (network alone: plausible {sh['network_plausible']:.2f}, "
              f"{sh['guard_changed_share']:.0%} of draws changed by the chemistry guard)", file=sys.stderr)
        # the forward model's calibrated intervals from each row's prediction and spread
        iv = bundle.forward.intervals({
            **{h: np.array([r[f"{c}_pred_K"] for r in res["rows"]], dtype=float)
               for h, c in (("tg_k", "Tg"), ("tx_k", "Tx"), ("tl_k", "Tl"))},
            **{f"{c.lower()}_std": np.array([r[f"{c}_std_K"] for r in res["rows"]], dtype=float)
               for c in ("Tg", "Tx", "Tl")}})
        for i, r in enumerate(res["rows"]):
            row = {"target_Tg_K": t.values["Tg"], "target_Tx_K": t.values["Tx"], "target_Tl_K": t.values["Tl"]}
            if args.targets:
                row = {"id": t.id, **row}
            row.update({"composition": r["formula"], "Tg_pred_K": round(r["Tg_pred_K"], 1),
                        "Tg_pred_std_K": round(r["Tg_std_K"], 1), "Tx_pred_K": round(r["Tx_pred_K"], 1),
                        "Tx_pred_std_K": round(r["Tx_std_K"], 1), "Tl_pred_K": round(r["Tl_pred_K"], 1),
                        "Tl_pred_std_K": round(r["Tl_std_K"], 1), "Trg_pred": round(r["Trg_pred"], 4),
                        "gamma_pred": round(r["gamma_pred"], 4),
                        **{col: _round(r[col]) for col, _ in GFA_COLUMNS},
                        "rel_error": round(r["rel_error"], 4), "n_elements": r["n_elements"],
                        "nearest_training_alloy": r["nearest_training_alloy"],
                        "nearest_distance_l1": round(r["nearest_distance_l1"], 4),
                        **{col: _round(iv[key][i], 1) for col, key in INTERVAL_COLUMNS}})
            rows.append(row)
    pd.DataFrame(rows).to_csv(args.output, index=False)
    print(f"{len(rows)} compositions written to {args.output}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml", description="GlassLoop ML: fit, predict, generate.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="fit forward model, surrogate and CGAN into a model directory")
    f.add_argument("--data", required=True, help="CSV with composition,Tg_K,Tx_K,Tl_K")
    f.add_argument("--gfa-data", help="CSV with composition,gfa_class (Crystal/Ribbon/BMG) and optional dmax_mm: "
                                      "trains P(glass), P(BMG) and Dmax")
    f.add_argument("--out", required=True, help="model directory to write")
    f.add_argument("--epochs", type=int, default=600)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--descriptors", choices=("D1", "CD1", "CD2"), default="D1",
                   help="descriptor set seen by the CGAN discriminator")
    f.set_defaults(func=cmd_fit)
    pr = sub.add_parser("predict", help="predict properties for a CSV of compositions")
    pr.add_argument("--model", required=True)
    pr.add_argument("--input", required=True)
    pr.add_argument("--output", required=True)
    pr.set_defaults(func=cmd_predict)
    g = sub.add_parser("generate", help="generate compositions for target properties")
    g.add_argument("--model", required=True)
    tg = g.add_mutually_exclusive_group(required=True)
    tg.add_argument("--target", help='e.g. "Tg=680,Tx=760,Tl=1120"')
    tg.add_argument("--targets", help="CSV with Tg_K,Tx_K,Tl_K (and an optional id)")
    g.add_argument("-n", type=int, default=10)
    g.add_argument("--output", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_generate)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR_EXIT
    except (OSError, ValueError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return ERROR_EXIT
