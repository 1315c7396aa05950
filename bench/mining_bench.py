"""Mining benchmark: import_extracted of the literature data set, its validation, then bulk
approval of the clean records, on a fresh test database. Prints JSON; exits non-zero if a
composition the parser refuses is not flagged 'unparseable' or a Tg >= Tx row is not
flagged 'order' (nothing may be silently accepted).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/glassloop_h7 .venv/bin/python bench/mining_bench.py [--data PATH]

With ``--extraction dev|held_out`` it instead scores the rules extractor on the hand-written
corpus tests/mining/corpus/<split>.json (no database): precision, recall and F1 over records
(a record is right when its composition key matches a true record and it carries exactly that
record's temperatures, each within 0.6 K), the wrong records the validation would leave
unflagged, planted-instruction and no-data excerpts that yielded anything, and records whose
values do not occur in their snippet. Exits non-zero when a goal is missed (F1 >= 0.85, 0 wrong
and unflagged, no value from a planted instruction, no record from a paper without data).
The held-out split is for the final check only: do not tune the extractor on it.
"""

import argparse
import csv
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.datasets import literature_dataset_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


CORPUS = ROOT / "tests" / "mining" / "corpus"
MATCH_WITHIN_K = 0.6
PROPS = ("tg", "tx", "tl")


def _key(composition):
    from ml.composition import CompositionError, parse_composition

    try:
        return parse_composition(composition).key
    except CompositionError:
        return "raw:" + composition.strip()


def _grounded(raw):
    """Every stored value occurs in the snippet as written (a derived one: its parts)."""
    from mining.extractors import normalise_for_search

    snippet = normalise_for_search(raw.snippet)
    numbers = set(re.findall(r"\d+(?:\.\d+)?", snippet))
    for prop, (value, _unit) in raw.values.items():
        if prop in raw.derived:
            parts = re.findall(r"\d+(?:\.\d+)?", raw.derived[prop].split("=")[-1])
            if not parts or not all(p in numbers for p in parts):
                return False
        elif f"{value:g}" not in numbers and str(value) not in numbers:
            return False
    return True


def _flags(raws, text):
    """The validation flags each record would get (no database: no duplicates, no model)."""
    import django

    django.setup()
    from mining import services, validation

    records = [services._record_from_raw(None, None, raw, source_text=text) for raw in raws]
    validation.validate_records(records, others=(), predictor=None)
    return [r.flag_names for r in records]


class _FakeSchemaServer:
    """The tests' OpenAI-compatible fake (tests/mining/conftest.py) in its schema-following
    mode: it answers each excerpt's true records using exactly the property names of the
    request's JSON schema. The real ``openai`` client talks to it over HTTP on 127.0.0.1, so
    the LLM path's score measures the plumbing (schema, units, chunking, merging), not a model."""

    def __enter__(self):
        import threading
        from http.server import ThreadingHTTPServer

        from tests.mining.conftest import FakeLLM, _handler

        self.fake = FakeLLM()
        self.fake.default = {"follow_schema": True}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.fake))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def extractor(self, entry, text):
        from mining.llm import LLMConfig, LLMExtractor, Usage

        self.fake.truth = [
            {"composition": r["composition"], "snippet": text,
             **{p: {"value": float(r[p]), "unit": "K"} for p in PROPS if p in r}}
            for r in entry["records"]
        ]
        config = LLMConfig(model="fake-model", base_url=self.base_url, api_key="sk-bench", timeout_s=10,
                           max_attempts=2, backoff_base_s=0.01)
        return LLMExtractor(config, sleep=lambda s: None).extract(text, Usage())


def score_extraction(split, extractor="rules"):
    import contextlib

    from mining.extractors import extract_rules

    entries = json.loads((CORPUS / f"{split}.json").read_text(encoding="utf-8"))
    server = _FakeSchemaServer() if extractor == "llm" else contextlib.nullcontext()
    tp = fp = fn = 0
    wrong, wrong_unflagged, planted_values, nodata_records, ungrounded = [], [], [], [], []
    t0 = time.perf_counter()
    with server:
        extracted = []
        for entry in entries:
            text = "\n".join(entry["lines"])
            extracted.append(server.extractor(entry, text) if extractor == "llm" else extract_rules(text))
    for entry, raws in zip(entries, extracted):
        text = "\n".join(entry["lines"])
        truth = [(_key(r["composition"]), {p: float(r[p]) for p in PROPS if p in r}) for r in entry["records"]]
        flags = _flags(raws, text)
        unmatched = list(truth)
        for raw, names in zip(raws, flags):
            got = {p: raw.kelvin(p) for p in raw.values}
            hit = next((t for t in unmatched if t[0] == _key(raw.composition) and set(t[1]) == set(got)
                        and all(abs(t[1][p] - got[p]) <= MATCH_WITHIN_K for p in got)), None)
            if not _grounded(raw):
                ungrounded.append(f"{entry['id']}: {raw.composition} {raw.values}")
            if hit is not None:
                unmatched.remove(hit)
                tp += 1
                continue
            fp += 1
            desc = f"{entry['id']}: {raw.composition} {got} flags={names}"
            wrong.append(desc)
            if not names:
                wrong_unflagged.append(desc)
            if "planted" in entry["kind"] or "instruction" in entry["kind"]:
                planted_values.append(desc)
        fn += len(unmatched)
        if not entry["records"] and raws:
            nodata_records.append(entry["id"])
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out = {
        "split": split, "extractor": extractor if extractor == "rules" else "llm (schema-following fake server)",
        "excerpts": len(entries), "true_records": tp + fn, "extracted_records": tp + fp,
        "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
        "wrong": len(wrong), "wrong_unflagged": len(wrong_unflagged),
        "planted_instruction_values": len(planted_values), "no_data_papers_with_records": len(nodata_records),
        "ungrounded_records": len(ungrounded), "seconds": round(time.perf_counter() - t0, 3),
        "wrong_records": wrong[:20], "missed": fn, "ungrounded_examples": ungrounded[:10],
    }
    goal_f1 = 0.85 if extractor == "rules" else 0.98
    out["goals_met"] = f1 >= goal_f1 and not wrong_unflagged and not planted_values and not nodata_records
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", "--dataset", dest="dataset", help="the literature CSV (default: $GLASSLOOP_DATASET, else ../shared/data/…)")
    parser.add_argument("--extraction", choices=("dev", "held_out"), help="score an extractor on the corpus instead")
    parser.add_argument("--extractor", choices=("rules", "llm"), default="rules",
                        help="with --extraction: the rules extractor, or the LLM path against the schema-following fake")
    args = parser.parse_args()
    if args.extraction:
        out = score_extraction(args.extraction, args.extractor)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0 if out["goals_met"] else 1
    args.dataset = str(literature_dataset_path(args.dataset))
    if not Path(args.dataset).exists():
        print(json.dumps({"error": f"data set not found: {args.dataset}"}))
        return 2

    from scratch_db import scratch_database

    with scratch_database() as connection:
        from django.contrib.auth import get_user_model

        from mining import services
        from mining.models import ExtractedRecord
        from ml.composition import CompositionError, parse_composition

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
