"""Reads while ZenML writes: real ZenML runs pipelines in a loop against a store while runql
queries it continuously, for a bounded time.

usage: python3 bench/soak.py --zenml-python VENV/bin/python [--seconds 180] [--database sqlite|mariadb]

Checks, on every query: it succeeds; the run count never goes backwards; a finished run's
step count never changes once seen (its steps are final), and equals the steps the same
query joins to it; ZenML's own writes never fail or wait on runql (`database is locked` in
its output on SQLite; a lock wait timeout or deadlock on MariaDB). Prints the counts.
Build first: cargo build --release.

- sqlite (default): ZenML's default local store. The venv is one make_store.sh made (ZenML,
  sklearn, pandas); the writer imports tests/fixtures/pipelines.py.
- mariadb: a throwaway Debian mariadbd on a free loopback port (bench/mysql_bench.py's),
  ZenML writing through `ZENML_STORE_URL=mysql://...` as a ZenML server's database is
  written, runql reading as a user granted SELECT only. The venv needs ZenML and pymysql
  (a zenml[server] venv .ci/run makes will do); the writer imports
  tests/fixtures/server_pipeline.py and adds a pipeline whose step fails.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WRITER = """
import itertools, random
import pipelines as p
for i in itertools.count():
    p.first_pipeline(gamma=random.choice([0.001, 0.01, 0.1, 0.5]))
    p.data_pipeline(rows=random.randint(5, 50))
    try:
        p.flaky_pipeline(fail=True)
    except Exception:
        pass
    print(f"round {i} done", flush=True)
"""

# The MariaDB writer: ZenML's pipelines with no ML libraries (the server venvs have none).
MARIADB_WRITER = """
import itertools
from zenml import pipeline, step
import server_pipeline as p

@step
def fails(n: int) -> int:
    raise ValueError("this step fails on purpose")

@pipeline(enable_cache=False)
def failing_pipeline(n: int = 1):
    fails(n)

for i in itertools.count():
    p.server_pipeline(n=i)
    p.server_pipeline.with_options(tags=["soak"])(n=i)
    try:
        failing_pipeline(n=i)
    except Exception:
        pass
    print(f"round {i} done", flush=True)
"""

QUERY = (
    "SELECT r.run_id, r.status, r.pipeline_name, count(s.step_id) AS joined, "
    "max(n.steps) AS counted FROM runs r LEFT JOIN steps s ON s.run_id = r.run_id "
    "LEFT JOIN (SELECT run_id, count(*) AS steps FROM steps GROUP BY run_id) n ON n.run_id = r.run_id "
    "GROUP BY r.run_id, r.status, r.pipeline_name"
)

FINISHED = {"completed", "failed", "cached", "stopped"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zenml-python", required=True)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--database", choices=["sqlite", "mariadb"], default="sqlite")
    args = parser.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    runql = str(target / "release" / "runql")
    work = Path(tempfile.mkdtemp(prefix="runql-soak-"))
    env = dict(
        os.environ,
        ZENML_CONFIG_PATH=str(work / "config"),
        ZENML_ANALYTICS_OPT_IN="false",
        ZENML_LOGGING_VERBOSITY="WARN",
        ZENML_ENABLE_RICH_TRACEBACK="false",
    )
    log = open(work / "zenml.log", "w")
    # ZenML resolves step sources from the main module's folder: the writer and the fixture
    # pipelines it imports live side by side there.
    mariadb = None
    reader_env = dict(os.environ)
    if args.database == "mariadb":
        import mysql_bench  # the bench's throwaway mariadbd

        mariadb, port, sock = mysql_bench.start_server(work / "mariadb")
        password = os.urandom(8).hex()
        mysql_bench.root(sock, (
            f"CREATE USER 'zenml'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            "GRANT ALL ON zenml.* TO 'zenml'@'127.0.0.1'; "
            f"CREATE USER 'reader'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            "GRANT SELECT ON zenml.* TO 'reader'@'127.0.0.1';"
        ))
        env["ZENML_STORE_URL"] = f"mysql://zenml:{password}@127.0.0.1:{port}/zenml"
        # The password reaches runql as MYSQL_PWD, never on its command line.
        reader_env["MYSQL_PWD"] = password
        store = f"mysql://reader@127.0.0.1:{port}/zenml"
        (work / "server_pipeline.py").write_text((ROOT / "tests/fixtures/server_pipeline.py").read_text())
        (work / "writer.py").write_text(MARIADB_WRITER)
    else:
        (work / "pipelines.py").write_text((ROOT / "tests/fixtures/pipelines.py").read_text())
        (work / "writer.py").write_text(WRITER)
        store = work / "config/local_stores/default_zen_store/zenml.db"
    writer = subprocess.Popen(
        [args.zenml_python, str(work / "writer.py")],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + args.seconds
    queries = failures = 0
    latencies = []
    last_runs = 0
    final_steps = {}
    ever_read = False
    problems = []
    try:
        while time.time() < deadline:
            if args.database == "sqlite" and not store.exists():
                time.sleep(0.5)
                continue
            start = time.perf_counter()
            out = subprocess.run(
                [runql, "--store", str(store), "--format", "json", "-c", QUERY],
                capture_output=True, text=True, env=reader_env,
            )
            latencies.append(time.perf_counter() - start)
            queries += 1
            if out.returncode != 0:
                # A store ZenML has only begun to create has no database or schema version
                # yet; until runql has read it once, that is not a failure.
                if not ever_read:
                    time.sleep(0.5)
                    continue
                failures += 1
                problems.append(f"query failed: {out.stderr.strip()}")
                continue
            ever_read = True
            rows = json.loads(out.stdout)
            if len(rows) < last_runs:
                problems.append(f"run count went back from {last_runs} to {len(rows)}")
            last_runs = len(rows)
            for row in rows:
                if row["status"] not in FINISHED:
                    continue
                steps = row["counted"] or 0
                if row["joined"] != steps:
                    problems.append(f"run {row['run_id']}: {row['joined']} steps joined, {steps} counted")
                seen = final_steps.setdefault(row["run_id"], steps)
                if seen != steps:
                    problems.append(f"finished run {row['run_id']} had {seen} steps, now {steps}")
    finally:
        writer.terminate()
        writer.wait()
        log.close()
        if mariadb:
            mariadb.terminate()
            mariadb.wait()
    if not ever_read:
        problems.append("runql never read the store")
    zenml_log = (work / "zenml.log").read_text()
    # What a reader holding ZenML's writes up would show in ZenML's output.
    waits = ["database is locked", "Lock wait timeout exceeded", "Deadlock found"]
    locked = sum(zenml_log.count(w) for w in waits)
    rounds = zenml_log.count(" done")
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0
    p95 = latencies[int(len(latencies) * 0.95)] * 1000 if latencies else 0
    print(f"soak ({args.database}): {args.seconds:.0f} s, ZenML wrote {last_runs} runs ({rounds} rounds of 3 pipelines), "
          f"runql ran {queries} queries: {failures} failed, p50 {p50:.0f} ms, p95 {p95:.0f} ms; "
          f"lock waits in ZenML's log: {locked}; problems: {len(problems)}")
    for p in problems[:20]:
        print("  " + p)
    sys.exit(1 if problems or locked or failures else 0)


if __name__ == "__main__":
    main()
