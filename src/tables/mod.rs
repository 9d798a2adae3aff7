//! runql's tables over a ZenML store, as DataFusion table providers.
//!
//! `defs` says what each table is (its columns and their kinds); `provider` and `scan`
//! read it from the store, `push_down` decides which filters the store evaluates.
//! Where a column lives in ZenML's schema is not known here: that is the store's mapping
//! (`store::schema`), so every ZenML era shares these providers.

mod convert;
mod defs;
mod provider;
pub mod push_down;
mod scan;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

pub use convert::dashed_id;
pub use defs::{ColumnDef, ContractColumn, Kind, TABLES, TableDef, table_def};
pub use provider::ZenTable;
pub use scan::{ScanTiming, ZenScanExec, lookup, scan_timings};

use crate::store::ZenStore;

/// Where `def` lives in `store`'s ZenML schema.
fn table_sql(store: &ZenStore, def: &TableDef) -> Result<&'static crate::store::schema::TableSql> {
    store.mapping().table(def.name).ok_or_else(|| {
        datafusion::error::DataFusionError::Plan(format!(
            "the {} mapping has no table {}",
            store.mapping().name,
            def.name
        ))
    })
}

/// Whether the store evaluates what it can of a query (filters, LIMIT, a join's keys), or
/// DataFusion evaluates everything: the two must give the same rows (`--no-pushdown`, and the
/// differential tests, compare them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushDown {
    #[default]
    On,
    Off,
}

/// Registers every table of `store` in `ctx`.
pub fn register(ctx: &SessionContext, store: &Arc<ZenStore>, push_down: PushDown) -> Result<()> {
    for def in TABLES {
        let table = ZenTable::try_new(Arc::clone(store), def, push_down)?;
        ctx.register_table(def.name, Arc::new(table))?;
    }
    Ok(())
}
