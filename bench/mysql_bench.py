"""runql on a MariaDB store against the `mariadb` CLI on the same database.

usage: python3 bench/mysql_bench.py [--runs 100000] [--reps 5]

The store is bench.py's grown SQLite store (bench/grow_store.py, a real ZenML 0.98 store cloned
to --runs runs) copied into MariaDB: the schema is the one real ZenML 0.98 created in MariaDB
(tests/fixtures/mysql-0.98.0/zenml.sql, utf8mb4), its rows replaced by the grown store's,
table by table (LOAD DATA; datetimes lose their fraction of a second, as MySQL's DATETIME
does). The server is Debian's mariadbd, started here on a free loopback port with its data dir
kept under ~/.cache/runql/bench (loaded once). Then each question alternates runql one-shot
(over TCP, as a reader with SELECT only) and the `mariadb` CLI running hand-written SQL on
ZenML's raw tables (over the socket), --reps times: medians, their ratio, runql's peak RSS.
Build first: cargo build --release.
"""

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the questions and the timing helpers)

ROOT = Path(__file__).resolve().parent.parent
DUMP = ROOT / "tests/fixtures/mysql-0.98.0/zenml.sql"

# The raw questions of bench.QUESTIONS in MariaDB's SQL, same order.
RAW = [
    "SELECT p.name, count(*), sum(r.status = 'failed') FROM pipeline_run r JOIN pipeline p ON p.id = r.pipeline_id "
    "WHERE r.start_time >= UTC_TIMESTAMP() - INTERVAL 90 DAY GROUP BY p.name ORDER BY p.name",
    "WITH d AS (SELECT s.name, TIMESTAMPDIFF(MICROSECOND, s.start_time, s.end_time) / 1e6 AS dur, "
    "row_number() OVER (PARTITION BY s.name ORDER BY TIMESTAMPDIFF(MICROSECOND, s.start_time, s.end_time)) AS rn, "
    "count(*) OVER (PARTITION BY s.name) AS n FROM step_run s JOIN pipeline_run r ON r.id = s.pipeline_run_id "
    "JOIN pipeline p ON p.id = r.pipeline_id WHERE p.name = 'first_pipeline' AND s.status <> 'cached') "
    "SELECT name, n, max(CASE WHEN rn = FLOOR(0.5 * (n - 1)) + 1 THEN dur END), "
    "max(CASE WHEN rn = FLOOR(0.95 * (n - 1)) + 1 THEN dur END) FROM d GROUP BY name, n ORDER BY name",
    "SELECT p.name, count(*), sum(s.status = 'cached') FROM step_run s JOIN pipeline_run r ON r.id = s.pipeline_run_id "
    "JOIN pipeline p ON p.id = r.pipeline_id GROUP BY p.name ORDER BY p.name",
    "WITH latest AS (SELECT r.id FROM pipeline_run r JOIN pipeline p ON p.id = r.pipeline_id "
    "WHERE p.name = 'first_pipeline' ORDER BY r.`index` DESC LIMIT 1) "
    "SELECT s.name, o.name, av.uri FROM latest JOIN step_run s ON s.pipeline_run_id = latest.id "
    "JOIN step_run_output_artifact o ON o.step_id = s.id JOIN artifact_version av ON av.id = o.artifact_id ORDER BY 1, 2",
    "SELECT s.name, s.status, o.name FROM pipeline_run r JOIN step_run s ON s.pipeline_run_id = r.id "
    "LEFT JOIN step_run_output_artifact o ON o.step_id = s.id WHERE r.name = 'first-custom' ORDER BY 1, 3",
    "SELECT DATE_FORMAT(start_time, '%Y-%m'), count(*) FROM pipeline_run GROUP BY 1 ORDER BY 1",
    "SELECT * FROM pipeline_run ORDER BY start_time DESC LIMIT 3",
    "SELECT * FROM step_run ORDER BY start_time DESC LIMIT 3",
    "SELECT o.*, av.* FROM step_run_output_artifact o JOIN artifact_version av ON av.id = o.artifact_id "
    "ORDER BY av.created DESC LIMIT 3",
    "SELECT * FROM step_run LIMIT 10",
    "SELECT s.* FROM pipeline_run r JOIN step_run s ON s.pipeline_run_id = r.id WHERE r.name = 'first-custom' "
    "ORDER BY s.created, s.id",
    "SELECT r.name, r.start_time, s.name, s.exception_info FROM pipeline_run r JOIN step_run s "
    "ON s.pipeline_run_id = r.id WHERE r.status = 'failed' AND s.status = 'failed' ORDER BY r.start_time DESC LIMIT 5",
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(base):
    data = base / "data"
    if not data.exists():
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                        "--auth-root-authentication-method=normal", "--skip-test-db",
                        f"--user={os.environ.get('USER', 'root')}"], check=True, capture_output=True)
    port = free_port()
    sock = base / "sock"
    if sock.exists():
        sock.unlink()
    proc = subprocess.Popen([
        "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
        f"--socket={sock}", f"--pid-file={base}/pid", f"--user={os.environ.get('USER', 'root')}", "--skip-log-bin",
        "--innodb-buffer-pool-size=2G", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
        "--secure-file-priv=", "--max-allowed-packet=256M",
    ], stdout=subprocess.DEVNULL, stderr=open(base / "server.log", "w"))
    for _ in range(300):
        if sock.exists():
            break
        time.sleep(0.1)
    else:
        sys.exit("MariaDB did not start: see " + str(base / "server.log"))
    return proc, port, sock


def root(sock, sql, database=None, stdin=None):
    cmd = ["mariadb", "--no-defaults", "-uroot", f"--socket={sock}", "-N", "-B"]
    if database:
        cmd.append(database)
    if sql is not None:
        cmd += ["-e", sql]
    out = subprocess.run(cmd, stdin=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"mariadb: {out.stderr}")
    return out.stdout


def csv_value(v):
    if v is None:
        return "\\N"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    s = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\0", "\\0")
    return '"' + s + '"'


def load(store, sock, base):
    print(f"loading {store} into MariaDB (once) ...", file=sys.stderr)
    root(sock, "DROP DATABASE IF EXISTS zenml; CREATE DATABASE zenml")
    with open(DUMP) as dump:
        root(sock, None, "zenml", stdin=dump)
    tables = root(sock, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'zenml'").split()
    src = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    have = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in tables:
        root(sock, f"SET FOREIGN_KEY_CHECKS = 0; DELETE FROM `{table}`", "zenml")
        if table not in have:
            continue
        mysql_cols = root(sock, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'zenml' "
                          f"AND table_name = '{table}' ORDER BY ordinal_position").split()
        sqlite_cols = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
        cols = [c for c in mysql_cols if c in sqlite_cols]
        path = base / f"{table}.csv"
        n = 0
        with open(path, "w") as f:
            select = ", ".join(f'"{c}"' for c in cols)
            for row in src.execute(f'SELECT {select} FROM "{table}"'):
                f.write(",".join(csv_value(v) for v in row) + "\n")
                n += 1
        col_list = ", ".join(f"`{c}`" for c in cols)
        root(sock, f"SET FOREIGN_KEY_CHECKS = 0; SET UNIQUE_CHECKS = 0; LOAD DATA INFILE '{path}' INTO TABLE `{table}` "
             "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' "
             f"LINES TERMINATED BY '\\n' ({col_list})", "zenml")
        path.unlink()
        if n:
            print(f"  {table}: {n} rows", file=sys.stderr)
    root(sock, "ANALYZE TABLE pipeline_run, step_run, artifact_version, step_run_output_artifact, "
         "step_run_input_artifact, run_metadata, run_metadata_resource, pipeline, tag_resource", "zenml")
    (base / "loaded").write_text(str(store))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--source", help="another SQLite ZenML 0.98 store to load (a check of the loader)")
    args = parser.parse_args()
    runql = bench.runql_binary()
    cache = Path.home() / ".cache/runql/bench"
    store = Path(args.source) if args.source else cache / f"zenml-{args.runs}.db"
    if not store.exists():
        sys.exit(f"no {store}: run bench/bench.py --runs {args.runs} first (it grows the store)")
    base = cache / (f"mariadb-{args.runs}" if not args.source else f"mariadb-{store.stem}-check")
    base.mkdir(parents=True, exist_ok=True)
    proc, port, sock = start_server(base)
    try:
        if not (base / "loaded").exists():
            load(store, sock, base)
        root(sock, "CREATE USER IF NOT EXISTS 'bench'@'127.0.0.1' IDENTIFIED BY 'bench-pw'; "
             "GRANT SELECT ON zenml.* TO 'bench'@'127.0.0.1'")
        url = f"mysql://bench:bench-pw@127.0.0.1:{port}/zenml"
        runs = root(sock, "SELECT count(*) FROM pipeline_run", "zenml").strip()
        steps = root(sock, "SELECT count(*) FROM step_run", "zenml").strip()
        version = root(sock, "SELECT VERSION()").strip()
        print(f"store: MariaDB {version}, {runs} runs, {steps} step runs; {args.reps} repetitions, medians")
        print(f"{'question':<42} {'runql ms':>9} {'mariadb ms':>10} {'ratio':>6} {'runql RSS MB':>12}")
        peak = 0
        for (name, ours, _), raw in zip(bench.QUESTIONS, RAW):
            a, b, rss = [], [], []
            for _ in range(args.reps):
                t, m = bench.timed([runql, "--store", url, "--format", "csv", "-c", ours])
                a.append(t)
                rss.append(m)
                t, _ = bench.timed(["mariadb", "--no-defaults", "-uroot", f"--socket={sock}", "-B", "zenml", "-e", raw])
                b.append(t)
            ma, mb = statistics.median(a), statistics.median(b)
            peak = max(peak, max(rss))
            print(f"{name:<42} {ma * 1000:>9.1f} {mb * 1000:>10.1f} {ma / mb:>6.2f} {max(rss) / 1024:>12.1f}")
        print(f"peak RSS over all questions: {peak / 1024:.1f} MB")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
