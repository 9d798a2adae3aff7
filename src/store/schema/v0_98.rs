//! ZenML's `pipeline_snapshot` era with run numbers and indexes, from 0.95.0 (checked
//! against stores written by 0.98). ZenML's migration chain pins what it relies on:
//! `step_configuration.step_run_id` came in 0.91.1 (af27025fe19c), `pipeline_run.index` in
//! 0.93.0 (6e4eb89f632d), `pipeline_run.exception_info` in 0.93.2 (0e5c99d02aa7) and the
//! `step_run (project_id, pipeline_run_id, ...)` index the step counts use in 0.95.0
//! (c465032f0ec0). Releases 0.91 to 0.94 are read with the early snapshot mapping (`v0_90`).
//!
//! - A run's compiled configuration is its `pipeline_snapshot.pipeline_configuration`
//!   (or, for runs without a snapshot, `pipeline_run.pipeline_configuration`).
//! - A step's configuration is the `step_configuration` row of its own step run (dynamic
//!   pipelines) or of its snapshot and name (static ones), else the legacy
//!   `step_run.step_configuration` column.
//! - Datetimes are naive UTC text `YYYY-MM-DD HH:MM:SS.ffffff`; ids are 32 hex digits.
//! - Subqueries on `step_run` repeat `project_id`, because ZenML's index on it leads with
//!   `project_id`: without it SQLite cannot use the index and scans every step run.

use super::{
    JoinSql, RUN_CONFIG, RUN_PARAMETERS, RUN_TAGS, SchemaMapping, TableSql, col, joined, window,
};

const STEP_CONFIG: &str = "COALESCE(scd.config, scs.config, s.step_configuration)";

pub static MAPPING: SchemaMapping = SchemaMapping {
    name: "pipeline_snapshot era with run index (ZenML 0.95+)",
    since: (0, 95, 0),
    versions: &["0.95.0", "0.98.0"],
    tables: &[PIPELINES, RUNS, STEPS, OUTPUTS, INPUTS, METADATA],
};

/// Each pipeline's run count and first start, in one pass over the runs: as correlated
/// subqueries (one per column, and again in the index's ordering) they walked every run
/// three times (1.7 s at 100k runs).
pub(super) const PIPELINES: TableSql = TableSql {
    table: "pipelines",
    from: "pipeline p",
    joins: &[JoinSql {
        alias: "rs",
        sql: "LEFT JOIN (SELECT pipeline_id, COUNT(*) AS n, MIN(start_time) AS first_start \
              FROM pipeline_run GROUP BY pipeline_id) rs ON rs.pipeline_id = p.id",
        needs: &[],
    }],
    filter: None,
    missing: &[],
    overrides: &[],
    key: &["p.id"],
    columns: &[
        col("pipeline_id", "p.id"),
        col("pipeline_name", "p.name"),
        col("created", "p.created"),
        joined("run_count", "COALESCE(rs.n, 0)", &["rs"]),
        joined("first_run_start", "rs.first_start", &["rs"]),
        window(
            "pipeline_index",
            "ROW_NUMBER() OVER (ORDER BY rs.first_start IS NULL, rs.first_start, p.created, p.id) - 1",
            &["rs"],
        ),
        col("description", "p.description"),
    ],
};

const RUNS: TableSql = TableSql {
    table: "runs",
    from: "pipeline_run r",
    joins: &[
        JoinSql {
            alias: "p",
            sql: "LEFT JOIN pipeline p ON p.id = r.pipeline_id",
            needs: &[],
        },
        JoinSql {
            alias: "sn",
            sql: "LEFT JOIN pipeline_snapshot sn ON sn.id = r.snapshot_id",
            needs: &[],
        },
        JoinSql {
            alias: "cr",
            sql: "LEFT JOIN code_reference cr ON cr.id = sn.code_reference_id",
            needs: &["sn"],
        },
        JoinSql {
            alias: "rc",
            sql: "LEFT JOIN (SELECT pipeline_id, COUNT(*) AS n FROM pipeline_run GROUP BY pipeline_id) rc \
                  ON rc.pipeline_id = r.pipeline_id",
            needs: &[],
        },
    ],
    filter: None,
    missing: &[],
    overrides: &[],
    key: &["r.id"],
    columns: &[
        col("run_id", "r.id"),
        col("run_name", "r.name"),
        col("pipeline_id", "r.pipeline_id"),
        joined("pipeline_name", "p.name", &["p"]),
        col("status", "r.status"),
        col("status_reason", "r.status_reason"),
        col("start_time", "r.start_time"),
        col("end_time", "r.end_time"),
        col("duration_s", duration_s!("r.start_time", "r.end_time")),
        col("run_index", "r.\"index\" - 1"),
        // Over every run, one aggregate of the runs per pipeline; for the latest few runs,
        // a count per run through the index on pipeline_id (a run without a pipeline has no
        // count in either: NULL).
        joined("run_rindex", "r.\"index\" - 1 - rc.n", &["rc"]).per_row(
            "CASE WHEN r.pipeline_id IS NOT NULL THEN r.\"index\" - 1 - (SELECT COUNT(*) \
             FROM pipeline_run pr WHERE pr.pipeline_id = r.pipeline_id) END",
            &[],
        ),
        col("is_cached", run_is_cached!("project_id")),
        joined("git_sha", "cr.\"commit\"", &["cr"]),
        col("tags", RUN_TAGS),
        joined("parameters", RUN_PARAMETERS, &["sn"]),
        joined("config", RUN_CONFIG, &["sn"]),
        col("created", "r.created"),
        col("updated", "r.updated"),
        col("exception", "r.exception_info"),
    ],
};

const STEPS: TableSql = TableSql {
    table: "steps",
    from: "step_run s",
    joins: &[
        JoinSql {
            alias: "r",
            sql: "LEFT JOIN pipeline_run r ON r.id = s.pipeline_run_id",
            needs: &[],
        },
        JoinSql {
            alias: "p",
            sql: "LEFT JOIN pipeline p ON p.id = r.pipeline_id",
            needs: &["r"],
        },
        JoinSql {
            alias: "scd",
            sql: "LEFT JOIN step_configuration scd ON scd.step_run_id = s.id",
            needs: &[],
        },
        JoinSql {
            alias: "scs",
            sql: "LEFT JOIN step_configuration scs ON scs.snapshot_id = s.snapshot_id \
                  AND scs.name = s.name AND scs.step_run_id IS NULL",
            needs: &[],
        },
    ],
    filter: None,
    missing: &[],
    overrides: &[],
    key: &["s.id"],
    columns: &[
        col("step_id", "s.id"),
        col("step_name", "s.name"),
        joined(
            "entrypoint",
            "json_extract(COALESCE(scd.config, scs.config, s.step_configuration), '$.spec.source.attribute')",
            &["scd", "scs"],
        ),
        col("run_id", "s.pipeline_run_id"),
        joined("run_name", "r.name", &["r"]),
        joined("pipeline_name", "p.name", &["p"]),
        col("status", "s.status"),
        col("is_cached", "s.status = 'cached'"),
        col("original_step_id", "s.original_step_run_id"),
        col("start_time", "s.start_time"),
        col("end_time", "s.end_time"),
        col("duration_s", duration_s!("s.start_time", "s.end_time")),
        // Counted through 0.98's (project_id, pipeline_run_id, ...) index rather than with
        // window functions: a window makes SQLite sort every step with all its columns
        // (config, source code) twice, and keeps filters on other columns out of the scan.
        col(
            "step_index",
            "(SELECT COUNT(*) FROM step_run x WHERE x.project_id = s.project_id \
             AND x.pipeline_run_id = s.pipeline_run_id AND (x.created, x.id) < (s.created, s.id))",
        ),
        col(
            "step_rindex",
            "-(SELECT COUNT(*) FROM step_run x WHERE x.project_id = s.project_id \
             AND x.pipeline_run_id = s.pipeline_run_id AND (x.created, x.id) >= (s.created, s.id))",
        ),
        joined(
            "parameters",
            "COALESCE(json_extract(COALESCE(scd.config, scs.config, s.step_configuration), \
             '$.step_config_overrides.parameters'), '{}')",
            &["scd", "scs"],
        ),
        joined("config", STEP_CONFIG, &["scd", "scs"]),
        col("cache_key", "s.cache_key"),
        col("code_hash", "s.code_hash"),
        col("docstring", "s.docstring"),
        col("source_code", "s.source_code"),
        col("exception", "s.exception_info"),
    ],
};

pub(super) const OUTPUTS: TableSql = TableSql {
    table: "outputs",
    from: "step_run_output_artifact o",
    joins: &[
        JoinSql {
            alias: "av",
            sql: "LEFT JOIN artifact_version av ON av.id = o.artifact_id",
            needs: &[],
        },
        JoinSql {
            alias: "a",
            sql: "LEFT JOIN artifact a ON a.id = av.artifact_id",
            needs: &["av"],
        },
        JoinSql {
            alias: "s",
            sql: "LEFT JOIN step_run s ON s.id = o.step_id",
            needs: &[],
        },
        JoinSql {
            alias: "r",
            sql: "LEFT JOIN pipeline_run r ON r.id = s.pipeline_run_id",
            needs: &["s"],
        },
        JoinSql {
            alias: "p",
            sql: "LEFT JOIN pipeline p ON p.id = r.pipeline_id",
            needs: &["r"],
        },
    ],
    filter: None,
    missing: &[],
    overrides: &[],
    key: &["o.step_id", "o.artifact_id"],
    columns: &[
        col("output_id", "o.artifact_id"),
        col("output_name", "o.name"),
        col("step_id", "o.step_id"),
        joined("step_name", "s.name", &["s"]),
        joined("run_id", "s.pipeline_run_id", &["s"]),
        joined("run_name", "r.name", &["r"]),
        joined("pipeline_name", "p.name", &["p"]),
        joined("artifact_name", "a.name", &["a"]),
        joined("artifact_version", "av.version", &["av"]),
        joined("artifact_type", "av.type", &["av"]),
        joined("data_type", import_path!("av.data_type"), &["av"]),
        joined("materializer", import_path!("av.materializer"), &["av"]),
        joined("uri", "av.uri", &["av"]),
        joined("content_hash", "av.content_hash", &["av"]),
        joined("created", "av.created", &["av"]),
    ],
};

pub(super) const INPUTS: TableSql = TableSql {
    table: "inputs",
    from: "step_run_input_artifact i",
    joins: &[JoinSql {
        alias: "s",
        sql: "LEFT JOIN step_run s ON s.id = i.step_id",
        needs: &[],
    }],
    filter: None,
    missing: &[],
    overrides: &[],
    key: &["i.step_id", "i.artifact_id", "i.name"],
    columns: &[
        col("step_id", "i.step_id"),
        joined("step_name", "s.name", &["s"]),
        joined("run_id", "s.pipeline_run_id", &["s"]),
        col("input_name", "i.name"),
        col("output_id", "i.artifact_id"),
        col("input_type", "i.type"),
    ],
};

pub(super) const METADATA: TableSql = TableSql {
    table: "metadata",
    from: "run_metadata_resource mr JOIN run_metadata m ON m.id = mr.run_metadata_id",
    joins: &[],
    // ZenML's client shows the latest value of each key of a resource; so does runql.
    filter: Some(
        "NOT EXISTS (SELECT 1 FROM run_metadata_resource mr2 JOIN run_metadata m2 ON m2.id = mr2.run_metadata_id \
         WHERE mr2.resource_id = mr.resource_id AND mr2.resource_type = mr.resource_type AND m2.key = m.key \
         AND (m2.created > m.created OR (m2.created = m.created AND m2.id > m.id)))",
    ),
    missing: &[],
    overrides: &[],
    // A row is a link of a value to a resource: one `run_metadata` value linked to a step
    // and to another step (or its run) is two rows under one `m.id`.
    key: &["mr.id"],
    columns: &[
        col("resource_type", resource_type!("mr")),
        col("resource_id", "mr.resource_id"),
        col("key", "m.key"),
        col("value", "m.value"),
        col("value_type", "m.type"),
        col("publisher_step_id", "m.publisher_step_id"),
        col("created", "m.created"),
    ],
};
