//! The parts of DataFusion the fuzzed files of runql use, under DataFusion's own paths.

pub use arrow;
pub use datafusion_common as common;
pub use datafusion_common::error;
pub use datafusion_expr as logical_expr;
pub use datafusion_physical_expr as physical_expr;
pub use datafusion_physical_expr_common as physical_expr_common;
