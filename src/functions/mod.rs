//! SQL functions runql adds to DataFusion's: the JSON family (`json_get_float(parameters,
//! 'gamma')`, `json_get_str`, `json_contains`, `->`, `->>`, ...) for the JSON-text columns.

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

pub fn register(ctx: &mut SessionContext) -> Result<()> {
    datafusion_functions_json::register_all(ctx)
}
