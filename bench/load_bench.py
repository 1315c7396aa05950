#!/usr/bin/env python
"""Load benchmark: 20 concurrent clients against gunicorn (2 workers) on PostgreSQL.

What it does, in order:
1. creates (or reuses) a dedicated PostgreSQL database, ``glassloop_load`` by default, and
   migrates it;
2. seeds it, if it does not already hold them, with 10,000 alloys and 30,000 literature
   property values (bulk inserts, with their history rows) plus, when mining exists, a
   review batch of 1,000 extracted records. Compositions come from this script's own
   generator (random alloys of ten BMG families, each checked by the composition parser),
   never from the shared literature data set;
3. starts ``gunicorn config.wsgi:application -w 2`` on 127.0.0.1 and a free port with
   DEBUG=0, logs in a viewer+reviewer (session cookie; an API token when the API has
   token authentication);
4. drives the alloy list with filters (elements, Tg range), alloy pages, the review queue
   (if mining exists) and /api/alloys/ (if the API exists) with 20 client threads for
   30 s; each client cycles through the endpoints;
5. stops gunicorn and prints ONE JSON object: per endpoint requests, rps, p50/p95/p99 ms,
   errors; the total error count; whether the goals (p95 <= 300 ms, no errors) are met;
   and a profile of each endpoint measured in-process on the same database (queries per
   request, SQL time, wall time, the slowest query), to say where the time goes.

Only 127.0.0.1 is ever contacted. Usage:

    .venv/bin/python bench/load_bench.py [--seconds 30] [--clients 20] [--reseed]
        [--pg postgres://postgres@127.0.0.1:5432] [--db glassloop_load]
"""

import argparse
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "load-bench-pw-1"
USERNAME = "load-reader"
GOAL_P95_MS = 300.0

# Families of glass formers: base element, its at.% range, and the elements that join it.
FAMILIES = [
    ("Zr", (40, 70), ["Cu", "Al", "Ni", "Ti", "Be", "Nb", "Ag", "Fe"]),
    ("Cu", (40, 65), ["Zr", "Hf", "Ti", "Al", "Ag", "Y", "Be"]),
    ("Fe", (45, 80), ["B", "Si", "C", "P", "Nb", "Cr", "Mo", "Co", "Y"]),
    ("Pd", (40, 80), ["Ni", "Cu", "P", "Si"]),
    ("Mg", (55, 75), ["Cu", "Y", "Zn", "Gd", "Ag", "Ni"]),
    ("Ti", (35, 55), ["Zr", "Cu", "Ni", "Be", "Pd", "Sn"]),
    ("La", (50, 70), ["Al", "Ni", "Cu", "Co"]),
    ("Ca", (50, 70), ["Mg", "Zn", "Cu", "Li"]),
    ("Co", (40, 70), ["Fe", "B", "Si", "Nb", "Ta"]),
    ("Ni", (40, 65), ["Nb", "Ti", "Zr", "P", "Pd"]),
]
# Rough Tg (K) of each family, so that range filters select realistic subsets.
FAMILY_TG_K = {"Zr": 650, "Cu": 710, "Fe": 820, "Pd": 580, "Mg": 420, "Ti": 680, "La": 440, "Ca": 400, "Co": 800, "Ni": 750}


# ---------------------------------------------------------------- synthetic compositions


def synthetic_compositions(n, seed=2026):
    """``n`` distinct parser-valid compositions as (Composition, family base) pairs."""
    from ml.composition import parse_composition

    rng = random.Random(seed)
    seen, out = set(), []
    while len(out) < n:
        base, (lo, hi), partners = rng.choice(FAMILIES)
        others = rng.sample(partners, rng.randint(2, min(4, len(partners))))
        base_pct = rng.randint(lo * 2, hi * 2) / 2  # 0.5 at.% steps
        cuts = sorted(rng.uniform(0, 100 - base_pct) for _ in range(len(others) - 1))
        shares = [b - a for a, b in zip([0.0] + cuts, cuts + [100 - base_pct])]
        shares = [max(0.5, round(s * 2) / 2) for s in shares]
        shares[-1] = round((100 - base_pct - sum(shares[:-1])) * 2) / 2
        if shares[-1] <= 0 or max(shares) >= base_pct:
            continue
        text = f"{base}{base_pct:g}" + "".join(f"{el}{pct:g}" for el, pct in zip(others, shares))
        comp = parse_composition(text)
        if comp.key in seen:
            continue
        seen.add(comp.key)
        out.append((comp, base))
    return out


# ---------------------------------------------------------------- database


def ensure_database(pg_base, name, fresh):
    import psycopg

    with psycopg.connect(f"{pg_base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(db_url):
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def seed(n_alloys, values_per_alloy, n_records, log):
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from simple_history.utils import bulk_create_with_history

    from lab.models import Alloy, PropertyValue, Reference, Sample
    from core.roles import assign_role
    from lab.services import refresh_alloy_summaries

    User = get_user_model()
    user, _ = User.objects.get_or_create(username=USERNAME)
    user.set_password(PASSWORD)
    user.save()
    for role in ("viewer", "reviewer"):
        assign_role(user, role)

    n_values = n_alloys * values_per_alloy
    if Alloy.objects.count() == n_alloys and PropertyValue.objects.count() == n_values:
        log(f"reusing {n_alloys} alloys and {n_values} property values")
    else:
        if Alloy.objects.exists():
            raise SystemExit("The load database holds other data; run with --reseed.")
        t0 = time.monotonic()
        rng = random.Random(7)
        comps = synthetic_compositions(n_alloys)
        with transaction.atomic():
            refs = Reference.objects.bulk_create(
                [Reference(authors=f"Author {i}", year=1990 + i % 35, journal="J. Synthetic Glass", title=f"Paper {i}")
                 for i in range(300)]
            )
            alloys = bulk_create_with_history(
                [Alloy(composition_key=c.key, formula=c.formula, fractions=dict(c), base_element=c.base_element,
                       n_elements=len(c)) for c, _ in comps],
                Alloy, batch_size=2000, default_user=user,
            )
            # bulk_create_with_history returns the objects; PostgreSQL sets their ids.
            values = []
            for alloy, (_, family) in zip(alloys, comps):
                tg = FAMILY_TG_K[family] + rng.gauss(0, 45)
                tx = tg + rng.uniform(20, 110)
                tl = tx + rng.uniform(200, 500)
                for k in range(values_per_alloy):
                    spread = 25 if rng.random() < 0.05 else 3
                    values.append(PropertyValue(
                        alloy=alloy, origin=PropertyValue.Origin.LITERATURE, reference=rng.choice(refs),
                        tg_k=round(tg + rng.uniform(-spread, spread), 1), tx_k=round(tx + rng.uniform(-3, 3), 1),
                        tl_k=round(tl + rng.uniform(-3, 3), 1) if rng.random() < 0.8 else None,
                        heating_rate_k_min=20.0, conflict=spread > 10, created_by=user,
                    ))
            bulk_create_with_history(values, PropertyValue, batch_size=5000, default_user=user)
            Sample.objects.bulk_create(
                [Sample(alloy=alloy, label=f"LOAD-{i:05d}", operator=user) for i, alloy in enumerate(alloys[:1500])]
            )
            refresh_alloy_summaries([a.pk for a in alloys])  # bulk inserts send no signals
        log(f"seeded {len(alloys)} alloys, {len(values)} property values in {time.monotonic() - t0:.1f} s")

    batch_id = None
    if apps.is_installed("mining"):
        try:
            from mining import services as mining_services
            from mining.models import ExtractionBatch
        except ImportError:
            mining_services = None
        if mining_services is not None and hasattr(mining_services, "import_extracted"):
            batch = ExtractionBatch.objects.filter(name="load bench batch").first()
            if batch is None:
                t0 = time.monotonic()
                lines = ["composition,Tg_K,Tx_K,Tl_K,source,snippet"]
                for i, (comp, family) in enumerate(synthetic_compositions(n_records, seed=99)):
                    tg = FAMILY_TG_K[family] + (i % 50)
                    tg, tx = (tg + 90, tg) if i % 7 == 0 else (tg, tg + 70)  # every 7th has Tg > Tx: flagged
                    lines.append(f'{comp.formula},{tg},{tx},{tg + 400},Load paper {i % 40},"{comp.formula}: Tg = {tg} K"')
                summary = mining_services.import_extracted(
                    io.StringIO("\n".join(lines) + "\n"), batch_name="load bench batch", user=user
                )
                batch_id = summary["batch_id"]
                log(f"seeded review batch of {summary['rows']} records in {time.monotonic() - t0:.1f} s")
            else:
                batch_id = batch.pk

    # Fresh bulk inserts have no planner statistics yet; autovacuum would gather them soon after.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    token = None
    if apps.is_installed("rest_framework.authtoken"):
        from rest_framework.authtoken.models import Token

        token = Token.objects.get_or_create(user=user)[0].key
    ids = list(Alloy.objects.order_by("pk").values_list("pk", flat=True))
    return {"alloy_ids": ids, "batch_id": batch_id, "token": token,
            "alloys": Alloy.objects.count(), "property_values": PropertyValue.objects.count()}


# ---------------------------------------------------------------- endpoints


def url_exists(path):
    from django.urls import Resolver404, resolve

    try:
        resolve(path.split("?")[0])
        return True
    except Resolver404:
        return False


ELEMENT_FILTERS = ["Zr Cu", "Cu Zr Al", "Fe B", "Pd Ni P", "Mg Cu", "Ti Zr", "La Al", "Co Fe B", "Ni Nb", "Zr Al Ni"]
TG_RANGES = [(600, 700), (650, 750), (400, 500), (700, 900), (550, 650), (None, 620), (750, None)]


def endpoint_makers(state):
    """name -> function(rng) -> (path, uses_token)."""

    def alloy_list(rng):
        elements = rng.choice(ELEMENT_FILTERS)
        lo, hi = rng.choice(TG_RANGES)
        query = {"elements": elements}
        if lo is not None:
            query["tg_min"] = lo
        if hi is not None:
            query["tg_max"] = hi
        if rng.random() < 0.2:
            query["order"] = rng.choice(["tg", "gamma", "trg", "formula"])
        if rng.random() < 0.2:
            query["page"] = 2
        return "/lab/alloys/?" + urlencode(query), False

    def alloy_detail(rng):
        return f"/lab/alloys/{rng.choice(state['alloy_ids'])}/", False

    makers = {"alloy_list": alloy_list, "alloy_detail": alloy_detail}
    if state["batch_id"] and url_exists("/mining/review/"):
        def review_queue(rng):
            page = rng.choice([1, 1, 1, 2, 3])
            return f"/mining/review/?batch={state['batch_id']}&page={page}", False

        makers["review_queue"] = review_queue
    if url_exists("/api/alloys/"):
        def api_alloys(rng):
            query = {}
            if rng.random() < 0.7:
                query["elements"] = rng.choice(ELEMENT_FILTERS).replace(" ", ",")
            lo, hi = rng.choice(TG_RANGES)
            if lo is not None:
                query["tg_min"] = lo
            if hi is not None:
                query["tg_max"] = hi
            return "/api/alloys/" + (f"?{urlencode(query)}" if query else ""), bool(state["token"])

        makers["api_alloys"] = api_alloys
    return makers


# ---------------------------------------------------------------- server and clients


def process_tree_cpu_s(root_pid):
    """CPU seconds (user + system) used so far by ``root_pid`` and its children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root_pid or ppid == root_pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(db_url, port, workers, log_path, conn_max_age=None, threads=1):
    env = dict(os.environ, DATABASE_URL=db_url, DEBUG="0", ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING")
    if conn_max_age is not None:
        env["DB_CONN_MAX_AGE"] = str(conn_max_age)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    cmd = [str(gunicorn) if gunicorn.exists() else "gunicorn", "config.wsgi:application", "-w", str(workers),
           "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--timeout", "60"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def stop_gunicorn(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(base, proc, timeout=60):
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited while starting; see its log")
        try:
            requests.get(f"{base}/accounts/login/", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 60 s")


def login(base):
    import requests

    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=10).raise_for_status()
    response = session.post(
        f"{base}/accounts/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        timeout=10, allow_redirects=False,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"login failed: HTTP {response.status_code}")
    return session.cookies.get_dict()


def run_clients(base, makers, cookies, token, clients, seconds):
    import requests

    results = defaultdict(list)  # name -> [latency ms]
    errors = defaultdict(int)
    error_samples = defaultdict(list)
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    names = list(makers)
    deadline_holder = {}

    def client(idx):
        rng = random.Random(idx)
        session = requests.Session()
        session.cookies.update(cookies)
        local, local_err, samples = defaultdict(list), defaultdict(int), defaultdict(list)
        i = idx  # clients start at different endpoints
        start_gate.wait()
        deadline = deadline_holder["t"]
        while time.monotonic() < deadline:  # bounded: stops by itself at the deadline
            name = names[i % len(names)]
            i += 1
            path, uses_token = makers[name](rng)
            headers = {"Authorization": f"Token {token}"} if uses_token else {}
            t0 = time.perf_counter()
            try:
                response = session.get(base + path, headers=headers, timeout=30, allow_redirects=False)
                ok = response.status_code == 200
                status = response.status_code
            except requests.RequestException as exc:
                ok, status = False, type(exc).__name__
            ms = (time.perf_counter() - t0) * 1000.0
            local[name].append(ms)
            if not ok:
                local_err[name] += 1
                if len(samples[name]) < 3:
                    samples[name].append(f"{status} {path}")
        with lock:
            for name, values in local.items():
                results[name].extend(values)
            for name, n in local_err.items():
                errors[name] += n
            for name, s in samples.items():
                error_samples[name].extend(s)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    deadline_holder["t"] = time.monotonic() + seconds
    t_start = time.monotonic()
    start_gate.wait()
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.monotonic() - t_start
    return results, errors, error_samples, elapsed


def summarise(results, errors, error_samples, elapsed):
    out = {}
    for name in results:
        values = sorted(results[name])
        q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
        out[name] = {
            "requests": len(values),
            "rps": round(len(values) / elapsed, 1),
            "p50_ms": round(q[49], 1),
            "p95_ms": round(q[94], 1),
            "p99_ms": round(q[98], 1),
            "errors": errors.get(name, 0),
        }
        if error_samples.get(name):
            out[name]["error_samples"] = error_samples[name][:3]
    return out


# ---------------------------------------------------------------- in-process profile


def profile(makers, token, repeats=5):
    """Per endpoint, on the same database, no concurrency, after one warm-up request: the
    median of ``repeats`` requests' queries, SQL ms, wall ms, and the slowest query seen."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username=USERNAME))
    out = {}
    for name, make in makers.items():
        rng = random.Random(1)
        path, uses_token = make(rng)
        extra = {"HTTP_AUTHORIZATION": f"Token {token}"} if uses_token else {}
        client.get(path, **extra)  # warm-up: template compilation, caches
        runs, slowest, statuses = [], (0.0, ""), set()
        for _ in range(repeats):
            path, uses_token = make(rng)
            extra = {"HTTP_AUTHORIZATION": f"Token {token}"} if uses_token else {}
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(path, **extra)
                wall = (time.perf_counter() - t0) * 1000
            statuses.add(response.status_code)
            sql = [(float(q["time"]) * 1000, q["sql"]) for q in ctx.captured_queries]
            slowest = max([slowest] + sql)
            runs.append((wall, len(sql), sum(t for t, _ in sql)))
        wall = statistics.median(r[0] for r in runs)
        sql_ms = statistics.median(r[2] for r in runs)
        out[name] = {
            "statuses": sorted(statuses), "queries": max(r[1] for r in runs), "median_sql_ms": round(sql_ms, 1),
            "median_wall_ms": round(wall, 1), "median_python_ms": round(wall - sql_ms, 1),
            "slowest_query_ms": round(slowest[0], 1), "slowest_query": slowest[1][:400],
        }
    return out


# ---------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the load (default 30)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (default 1: sync workers)")
    parser.add_argument("--alloys", type=int, default=10_000)
    parser.add_argument("--values-per-alloy", type=int, default=3, help="property values per alloy (default 3: 30,000)")
    parser.add_argument("--records", type=int, default=1000, help="extracted records in the review batch")
    parser.add_argument("--pg", default=os.environ.get("GLASSLOOP_LOAD_PG", "postgres://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server URL without the database name")
    parser.add_argument("--db", default="glassloop_load", help="database name (created if missing)")
    parser.add_argument("--reseed", action="store_true", help="drop and recreate the database first")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profile")
    parser.add_argument("--conn-max-age", type=int, default=None,
                        help="DB_CONN_MAX_AGE for gunicorn (default: the environment's, else settings' 60)")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be between 0 and 600")

    def log(message):
        print(f"[load_bench] {message}", file=sys.stderr, flush=True)

    db_url = f"{args.pg}/{args.db}"
    load_before = os.getloadavg()
    ensure_database(args.pg, args.db, args.reseed)
    setup_django(db_url)
    state = seed(args.alloys, args.values_per_alloy, args.records, log)
    makers = endpoint_makers(state)
    log(f"endpoints: {', '.join(makers)}")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_dir = Path(tempfile.mkdtemp(prefix="glassloop-load-"))
    proc, server_log = start_gunicorn(db_url, port, args.workers, log_dir / "gunicorn.log", args.conn_max_age, args.threads)
    try:
        wait_ready(base, proc)
        cookies = login(base)
        import requests

        warm = requests.Session()
        warm.cookies.update(cookies)
        warmup = {}
        for name, make in makers.items():  # one request each first: errors show before the run
            path, uses_token = make(random.Random(0))
            headers = {"Authorization": f"Token {state['token']}"} if uses_token else {}
            warmup[name] = warm.get(base + path, headers=headers, timeout=30, allow_redirects=False).status_code
        log(f"warm-up statuses: {warmup}; driving {args.clients} clients for {args.seconds:g} s")
        server_cpu_0, client_cpu_0 = process_tree_cpu_s(proc.pid), sum(os.times()[:2])
        results, errors, samples, elapsed = run_clients(base, makers, cookies, state["token"], args.clients, args.seconds)
        cpu = {"gunicorn_cpu_s": round(process_tree_cpu_s(proc.pid) - server_cpu_0, 1),
               "load_clients_cpu_s": round(sum(os.times()[:2]) - client_cpu_0, 1)}
    finally:
        stop_gunicorn(proc)
        server_log.close()

    endpoints = summarise(results, errors, samples, elapsed)
    total_errors = sum(e["errors"] for e in endpoints.values())
    total_requests = sum(e["requests"] for e in endpoints.values())
    # CPU the web workers spent per request: comparable across runs even when other
    # processes compete for the cores (which the latencies are not).
    cpu["gunicorn_cpu_ms_per_request"] = round(cpu["gunicorn_cpu_s"] * 1000 / max(total_requests, 1), 1)
    report = {
        "bench": "load",
        "database": {"engine": "postgresql", "name": args.db, "alloys": state["alloys"],
                     "property_values": state["property_values"], "review_batch": state["batch_id"]},
        "server": {"gunicorn_workers": args.workers, "threads_per_worker": args.threads, "bind": "127.0.0.1", "debug": False,
                   "db_conn_max_age": args.conn_max_age if args.conn_max_age is not None
                   else int(os.environ.get("DB_CONN_MAX_AGE", "60"))},
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()], **cpu},
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "endpoints": endpoints,
        "total_requests": total_requests,
        "total_rps": round(total_requests / elapsed, 1),
        "total_errors": total_errors,
        "goals": {
            "p95_ms_max": GOAL_P95_MS,
            "p95_met": all(e["p95_ms"] <= GOAL_P95_MS for e in endpoints.values()),
            "no_errors": total_errors == 0,
        },
        "server_log": str(log_dir / "gunicorn.log"),
    }
    if not args.no_profile:
        report["profile"] = profile(makers, state["token"])
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
