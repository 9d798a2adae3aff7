//! runql: SQL over ZenML pipeline run history.
//!
//! Data flows one way: `store` (a ZenML SQL store, read-only) → `tables` (DataFusion table
//! providers over it) → DataFusion, with `functions` registered (which read step outputs
//! through `artifacts`) → `print_format` (results
//! to a terminal or a pipe). `cli` wires these together for the one-shot mode and the REPL.

pub mod artifacts;
pub mod cli;
pub mod error;
pub mod export;
pub mod functions;
pub mod mirror;
pub mod open;
pub mod print_format;
pub mod reports;
pub mod server;
pub mod store;
pub mod tables;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::prelude::{SessionConfig, SessionContext};

use artifacts::ArtifactRoot;
use store::ZenStore;

/// A DataFusion session with every runql table of `store` and runql's SQL functions;
/// artifacts are read where ZenML wrote them, or under `artifact_root` when they moved.
pub fn session(store: Arc<ZenStore>, artifact_root: ArtifactRoot) -> Result<SessionContext> {
    session_with(store, artifact_root, tables::PushDown::On)
}

/// [`session`], choosing whether the store evaluates filters, limits and join keys.
pub fn session_with(
    store: Arc<ZenStore>,
    artifact_root: ArtifactRoot,
    push_down: tables::PushDown,
) -> Result<SessionContext> {
    let mut ctx = base_context();
    tables::register(&ctx, &store, push_down)?;
    functions::register(&mut ctx, &store, &artifact_root)?;
    Ok(ctx)
}

/// A session over a `runql export` folder (or a server's mirror): the same tables, read
/// from its Parquet files, and the same functions (artifacts are read where the outputs'
/// URIs say, or under `artifact_root`).
pub async fn export_session(
    dir: &std::path::Path,
    artifact_root: ArtifactRoot,
) -> Result<(SessionContext, export::Manifest)> {
    let mut ctx = base_context();
    // Filters are not evaluated while Parquet is decoded (DataFusion's row filters): in
    // DataFusion 55 a null check anywhere in a filter lets any function of a list column
    // into the row filter, and `status_reason IS NOT NULL OR cardinality(tags) > 2` then
    // kept every run of an export where the store keeps none (found by the differential
    // test `export_gives_the_stores_answer`). Row groups are still pruned by the filters'
    // statistics, and the filter runs after decoding. Row filters had bought little: the
    // benchmark's twelve questions on the 100k-run mirror took 0.03-0.25 s either way,
    // medians of 3 alternated. Off is DataFusion's default; it is said here so that no
    // one turns it on without that test.
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        options.execution.parquet.pushdown_filters = false;
        // A join of a few rows (one run's steps) hands the other side's scan its keys as an
        // IN list, which the ids' bloom filters answer: the limit is on the build side's
        // memory, and a few text ids that still point into their decoded pages (views)
        // passed DataFusion's 128 kB, so every output was scanned for one run's steps.
        // Not much more: from 1 MB a build side of 63k runs (`runs[-1]` of a pipeline) was
        // tried as a list too, which tripled that query's time.
        options.optimizer.hash_join_inlist_pushdown_max_size = 256 << 10;
    }
    functions::register_for_export(&mut ctx, dir, &artifact_root)?;
    let manifest = export::register_export(&ctx, dir).await?;
    Ok((ctx, manifest))
}

fn base_context() -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("runql", "zenml");
    SessionContext::new_with_config(config)
}
