"""Reads a runql export with pyarrow, as an outside engine would, and prints what it found.

usage: export_check.py DIR  ->  one JSON object: {table: {"rows": n, "columns": {name: type}},
"metadata": {key: value}} per table, taken from the Parquet files alone.
"""

import json
import sys

import pyarrow.dataset as ds
import pyarrow.parquet as pq

out = {}
root = sys.argv[1]
manifest = json.load(open(f"{root}/manifest.json"))
for entry in manifest["tables"]:
    table = entry["table"]
    dataset = ds.dataset(f"{root}/{table}", format="parquet", partitioning="hive" if entry["partition"] else None)
    data = dataset.to_table()
    first = dataset.files[0]
    meta = pq.read_metadata(first).metadata or {}
    out[table] = {
        "rows": data.num_rows,
        "columns": {f.name: str(f.type) for f in data.schema},
        "metadata": {k.decode(): v.decode() for k, v in meta.items() if k.decode().startswith("runql.")},
    }
print(json.dumps(out))
