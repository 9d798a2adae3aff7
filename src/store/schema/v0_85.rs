//! ZenML's `pipeline_deployment` era with a `step_configuration` table (0.83.1 to 0.89),
//! checked against stores written by 0.83.1 and 0.85. Release boundaries come from ZenML's own
//! migration chain (`zenml/zen_stores/migrations/versions`).
//!
//! What differs from the snapshot era (`v0_98`), whose other tables this era shares:
//! - A run's compiled configuration is `pipeline_deployment.pipeline_configuration`, reached
//!   through `pipeline_run.deployment_id`; step configurations are matched by
//!   (`deployment_id`, `name`).
//! - `pipeline_run` has no `index`: runs are numbered by creation within their pipeline, as
//!   ZenML's client lists them.

use super::v0_98::{INPUTS, METADATA, OUTPUTS, PIPELINES};
use super::{JoinSql, SchemaMapping, TableSql, col, joined, window, without};

pub static MAPPING: SchemaMapping = SchemaMapping {
    name: "pipeline_deployment era (ZenML 0.85 to 0.89)",
    since: (0, 85, 0),
    versions: &["0.85.0"],
    tables: &[PIPELINES, RUNS, STEPS, OUTPUTS, INPUTS, METADATA],
};

/// 0.83.1 (the `step_configuration` table) to 0.84.0: no step `exception_info` (0.84.1),
/// no run `status_reason` or artifact `content_hash` (0.85.0). Checked against 0.83.1.
pub static MAPPING_0_83_1: SchemaMapping = SchemaMapping {
    name: "pipeline_deployment era, before step exceptions (ZenML 0.83.1 to 0.84.0)",
    since: (0, 83, 1),
    versions: &["0.83.1", "0.84.0"],
    tables: &[
        PIPELINES,
        without(RUNS, &["status_reason"]),
        without(STEPS, &["exception"]),
        without(OUTPUTS, &["content_hash"]),
        INPUTS,
        METADATA,
    ],
};

/// 0.84.1 to 0.84.3: step exceptions, but no run `status_reason` or artifact `content_hash`
/// yet (0.85.0). Untested: no fixture.
pub static MAPPING_0_84_1: SchemaMapping = SchemaMapping {
    name: "pipeline_deployment era, before run status reasons (ZenML 0.84.1 to 0.84.3)",
    since: (0, 84, 1),
    versions: &["0.84.1", "0.84.3"],
    tables: &[
        PIPELINES,
        without(RUNS, &["status_reason"]),
        STEPS,
        without(OUTPUTS, &["content_hash"]),
        INPUTS,
        METADATA,
    ],
};

runs_and_steps_without_index!(
    "project_id",
    "LEFT JOIN pipeline_deployment sn ON sn.id = r.deployment_id",
    "LEFT JOIN step_configuration scs ON scs.deployment_id = s.deployment_id AND scs.name = s.name",
    "COALESCE(scs.config, s.step_configuration)",
    "json_extract(COALESCE(scs.config, s.step_configuration), '$.step_config_overrides.parameters')"
);
