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
    let index: Arc<dyn outputs::OutputIndex> = Arc::clone(store) as _;
    outputs::register(ctx, &index, root);
    Ok(())
}

/// The JSON functions, and `read_output` / `output_value` over an export folder's (or a
/// server mirror's) `outputs` table.
pub fn register_for_export(
    ctx: &mut SessionContext,
    dir: &std::path::Path,
    root: &ArtifactRoot,
) -> Result<()> {
    register_json(ctx)?;
    let index: Arc<dyn outputs::OutputIndex> = Arc::new(outputs::ExportOutputs::new(dir));
    outputs::register(ctx, &index, root);
    Ok(())
}

/// Only the JSON functions: for sessions without a store (an export folder).
///
/// Besides `datafusion-functions-json`'s own, `json_as_float`, `json_as_int` and
/// `json_as_bool` read a whole JSON document as a typed value (`json_as_float('0.8')` is
/// 0.8): they are `json_get_*` with no path, under the names a metric query reads best with,
/// `json_as_float(output_value(o.output_id))`.
pub fn register_json(ctx: &mut SessionContext) -> Result<()> {
    datafusion_functions_json::register_all(ctx)?;
    for (get, alias) in [
        ("json_get_float", "json_as_float"),
        ("json_get_int", "json_as_int"),
        ("json_get_bool", "json_as_bool"),
    ] {
        let udf = datafusion::execution::FunctionRegistry::udf(&*ctx, get)?;
        ctx.register_udf(udf.as_ref().clone().with_aliases([alias]));
    }
    Ok(())
}
