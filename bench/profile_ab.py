#!/usr/bin/env python
"""CPU per request of two checkouts, measured side by side: which one is cheaper, per endpoint.

On a machine that is not quiet, CPU time per request drifts with whatever else runs (the load
bench's p95 even more), so two profiles taken minutes apart differ by more than a change
does. This starts one worker process per checkout, each on the load bench's database
(``bench/load_bench.py``'s seed, endpoints and logged-in user, in-process with Django's test
client, as its ``--profile-only``), and asks them in turn, a block of requests of one endpoint
at a time, the order swapped every round: both see the same machine. It prints one JSON
object: per endpoint the median CPU ms of each side, the change, and queries per request.

    .venv/bin/python bench/profile_ab.py --base /path/to/old/checkout --new . [--rounds 12] [--block 10]
        [--only alloy_list,api_alloys] [--db glassloop_load]

Seed the database first (``bench/load_bench.py --profile-only --repeats 1`` does). Each side
imports its own checkout's code and its own ``bench/load_bench.py``.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path


def worker(checkout, db_url, redis_url):
    """Serve {"endpoint": name, "n": k} lines on stdin with {"cpu": [ms...], "statuses": [...]}."""
    sys.path.insert(0, str(Path(checkout) / "bench"))
    import load_bench as lb

    env = lb.server_env(db_url, redis_url)
    for name in ("GLASSLOOP_CACHE_URL", "CELERY_BROKER_URL", "DEBUG", "LOG_LEVEL"):
        if name in env:
            os.environ[name] = env[name]
    lb.setup_django(db_url)
    state = lb.seed(10_000, 3, 1000, lambda message: print(message, file=sys.stderr))
    makers = lb.endpoint_makers(state)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username=lb.USERNAME))
    rngs = {name: random.Random(1) for name in makers}

    def request(name):
        path, uses_token = makers[name](rngs[name])
        extra = {"HTTP_AUTHORIZATION": f"Token {state['token']}"} if uses_token else {}
        return client.get(path, **extra)

    queries = {}
    for name in makers:  # warm-up, and the queries of one request
        request(name)
        with CaptureQueriesContext(connection) as ctx:
            request(name)
        queries[name] = len(ctx.captured_queries)
    print(json.dumps({"endpoints": list(makers), "queries": queries}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        cpu, statuses = [], set()
        for _ in range(ask["n"]):
            c0 = time.process_time()
            response = request(ask["endpoint"])
            cpu.append((time.process_time() - c0) * 1000)
            statuses.add(response.status_code)
        print(json.dumps({"cpu": cpu, "statuses": sorted(statuses)}), flush=True)


def start(checkout, args):
    cmd = [sys.executable, __file__, "--worker", str(checkout), "--pg", args.pg, "--db", args.db, "--redis", args.redis]
    proc = subprocess.Popen(cmd, cwd=checkout, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hello = json.loads(proc.stdout.readline())
    return proc, hello


def ask(proc, endpoint, n):
    proc.stdin.write(json.dumps({"endpoint": endpoint, "n": n}) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="the checkout to compare against")
    parser.add_argument("--new", default=".", help="the checkout with the change (default: this one)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--block", type=int, default=10, help="requests of one endpoint asked of a side at a time")
    parser.add_argument("--only", default="", help="comma-separated endpoints (default: all both sides have)")
    parser.add_argument("--pg", default=os.environ.get("GLASSLOOP_LOAD_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--db", default="glassloop_load")
    parser.add_argument("--redis", default=os.environ.get("GLASSLOOP_LOAD_REDIS", "redis://127.0.0.1:6379/12"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, f"{args.pg}/{args.db}", args.redis)
    if not args.base:
        parser.error("--base is required")
    sides = {"base": Path(args.base).resolve(), "new": Path(args.new).resolve()}
    procs = {side: start(path, args) for side, path in sides.items()}
    try:
        names = [n for n in procs["new"][1]["endpoints"] if n in procs["base"][1]["endpoints"]]
        if args.only:
            names = [n for n in names if n in args.only.split(",")]
        cpu = {side: {n: [] for n in names} for side in sides}
        statuses = {side: {n: set() for n in names} for side in sides}
        for r in range(args.rounds):
            for name in names:
                for side in (("base", "new") if r % 2 == 0 else ("new", "base")):
                    answer = ask(procs[side][0], name, args.block)
                    cpu[side][name] += answer["cpu"]
                    statuses[side][name].update(answer["statuses"])
    finally:
        for proc, _ in procs.values():
            proc.stdin.close()
            proc.wait(timeout=30)
    out = {}
    for name in names:
        base, new = statistics.median(cpu["base"][name]), statistics.median(cpu["new"][name])
        out[name] = {"base_cpu_ms": round(base, 2), "new_cpu_ms": round(new, 2),
                     "change_pct": round(100 * (new - base) / base, 1),
                     "queries": [procs["base"][1]["queries"][name], procs["new"][1]["queries"][name]],
                     "statuses": [sorted(statuses["base"][name]), sorted(statuses["new"][name])]}
    total_base = sum(e["base_cpu_ms"] for e in out.values())
    total_new = sum(e["new_cpu_ms"] for e in out.values())
    print(json.dumps({
        "bench": "profile-ab", "base": str(sides["base"]), "new": str(sides["new"]),
        "requests_per_endpoint_and_side": args.rounds * args.block, "endpoints": out,
        "sum_of_medians_ms": [round(total_base, 2), round(total_new, 2)],
        "change_pct": round(100 * (total_new - total_base) / total_base, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
