//! ZenML's `pipeline_deployment` era (before 0.90), checked against stores written by 0.85.
//!
//! What differs from the snapshot era (`v0_98`), whose other tables this era shares:
//! - A run's compiled configuration is `pipeline_deployment.pipeline_configuration`, reached
//!   through `pipeline_run.deployment_id`; step configurations are matched by
//!   (`deployment_id`, `name`).
//! - `pipeline_run` has no `index`: runs are numbered by creation within their pipeline, as
//!   ZenML's client lists them.

use super::v0_98::{INPUTS, METADATA, OUTPUTS, PIPELINES};
use super::{JoinSql, SchemaMapping, TableSql, col, joined, window};

pub static MAPPING: SchemaMapping = SchemaMapping {
    name: "pipeline_deployment era (ZenML 0.85 to 0.89)",
    // 0.80 to 0.84 differ again (no step_configuration table, no status_reason): not read.
    since: (0, 85, 0),
    versions: &["0.85.0"],
    tables: &[PIPELINES, RUNS, STEPS, OUTPUTS, INPUTS, METADATA],
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
            sql: "LEFT JOIN pipeline_deployment sn ON sn.id = r.deployment_id",
            needs: &[],
        },
        JoinSql {
            alias: "cr",
            sql: "LEFT JOIN code_reference cr ON cr.id = sn.code_reference_id",
            needs: &["sn"],
        },
    ],
    filter: None,
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
        // No `index` column before 0.90: ZenML numbered runs by creation.
        window(
            "run_index",
            "ROW_NUMBER() OVER (PARTITION BY r.pipeline_id ORDER BY r.created, r.id) - 1",
            &[],
        ),
        window(
            "run_rindex",
            "-ROW_NUMBER() OVER (PARTITION BY r.pipeline_id ORDER BY r.created DESC, r.id DESC)",
            &[],
        ),
        col(
            "is_cached",
            "(EXISTS (SELECT 1 FROM step_run s WHERE s.project_id = r.project_id AND s.pipeline_run_id = r.id) \
             AND NOT EXISTS (SELECT 1 FROM step_run s WHERE s.project_id = r.project_id \
             AND s.pipeline_run_id = r.id AND s.status <> 'cached'))",
        ),
        joined("git_sha", "cr.\"commit\"", &["cr"]),
        col(
            "tags",
            "(SELECT group_concat(name, char(31)) FROM (SELECT t.name AS name FROM tag_resource tr \
             JOIN tag t ON t.id = tr.tag_id WHERE tr.resource_id = r.id \
             AND tr.resource_type = 'pipeline_run' ORDER BY t.name))",
        ),
        joined(
            "parameters",
            "COALESCE(json_extract(COALESCE(sn.pipeline_configuration, r.pipeline_configuration), '$.parameters'), '{}')",
            &["sn"],
        ),
        joined(
            "config",
            "COALESCE(sn.pipeline_configuration, r.pipeline_configuration)",
            &["sn"],
        ),
        col("created", "r.created"),
        col("updated", "r.updated"),
        // `pipeline_run.exception_info` came in 0.90: `exception` is NULL here.
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
            alias: "scs",
            sql: "LEFT JOIN step_configuration scs ON scs.deployment_id = s.deployment_id AND scs.name = s.name",
            needs: &[],
        },
    ],
    filter: None,
    columns: &[
        col("step_id", "s.id"),
        col("step_name", "s.name"),
        joined(
            "entrypoint",
            "json_extract(COALESCE(scs.config, s.step_configuration), '$.spec.source.attribute')",
            &["scs"],
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
        window(
            "step_index",
            "ROW_NUMBER() OVER (PARTITION BY s.pipeline_run_id ORDER BY s.created, s.id) - 1",
            &[],
        ),
        window(
            "step_rindex",
            "-ROW_NUMBER() OVER (PARTITION BY s.pipeline_run_id ORDER BY s.created DESC, s.id DESC)",
            &[],
        ),
        joined(
            "parameters",
            "COALESCE(json_extract(COALESCE(scs.config, s.step_configuration), \
             '$.step_config_overrides.parameters'), '{}')",
            &["scs"],
        ),
        joined(
            "config",
            "COALESCE(scs.config, s.step_configuration)",
            &["scs"],
        ),
        col("cache_key", "s.cache_key"),
        col("code_hash", "s.code_hash"),
        col("docstring", "s.docstring"),
        col("source_code", "s.source_code"),
        col("exception", "s.exception_info"),
    ],
};
