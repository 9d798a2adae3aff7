//! ZenML's first `pipeline_snapshot` releases (0.90 up to the run index), checked against
//! stores written by 0.90.
//!
//! Like the deployment era (`v0_85`) but through `pipeline_snapshot`/`snapshot_id`: runs
//! have no `index` yet (numbered by creation), no `exception_info`, and step configurations
//! have no `step_run_id` (no dynamic pipelines).

use super::v0_98::{INPUTS, METADATA, OUTPUTS, PIPELINES};
use super::{JoinSql, SchemaMapping, TableSql, col, joined, window};

pub static MAPPING: SchemaMapping = SchemaMapping {
    name: "early pipeline_snapshot era (ZenML 0.90 to 0.94)",
    since: (0, 90, 0),
    versions: &[
        "0.90.0", "0.91.0", "0.91.1", "0.92.0", "0.93.0", "0.93.1", "0.93.2", "0.94.6",
    ],
    tables: &[PIPELINES, RUNS, STEPS, OUTPUTS, INPUTS, METADATA],
};

runs_and_steps_without_index!(
    "project_id",
    "LEFT JOIN pipeline_snapshot sn ON sn.id = r.snapshot_id",
    "LEFT JOIN step_configuration scs ON scs.snapshot_id = s.snapshot_id AND scs.name = s.name",
    "COALESCE(scs.config, s.step_configuration)",
    "json_extract(COALESCE(scs.config, s.step_configuration), '$.step_config_overrides.parameters')"
);
