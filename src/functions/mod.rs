//! SQL functions runql adds to DataFusion's: the JSON family (`json_get_float(parameters,
//! 'gamma')`, `json_get_str`, `json_contains`, `->`, `->>`, ...) for the JSON-text columns,
//! and `read_output` / `output_value` for what the steps produced.

pub mod outputs;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use crate::artifacts::ArtifactRoot;
use crate::store::ZenStore;

pub fn register(
    ctx: &mut SessionContext,
    store: &Arc<ZenStore>,
    root: &ArtifactRoot,
) -> Result<()> {
    register_json(ctx)?;
    outputs::register(ctx, store, root);
    Ok(())
}

/// Only the JSON functions: for sessions without a store (an export folder).
pub fn register_json(ctx: &mut SessionContext) -> Result<()> {
    datafusion_functions_json::register_all(ctx)
}
