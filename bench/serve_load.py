"""Load on `runql serve`: concurrent PostgreSQL clients running reports in a loop.

usage: python3 bench/serve_load.py [--runs 100000] [--clients 50] [--seconds 60] [--mirror]
           [--runql PATH] [--python PY]

Grows the fixture store to --runs runs once (bench/grow_store.py, cached under
~/.cache/runql/bench, as bench/bench.py does), starts `runql --store <it> serve` on a free
loopback port with a SCRAM user, and has --clients psycopg 3 connections (one thread each)
run a mix of dashboard questions (named reports and ad-hoc aggregates, some with bound
parameters) back to back for --seconds. Prints, per question and over all: queries, errors,
p50/p95/max latency; the queries per second; and the server's peak RSS (VmHWM), its RSS at
the end, and its open file descriptors before and after. A connection that fails is counted
and reconnects. The psycopg comes from --python (default: the ci venv .ci/run makes).
"""

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, SQL with psycopg placeholders, parameters)
QUESTIONS = [
    ("failure_rate report", "SELECT * FROM failure_rate(%s, %s)", ("2025-01-01", "2100-01-01")),
    ("cache_hit_rate report", "SELECT * FROM cache_hit_rate()", None),
    ("pipelines report", "SELECT * FROM pipelines()", None),
    ("latest_run report", "SELECT * FROM latest_run(%s)", ("first_pipeline",)),
    ("run_steps report", "SELECT * FROM run_steps(%s)", ("data_pipeline",)),
    (
        "runs per day, 30 days",
        "SELECT date_trunc('day', start_time) AS day, pipeline_name, count(*) FROM runs "
        "WHERE start_time >= now() - INTERVAL '30 days' GROUP BY 1, 2 ORDER BY 1",
        None,
    ),
    (
        "latest failed runs",
        "SELECT run_name, pipeline_name, start_time FROM runs WHERE status = 'failed' "
        "ORDER BY start_time DESC LIMIT 10",
        None,
    ),
    ("one run by name", "SELECT * FROM runs WHERE run_name = %s", None),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runql_binary(given):
    if given:
        return given
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/runql-target"))
    return str(Path(target) / "release/runql")


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=100_000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--mirror", action="store_true", help="serve the store through --mirror")
    p.add_argument("--runql")
    p.add_argument("--python", default=str(Path.home() / ".cache/runql/venvs/ci/bin/python"))
    args = p.parse_args()
    if args.python != sys.executable and not os.environ.get("RUNQL_LOAD_CHILD"):
        # Re-run under the Python that has psycopg.
        env = dict(os.environ, RUNQL_LOAD_CHILD="1")
        os.execve(args.python, [args.python, __file__, *sys.argv[1:]], env)
    import psycopg

    from bench import grown_store  # the benchmark's store, grown once for both

    store = grown_store(args.runs)
    cache = store.parent
    run_name = subprocess.run(
        ["sqlite3", "-readonly", str(store), "SELECT name FROM pipeline_run ORDER BY random() LIMIT 1"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()

    port = free_port()
    env = dict(os.environ, RUNQL_SERVE_PASSWORD="load", RUNQL_CACHE_DIR=str(cache / "runql-cache"))
    cmd = [runql_binary(args.runql), "--store", str(store)]
    if args.mirror:
        cmd.append("--mirror")
    cmd += ["serve", "--listen", f"127.0.0.1:{port}", "--max-connections", str(args.clients + 10)]
    log = open(cache / "serve-load.log", "w")
    server = subprocess.Popen(cmd, env=env, stderr=log, stdout=subprocess.DEVNULL)
    dsn = f"host=127.0.0.1 port={port} user=runql password=load dbname=runql"
    deadline = time.time() + 120
    while True:
        try:
            psycopg.connect(dsn).close()
            break
        except Exception:
            if time.time() > deadline or server.poll() is not None:
                sys.exit("runql serve did not start; see " + str(cache / "serve-load.log"))
            time.sleep(0.2)
    # One warm-up pass, so page-cache effects of the first reads are not in the figures.
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, sql, params in QUESTIONS:
            try:
                conn.execute(sql, params if params is not None else ((run_name,) if "%s" in sql else None)).fetchall()
            except Exception as e:
                time.sleep(0.5)
                sys.exit(f"warm-up {name}: {e}; server exit status {server.poll()}")
    fds_before = fds(server.pid)

    latencies = {name: [] for name, _, _ in QUESTIONS}
    errors = {name: 0 for name, _, _ in QUESTIONS}
    reconnects = [0]
    lock = threading.Lock()
    stop = time.time() + args.seconds

    def client(seed):
        rng = random.Random(seed)
        conn = None
        while time.time() < stop:
            name, sql, params = rng.choice(QUESTIONS)
            if params is None and "%s" in sql:
                params = (run_name,)
            try:
                if conn is None:
                    conn = psycopg.connect(dsn, autocommit=True)
                t = time.perf_counter()
                conn.execute(sql, params).fetchall()
                took = time.perf_counter() - t
                with lock:
                    latencies[name].append(took)
            except Exception as e:
                with lock:
                    errors[name] += 1
                    reconnects[0] += 1
                print(f"{name}: {e}".splitlines()[0], file=sys.stderr)
                try:
                    conn and conn.close()
                except Exception:
                    pass
                conn = None
        if conn is not None:
            conn.close()

    started = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    time.sleep(1)
    peak = vm(server.pid, "VmHWM")
    rss_end = vm(server.pid, "VmRSS")
    fds_after = fds(server.pid)
    server.terminate()
    server.wait(timeout=30)

    def ms(xs, q):
        if not xs:
            return float("nan")
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000

    print(f"store: {store} ({args.runs} runs){' via --mirror' if args.mirror else ''}; "
          f"{args.clients} clients for {elapsed:.0f} s")
    print(f"{'question':<24} {'queries':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    everything = []
    for name, _, _ in QUESTIONS:
        xs = latencies[name]
        everything += xs
        print(f"{name:<24} {len(xs):>8} {errors[name]:>6} {ms(xs, 0.5):>8.1f} {ms(xs, 0.95):>8.1f} {ms(xs, 1.0):>8.1f}")
    total_errors = sum(errors.values())
    print(f"{'all':<24} {len(everything):>8} {total_errors:>6} {ms(everything, 0.5):>8.1f} "
          f"{ms(everything, 0.95):>8.1f} {ms(everything, 1.0):>8.1f}")
    print(f"throughput: {len(everything) / elapsed:.1f} queries/s")
    print(f"server peak RSS {peak / 1024:.0f} MB, RSS at the end {rss_end / 1024:.0f} MB; "
          f"open fds before {fds_before}, after {fds_after}")
    sys.exit(1 if total_errors else 0)


if __name__ == "__main__":
    main()
