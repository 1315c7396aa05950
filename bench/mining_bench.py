"""Mining benchmark: import_extracted of the literature data set, its validation, then bulk
approval of the clean records, on a fresh test database. Prints JSON; exits non-zero if a
composition the parser refuses is not flagged 'unparseable' or a Tg >= Tx row is not
flagged 'order' (nothing may be silently accepted).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/glassloop_h7 .venv/bin/python bench/mining_bench.py [--data PATH]
"""

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.datasets import literature_dataset_path  # noqa: E402
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", "--dataset", dest="dataset", help="the literature CSV (default: $GLASSLOOP_DATASET, else ../shared/data/…)")
    args = parser.parse_args()
    args.dataset = str(literature_dataset_path(args.dataset))
    if not Path(args.dataset).exists():
        print(json.dumps({"error": f"data set not found: {args.dataset}"}))
        return 2

    from scratch_db import scratch_database

    with scratch_database() as connection:
        from django.contrib.auth import get_user_model

        from mining import services
        from ml.composition import CompositionError, parse_composition
        from mining.models import ExtractedRecord

        reviewer = get_user_model().objects.create_user("bench-reviewer")
        t0 = time.perf_counter()
        summary = services.import_extracted(args.dataset, batch_name="bench-import")
        import_s = time.perf_counter() - t0

        # Nothing silently accepted: check every row against the parser and the order rule.
        with open(args.dataset, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        records = {r.original_values.get("row"): r for r in ExtractedRecord.objects.filter(batch_id=summary["batch_id"])}
        violations = []
        refused = disordered = 0
        for n, row in enumerate(rows, start=2):
            rec = records.get(n)
            if rec is None:
                violations.append(f"row {n}: no record")
                continue
            try:
                parse_composition(row["composition"])
            except CompositionError:
                refused += 1
                if "unparseable" not in rec.flag_names:
                    violations.append(f"row {n} {row['composition']!r}: refused by the parser but not flagged unparseable")
            try:
                tg, tx = float(row["Tg_K"]), float(row["Tx_K"])
            except ValueError:
                continue
            if tg >= tx:
                disordered += 1
                if "order" not in rec.flag_names:
                    violations.append(f"row {n}: Tg {tg} >= Tx {tx} but not flagged order")

        t1 = time.perf_counter()
        approved = services.bulk_approve_clean(summary["batch_id"], reviewer)
        approve_s = time.perf_counter() - t1
        out = {
            "database": connection.vendor,
            "rows": summary["rows"],
            "clean": summary["clean"],
            "flags": summary["flags"],
            "status": summary["status"],
            "parser_refused": refused,
            "tg_ge_tx_rows": disordered,
            "import_and_validation_seconds": round(import_s, 3),
            "bulk_approval": approved,
            "bulk_approval_seconds": round(approve_s, 3),
            "violations": violations[:20],
            "goals_met": import_s < 15 and approve_s < 10,
        }
        print(json.dumps(out, indent=2))
        return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
