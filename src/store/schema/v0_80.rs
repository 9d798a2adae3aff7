//! ZenML's first `project` releases (0.80 to 0.83.0), checked against stores written by 0.80.
//!
//! Like the deployment era (`v0_85`) except where ZenML's migrations say otherwise:
//! - Step configurations are one JSON object per deployment,
//!   `pipeline_deployment.step_configurations`, keyed by step name (split into the
//!   `step_configuration` table by migration 3d7e39f3ac92, first released in 0.83.1).
//! - No `pipeline_run.status_reason` and no `artifact_version.content_hash` (both 0.85.0),
//!   no `step_run.exception_info` (0.84.1): those columns read as NULL.
//! - The client lists a run's metadata with its steps' (see `METADATA`).

use super::v0_98::{INPUTS, OUTPUTS, PIPELINES};
use super::{JoinSql, SchemaMapping, TableSql, col, joined, window, without};

pub static MAPPING: SchemaMapping = SchemaMapping {
    name: "pipeline_deployment era, step configurations in the deployment (ZenML 0.80 to 0.83.0)",
    since: (0, 80, 0),
    versions: &["0.80.0", "0.82.1"],
    tables: &[
        PIPELINES,
        without(RUNS, &["status_reason"]),
        without(STEPS, &["exception"]),
        without(OUTPUTS, &["content_hash"]),
        INPUTS,
        METADATA,
    ],
};

runs_and_steps_without_index!(
    "project_id",
    "LEFT JOIN pipeline_deployment sn ON sn.id = r.deployment_id",
    "LEFT JOIN pipeline_deployment scs ON scs.id = s.deployment_id",
    "COALESCE(json_extract(scs.step_configurations, '$.\"' || s.name || '\"'), s.step_configuration)",
    // 0.60 to 0.81 keep a step's parameters in its `config`, 0.82 in its overrides.
    "COALESCE(json_extract(scs.step_configurations, '$.\"' || s.name || '\".step_config_overrides.parameters'), \
     json_extract(scs.step_configurations, '$.\"' || s.name || '\".config.parameters'))"
);

/// ZenML's client of this era shows a run's metadata together with its steps' metadata, keyed
/// `<step name>::<key>` (`PipelineRunSchema.fetch_metadata_collection`); runql does too.
/// (Schedule metadata, keyed `schedule:<key>`, is not included: no fixture has a schedule.)
pub(super) const METADATA: TableSql = TableSql {
    table: "metadata",
    from: "(SELECT u.*, ROW_NUMBER() OVER (PARTITION BY u.resource_type, u.resource_id, u.key \
            ORDER BY u.created DESC, u.id DESC) AS nth FROM ( \
            SELECT mr.resource_type AS resource_type, mr.resource_id AS resource_id, m.key AS key, \
                   m.id AS id, m.value AS value, m.type AS type, \
                   m.publisher_step_id AS publisher_step_id, m.created AS created \
            FROM run_metadata_resource mr JOIN run_metadata m ON m.id = mr.run_metadata_id \
            UNION ALL \
            SELECT 'pipeline_run', s.pipeline_run_id, s.name || '::' || m.key, m.id, m.value, m.type, \
                   m.publisher_step_id, m.created \
            FROM run_metadata_resource mr JOIN run_metadata m ON m.id = mr.run_metadata_id \
            JOIN step_run s ON s.id = mr.resource_id WHERE mr.resource_type = 'step_run') u) md",
    joins: &[],
    // The latest value of each key, as in every era.
    filter: Some("md.nth = 1"),
    missing: &[],
    overrides: &[],
    key: &[],
    columns: &[
        col("resource_type", resource_type!("md")),
        col("resource_id", "md.resource_id"),
        col("key", "md.key"),
        col("value", "md.value"),
        col("value_type", "md.type"),
        col("publisher_step_id", "md.publisher_step_id"),
        col("created", "md.created"),
    ],
};
