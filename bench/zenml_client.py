"""Times ZenML's own Client on two of the benchmark's questions (run inside a ZenML venv,
with ZENML_CONFIG_PATH pointing at a config dir whose default store is the grown store).

Prints two lines: `runs[-1] outputs <seconds>` and `failure rate <seconds> <pages read> <pages>`.
The failure rate pages through runs 1,000 at a time; it reads at most --pages pages and the
caller extrapolates to all of them.
"""

import sys
import time

from zenml.client import Client

pages = int(sys.argv[1]) if len(sys.argv) > 1 else 3
client = Client()

start = time.perf_counter()
latest = client.list_pipeline_runs(pipeline_name="first_pipeline", size=1, sort_by="desc:created").items[0]
outputs = [v.uri for s in latest.steps.values() for vs in s.outputs.values() for v in vs]
print(f"runs[-1] outputs {time.perf_counter() - start:.3f}")

start = time.perf_counter()
failed = total_pages = read = 0
for page in range(1, pages + 1):
    result = client.list_pipeline_runs(size=1000, page=page)
    total_pages = result.total_pages
    failed += sum(1 for r in result.items if r.status.value == "failed")
    read += 1
    if page >= total_pages:
        break
print(f"failure rate {time.perf_counter() - start:.3f} {read} {total_pages}")
