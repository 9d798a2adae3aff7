"""runql's benchmark: fixed questions on a grown ZenML store, runql one-shot against the
sqlite3 CLI running equivalent hand-written SQL on the raw ZenML schema of the same file.

usage: python3 bench/bench.py [--runs 100000] [--reps 5] [--mirror] [--zenml-python PY]

Grows the fixture store to --runs runs once (bench/grow_store.py; cached under
~/.cache/runql/bench), then for each question alternates runql and sqlite3 --reps times and
prints the medians and their ratio (runql / sqlite3: below 1.0 means runql is faster), plus
runql's cold start on the demo store and the peak RSS of each runql process.
Build first: cargo build --release (the binary is taken from $CARGO_TARGET_DIR or target/).

--mirror times runql reading through its local mirror of the store (`runql --mirror`, filled
once, timed) against the same sqlite3 queries; with --zenml-python (a python with ZenML
0.98) it also times the mirror's catch-up after one new run, made by real ZenML in a copy of
the store.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/zenml-0.98.0/zenml.db"

# (name, runql SQL, raw SQL on ZenML's schema for the sqlite3 CLI)
QUESTIONS = [
    (
        "failure rate per pipeline, 90-day window",
        "SELECT pipeline_name, count(*) AS runs, sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed "
        "FROM runs WHERE start_time >= now() - INTERVAL '90 days' GROUP BY pipeline_name ORDER BY pipeline_name",
        "SELECT p.name, count(*), sum(r.status = 'failed') FROM pipeline_run r JOIN pipeline p ON p.id = r.pipeline_id "
        "WHERE r.start_time >= datetime('now', '-90 days') GROUP BY p.name ORDER BY p.name",
    ),
    (
        "step duration p50/p95, one pipeline",
        "SELECT step_name, count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) AS p50, "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_s) AS p95 FROM steps "
        "WHERE pipeline_name = 'first_pipeline' AND NOT is_cached GROUP BY step_name ORDER BY step_name",
        "WITH d AS (SELECT s.name, (julianday(s.end_time) - julianday(s.start_time)) * 86400 AS dur, "
        "row_number() OVER (PARTITION BY s.name ORDER BY julianday(s.end_time) - julianday(s.start_time)) AS rn, "
        "count(*) OVER (PARTITION BY s.name) AS n FROM step_run s JOIN pipeline_run r ON r.id = s.pipeline_run_id "
        "JOIN pipeline p ON p.id = r.pipeline_id WHERE p.name = 'first_pipeline' AND s.status <> 'cached') "
        "SELECT name, n, max(CASE WHEN rn = CAST(0.5 * (n - 1) AS INT) + 1 THEN dur END), "
        "max(CASE WHEN rn = CAST(0.95 * (n - 1) AS INT) + 1 THEN dur END) FROM d GROUP BY name ORDER BY name",
    ),
    (
        "cache hit rate per pipeline",
        "SELECT pipeline_name, count(*) AS steps, sum(CASE WHEN is_cached THEN 1 ELSE 0 END) AS cached "
        "FROM steps GROUP BY pipeline_name ORDER BY pipeline_name",
        "SELECT p.name, count(*), sum(s.status = 'cached') FROM step_run s JOIN pipeline_run r ON r.id = s.pipeline_run_id "
        "JOIN pipeline p ON p.id = r.pipeline_id GROUP BY p.name ORDER BY p.name",
    ),
    (
        "runs[-1] outputs, one pipeline",
        "SELECT o.step_name, o.output_name, o.uri FROM runs r JOIN outputs o ON o.run_id = r.run_id "
        "WHERE r.pipeline_name = 'first_pipeline' AND r.run_rindex = -1 ORDER BY 1, 2",
        "WITH latest AS (SELECT r.id FROM pipeline_run r JOIN pipeline p ON p.id = r.pipeline_id "
        "WHERE p.name = 'first_pipeline' ORDER BY r.\"index\" DESC LIMIT 1) "
        "SELECT s.name, o.name, av.uri FROM latest JOIN step_run s ON s.pipeline_run_id = latest.id "
        "JOIN step_run_output_artifact o ON o.step_id = s.id JOIN artifact_version av ON av.id = o.artifact_id ORDER BY 1, 2",
    ),
    (
        "one run by name, steps and outputs",
        "SELECT s.step_name, s.status, o.output_name FROM steps s LEFT JOIN outputs o ON o.step_id = s.step_id "
        "WHERE s.run_name = 'first-custom' ORDER BY 1, 3",
        "SELECT s.name, s.status, o.name FROM pipeline_run r JOIN step_run s ON s.pipeline_run_id = r.id "
        "LEFT JOIN step_run_output_artifact o ON o.step_id = s.id WHERE r.name = 'first-custom' ORDER BY 1, 3",
    ),
    (
        "runs per month",
        "SELECT date_trunc('month', start_time) AS month, count(*) AS runs FROM runs GROUP BY 1 ORDER BY 1",
        "SELECT strftime('%Y-%m', start_time), count(*) FROM pipeline_run GROUP BY 1 ORDER BY 1",
    ),
    # The first queries a person types: the latest rows with every column, a peek, one run's
    # steps, the last failures. sqlite3 reads the raw table's own columns only; runql
    # computes its tables' (tags, configs, run numbers, names through joins).
    (
        "latest 3 runs, every column",
        "SELECT * FROM runs ORDER BY start_time DESC LIMIT 3",
        "SELECT * FROM pipeline_run ORDER BY start_time DESC LIMIT 3",
    ),
    (
        "latest 3 steps, every column",
        "SELECT * FROM steps ORDER BY start_time DESC LIMIT 3",
        "SELECT * FROM step_run ORDER BY start_time DESC LIMIT 3",
    ),
    (
        "latest 3 outputs, every column",
        "SELECT * FROM outputs ORDER BY created DESC LIMIT 3",
        "SELECT o.*, av.* FROM step_run_output_artifact o JOIN artifact_version av ON av.id = o.artifact_id "
        "ORDER BY av.created DESC LIMIT 3",
    ),
    (
        "peek: 10 steps, no order",
        "SELECT * FROM steps LIMIT 10",
        "SELECT * FROM step_run LIMIT 10",
    ),
    (
        "one run's steps, every column",
        "SELECT * FROM steps WHERE run_name = 'first-custom' ORDER BY step_index",
        "SELECT s.* FROM pipeline_run r JOIN step_run s ON s.pipeline_run_id = r.id WHERE r.name = 'first-custom' "
        "ORDER BY s.created, s.id",
    ),
    (
        "latest 5 failed runs, their failed steps",
        "SELECT r.run_name, r.start_time, s.step_name, s.exception FROM runs r JOIN steps s ON s.run_id = r.run_id "
        "WHERE r.status = 'failed' AND s.status = 'failed' ORDER BY r.start_time DESC LIMIT 5",
        "SELECT r.name, r.start_time, s.name, s.exception_info FROM pipeline_run r JOIN step_run s "
        "ON s.pipeline_run_id = r.id WHERE r.status = 'failed' AND s.status = 'failed' ORDER BY r.start_time DESC LIMIT 5",
    ),
]


def runql_binary():
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "runql"
    if not binary.exists():
        sys.exit(f"no {binary}: run cargo build --release first")
    return str(binary)


def timed(cmd):
    """Seconds and peak RSS (KiB) of one run of `cmd`, its output discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}: {proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss


def zenml_client(args, runql, store, cache):
    """ZenML's Client on `runs[-1]` outputs and the failure rate, against runql on the same."""
    import shutil

    config = cache / f"zenml-config-{args.runs}"
    db = config / "local_stores/default_zen_store/zenml.db"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store, db)  # a copy: the Client may write to its store
    env = dict(os.environ, ZENML_CONFIG_PATH=str(config), ZENML_ANALYTICS_OPT_IN="false", ZENML_LOGGING_VERBOSITY="ERROR")
    out = subprocess.run([args.zenml_python, str(ROOT / "bench/zenml_client.py"), "3"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"ZenML client failed: {out.stderr[-500:]}")
        return
    latest = float(out.stdout.splitlines()[0].split()[-1])
    _, secs, read, pages = out.stdout.splitlines()[1].rsplit(" ", 3)
    estimate = float(secs) / int(read) * int(pages)
    ours_latest = statistics.median(timed([runql, "--store", str(store), "--format", "csv", "-c", QUESTIONS[3][1]])[0] for _ in range(3))
    ours_rate = statistics.median(timed([runql, "--store", str(store), "--format", "csv", "-c", QUESTIONS[0][1]])[0] for _ in range(3))
    print(f"ZenML Client, runs[-1] outputs: {latest * 1000:.0f} ms (runql {ours_latest * 1000:.0f} ms, {latest / ours_latest:.1f}x)")
    print(f"ZenML Client, failure rate: {float(secs):.1f} s for {read} of {pages} pages of 1000 runs, "
          f"about {estimate:.0f} s for all (runql {ours_rate * 1000:.0f} ms, {estimate / ours_rate:.0f}x)")


def catch_up(args, runql, store, cache):
    """The mirror's catch-up after one new run, made by real ZenML in a copy of the store."""
    import shutil

    live = cache / f"zenml-{args.runs}-live.db"
    if not live.exists():
        shutil.copyfile(store, live)
    timed([runql, "--store", str(live), "--mirror", "-c", "SELECT 1"])
    config = cache / f"zenml-config-live-{args.runs}"
    env = dict(os.environ, ZENML_STORE_URL=f"sqlite:///{live}", ZENML_CONFIG_PATH=str(config),
               ZENML_ANALYTICS_OPT_IN="false", ZENML_LOGGING_VERBOSITY="ERROR")
    times = []
    for _ in range(args.reps):
        out = subprocess.run([args.zenml_python, str(ROOT / "tests/fixtures/server_pipeline.py"), "1"],
                             env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"ZenML could not run a pipeline: {out.stderr[-500:]}")
        times.append(timed([runql, "--store", str(live), "--mirror", "-c", "SELECT count(*) FROM runs"]))
    t = statistics.median(x[0] for x in times)
    rss = max(x[1] for x in times)
    print(f"catch-up after one new run (sync + count(*)): {t * 1000:.0f} ms median of {len(times)}, peak RSS {rss / 1024:.0f} MB")


def grown_store(runs):
    """The fixture store grown to `runs` runs, made once and kept in ~/.cache/runql/bench."""
    cache = Path.home() / ".cache/runql/bench"
    cache.mkdir(parents=True, exist_ok=True)
    store = cache / f"zenml-{runs}.db"
    if not store.exists():
        print(f"growing the fixture store to {runs} runs ...", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "bench/grow_store.py"), str(FIXTURE), str(store), str(runs)], check=True)
    return store


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--zenml-python",
        default=os.environ.get("RUNQL_ZENML_PYTHON"),
        help="a python with ZenML installed: also time ZenML's Client on two questions",
    )
    parser.add_argument("--mirror", action="store_true", help="runql reads through --mirror")
    args = parser.parse_args()
    runql = runql_binary()
    cache = Path.home() / ".cache/runql/bench"
    store = grown_store(args.runs)
    print(f"store: {store} ({store.stat().st_size / 1e6:.0f} MB, {args.runs} runs); {args.reps} repetitions, medians")
    flags = []
    if args.mirror:
        os.environ["RUNQL_CACHE_DIR"] = str(cache / "runql-cache")
        flags = ["--mirror"]
        t, m = timed([runql, "--store", str(store), "--mirror", "-c", "SELECT 1"])
        print(f"mirror filled (or found up to date) in {t:.1f} s, peak RSS {m / 1024:.0f} MB")
    print(f"{'question':<42} {'runql ms':>9} {'sqlite3 ms':>10} {'ratio':>6} {'runql RSS MB':>12}")
    peak = 0
    for name, ours, raw in QUESTIONS:
        a, b, rss = [], [], []
        for _ in range(args.reps):
            t, m = timed([runql, "--store", str(store), *flags, "--format", "csv", "-c", ours])
            a.append(t)
            rss.append(m)
            t, _ = timed(["sqlite3", "-readonly", "-csv", str(store), raw])
            b.append(t)
        ma, mb = statistics.median(a), statistics.median(b)
        peak = max(peak, max(rss))
        print(f"{name:<42} {ma * 1000:>9.1f} {mb * 1000:>10.1f} {ma / mb:>6.2f} {max(rss) / 1024:>12.1f}")
    cold = [timed([runql, "--demo", "-c", "SELECT 1"])[0] for _ in range(max(args.reps, 5))]
    print(f"cold start, runql --demo -c 'SELECT 1': {statistics.median(cold) * 1000:.1f} ms")
    if args.mirror:
        up = [timed([runql, "--store", str(store), "--mirror", "-c", "SELECT 1"])[0] for _ in range(max(args.reps, 5))]
        print(f"runql --mirror -c 'SELECT 1', store unchanged: {statistics.median(up) * 1000:.1f} ms")
        if args.zenml_python:
            catch_up(args, runql, store, cache)
        return
    if args.zenml_python:
        zenml_client(args, runql, store, cache)
    full = [timed([runql, "--store", str(store), "--format", "csv", "-c", "SELECT * FROM steps"]) for _ in range(1)]
    print(f"full scan of steps (csv to /dev/null): {full[0][0] * 1000:.0f} ms, peak RSS {full[0][1] / 1024:.1f} MB")
    print(f"peak RSS over all questions: {peak / 1024:.1f} MB")


if __name__ == "__main__":
    main()
