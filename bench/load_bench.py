#!/usr/bin/env python
"""Load benchmark: 20 concurrent clients against gunicorn (2 workers) on PostgreSQL.

What it does, in order:
1. creates (or reuses) a dedicated PostgreSQL database, ``glassloop_load`` by default, and
   migrates it;
2. seeds it, if it does not already hold them, with 10,000 alloys and 30,000 literature
   property values (bulk inserts, with their history rows), 1,500 samples (every other one
   with an XRD), a review batch of 1,000 extracted records and 20 design campaigns of 30
   candidates each. Compositions come from this script's own generator (random alloys of ten
   BMG families, each checked by the composition parser), never from the shared data set;
3. starts ``gunicorn config.wsgi:application -w 2`` on 127.0.0.1 and a free port as the
   container runs it (DEBUG=0, the cache on Redis) and, with ``--bombs``, a Celery worker
   on a broker database of its own; logs in a viewer+reviewer (session cookie; an API token);
4. drives what a lab member opens every day with 20 client threads for 30 s, each cycling
   through: the alloy list with filters (elements, Tg range, order, page), alloy pages, the
   sample list (and its search), the home dashboard, the review queue, the campaign list and
   campaign pages, /api/alloys/ (filtered) and /api/alloys/<id>/, /api/property-values/ and
   /api/samples/;
5. with ``--bombs N``: 5 s in, N concurrent uploads of a 2-million-row XLSX (~0.6 MB, built
   here) through the import form as an experimenter (a dry run), each followed to its end
   through the import's status.json;
6. stops the servers and prints ONE JSON object: per endpoint requests, rps, p50/p95/p99 ms,
   errors; the goals (p95 <= 250 ms, no errors; with bombs: alloy-list p95 <= 500 ms while
   they run and each refused with a message within 30 s); who used the cores during the run
   ("cpu": web workers, their PostgreSQL backends, the Celery worker, this process's client
   threads and every other process on the machine, with the load average), since the clients
   share the cores with the server; and a profile of each endpoint measured in-process on the
   same database (queries per request, SQL time, wall time, the slowest query).

``--profile-only`` skips 3-6: no server, no clients, only step 7's profile with ``--repeats``
requests per endpoint (default 200): CPU ms per request in the web process is what to compare
between versions on a machine that is not quiet (the load's p95 is not). ``--cprofile NAME,...``
(or ``all``) also prints those endpoints' hottest functions (stdlib cProfile) to stderr.

Only 127.0.0.1 is ever contacted. Usage:

    .venv/bin/python bench/load_bench.py [--seconds 30] [--clients 20] [--reseed] [--bombs 2]
        [--pg postgres://postgres@127.0.0.1:5432] [--db glassloop_load] [--redis redis://127.0.0.1:6379/12]
    .venv/bin/python bench/load_bench.py --profile-only [--repeats 200] [--cprofile alloy_list,api_alloys]
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
GOAL_P95_MS = 250.0  # issue 16: every page and API route measured
GOAL_BOMB_P95_MS = 500.0  # alloy list while the upload bombs run
GOAL_REFUSAL_S = 30.0  # each bomb refused, with a message, within this
EXPERIMENTER = "load-experimenter"  # uploads the bombs

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

    from lab.models import Alloy, PropertyValue, Reference, Sample, XRDMeasurement
    from core.roles import assign_role
    from lab.services import refresh_alloy_summaries

    User = get_user_model()
    user, _ = User.objects.get_or_create(username=USERNAME)
    if not user.check_password(PASSWORD):  # a new hash would log out a profile running beside this one
        user.set_password(PASSWORD)
        user.save()
    for role in ("viewer", "reviewer"):
        assign_role(user, role)
    uploader, _ = User.objects.get_or_create(username=EXPERIMENTER)
    if not uploader.check_password(PASSWORD):
        uploader.set_password(PASSWORD)
        uploader.save()
    assign_role(uploader, "experimenter")

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
            samples = bulk_create_with_history(
                [Sample(alloy=alloy, label=f"LOAD-{i:05d}", operator=user, diameter_mm=1 + i % 4)
                 for i, alloy in enumerate(alloys[:1500])],
                Sample, batch_size=2000, default_user=user,
            )
            # Every other sample has an XRD, so the sample list and alloy pages show measurements.
            XRDMeasurement.objects.bulk_create(
                [XRDMeasurement(sample=sample, pattern=f"xrd/load-{i:05d}.xy", fwhm_inv_a=0.4 + (i % 5) / 10,
                                computed_verdict="amorphous" if i % 3 else "crystalline", operator=user)
                 for i, sample in enumerate(samples[::2])]
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

    campaign_ids = seed_campaigns(user, log) if apps.is_installed("design") else []

    # Fresh bulk inserts have no planner statistics yet; autovacuum would gather them soon after.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    token = None
    if apps.is_installed("rest_framework.authtoken"):
        from rest_framework.authtoken.models import Token

        token = Token.objects.get_or_create(user=user)[0].key
    ids = list(Alloy.objects.order_by("pk").values_list("pk", flat=True))
    return {"alloy_ids": ids, "batch_id": batch_id, "token": token, "campaign_ids": campaign_ids,
            "alloys": Alloy.objects.count(), "property_values": PropertyValue.objects.count()}


def seed_campaigns(user, log, n_campaigns=20, per_campaign=30):
    """Design campaigns, each with one finished round of made-up candidates (no model is
    trained: the pages only read them). Returns their ids."""
    from django.db import transaction
    from django.utils import timezone

    from design.models import Candidate, DesignCampaign, GenerationRound
    from design.services import create_campaign
    from training.models import ModelVersion

    existing = list(DesignCampaign.objects.filter(name__startswith="Load campaign ").order_by("pk").values_list("pk", flat=True))
    if existing:
        return existing
    t0 = time.monotonic()
    comps = synthetic_compositions(per_campaign, seed=5)
    statuses = [Candidate.Status.PROPOSED] * 4 + [Candidate.Status.APPROVED, Candidate.Status.VALIDATED, Candidate.Status.FAILED]
    with transaction.atomic():
        version = ModelVersion.objects.create(
            artefact_dir="load-bench-not-trained", snapshot_hash="load" + "0" * 60, snapshot_taken_at=timezone.now()
        )
        for i in range(n_campaigns):
            campaign = create_campaign(owner=user, name=f"Load campaign {i}",
                                       targets={"tg_k": {"min": 600 + 5 * i}, "trg": {"min": 0.55}})
            gen_round = GenerationRound.objects.create(campaign=campaign, number=1, model_version=version, status="done")
            Candidate.objects.bulk_create([
                Candidate(campaign=campaign, generation_round=gen_round, number=k + 1, rank=k + 1,
                          composition_key=comp.key, formula=comp.formula, fractions=dict(comp), model_version=version,
                          tg_k_pred=650 + k, tx_k_pred=720 + k, tl_k_pred=1100 + k, trg_pred=0.6, gamma_pred=0.41,
                          delta_tx_k_pred=70, p_glass=0.8, nearest_distance=0.1, acquisition_score=1.0 - k / 100,
                          status=statuses[k % len(statuses)])
                for k, (comp, _) in enumerate(comps)
            ])
    log(f"seeded {n_campaigns} design campaigns of {per_campaign} candidates in {time.monotonic() - t0:.1f} s")
    return list(DesignCampaign.objects.filter(name__startswith="Load campaign ").order_by("pk").values_list("pk", flat=True))


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

    def sample_list(rng):
        roll = rng.random()
        if roll < 0.3:
            return "/lab/samples/?" + urlencode({"q": rng.choice(["LOAD-00", "Zr", "Cu", "Fe"])}), False
        return "/lab/samples/" + ("?page=2" if roll > 0.8 else ""), False

    def home(rng):
        return "/", False

    makers = {"alloy_list": alloy_list, "alloy_detail": alloy_detail, "sample_list": sample_list}
    if url_exists("/"):
        makers["home"] = home
    if state["batch_id"] and url_exists("/mining/review/"):
        def review_queue(rng):
            page = rng.choice([1, 1, 1, 2, 3])
            return f"/mining/review/?batch={state['batch_id']}&page={page}", False

        makers["review_queue"] = review_queue
    if state.get("campaign_ids") and url_exists("/design/"):
        def campaign_list(rng):
            return "/design/", False

        def campaign_detail(rng):
            return f"/design/{rng.choice(state['campaign_ids'])}/", False

        makers["campaign_list"] = campaign_list
        makers["campaign_detail"] = campaign_detail
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

        def api_alloy_detail(rng):
            return f"/api/alloys/{rng.choice(state['alloy_ids'])}/", bool(state["token"])

        makers["api_alloys"] = api_alloys
        makers["api_alloy_detail"] = api_alloy_detail
    if url_exists("/api/property-values/"):
        def api_property_values(rng):
            query = {"alloy": rng.choice(state["alloy_ids"])} if rng.random() < 0.5 else {}
            return "/api/property-values/" + (f"?{urlencode(query)}" if query else ""), bool(state["token"])

        makers["api_property_values"] = api_property_values
    if url_exists("/api/samples/"):
        def api_samples(rng):
            return "/api/samples/", bool(state["token"])

        makers["api_samples"] = api_samples
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


def machine_busy_cpu_s():
    """CPU seconds all processes of the machine have used (user, nice, system, irq, steal), /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def pids_cpu_s(pids):
    """{pid: CPU seconds so far} of the processes still alive."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def postgres_backends():
    """PIDs of the PostgreSQL backends serving this database, except this process's own."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return [row[0] for row in cursor.fetchall()]


class CpuMeter:
    """Who used the machine's cores during the run: the web workers, their PostgreSQL backends,
    the Celery worker, this process (the load clients and bomb uploaders) and everything else
    (other programs on the machine). Backends that start during the run count in full."""

    def __init__(self, gunicorn_pid, celery_pid=None):
        self.gunicorn_pid, self.celery_pid = gunicorn_pid, celery_pid

    def _sample(self):
        backends = postgres_backends()
        return {
            "t": time.monotonic(), "machine": machine_busy_cpu_s(), "self": sum(os.times()[:2]),
            "gunicorn": process_tree_cpu_s(self.gunicorn_pid),
            "celery": process_tree_cpu_s(self.celery_pid) if self.celery_pid else 0.0,
            "postgres": pids_cpu_s(backends),
        }

    def start(self):
        self.first = self._sample()

    def stop(self, requests_served):
        last, first = self._sample(), self.first
        seconds = last["t"] - first["t"]
        used = {name: last[name] - first[name] for name in ("machine", "self", "gunicorn", "celery")}
        used["postgres"] = sum(cpu - first["postgres"].get(pid, 0.0) for pid, cpu in last["postgres"].items())
        capacity = seconds * (os.cpu_count() or 1)
        mine = used["self"] + used["gunicorn"] + used["celery"] + used["postgres"]
        others = used["machine"] - mine
        n = max(requests_served, 1)
        return {
            "cores_busy_share": round(used["machine"] / capacity, 3),
            "gunicorn_cpu_s": round(used["gunicorn"], 1),
            "postgres_backends_cpu_s": round(used["postgres"], 1),
            "celery_worker_cpu_s": round(used["celery"], 1),
            "load_clients_cpu_s": round(used["self"], 1),
            # The load generator runs on the same cores: this share of them was the clients'.
            "load_clients_share_of_cores": round(used["self"] / capacity, 3),
            "other_processes_cpu_s": round(max(others, 0.0), 1),
            "other_processes_share_of_cores": round(max(others, 0.0) / capacity, 3),
            "gunicorn_cpu_ms_per_request": round(used["gunicorn"] * 1000 / n, 1),
            "postgres_cpu_ms_per_request": round(used["postgres"] * 1000 / n, 1),
            "load_clients_cpu_ms_per_request": round(used["self"] * 1000 / n, 1),
            # What one request costs the machine (web worker + database + client), and so the
            # requests a second these cores could serve with nothing else running: an estimate
            # from CPU time, to compare runs whatever else the machine was doing.
            "cpu_ms_per_request_total": round(mine * 1000 / n, 1),
            "rps_if_cores_were_free": round(capacity / mine * n / seconds, 1) if mine else None,
        }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(db_url, redis_url, conn_max_age=None):
    """The web workers' and the Celery worker's environment: as the container's (DEBUG off, the
    broker and the cache on Redis), on this database."""
    env = dict(os.environ, DATABASE_URL=db_url, DEBUG="0", ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING")
    if redis_url:
        base, db = redis_url.rsplit("/", 1)
        env["GLASSLOOP_CACHE_URL"] = redis_url
        env["CELERY_BROKER_URL"] = f"{base}/{int(db) + 1}"
    if conn_max_age is not None:
        env["DB_CONN_MAX_AGE"] = str(conn_max_age)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def start_celery(env, log_path, concurrency=2):
    """A Celery worker on the bench's own broker database, emptied first: imports of an earlier
    run (killed at its end, so redelivered) must not run again during this one."""
    import redis

    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    celery = Path(sys.executable).with_name("celery")
    cmd = [str(celery) if celery.exists() else "celery", "-A", "config", "worker", "-l", "INFO",
           "--concurrency", str(concurrency), "-n", f"loadbench-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # "ready." once it consumes
        if proc.poll() is not None:
            raise SystemExit(f"the Celery worker exited while starting; see {log_path}")
        if b" ready." in Path(log_path).read_bytes():
            return proc, log
        time.sleep(0.3)
    stop_process(proc)
    raise SystemExit(f"the Celery worker was not ready within 60 s; see {log_path}")


def start_gunicorn(env, port, workers, log_path, threads=1):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    cmd = [str(gunicorn) if gunicorn.exists() else "gunicorn", "config.wsgi:application", "-w", str(workers),
           "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--timeout", "60"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def stop_process(proc):
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


def login(base, username=USERNAME):
    import requests

    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=10).raise_for_status()
    response = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        timeout=10, allow_redirects=False,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"login failed: HTTP {response.status_code}")
    return session.cookies.get_dict()


def run_clients(base, makers, cookies, token, clients, seconds, on_start=None):
    """``clients`` threads cycling through the endpoints until ``seconds`` have passed.
    Returns {name: [(start, ms)]}, errors, error samples, the run's start and its length.
    ``on_start(t_start)`` is called once the clients are released (the bombs start from it)."""
    import requests

    results = defaultdict(list)  # name -> [(monotonic start, latency ms)]
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
            started = time.monotonic()
            t0 = time.perf_counter()
            try:
                response = session.get(base + path, headers=headers, timeout=30, allow_redirects=False)
                ok = response.status_code == 200
                status = response.status_code
            except requests.RequestException as exc:
                ok, status = False, type(exc).__name__
            ms = (time.perf_counter() - t0) * 1000.0
            local[name].append((started, ms))
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
    if on_start is not None:
        on_start(t_start)
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.monotonic() - t_start
    return results, errors, error_samples, t_start, elapsed


def latency_stats(values):
    values = sorted(values)
    if not values:
        return {"requests": 0}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"requests": len(values), "p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1)}


def summarise(results, errors, error_samples, elapsed):
    out = {}
    for name in results:
        stats = latency_stats([ms for _, ms in results[name]])
        out[name] = {"requests": stats["requests"], "rps": round(stats["requests"] / elapsed, 1),
                     **{k: v for k, v in stats.items() if k != "requests"}, "errors": errors.get(name, 0)}
        if error_samples.get(name):
            out[name]["error_samples"] = error_samples[name][:3]
    return out


# ---------------------------------------------------------------- upload bombs

BOMB_COMPOSITION = "Zr55Cu30Al10Ni5"


def build_bomb(path, rows):
    """An XLSX whose one sheet holds ``rows`` data rows (composition, Tg_K, Tx_K, Tl_K) under a
    header, streamed into the zip (bench/xlsx_bomb.py): 2 million rows are about 0.6 MB on disk."""
    from xlsx_bomb import xlsx_bomb  # beside this script

    xlsx_bomb(path, rows, composition=BOMB_COMPOSITION, values=(650, 730, 1100))
    return path


def refusal_text(html):
    """The form's error list (the upload refused in the request), as plain text."""
    import re
    from html import unescape

    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, flags=re.S)
    return " ".join(" ".join(unescape(re.sub(r"<[^>]+>", " ", item)).split()) for item in found)


def run_bomb(base, cookies, bomb_path, index, give_up_s, out):
    """Upload the bomb through the import form (a dry run: the rows are never saved even if the
    limits failed), then poll the import's status until it finishes. Fills ``out``."""
    import requests

    session = requests.Session()
    session.cookies.update(cookies)
    out.update(index=index, started=time.monotonic())
    t0 = out["started"]
    try:
        with open(bomb_path, "rb") as fh:
            response = session.post(
                f"{base}/lab/imports/", data={"csrfmiddlewaretoken": cookies.get("csrftoken", ""), "dry_run": "on"},
                files={"table": (f"bomb-{index}.xlsx", fh,
                                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")},
                headers={"Referer": f"{base}/lab/imports/"}, timeout=give_up_s, allow_redirects=False,
            )
    except requests.RequestException as exc:
        out.update(outcome=f"upload failed: {type(exc).__name__}", upload_s=round(time.monotonic() - t0, 1),
                   finished=time.monotonic())
        return
    out["upload_s"] = round(time.monotonic() - t0, 1)
    out["upload_status"] = response.status_code
    if response.status_code == 200:  # the form came back: refused in the request
        message = refusal_text(response.text)
        out.update(outcome="refused by the form" if message else "form returned without a message",
                   message=message, refused_after_s=out["upload_s"] if message else None, finished=time.monotonic())
        return
    location = response.headers.get("Location", "")
    if response.status_code != 302 or "/lab/imports/" not in location:
        out.update(outcome=f"unexpected HTTP {response.status_code}", finished=time.monotonic())
        return
    job_url = location.rstrip("/")
    out["job"] = job_url.rsplit("/", 1)[-1]
    status_url = (job_url if job_url.startswith("http") else base + job_url) + "/status.json"
    last = {}
    while time.monotonic() - t0 < give_up_s:
        try:
            last = session.get(status_url, timeout=10).json()
        except (requests.RequestException, ValueError) as exc:
            last = {"poll_error": type(exc).__name__}
        if last.get("finished"):
            break
        time.sleep(0.5)
    message = last.get("error") or last.get("message") or ""
    refused = bool(last.get("finished")) and last.get("status") != "done" and bool(message)
    out.update(
        outcome=("refused by the worker" if refused else f"finished as {last.get('status')}") if last.get("finished")
        else f"not finished after {give_up_s:g} s (status {last.get('status')})",
        status=last.get("status"), message=message, counts=last.get("counts"),
        refused_after_s=round(time.monotonic() - t0, 1) if refused else None, finished=time.monotonic(),
    )


# ---------------------------------------------------------------- in-process profile


def profile(makers, token, repeats=5, cprofile_names=(), cprofile_top=30, log=None):
    """Per endpoint, on the same database, no concurrency, after one warm-up request: the
    median of ``repeats`` requests' CPU ms and wall ms (measured without query capture, whose
    bookkeeping costs CPU itself), then of up to 5 captured requests' queries and SQL ms, and the
    slowest query seen. ``cprofile_names``: endpoints whose requests also run under cProfile
    (after the timed ones); their hottest functions by own and by cumulative CPU time."""
    import cProfile
    import pstats

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username=USERNAME))
    out = {}

    def request(rng):
        path, uses_token = make(rng)
        extra = {"HTTP_AUTHORIZATION": f"Token {token}"} if uses_token else {}
        return client.get(path, **extra)

    for name, make in makers.items():
        request(random.Random(0))  # warm-up: template compilation, caches
        rng = random.Random(1)
        runs, statuses, sizes = [], set(), []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            response = request(rng)
            runs.append(((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000))
            statuses.add(response.status_code)
            sizes.append(len(response.content))
        rng = random.Random(1)  # the same requests again, their queries captured
        captured, slowest = [], (0.0, "")
        for _ in range(min(repeats, 5)):
            with CaptureQueriesContext(connection) as ctx:
                request(rng)
            sql = [(float(q["time"]) * 1000, q["sql"]) for q in ctx.captured_queries]
            slowest = max([slowest] + sql)
            captured.append((len(sql), sum(t for t, _ in sql)))
        wall = statistics.median(r[0] for r in runs)
        sql_ms = statistics.median(c[1] for c in captured)
        cpu = sorted(r[1] for r in runs)
        out[name] = {
            "requests": repeats, "statuses": sorted(statuses), "queries": max(c[0] for c in captured),
            "median_sql_ms": round(sql_ms, 1), "median_wall_ms": round(wall, 1),
            "median_python_ms": round(wall - sql_ms, 1),
            # CPU this process spent on the request (Django, no waiting): steadier than the
            # wall time when other programs share the cores.
            "median_cpu_ms": round(statistics.median(cpu), 2),
            "p90_cpu_ms": round(cpu[int(0.9 * (len(cpu) - 1))], 2),
            "median_bytes": int(statistics.median(sizes)),
            "slowest_query_ms": round(slowest[0], 1), "slowest_query": slowest[1][:400],
        }
        if name in cprofile_names:
            profiler = cProfile.Profile(time.process_time)  # CPU, not the wait for PostgreSQL
            rng = random.Random(1)
            profiler.enable()
            for _ in range(repeats):
                request(rng)
            profiler.disable()
            for sort in ("tottime", "cumulative"):
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(sort).print_stats(cprofile_top)
                (log or print)(f"cProfile of {name} ({repeats} requests) by {sort}:\n{text.getvalue()}")
    return out


# ---------------------------------------------------------------- main


def bomb_report(bombs, results, t_start, elapsed):
    """Per upload: how long until refused and the message; latencies while the bombs ran."""
    if not bombs:
        return None
    window_start = min(b["started"] for b in bombs)
    window_end = max(b.get("finished", t_start + elapsed) for b in bombs)
    during = {name: latency_stats([ms for started, ms in values if window_start <= started <= window_end])
              for name, values in results.items()}
    uploads = [{k: v for k, v in b.items() if k not in ("started", "finished")} | {"started_at_s": round(b["started"] - t_start, 1)}
               for b in bombs]
    alloy_p95 = during.get("alloy_list", {}).get("p95_ms")
    return {
        "window_s": [round(window_start - t_start, 1), round(window_end - t_start, 1)],
        "window_ends_after_clients": window_end > t_start + elapsed,
        "uploads": uploads,
        "during_bombs": during,
        "goals": {
            "alloy_list_p95_ms_max": GOAL_BOMB_P95_MS,
            "alloy_list_p95_met": alloy_p95 is not None and alloy_p95 <= GOAL_BOMB_P95_MS,
            "refused_within_s": GOAL_REFUSAL_S,
            "all_refused_in_time": all(u.get("refused_after_s") is not None and u["refused_after_s"] <= GOAL_REFUSAL_S
                                       and u.get("message") for u in uploads),
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="duration of the load (default 30; 45 with --bombs)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as WEB_WORKERS)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (default 1: sync workers)")
    parser.add_argument("--alloys", type=int, default=10_000)
    parser.add_argument("--values-per-alloy", type=int, default=3, help="property values per alloy (default 3: 30,000)")
    parser.add_argument("--records", type=int, default=1000, help="extracted records in the review batch")
    parser.add_argument("--pg", default=os.environ.get("GLASSLOOP_LOAD_PG", "postgres://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server URL without the database name")
    parser.add_argument("--db", default="glassloop_load", help="database name (created if missing)")
    parser.add_argument("--redis", default=os.environ.get("GLASSLOOP_LOAD_REDIS", "redis://127.0.0.1:6379/12"),
                        help="Redis for the cache (this db) and the Celery broker (the next db, emptied by --bombs); "
                             "'' for none")
    parser.add_argument("--reseed", action="store_true", help="drop and recreate the database first")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profile")
    parser.add_argument("--profile-only", action="store_true",
                        help="no server and no clients: seed (or reuse) the database and print the in-process profile")
    parser.add_argument("--repeats", type=int, default=None,
                        help="requests per endpoint in the profile (default 5; 200 with --profile-only)")
    parser.add_argument("--only", default="", help="comma-separated endpoints to profile (default: all)")
    parser.add_argument("--cprofile", default="",
                        help="comma-separated endpoints (or 'all') whose profiled requests also run under cProfile (stderr)")
    parser.add_argument("--conn-max-age", type=int, default=None,
                        help="DB_CONN_MAX_AGE for gunicorn (default: the environment's, else settings' 60)")
    parser.add_argument("--bombs", type=int, default=0,
                        help="concurrent XLSX upload bombs sent through the import form during the load (starts a Celery worker)")
    parser.add_argument("--bomb-rows", type=int, default=2_000_000, help="data rows of each bomb (default 2 million)")
    parser.add_argument("--bomb-delay", type=float, default=5.0, help="seconds into the load when the bombs are sent")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 45.0 if args.bombs else 30.0
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be between 0 and 600")
    if args.bombs and not args.redis:
        parser.error("--bombs needs --redis (the Celery broker)")
    if args.repeats is None:
        args.repeats = 200 if args.profile_only else 5
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    def log(message):
        print(f"[load_bench] {message}", file=sys.stderr, flush=True)

    db_url = f"{args.pg}/{args.db}"
    load_before = os.getloadavg()
    ensure_database(args.pg, args.db, args.reseed)
    env = server_env(db_url, args.redis, args.conn_max_age)
    for name in ("GLASSLOOP_CACHE_URL", "CELERY_BROKER_URL", "DEBUG", "LOG_LEVEL"):  # the in-process profile as the server
        if name in env:
            os.environ[name] = env[name]
    setup_django(db_url)
    state = seed(args.alloys, args.values_per_alloy, args.records, log)
    makers = endpoint_makers(state)
    log(f"endpoints: {', '.join(makers)}")
    cprofile_names = set(makers) if args.cprofile == "all" else {n for n in args.cprofile.split(",") if n}
    only = {n for n in args.only.split(",") if n}
    if (cprofile_names | only) - set(makers):
        parser.error(f"no endpoint {', '.join(sorted((cprofile_names | only) - set(makers)))}")
    profiled = {name: make for name, make in makers.items() if not only or name in only}
    if args.profile_only:
        report = {"bench": "load-profile", "database": {"engine": "postgresql", "name": args.db, "alloys": state["alloys"],
                                                         "property_values": state["property_values"]},
                  "cache": "redis" if args.redis else "per-process", "repeats": args.repeats,
                  "load_average_before": [round(x, 2) for x in load_before],
                  "profile": profile(profiled, state["token"], args.repeats, cprofile_names, log=log),
                  "load_average_after": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(report, indent=2))
        return 0

    log_dir = Path(tempfile.mkdtemp(prefix="glassloop-load-"))
    bomb_path = None
    if args.bombs:
        bomb_path = Path(tempfile.gettempdir()) / f"glassloop-load-bomb-{args.bomb_rows}.xlsx"
        if not bomb_path.exists():
            t0 = time.monotonic()
            build_bomb(bomb_path.with_suffix(".part"), args.bomb_rows).rename(bomb_path)
            log(f"built the bomb ({bomb_path.stat().st_size:,} bytes) in {time.monotonic() - t0:.1f} s")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, server_log = start_gunicorn(env, port, args.workers, log_dir / "gunicorn.log", args.threads)
    celery, celery_log = (None, None)
    bombs, bomb_threads = [], []
    try:
        if args.bombs:
            celery, celery_log = start_celery(env, log_dir / "celery.log")
        wait_ready(base, proc)
        cookies = login(base)
        uploader_cookies = login(base, EXPERIMENTER) if args.bombs else None
        import requests

        warm = requests.Session()
        warm.cookies.update(cookies)
        warmup = {}
        for name, make in makers.items():  # one request each first: errors show before the run
            path, uses_token = make(random.Random(0))
            headers = {"Authorization": f"Token {state['token']}"} if uses_token else {}
            warmup[name] = warm.get(base + path, headers=headers, timeout=30, allow_redirects=False).status_code
        log(f"warm-up statuses: {warmup}; driving {args.clients} clients for {args.seconds:g} s"
            + (f", {args.bombs} bombs after {args.bomb_delay:g} s" if args.bombs else ""))

        def send_bombs(t_start):
            def later(index, out):
                time.sleep(max(0.0, t_start + args.bomb_delay - time.monotonic()))
                run_bomb(base, uploader_cookies, bomb_path, index, max(90.0, 3 * GOAL_REFUSAL_S), out)

            for index in range(args.bombs):
                out = {}
                bombs.append(out)
                thread = threading.Thread(target=later, args=(index, out), daemon=True)
                thread.start()
                bomb_threads.append(thread)

        meter = CpuMeter(proc.pid, celery.pid if celery else None)
        meter.start()
        results, errors, samples, t_start, elapsed = run_clients(
            base, makers, cookies, state["token"], args.clients, args.seconds, on_start=send_bombs if args.bombs else None
        )
        cpu = meter.stop(sum(len(v) for v in results.values()))
        for thread in bomb_threads:
            thread.join(timeout=120)
    finally:
        stop_process(proc)
        server_log.close()
        if celery is not None:
            stop_process(celery)
            celery_log.close()

    endpoints = summarise(results, errors, samples, elapsed)
    total_errors = sum(e["errors"] for e in endpoints.values())
    total_requests = sum(e["requests"] for e in endpoints.values())
    report = {
        "bench": "load",
        "database": {"engine": "postgresql", "name": args.db, "alloys": state["alloys"],
                     "property_values": state["property_values"], "review_batch": state["batch_id"],
                     "campaigns": len(state.get("campaign_ids") or [])},
        "server": {"gunicorn_workers": args.workers, "threads_per_worker": args.threads, "bind": "127.0.0.1", "debug": False,
                   "db_conn_max_age": args.conn_max_age if args.conn_max_age is not None
                   else int(os.environ.get("DB_CONN_MAX_AGE", "60")),
                   "cache": "redis" if args.redis else "per-process", "celery_worker": bool(celery)},
        # The clients run on the same cores as the server: "cpu" says who used them during the run.
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "cpu": cpu,
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
    if args.bombs:
        report["bombs"] = {"count": args.bombs, "rows": args.bomb_rows, "file_bytes": bomb_path.stat().st_size,
                           **bomb_report(bombs, results, t_start, elapsed)}
        report["goals"]["bombs"] = report["bombs"].pop("goals")
    if not args.no_profile:
        report["profile"] = profile(profiled, state["token"], args.repeats, cprofile_names, log=log)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
