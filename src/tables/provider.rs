//! `ZenTable`: one runql table as a DataFusion `TableProvider`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::push_down::{self, Pushed};
use super::scan::{ScanPlan, ZenScanExec};
use super::{PushDown, TableDef};
use crate::store::ZenStore;
use crate::store::schema::TableSql;

#[derive(Debug)]
pub struct ZenTable {
    store: Arc<ZenStore>,
    def: &'static TableDef,
    sql: &'static TableSql,
    schema: SchemaRef,
    push_down: PushDown,
}

impl ZenTable {
    pub fn try_new(
        store: Arc<ZenStore>,
        def: &'static TableDef,
        push_down: PushDown,
    ) -> Result<Self> {
        let sql = super::table_sql(&store, def)?;
        Ok(Self {
            store,
            def,
            sql,
            schema: def.schema(),
            push_down,
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
            .map(|f| match self.push_down {
                PushDown::On => push_down::support(self.def, f, self.store.dialect()),
                PushDown::Off => TableProviderFilterPushDown::Unsupported,
            })
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
        let pushed: Vec<Pushed> = match self.push_down {
            PushDown::On => filters
                .iter()
                .filter_map(|f| push_down::push_down(self.def, f, self.store.dialect()))
                .collect(),
            PushDown::Off => Vec::new(),
        };
        let limit = match self.push_down {
            PushDown::On => limit,
            PushDown::Off => None,
        };
        let schema = Arc::new(self.schema.project(&projection)?);
        let plan = ScanPlan {
            def: self.def,
            sql: self.sql,
            projection,
            pushed,
            order: Vec::new(),
            limit,
            push_down: self.push_down,
        };
        Ok(Arc::new(ZenScanExec::new(
            Arc::clone(&self.store),
            plan,
            schema,
        )))
    }
}
