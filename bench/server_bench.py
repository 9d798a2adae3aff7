"""runql against a real ZenML server: the mirror's first fill, an incremental sync, and
questions answered from the mirror, each beside ZenML's own client over the same REST API.

usage: python3 bench/server_bench.py [--runs 100000] [--database mariadb|sqlite] [--runql PATH] [--pages 3]
                                     [--keep DIR]

Serves the grown store (bench/grow_store.py, cached under ~/.cache/runql/bench) with a real
ZenML 0.98 server (zenml[server] under uvicorn, the venv ~/.cache/runql/venvs/server-0.98.0 the
tests use), makes an API key through the API, then
  1. fills runql's mirror from empty (whole process: seconds and peak RSS; how long the server
     took over each list, from its access log), beside ZenML's client paging the same hydrated
     lists (--pages pages of each, extrapolated to all);
  2. syncs after one new run made by ZenML's client through the API, and with no change;
  3. answers two questions from the mirror, beside ZenML's client over REST.

--database mariadb (the default) serves the store from MariaDB, as production ZenML servers
keep theirs: the grown store loaded once by bench/mysql_bench.py's loader into a data dir of its
own (~/.cache/runql/bench/mariadb-server-N; the server writes to it, so each run adds its one
new run there). --database sqlite serves a copy of the SQLite file, as `zenml login --local`
does; there ZenML lists artifact versions slowly whatever the client (each one's producer step
is looked up by a query SQLite answers with a scan of every step run: no index on
step_run_output_artifact.artifact_id, which MySQL's foreign key gives).

--keep DIR keeps the server's port, config and runql's mirror in DIR: a later run with the same
DIR skips the fill (46 minutes at 100k runs) and measures syncs and questions against the mirror
the first one filled, e.g. after a change to runql's sync.
"""

import argparse
import collections
import json
import re
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the grown store)
import mysql_bench  # noqa: E402  (MariaDB: start, load)

ROOT = Path(__file__).resolve().parent.parent
VENV = Path.home() / ".cache/runql/venvs/server-0.98.0"

CLIENT_PAGES = """
import sys, time
from zenml.client import Client
pages = int(sys.argv[1])
c = Client()
for name, lister in [("runs", c.list_pipeline_runs), ("steps", c.list_run_steps),
                     ("artifact versions", c.list_artifact_versions)]:
    start = time.perf_counter(); total = read = 0
    for page in range(1, pages + 1):
        r = lister(hydrate=True, size=500, page=page)
        total = r.total_pages; read += 1
        if page >= total: break
    print(name, time.perf_counter() - start, read, total)
"""

CLIENT_QUESTIONS = ROOT / "bench/zenml_client.py"


def timed(cmd, env):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}: {proc.stderr.read().decode()[-800:]}")
    return elapsed, usage.ru_maxrss / 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ACCESS = re.compile(r"^\S+ (\d\d:\d\d:\d\d),(\d+) .*\"GET /api/v1/(\w+)")


def server_time_per_list(log, since):
    """Seconds from the first to the last answer of each list in the server's access log
    (lines after offset `since`), and how many pages each took."""
    spans = collections.OrderedDict()
    with open(log, errors="replace") as f:
        f.seek(since)
        for line in f:
            m = ACCESS.match(re.sub(r"\x1b\[[0-9;]*m", "", line))
            if not m:
                continue
            h, mi, se = (int(x) for x in m.group(1).split(":"))
            t = h * 3600 + mi * 60 + se + int(m.group(2)) / 1000
            first, last, n = spans.get(m.group(3), (t, t, 0))
            spans[m.group(3)] = (first, t, n + 1)
    return [(name, last - first, n) for name, (first, last, n) in spans.items()]


def serve_from_mariadb(runs, store):
    """MariaDB holding the grown store, with a ZenML user; returns (process, store URL)."""
    base = Path.home() / f".cache/runql/bench/mariadb-server-{runs}"
    base.mkdir(parents=True, exist_ok=True)
    proc, port, sock = mysql_bench.start_server(base)
    if not (base / "loaded").exists():
        mysql_bench.load(store, sock, base)
    mysql_bench.root(sock, "CREATE USER IF NOT EXISTS 'zenml'@'127.0.0.1' IDENTIFIED BY 'zenml-bench-pw'; "
                     "GRANT ALL ON zenml.* TO 'zenml'@'127.0.0.1'")
    return proc, f"mysql://zenml:zenml-bench-pw@127.0.0.1:{port}/zenml"


def fill(args, url, ours, log, mirror_cache, client, skip=False):
    """Step 1: the first fill (or, with a kept mirror, a sync of it), then ZenML's client
    paging the same hydrated lists."""
    since = log.stat().st_size
    secs, rss = timed([args.runql, "--store", url, "-c", "SELECT count(*) FROM runs"], ours)
    if skip:
        print(f"  sync of the kept mirror: {secs:.1f} s, peak RSS {rss:.0f} MB")
        return
    mirror = next((mirror_cache / "mirrors").iterdir())
    size = sum(f.stat().st_size for f in mirror.rglob("*") if f.is_file())
    print(f"first fill: {secs:.1f} s, peak RSS {rss:.0f} MB, mirror {size / 1e6:.0f} MB")
    for name, span, pages in server_time_per_list(log, since):
        print(f"  the server's answers to /{name}: {pages} requests over {span:.1f} s")
    out = subprocess.run([str(VENV / "bin/python"), "-c", CLIENT_PAGES, str(args.pages)], env=client,
                         capture_output=True, text=True, check=True)
    estimate = 0.0
    for line in out.stdout.splitlines():
        name, s, read, total = line.rsplit(" ", 3)
        part = float(s) / int(read) * int(total)
        estimate += part
        print(f"  ZenML client, hydrated {name}: {float(s):.1f} s for {read} of {total} pages of 500, about {part:.0f} s for all")
    print(f"  ZenML client paging the same lists: about {estimate:.0f} s ({estimate / secs:.1f}x runql's fill)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--runql", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/runql"))
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--database", choices=["mariadb", "sqlite"], default="mariadb")
    parser.add_argument("--keep", type=Path, help="keep the port, server config and mirror here")
    args = parser.parse_args()
    store = bench.grown_store(args.runs)
    if args.keep:
        work = args.keep.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="runql-server-bench-"))
    database = None
    if args.database == "mariadb":
        database, store_url = serve_from_mariadb(args.runs, store)
    else:
        served = work / "zenml.db"
        # A kept mirror mirrors the served copy as the last run left it.
        if not (args.keep and served.exists()):
            shutil.copyfile(store, served)
        store_url = f"sqlite:///{served}"
    # The mirror's folder is named by host and port: a kept mirror needs the same port.
    kept_port = work / "port"
    port = int(kept_port.read_text()) if args.keep and kept_port.exists() else free_port()
    if args.keep:
        kept_port.write_text(str(port))
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, ZENML_SERVER="true", ZENML_CONFIG_PATH=str(work / "server-config"),
               ZENML_STORE_URL=store_url, ZENML_SERVER_JWT_SECRET_KEY="runql-bench-0123456789abcdef0123456789",
               ZENML_SERVER_AUTO_ACTIVATE="true", ZENML_ANALYTICS_OPT_IN="false", ZENML_LOGGING_VERBOSITY="WARN")
    # uvicorn's access lines (what server_time_per_list reads) go to its standard output.
    log_file = open(work / "server.log", "a")
    server = subprocess.Popen([str(VENV / "bin/uvicorn"), "zenml.zen_server.zen_server_api:app", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        creds = json.loads(subprocess.run([str(VENV / "bin/python"), str(ROOT / "tests/fixtures/zenml_server.py"), url],
                                          check=True, capture_output=True, text=True).stdout)
        key = creds["api_key"]
        mirror_cache = work / "runql-cache"
        ours = dict(os.environ, ZENML_STORE_API_KEY=key, RUNQL_CACHE_DIR=str(mirror_cache))
        client = dict(os.environ, ZENML_STORE_URL=url, ZENML_STORE_API_KEY=key, ZENML_CONFIG_PATH=str(work / "client-config"),
                      ZENML_ANALYTICS_OPT_IN="false", ZENML_LOGGING_VERBOSITY="ERROR")
        print(f"server: ZenML 0.98.0 on {url}, {args.database} store grown from {store.name} ({args.runs} runs)")

        # 1. The first fill, beside the client paging the same hydrated lists.
        log = work / "server.log"
        if (mirror_cache / "mirrors").exists():
            print(f"first fill: skipped, the mirror {args.keep} keeps is synced instead")
            fill(args, url, ours, log, mirror_cache, client, skip=True)
        else:
            fill(args, url, ours, log, mirror_cache, client)
        # 2. Syncs: nothing new, then one new run made through the API.
        idle = [timed([args.runql, "--store", url, "-c", "SELECT 1"], ours)[0] for _ in range(3)]
        print(f"sync with nothing new: {statistics.median(idle) * 1000:.0f} ms (median of 3, whole process)")
        synced = []
        for _ in range(args.reps):
            subprocess.run([str(VENV / "bin/python"), str(ROOT / "tests/fixtures/server_pipeline.py"), "1"], env=client,
                           cwd=work, check=True, capture_output=True)
            since = log.stat().st_size
            synced.append(timed([args.runql, "--store", url, "-c", "SELECT count(*) FROM runs"], ours))
        print(f"sync after one new run: {statistics.median(s for s, _ in synced) * 1000:.0f} ms median of {len(synced)}, "
              f"peak RSS {max(m for _, m in synced):.0f} MB (whole process); the last one's requests:")
        for name, span, pages in server_time_per_list(log, since):
            print(f"  /{name}: {pages} requests over {span:.2f} s")

        # 3. Every benchmark question from the mirror (as a user runs it: a sync that finds
        # nothing new, then the answer; and --offline), beside ZenML's client over REST.
        out = subprocess.run([str(VENV / "bin/python"), str(CLIENT_QUESTIONS), str(args.pages), "--all"], env=client,
                             capture_output=True, text=True, check=True)
        theirs = [line.split() for line in out.stdout.splitlines()]
        print(f"{'question':<42} {'runql ms':>9} {'--offline':>9} {'ZenML client ms':>15} {'ratio':>7}")
        for (name, sql, _), (secs, read, pages) in zip(bench.QUESTIONS, theirs):
            synced = statistics.median(timed([args.runql, "--store", url, "-c", sql], ours)[0] for _ in range(args.reps))
            offline = statistics.median(timed([args.runql, "--store", url, "--offline", "-c", sql], ours)[0]
                                        for _ in range(args.reps))
            estimate = float(secs) / int(read) * int(pages)
            note = f" ({read} of {pages} pages, extrapolated)" if int(read) < int(pages) else ""
            print(f"{name:<42} {synced * 1000:>9.0f} {offline * 1000:>9.0f} {estimate * 1000:>15.0f} "
                  f"{estimate / synced:>6.0f}x{note}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if database:
            database.terminate()
            database.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
