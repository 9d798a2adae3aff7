//! ZenML's `workspace` era (0.60 to 0.75), checked against stores written by 0.60 and 0.71.
//!
//! Like the first project era (`v0_80`), with step configurations in the deployment, except:
//! - Everything is scoped by `workspace_id` (renamed `project_id` by migration 12eff0206201,
//!   first released in 0.80.0).
//! - Before 0.71.0, metadata rows name their resource themselves (`run_metadata.resource_id`,
//!   `resource_type`); migration cc269488e5a9 moved that into `run_metadata_resource`.
//! - Before 0.63.0, `pipeline` has one row per pipeline version and no `description`
//!   (migration b59aa68fdb1f, "Simplify pipelines"). runql answers as ZenML does once such a
//!   store is upgraded: that migration keeps the first row of each name and points every run
//!   of the name at it, so `pipelines` has one row per name (the first version's id), runs are
//!   numbered per name, and the version a run used stays as data (`runs.pipeline_version`).
//! - No `status_reason`, step `exception_info` or artifact `content_hash` (see `v0_80`).

use super::v0_98::{INPUTS, OUTPUTS, PIPELINES};
use super::{ColumnSql, JoinSql, SchemaMapping, TableSql, col, joined, replacing, window, without};

pub static MAPPING: SchemaMapping = SchemaMapping {
    name: "workspace era, pipeline versions (ZenML 0.60 to 0.62)",
    since: (0, 60, 0),
    versions: &["0.60.0", "0.61.0", "0.62.0"],
    tables: &[
        PIPELINES_BY_NAME,
        replacing(RUNS_WITHOUT_REASON, RUNS_BY_PIPELINE_NAME),
        replacing(STEPS_WITHOUT_EXCEPTION, STEPS_IN_STORAGE_ORDER),
        OUTPUTS_WITHOUT_HASH,
        INPUTS,
        METADATA,
    ],
};

/// 0.63.0 to 0.70.x: one `pipeline` row per pipeline, with a description.
pub static MAPPING_0_63_0: SchemaMapping = SchemaMapping {
    name: "workspace era, metadata on its own rows (ZenML 0.63 to 0.70)",
    since: (0, 63, 0),
    versions: &["0.63.0", "0.68.1", "0.70.0"],
    tables: &[
        PIPELINES,
        RUNS_WITHOUT_REASON,
        STEPS_WITHOUT_EXCEPTION,
        OUTPUTS_WITHOUT_HASH,
        INPUTS,
        METADATA,
    ],
};

/// 0.71.0 to 0.75.x: metadata linked through `run_metadata_resource`, as from 0.80 on (whose
/// client also lists a run's steps' metadata with it). Checked against 0.71.0.
pub static MAPPING_0_71_0: SchemaMapping = SchemaMapping {
    name: "workspace era, metadata through resource links (ZenML 0.71 to 0.75)",
    since: (0, 71, 0),
    versions: &["0.71.0", "0.75.0"],
    tables: &[
        PIPELINES,
        RUNS_WITHOUT_REASON,
        STEPS_WITHOUT_EXCEPTION,
        OUTPUTS_WITHOUT_HASH,
        INPUTS,
        super::v0_80::METADATA,
    ],
};

const RUNS_WITHOUT_REASON: TableSql = without(RUNS, &["status_reason"]);

/// The id migration b59aa68fdb1f keeps for the pipeline named like `p`: the first version's
/// (it walks `pipeline` in storage order, which is creation order; ties by id).
macro_rules! first_version_id {
    ($p:literal) => {
        concat!(
            "(SELECT v.id FROM pipeline v WHERE v.name = ",
            $p,
            ".name ORDER BY v.created, v.id LIMIT 1)"
        )
    };
}

/// Runs of every version of a pipeline, counted together by name. A run whose pipeline row is
/// gone keeps its own `pipeline_id` and is numbered with the runs of that id alone.
const RUNS_BY_PIPELINE_NAME: &[ColumnSql] = &[
    joined(
        "pipeline_id",
        concat!("COALESCE(", first_version_id!("p"), ", r.pipeline_id)"),
        &["p"],
    ),
    joined("pipeline_version", "p.version", &["p"]),
    window(
        "run_index",
        "ROW_NUMBER() OVER (PARTITION BY p.name, CASE WHEN p.id IS NULL THEN r.pipeline_id END \
         ORDER BY r.created, r.id) - 1",
        &["p"],
    ),
    window(
        "run_rindex",
        "-ROW_NUMBER() OVER (PARTITION BY p.name, CASE WHEN p.id IS NULL THEN r.pipeline_id END \
         ORDER BY r.created DESC, r.id DESC)",
        &["p"],
    ),
];

/// Runs of all versions of a pipeline name, joined to the pipeline row aliased `p`.
macro_rules! runs_of_name {
    ($what:literal) => {
        concat!(
            "(SELECT ",
            $what,
            " FROM pipeline_run r JOIN pipeline v ON v.id = r.pipeline_id WHERE v.name = p.name)"
        )
    };
}

/// One row per pipeline name, with the first version's id and creation time.
const PIPELINES_BY_NAME: TableSql = TableSql {
    table: "pipelines",
    from: "pipeline p",
    joins: &[],
    filter: Some(concat!("p.id = ", first_version_id!("p"))),
    missing: &["description"],
    overrides: &[],
    key: &["p.id"],
    columns: &[
        col("pipeline_id", "p.id"),
        col("pipeline_name", "p.name"),
        col("created", "p.created"),
        col("run_count", runs_of_name!("COUNT(*)")),
        col("first_run_start", runs_of_name!("MIN(r.start_time)")),
        window(
            "pipeline_index",
            concat!(
                "ROW_NUMBER() OVER (ORDER BY ",
                runs_of_name!("MIN(r.start_time)"),
                " IS NULL, ",
                runs_of_name!("MIN(r.start_time)"),
                ", p.created, p.id) - 1"
            ),
            &[],
        ),
    ],
};
const STEPS_WITHOUT_EXCEPTION: TableSql = without(STEPS, &["exception"]);

/// Until 0.62 a run's `steps` are its `step_runs` relationship, loaded without an ORDER BY:
/// in the order the database keeps step runs, which is insertion order in SQLite (`rowid`)
/// and primary-key order in MySQL (InnoDB clusters by `id`; the dialect reads `rowid` so).
/// Creation order agrees on SQLite, whose times have microseconds, but not on MySQL, whose
/// whole seconds leave ties that ZenML's client breaks by id alone.
const STEPS_IN_STORAGE_ORDER: &[ColumnSql] = &[
    window(
        "step_index",
        "ROW_NUMBER() OVER (PARTITION BY s.pipeline_run_id ORDER BY s.rowid) - 1",
        &[],
    ),
    window(
        "step_rindex",
        "-ROW_NUMBER() OVER (PARTITION BY s.pipeline_run_id ORDER BY s.rowid DESC)",
        &[],
    ),
];
const OUTPUTS_WITHOUT_HASH: TableSql = without(OUTPUTS, &["content_hash"]);

runs_and_steps_without_index!(
    "workspace_id",
    "LEFT JOIN pipeline_deployment sn ON sn.id = r.deployment_id",
    "LEFT JOIN pipeline_deployment scs ON scs.id = s.deployment_id",
    "COALESCE(json_extract(scs.step_configurations, '$.\"' || s.name || '\"'), s.step_configuration)",
    // 0.60 to 0.81 keep a step's parameters in its `config`, 0.82 in its overrides.
    "COALESCE(json_extract(scs.step_configurations, '$.\"' || s.name || '\".step_config_overrides.parameters'), \
     json_extract(scs.step_configurations, '$.\"' || s.name || '\".config.parameters'))"
);

/// Metadata rows that name their resource; the latest value of each key, as in every era.
const METADATA: TableSql = TableSql {
    table: "metadata",
    from: "run_metadata m",
    joins: &[],
    filter: Some(
        "NOT EXISTS (SELECT 1 FROM run_metadata m2 WHERE m2.resource_id = m.resource_id \
         AND m2.resource_type = m.resource_type AND m2.key = m.key \
         AND (m2.created > m.created OR (m2.created = m.created AND m2.id > m.id)))",
    ),
    missing: &["publisher_step_id"],
    overrides: &[],
    key: &["m.id"],
    columns: &[
        col("resource_type", resource_type!("m")),
        col("resource_id", "m.resource_id"),
        col("key", "m.key"),
        col("value", "m.value"),
        col("value_type", "m.type"),
        col("publisher_step_id", "NULL"),
        col("created", "m.created"),
    ],
};
