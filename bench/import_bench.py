"""Import the literature data set into a fresh database and print JSON timings.

    python bench/import_bench.py [--data PATH]

The database is a throw-away test database on the configured backend (DATABASE_URL:
SQLite by default, PostgreSQL in CI), created and destroyed here. Rows are never printed.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ml.datasets import literature_dataset_path  # noqa: E402
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the literature CSV (default: $GLASSLOOP_DATASET, else ../shared/data/…)")
    args = parser.parse_args(argv)
    args.data = str(literature_dataset_path(args.data))
    if not Path(args.data).is_file():
        print(json.dumps({"error": f"data set not found: {args.data}"}))
        return 2

    from scratch_db import scratch_database

    with scratch_database() as connection:
        from lab.importing import import_alloys

        start = time.perf_counter()
        report = import_alloys(args.data, source_label=Path(args.data).name)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        again = import_alloys(args.data, source_label=Path(args.data).name)
        second_seconds = time.perf_counter() - start
    result = dict(report.counts)
    result.update(
        seconds=round(seconds, 3),
        second_run_created=again.counts["created"],
        second_run_seconds=round(second_seconds, 3),
        database=connection.vendor,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
