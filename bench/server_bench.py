"""runql against a real ZenML server: the mirror's first fill, an incremental sync, and
questions answered from the mirror, each beside ZenML's own client over the same REST API.

usage: python3 bench/server_bench.py [--runs 100000] [--runql PATH] [--pages 3]

Serves the grown store (bench/grow_store.py, cached under ~/.cache/runql/bench; a copy, since
the server writes its logins) with a real ZenML 0.98 server (zenml[server] under uvicorn, the
venv ~/.cache/runql/venvs/server-0.98.0 the tests use), makes an API key through the API, then
  1. fills runql's mirror from empty (whole process: seconds and peak RSS), beside ZenML's
     client paging the same hydrated lists (--pages pages of each, extrapolated to all);
  2. syncs after one new run made by ZenML's client through the API, and with no change;
  3. answers two questions from the mirror, beside ZenML's client over REST.
"""

import argparse
import json
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

ROOT = Path(__file__).resolve().parent.parent
VENV = Path.home() / ".cache/runql/venvs/server-0.98.0"
FIXTURE = ROOT / "tests/fixtures/zenml-0.98.0/zenml.db"

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

LATEST_OUTPUTS = (
    "SELECT o.step_name, o.output_name, o.uri FROM runs r JOIN outputs o ON o.run_id = r.run_id "
    "WHERE r.pipeline_name = 'first_pipeline' AND r.run_rindex = -1 ORDER BY 1, 2"
)
FAILURE_RATE = (
    "SELECT pipeline_name, count(*) AS runs, sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed "
    "FROM runs GROUP BY pipeline_name ORDER BY pipeline_name"
)


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--runql", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/runql"))
    parser.add_argument("--pages", type=int, default=3)
    args = parser.parse_args()
    cache = Path.home() / ".cache/runql/bench"
    store = cache / f"zenml-{args.runs}.db"
    if not store.exists():
        subprocess.run([sys.executable, str(ROOT / "bench/grow_store.py"), str(FIXTURE), str(store), str(args.runs)], check=True)
    work = Path(tempfile.mkdtemp(prefix="runql-server-bench-"))
    served = work / "zenml.db"
    shutil.copyfile(store, served)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, ZENML_SERVER="true", ZENML_CONFIG_PATH=str(work / "server-config"),
               ZENML_STORE_URL=f"sqlite:///{served}", ZENML_SERVER_JWT_SECRET_KEY="runql-bench-0123456789abcdef0123456789",
               ZENML_SERVER_AUTO_ACTIVATE="true", ZENML_ANALYTICS_OPT_IN="false", ZENML_LOGGING_VERBOSITY="WARN")
    server = subprocess.Popen([str(VENV / "bin/uvicorn"), "zenml.zen_server.zen_server_api:app", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"))
    try:
        creds = json.loads(subprocess.run([str(VENV / "bin/python"), str(ROOT / "tests/fixtures/zenml_server.py"), url],
                                          check=True, capture_output=True, text=True).stdout)
        key = creds["api_key"]
        mirror_cache = work / "runql-cache"
        ours = dict(os.environ, ZENML_STORE_API_KEY=key, RUNQL_CACHE_DIR=str(mirror_cache))
        client = dict(os.environ, ZENML_STORE_URL=url, ZENML_STORE_API_KEY=key, ZENML_CONFIG_PATH=str(work / "client-config"),
                      ZENML_ANALYTICS_OPT_IN="false", ZENML_LOGGING_VERBOSITY="ERROR")
        print(f"server: ZenML 0.98.0 on {url}, store {store.name} ({args.runs} runs)")

        # 1. The first fill, beside the client paging the same hydrated lists.
        secs, rss = timed([args.runql, "--store", url, "-c", "SELECT count(*) FROM runs"], ours)
        mirror = next((mirror_cache / "mirrors").iterdir())
        size = sum(f.stat().st_size for f in mirror.rglob("*") if f.is_file())
        print(f"first fill: {secs:.1f} s, peak RSS {rss:.0f} MB, mirror {size / 1e6:.0f} MB")
        out = subprocess.run([str(VENV / "bin/python"), "-c", CLIENT_PAGES, str(args.pages)], env=client,
                             capture_output=True, text=True, check=True)
        estimate = 0.0
        for line in out.stdout.splitlines():
            name, s, read, total = line.rsplit(" ", 3)
            part = float(s) / int(read) * int(total)
            estimate += part
            print(f"  ZenML client, hydrated {name}: {float(s):.1f} s for {read} of {total} pages of 500, about {part:.0f} s for all")
        print(f"  ZenML client paging the same lists: about {estimate:.0f} s ({estimate / secs:.1f}x runql's fill)")

        # 2. Syncs: nothing new, then one new run made through the API.
        idle = [timed([args.runql, "--store", url, "-c", "SELECT 1"], ours)[0] for _ in range(3)]
        print(f"sync with nothing new: {statistics.median(idle) * 1000:.0f} ms (median of 3, whole process)")
        subprocess.run([str(VENV / "bin/python"), str(ROOT / "tests/fixtures/server_pipeline.py"), "1"], env=client,
                       cwd=work, check=True, capture_output=True)
        secs, rss = timed([args.runql, "--store", url, "-c", "SELECT count(*) FROM runs"], ours)
        print(f"sync after one new run: {secs * 1000:.0f} ms, peak RSS {rss:.0f} MB (whole process)")

        # 3. Questions from the mirror, beside ZenML's client over REST.
        latest = statistics.median(timed([args.runql, "--store", url, "--offline", "-c", LATEST_OUTPUTS], ours)[0] for _ in range(5))
        rate = statistics.median(timed([args.runql, "--store", url, "--offline", "-c", FAILURE_RATE], ours)[0] for _ in range(5))
        out = subprocess.run([str(VENV / "bin/python"), str(CLIENT_QUESTIONS), str(args.pages)], env=client,
                             capture_output=True, text=True, check=True)
        their_latest = float(out.stdout.splitlines()[0].split()[-1])
        _, s, read, pages = out.stdout.splitlines()[1].rsplit(" ", 3)
        their_rate = float(s) / int(read) * int(pages)
        print(f"runs[-1] outputs: runql (mirror, --offline) {latest * 1000:.0f} ms, ZenML client over REST "
              f"{their_latest * 1000:.0f} ms: {their_latest / latest:.0f}x")
        print(f"failure rate, all runs: runql {rate * 1000:.0f} ms, ZenML client over REST about {their_rate:.0f} s "
              f"({read} of {pages} pages read, extrapolated): {their_rate / rate:.0f}x")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
