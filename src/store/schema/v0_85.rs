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

runs_and_steps_without_index!(
    "LEFT JOIN pipeline_deployment sn ON sn.id = r.deployment_id",
    "LEFT JOIN step_configuration scs ON scs.deployment_id = s.deployment_id AND scs.name = s.name"
);
