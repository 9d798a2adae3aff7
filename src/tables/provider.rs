//! `ZenTable`: one runql table as a DataFusion `TableProvider`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::TableDef;
use super::push_down::{self, Pushed};
use super::scan::{ScanPlan, ZenScanExec};
use crate::store::ZenStore;
use crate::store::schema::TableSql;

#[derive(Debug)]
pub struct ZenTable {
    store: Arc<ZenStore>,
    def: &'static TableDef,
    sql: &'static TableSql,
    schema: SchemaRef,
}

impl ZenTable {
    pub fn try_new(store: Arc<ZenStore>, def: &'static TableDef) -> Result<Self> {
        let sql = super::table_sql(&store, def)?;
        Ok(Self {
            store,
            def,
            sql,
            schema: def.schema(),
        })
    }
}

#[async_trait]
impl TableProvider for ZenTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| push_down::support(self.def, f))
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.def.columns.len()).collect(),
        };
        // DataFusion hands back the filters we classified Exact or Inexact; the same pure
        // function decides again how they read in SQL.
        let pushed: Vec<Pushed> = filters
            .iter()
            .filter_map(|f| push_down::push_down(self.def, f))
            .collect();
        let schema = Arc::new(self.schema.project(&projection)?);
        let plan = ScanPlan {
            def: self.def,
            sql: self.sql,
            projection,
            pushed,
            limit,
        };
        Ok(Arc::new(ZenScanExec::new(
            Arc::clone(&self.store),
            plan,
            schema,
        )))
    }
}
