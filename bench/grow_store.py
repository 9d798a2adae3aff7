"""Grows a real ZenML store to N runs by cloning its runs with fresh ids, names and times.

usage: grow_store.py SOURCE_DB TARGET_DB RUNS [--seed 7]

Every clone keeps every reference ZenML's schema has: the run's snapshot, its step runs (with
their step configurations through the snapshot), new artifact versions with unique version
numbers for the steps that ran, cached steps pointing at their clone's original step run and
its artifact versions, input and parent links, run/step/artifact metadata and run tags. About
10% of the clones are failed runs. Times are spread back over the past year. Runs in one
transaction with the stdlib sqlite3, so 100k runs take a few minutes, not hours.
"""

import random
import sqlite3
import sys
import uuid
from datetime import datetime, timedelta


def new_id():
    return uuid.uuid4().hex


def shift(text, delta):
    if text is None:
        return None
    t = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    return (t + delta).strftime("%Y-%m-%d %H:%M:%S.%f")


def rows(db, sql, *args):
    cur = db.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def insert(db, table, row):
    cols = ", ".join(f'"{c}"' for c in row)
    marks = ", ".join("?" for _ in row)
    db.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', list(row.values()))


def main():
    source, target, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(7)
    src = sqlite3.connect(source)
    src.execute(f"VACUUM INTO '{target}'")
    src.close()
    db = sqlite3.connect(target)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    # Only finished runs are templates: a clone of a finished run is a finished run.
    runs = rows(db, "SELECT * FROM pipeline_run ORDER BY created")
    steps = {r["id"]: rows(db, "SELECT * FROM step_run WHERE pipeline_run_id = ? ORDER BY created", r["id"]) for r in runs}
    outputs = {s["id"]: rows(db, "SELECT * FROM step_run_output_artifact WHERE step_id = ?", s["id"]) for ss in steps.values() for s in ss}
    inputs = {s["id"]: rows(db, "SELECT * FROM step_run_input_artifact WHERE step_id = ?", s["id"]) for ss in steps.values() for s in ss}
    parents = rows(db, "SELECT * FROM step_run_parents")
    versions = {v["id"]: v for v in rows(db, "SELECT * FROM artifact_version")}
    next_version = {a: n for a, n in db.execute("SELECT artifact_id, max(version_number) FROM artifact_version GROUP BY artifact_id")}
    meta = rows(db, "SELECT r.*, m.id AS m_id, m.created AS m_created, m.updated AS m_updated, m.stack_component_id, m.user_id, m.project_id, m.key, m.value, m.type, m.publisher_step_id FROM run_metadata_resource r JOIN run_metadata m ON m.id = r.run_metadata_id")
    meta_by_resource = {}
    for m in meta:
        meta_by_resource.setdefault(m["resource_id"], []).append(m)
    tags = rows(db, "SELECT * FROM tag_resource WHERE resource_type = 'pipeline_run'")
    tags_by_run = {}
    for t in tags:
        tags_by_run.setdefault(t["resource_id"], []).append(t)
    run_index = {p: n for p, n in db.execute("SELECT pipeline_id, max(\"index\") FROM pipeline_run GROUP BY pipeline_id")}
    now = datetime.utcnow()

    finished = [r for r in runs if r["status"] == "completed"]
    failed_runs = [r for r in runs if r["status"] == "failed"] or finished
    clones = 0
    while len(runs) + clones < total:
        # ~5% clones of failed runs, ~5% completed runs whose last step fails: ~10% failed.
        template = rng.choice(failed_runs) if rng.random() < 0.05 else rng.choice(finished)
        clones += 1
        # Spread clones back over a year, newest last.
        age = timedelta(days=365 * (1 - clones / total), seconds=rng.random() * 3600)
        t0 = datetime.strptime(template["created"], "%Y-%m-%d %H:%M:%S.%f")
        delta = (now - age) - t0
        failed = template["status"] == "completed" and rng.random() < 0.053
        run_id = new_id()
        run = dict(template)
        run_index[run["pipeline_id"]] += 1
        run.update(
            id=run_id,
            name=f"{template['name']}-clone-{clones}",
            created=shift(template["created"], delta),
            updated=shift(template["updated"], delta),
            start_time=shift(template["start_time"], delta),
            end_time=shift(template["end_time"], delta),
            index=run_index[run["pipeline_id"]],
            orchestrator_run_id=new_id(),
        )
        if failed:
            run["status"] = "failed"
        insert(db, "pipeline_run", run)
        for t in tags_by_run.get(template["id"], []):
            insert(db, "tag_resource", dict(t, id=new_id(), resource_id=run_id))
        step_map, version_map = {}, {}
        for s in steps[template["id"]]:
            step_map[s["id"]] = new_id()
        for position, s in enumerate(steps[template["id"]]):
            step = dict(s)
            step.update(
                id=step_map[s["id"]],
                pipeline_run_id=run_id,
                created=shift(s["created"], delta),
                updated=shift(s["updated"], delta),
                start_time=shift(s["start_time"], delta),
                end_time=shift(s["end_time"], delta),
                latest_heartbeat=shift(s["latest_heartbeat"], delta),
                original_step_run_id=step_map.get(s["original_step_run_id"], s["original_step_run_id"]),
            )
            if failed and position == len(steps[template["id"]]) - 1:
                step["status"] = "failed"
            insert(db, "step_run", step)
            for o in outputs[s["id"]]:
                old = o["artifact_id"]
                if s["status"] != "cached" and old not in version_map:
                    v = dict(versions[old])
                    next_version[v["artifact_id"]] += 1
                    v.update(id=new_id(), version=str(next_version[v["artifact_id"]]), version_number=next_version[v["artifact_id"]],
                             created=shift(v["created"], delta), updated=shift(v["updated"], delta))
                    insert(db, "artifact_version", v)
                    version_map[old] = v["id"]
                    for m in meta_by_resource.get(old, []):
                        clone_metadata(db, m, v["id"], delta, step_map)
                insert(db, "step_run_output_artifact", dict(o, step_id=step["id"], artifact_id=version_map.get(old, old)))
            for m in meta_by_resource.get(s["id"], []):
                clone_metadata(db, m, step["id"], delta, step_map)
        for s in steps[template["id"]]:
            for i in inputs[s["id"]]:
                insert(db, "step_run_input_artifact", dict(i, step_id=step_map[s["id"]], artifact_id=version_map.get(i["artifact_id"], i["artifact_id"])))
        for p in parents:
            if p["child_id"] in step_map:
                insert(db, "step_run_parents", dict(p, child_id=step_map[p["child_id"]], parent_id=step_map.get(p["parent_id"], p["parent_id"])))
        for m in meta_by_resource.get(template["id"], []):
            clone_metadata(db, m, run_id, delta, step_map)
        if clones % 10000 == 0:
            print(f"{len(runs) + clones} runs", file=sys.stderr)
    for pipeline_id, n in run_index.items():
        db.execute("UPDATE pipeline SET run_count = ? WHERE id = ?", (n, pipeline_id))
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(f"{target}: {len(runs) + clones} runs")


def clone_metadata(db, m, resource_id, delta, step_map):
    metadata_id = new_id()
    insert(db, "run_metadata", {
        "id": metadata_id, "created": shift(m["m_created"], delta), "updated": shift(m["m_updated"], delta),
        "stack_component_id": m["stack_component_id"], "user_id": m["user_id"], "project_id": m["project_id"],
        "key": m["key"], "value": m["value"], "type": m["type"],
        "publisher_step_id": step_map.get(m["publisher_step_id"], m["publisher_step_id"]),
    })
    insert(db, "run_metadata_resource", {"id": new_id(), "resource_id": resource_id, "resource_type": m["resource_type"], "run_metadata_id": metadata_id})


if __name__ == "__main__":
    main()
