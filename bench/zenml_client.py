"""Times ZenML's own Client on the benchmark's questions (run inside a ZenML venv, with
ZENML_CONFIG_PATH pointing at a config dir whose default store is the grown store, or with
ZENML_STORE_URL/ZENML_STORE_API_KEY naming a server).

    python zenml_client.py PAGES [--all]

Without --all, prints two lines: `runs[-1] outputs <seconds>` and
`failure rate <seconds> <pages read> <pages>`. With --all, one line per question of
bench.QUESTIONS, in its order: `<seconds> <pages read> <pages>`. A question that needs every
run or every step pages through them 1,000 at a time; it reads at most PAGES pages and the
caller extrapolates to all of them (the ZenML client has no aggregation: it lists).
"""

import sys
import time
from datetime import datetime, timedelta, timezone

from zenml.client import Client

pages = int(sys.argv[1]) if len(sys.argv) > 1 else 3
every = "--all" in sys.argv[2:]
client = Client()


def paged(lister, **filters):
    """Reads up to `pages` pages of 1,000 with `lister`; returns (items, pages read, pages)."""
    items, read, total = [], 0, 1
    for page in range(1, pages + 1):
        result = lister(size=1000, page=page, **filters)
        total = result.total_pages
        items.extend(result.items)
        read += 1
        if page >= total:
            break
    return items, read, max(total, 1)


def timed(question):
    start = time.perf_counter()
    read, total = question()
    return time.perf_counter() - start, read, total


def runs_minus_one_outputs():
    latest = client.list_pipeline_runs(pipeline_name="first_pipeline", size=1, sort_by="desc:created").items[0]
    [v.uri for s in latest.steps.values() for vs in s.outputs.values() for v in vs]
    return 1, 1


def failure_rate(window=True):
    filters = {}
    if window:
        since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=90)
        filters["start_time"] = f"gte:{since:%Y-%m-%d %H:%M:%S}"
    runs, read, total = paged(client.list_pipeline_runs, **filters)
    sum(1 for r in runs if r.status.value == "failed")
    return read, total


def all_steps():
    # Steps name their run, not their pipeline: each pipeline's share needs the runs too.
    steps, read, total = paged(client.list_run_steps, hydrate=True)
    sum(1 for s in steps if s.status.value == "cached")
    return read, total


def one_run_by_name():
    run = client.get_pipeline_run("first-custom")
    [(s.name, s.status, name) for s in run.steps.values() for name in s.outputs]
    return 1, 1


def runs_per_month():
    runs, read, total = paged(client.list_pipeline_runs, hydrate=True)
    {(r.start_time.year, r.start_time.month) for r in runs if r.start_time}
    return read, total


def latest(lister, sort_by, size):
    def question():
        lister(sort_by=sort_by, size=size, hydrate=True)
        return 1, 1

    return question


def one_runs_steps():
    run = client.get_pipeline_run("first-custom")
    client.list_run_steps(pipeline_run_id=run.id, hydrate=True, size=1000)
    return 1, 1


def latest_failed():
    runs = client.list_pipeline_runs(status="failed", sort_by="desc:start_time", size=5, hydrate=True)
    for r in runs.items:
        client.list_run_steps(pipeline_run_id=r.id, status="failed", hydrate=True)
    return 1, 1


if not every:
    print(f"runs[-1] outputs {timed(runs_minus_one_outputs)[0]:.3f}")
    secs, read, total = timed(lambda: failure_rate(window=False))
    print(f"failure rate {secs:.3f} {read} {total}")
    sys.exit(0)

# bench.QUESTIONS, in its order.
QUESTIONS = [
    failure_rate,
    all_steps,  # step duration p50/p95 of one pipeline: every step is listed
    all_steps,  # cache hit rate per pipeline
    runs_minus_one_outputs,
    one_run_by_name,
    runs_per_month,
    latest(client.list_pipeline_runs, "desc:start_time", 3),
    latest(client.list_run_steps, "desc:start_time", 3),
    latest(client.list_artifact_versions, "desc:created", 3),
    latest(client.list_run_steps, "asc:created", 10),
    one_runs_steps,
    latest_failed,
]
for question in QUESTIONS:
    secs, read, total = timed(question)
    print(f"{secs:.3f} {read} {total}", flush=True)
