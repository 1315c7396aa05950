"""Two overlapping imports on SQLite, the first-run default (make run): before, the second
failed with "database is locked" — a transaction that had read and then wrote while the other
held the write lock was refused at once. Now each import takes the write lock before it reads,
so the second waits for the first, then merges into its alloys.

The test suite's own database may be PostgreSQL (CI) or an in-memory SQLite that threads cannot
share as a file, so this runs a migrated SQLite file of its own in a subprocess.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TABLE = (
    "composition,Tg_K,Tx_K,Tl_K,doi\n"
    "Cu50Zr50,670,720,1200,10.1000/race\n"
    "Cu46Zr46Al8,701,780,1170,\n"
    "Pd40Ni40P20,575,670,990,10.1000/race\n"
)

SCRIPT = r"""
import json, sys, threading, time
import django
django.setup()
from django.db import connection
from lab import importing
from lab.models import Alloy, PropertyValue

# Widen the window as the PostgreSQL test does: each import pauses after reading what is on
# record, before its writes.
real = importing.bulk_create_with_history
def slow_bulk_create(*args, **kwargs):
    time.sleep(0.5)
    return real(*args, **kwargs)
importing.bulk_create_with_history = slow_bulk_create

barrier = threading.Barrier(2)
results, messages = [], []
def run(path):
    try:
        barrier.wait()
        report = importing.import_alloys(path, progress=lambda f, m: messages.append(m))
        results.append(report.counts)
    except Exception as exc:
        results.append({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        connection.close()

threads = [threading.Thread(target=run, args=(sys.argv[1],)) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"results": results, "waited": "waiting for another import to finish" in messages,
                  "alloys": Alloy.objects.count(), "values": PropertyValue.objects.count()}))
"""


def test_two_overlapping_imports_on_sqlite_serialise(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'glassloop.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "GLASSLOOP_VAR_DIR": str(tmp_path),
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0", "--noinput"], cwd=REPO, env=env, check=True, timeout=300)
    table = tmp_path / "table.csv"
    table.write_text(TABLE)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(table)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [r for r in answer["results"] if "error" in r], answer
    created = sorted(r["created"] for r in answer["results"])
    assert created == [0, 3]  # the second found the first's alloys and merged into them
    assert answer["waited"]
    assert answer["alloys"] == 3 and answer["values"] == 3
