//! Statements from a client, answered: each connection has its own DataFusion session over
//! the shared tables and catalog; SQL is parsed as PostgreSQL's, classified (a read-only
//! server refuses anything else), rewritten for DataFusion, planned, and its rows streamed
//! back in the format the client asked for, under the connection's time and memory limits.
//!
//! What a query sees: a store read live, as it is when each scan starts; a mirror, brought
//! up to date before the query starts (one sync serves every query that was waiting for it,
//! none is answered from a sync that started before it arrived).

// pgwire's ErrorInfo is the error of a statement: made once per failure and sent as it is,
// so there is nothing to gain from boxing it on its way.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fmt::Debug;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use futures::{Sink, Stream, StreamExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_USER, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;

use super::catalog::Catalog;
use super::encode;
use super::functions::{self, Session};
use super::rewrite::{self, Kind};
use super::{Freshness, Limits, log};
use crate::reports::ReportSignature;

/// What every connection shares: the tables, the catalog, the limits, and how a mirror is
/// brought up to date.
pub struct Shared {
    pub base: SessionContext,
    /// The reports, callable as set-returning functions.
    pub reports: HashMap<String, ReportSignature>,
    pub catalog: Arc<Catalog>,
    pub limits: Limits,
    pub freshness: Option<Freshness>,
    pub cancels: Arc<super::Cancels>,
}

/// A connection's own state, kept in its session extensions.
struct Conn {
    ctx: SessionContext,
    session: Arc<Session>,
    /// The running query's cancel signal.
    cancel: Arc<super::CancelSlot>,
    /// Removes the connection from the cancel registry when it closes.
    _registered: super::Registered,
}

/// A statement as parsed and classified, kept for the extended protocol's Bind/Execute.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub sql: String,
    pub statement: Option<Statement>,
    pub kind: Kind,
    /// The parameters' types as planned (client-declared ones win).
    pub parameters: Vec<DataType>,
    /// The result's columns, for Describe.
    pub schema: Option<SchemaRef>,
}

/// What a statement is run with: its parameters' values (the extended protocol's Bind),
/// the types the client declared for them, and the format it wants the rows in.
pub struct Bound<'a> {
    pub params: Option<Vec<ScalarValue>>,
    pub types: &'a [Option<DataType>],
    pub format: &'a Format,
}

impl Bound<'_> {
    /// The simple protocol's: no parameters, rows as text.
    fn simple() -> Bound<'static> {
        Bound {
            params: None,
            types: &[],
            format: &Format::UnifiedText,
        }
    }
}

/// The query handlers (simple and extended) and the extended protocol's parser.
pub struct Handler {
    shared: Arc<Shared>,
}

impl Handler {
    pub fn new(shared: Arc<Shared>) -> Handler {
        Handler { shared }
    }

    /// The connection's state, made at its first statement.
    fn conn<C: ClientInfo>(&self, client: &C) -> PgWireResult<Arc<Conn>> {
        let ext = client.session_extensions();
        if let Some(conn) = ext.get::<Conn>() {
            return Ok(conn);
        }
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_else(|| super::catalog::OWNER.to_string());
        let (pid, secret) = client.pid_and_secret_key();
        let session = Arc::new(Session::new(user, pid, client.metadata()));
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.shared.limits.memory_bytes, 1.0)
            .build_arc()
            .map_err(api_error)?;
        let state = SessionStateBuilder::new_from_existing(self.shared.base.state())
            .with_runtime_env(runtime)
            .build();
        let ctx = SessionContext::new_with_state(state);
        functions::register_session(&ctx, &session);
        let cancel = Arc::new(super::CancelSlot::default());
        let registered = self
            .shared
            .cancels
            .register(pid, secret.to_bytes(), Arc::clone(&cancel));
        ext.insert(Conn {
            ctx,
            session,
            cancel,
            _registered: registered,
        });
        ext.get::<Conn>()
            .ok_or_else(|| api_error(DataFusionError::Internal("no connection state".into())))
    }

    /// Parses `sql` into statements, each classified and rewritten.
    fn parse(&self, sql: &str) -> Result<Vec<(Option<Statement>, Kind)>, ErrorInfo> {
        match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
            Ok(statements) => Ok(statements
                .into_iter()
                .map(|mut s| {
                    let kind = rewrite::classify(&s);
                    if kind == Kind::Query {
                        rewrite::rewrite(&mut s, &|t| self.shared.catalog.is_catalog_table(t));
                    }
                    (Some(s), kind)
                })
                .collect()),
            Err(e) => match rewrite::classify_text(sql) {
                Some(kind) => Ok(vec![(None, kind)]),
                None => Err(error("42601", format!("syntax error: {e}"))),
            },
        }
    }

    /// A query planned in the connection's session, with `types` for its parameters when
    /// the client declared them.
    async fn plan(
        &self,
        conn: &Conn,
        statement: &Statement,
        types: &[Option<DataType>],
    ) -> Result<LogicalPlan, ErrorInfo> {
        let statement = if types.iter().any(Option::is_some) {
            // A PREPARE gives placeholders the client's types; its body is the plan.
            let data_types = types
                .iter()
                .map(|t| sql_type(t.as_ref().unwrap_or(&DataType::Utf8)))
                .collect();
            Statement::Prepare {
                name: datafusion::sql::sqlparser::ast::Ident::new("runql_extended"),
                data_types,
                statement: Box::new(statement.clone()),
            }
        } else {
            statement.clone()
        };
        let plan = conn
            .ctx
            .state()
            .statement_to_plan(DFStatement::Statement(Box::new(statement)))
            .await
            .map_err(|e| datafusion_error(&e))?;
        Ok(match plan {
            LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(p)) => {
                Arc::unwrap_or_clone(p.input)
            }
            other => other,
        })
    }

    /// Brings a mirror up to date for a query arriving now, and holds it until the query's
    /// last row.
    async fn freshen(&self) -> Result<Option<super::ReadGuard>, ErrorInfo> {
        match &self.shared.freshness {
            Some(freshness) => freshness
                .ensure(&self.shared.base)
                .await
                .map(Some)
                .map_err(|e| {
                    error(
                        "XX000",
                        format!("the mirror could not be brought up to date: {e}"),
                    )
                }),
            None => Ok(None),
        }
    }

    /// Runs a query: plans it, starts it, and waits for its first rows (so the time the
    /// engine spends before any row is inside the statement timeout and cancellable).
    async fn run(
        &self,
        conn: &Conn,
        statement: &Statement,
        sql: &str,
        bound: Bound<'_>,
    ) -> Result<QueryResponse, ErrorInfo> {
        let Bound {
            params,
            types,
            format,
        } = bound;
        let started = Instant::now();
        let timeout = self.shared.limits.statement_timeout(&conn.session);
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let signal = conn.cancel.start();
        let log = log::Query::new(&conn.session, sql, started);
        let work = async {
            let reading = self.freshen().await?;
            let mut statement = statement.clone();
            let mut tries = 0;
            let (schema, stream) = loop {
                match self.start(conn, &statement, params.clone(), types).await {
                    Ok(started) => break started,
                    Err(e)
                        if tries < 4
                            && rewrite::second_chance(&mut statement, &e.message, &|t| {
                                self.shared.catalog.is_empty_catalog_table(t)
                            }) =>
                    {
                        tries += 1;
                    }
                    Err(e)
                        if tries < 4
                            && e.message
                                .contains("does not support logical expression InSubquery")
                            && self.inline_subqueries(conn, &mut statement).await =>
                    {
                        tries += 1;
                    }
                    Err(e) => return Err(e),
                }
            };
            let mut stream = stream;
            let first = stream
                .next()
                .await
                .transpose()
                .map_err(|e| datafusion_error(&e))?;
            Ok::<_, ErrorInfo>((schema, stream, first, reading))
        };
        let outcome = tokio::select! {
            r = work => r,
            _ = signal.cancelled() => Err(cancelled()),
            _ = sleep_until(deadline) => Err(timed_out(timeout)),
        };
        let (schema, stream, first, reading) = match outcome {
            Ok(x) => x,
            Err(e) => {
                log.failed(&e.message);
                return Err(e);
            }
        };
        let fields = Arc::new(encode::fields(&schema, format));
        let rows = Rows {
            stream,
            pending: first.map(|b| vec![b]).unwrap_or_default().into(),
            fields: Arc::clone(&fields),
            encoded: Vec::new().into_iter(),
            deadline,
            timeout,
            signal,
            log: Some(log),
            done: false,
            _reading: reading,
        };
        let mut response = QueryResponse::new(fields, rows.into_stream());
        response.set_command_tag(command_tag(statement));
        Ok(response)
    }

    /// Plans and starts a query: its columns and its stream of batches.
    async fn start(
        &self,
        conn: &Conn,
        statement: &Statement,
        params: Option<Vec<ScalarValue>>,
        types: &[Option<DataType>],
    ) -> Result<(SchemaRef, SendableRecordBatchStream), ErrorInfo> {
        let mut statement = statement.clone();
        if let Some(values) = &params {
            self.bind_report_arguments(&mut statement, &|i, dt| {
                constant(values.get(i).unwrap_or(&ScalarValue::Null), dt)
            });
        }
        let plan = self.plan(conn, &statement, types).await?;
        let plan = match params {
            Some(p) => plan
                .with_param_values(ParamValues::from(p))
                .map_err(|e| datafusion_error(&e))?,
            None => plan,
        };
        let df = conn
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| datafusion_error(&e))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let stream = df
            .execute_stream()
            .await
            .map_err(|e| datafusion_error(&e))?;
        Ok((schema, stream))
    }

    /// `x IN (SELECT ...)` where DataFusion takes no subquery (a projection's CASE, as in
    /// Grafana's table picker): a subquery that does not depend on the outer query is run
    /// first and its values written in its place (`x IN ('a', 'b')`; none: `false`).
    /// Says whether any was.
    async fn inline_subqueries(&self, conn: &Conn, statement: &mut Statement) -> bool {
        use datafusion::sql::sqlparser::ast::{Expr, Query, Visit, VisitMut, Visitor, VisitorMut};
        struct Find(Vec<Query>);
        impl Visitor for Find {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                if let Expr::InSubquery { subquery, .. } = e
                    && !self.0.contains(subquery)
                {
                    self.0.push((**subquery).clone());
                }
                ControlFlow::Continue(())
            }
        }
        let mut found = Find(Vec::new());
        let _ = Visit::visit(&*statement, &mut found);
        let mut values: Vec<(Query, Vec<Expr>)> = Vec::new();
        for query in found.0 {
            // One that plans alone is uncorrelated.
            let alone = Statement::Query(Box::new(query.clone()));
            let Ok((schema, mut stream)) = self.start(conn, &alone, None, &[]).await else {
                continue;
            };
            let data_type = schema.field(0).data_type().clone();
            let mut list = Vec::new();
            let mut too_many = false;
            while let Some(batch) = stream.next().await {
                let Ok(batch) = batch else {
                    too_many = true;
                    break;
                };
                for row in 0..batch.num_rows() {
                    match ScalarValue::try_from_array(batch.column(0), row) {
                        Ok(v) => list.push(constant(&v, &data_type)),
                        Err(_) => too_many = true,
                    }
                }
                too_many |= list.len() > 10_000;
                if too_many {
                    break;
                }
            }
            if !too_many {
                values.push((query, list));
            }
        }
        if values.is_empty() {
            return false;
        }
        struct Replace(Vec<(Query, Vec<Expr>)>);
        impl VisitorMut for Replace {
            type Break = ();
            fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                if let Expr::InSubquery {
                    expr,
                    subquery,
                    negated,
                } = e
                    && let Some((_, list)) = self.0.iter().find(|(q, _)| q == subquery.as_ref())
                {
                    *e = if list.is_empty() {
                        Expr::value(datafusion::sql::sqlparser::ast::Value::Boolean(*negated))
                    } else {
                        Expr::InList {
                            expr: expr.clone(),
                            list: list.clone(),
                            negated: *negated,
                        }
                    };
                }
                ControlFlow::Continue(())
            }
        }
        let _ = statement.visit(&mut Replace(values));
        true
    }

    /// Binds the parameters a report call takes as arguments (`failure_rate($1, $2)`) into
    /// the statement, as `bind` gives each (parameter index, the report's type for it): a
    /// report is planned from its arguments, before DataFusion binds a plan's parameters.
    /// Returns the parameters bound so.
    fn bind_report_arguments(
        &self,
        statement: &mut Statement,
        bind: &dyn Fn(usize, &DataType) -> datafusion::sql::sqlparser::ast::Expr,
    ) -> Vec<(usize, DataType)> {
        use datafusion::sql::sqlparser::ast::{
            Expr, FunctionArg, FunctionArgExpr, TableFactor, Value, VisitMut, VisitorMut,
        };
        struct Bind<'a> {
            reports: &'a HashMap<String, ReportSignature>,
            bind: &'a dyn Fn(usize, &DataType) -> Expr,
            bound: Vec<(usize, DataType)>,
        }
        impl VisitorMut for Bind<'_> {
            type Break = ();
            fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
                if let TableFactor::Table {
                    name,
                    args: Some(args),
                    ..
                } = factor
                    && let Some(report) = self.reports.get(&name.to_string().to_ascii_lowercase())
                {
                    for (arg, (_, dt)) in args.args.iter_mut().zip(&report.parameters) {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg
                            && let Expr::Value(v) = e
                            && let Value::Placeholder(p) = &v.value
                            && let Some(n) =
                                p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
                            && n > 0
                        {
                            *e = (self.bind)(n - 1, dt);
                            self.bound.push((n - 1, dt.clone()));
                        }
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut visitor = Bind {
            reports: &self.shared.reports,
            bind,
            bound: Vec::new(),
        };
        let _ = statement.visit(&mut visitor);
        visitor.bound
    }

    /// Answers one parsed statement.
    async fn answer(
        &self,
        conn: &Conn,
        statement: Option<&Statement>,
        kind: &Kind,
        sql: &str,
        bound: Bound<'_>,
    ) -> Response {
        let format = bound.format;
        let result = match kind {
            Kind::Query => match statement {
                Some(s) => self.run(conn, s, sql, bound).await.map(Response::Query),
                None => Err(error("42601", "empty statement")),
            },
            Kind::Set { name, value } => set(&conn.session, &self.shared.limits, name, value)
                .map(|()| Response::Execution(Tag::new("SET"))),
            Kind::Reset { name } => {
                conn.session.reset(name.as_deref());
                Ok(Response::Execution(Tag::new("RESET")))
            }
            Kind::Show { name } => show(&conn.session, name, format).map(Response::Query),
            Kind::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Kind::End { tag } => Ok(Response::TransactionEnd(Tag::new(tag))),
            Kind::Nothing { tag } => Ok(Response::Execution(Tag::new(tag))),
            Kind::Refused { what } => {
                let e = refused(what);
                log::Query::new(&conn.session, sql, Instant::now()).failed(&e.message);
                Err(e)
            }
        };
        result.unwrap_or_else(|e| Response::Error(Box::new(e)))
    }
}

/// `SET name = value`: kept for `SHOW` and `current_setting`; `statement_timeout` also
/// bounds the connection's queries (never beyond the server's own limit). Nothing a client
/// sets reaches the engine's configuration.
fn set(session: &Session, limits: &Limits, name: &str, value: &str) -> Result<(), ErrorInfo> {
    if name.starts_with("datafusion.") || name.starts_with("runql.") {
        return Err(refused(&format!("SET {name}")));
    }
    if name == "statement_timeout" && limits.parse_timeout(value).is_none() {
        return Err(error(
            "22023",
            format!("invalid value for parameter \"statement_timeout\": \"{value}\""),
        ));
    }
    session.set(name, value);
    Ok(())
}

fn show(session: &Session, name: &str, format: &Format) -> Result<QueryResponse, ErrorInfo> {
    let rows: Vec<(String, String)> = if name == "all" {
        session.all()
    } else {
        let value = session.setting(name).ok_or_else(|| {
            error(
                "42704",
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })?;
        vec![(name.to_string(), value)]
    };
    let (schema, batch) = if name == "all" {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("setting", DataType::Utf8, false),
        ]));
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        let values: Vec<&str> = rows.iter().map(|(_, v)| v.as_str()).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(datafusion::arrow::array::StringArray::from(names)),
                Arc::new(datafusion::arrow::array::StringArray::from(values)),
            ],
        )
        .map_err(|e| error("XX000", e.to_string()))?;
        (schema, batch)
    } else {
        let column = name.rsplit(' ').next().unwrap_or(name).to_string();
        let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(datafusion::arrow::array::StringArray::from(vec![
                rows[0].1.clone(),
            ]))],
        )
        .map_err(|e| error("XX000", e.to_string()))?;
        (schema, batch)
    };
    let fields = Arc::new(encode::fields(&schema, format));
    let encoded = encode::rows(&batch, &fields).map_err(|e| error("XX000", e.to_string()))?;
    let mut response =
        QueryResponse::new(fields, futures::stream::iter(encoded.into_iter().map(Ok)));
    response.set_command_tag("SHOW");
    Ok(response)
}

/// The tag PostgreSQL ends a statement's rows with.
fn command_tag(statement: &Statement) -> &'static str {
    match statement {
        Statement::Explain { .. } | Statement::ExplainTable { .. } => "EXPLAIN",
        _ => "SELECT",
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => futures::future::pending().await,
    }
}

/// A query's rows as the client receives them: batches encoded as they arrive, within the
/// deadline, stopped by a cancel request; the query's log line is written when it ends.
struct Rows {
    stream: SendableRecordBatchStream,
    pending: std::collections::VecDeque<RecordBatch>,
    fields: Arc<Vec<FieldInfo>>,
    encoded: std::vec::IntoIter<DataRow>,
    deadline: Option<tokio::time::Instant>,
    timeout: Option<Duration>,
    signal: Arc<super::CancelSignal>,
    log: Option<log::Query>,
    done: bool,
    /// A mirror stays as it is while the query reads it.
    _reading: Option<super::ReadGuard>,
}

impl Rows {
    fn into_stream(self) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
        futures::stream::unfold(self, |mut rows| async move {
            let item = rows.next_row().await?;
            Some((item, rows))
        })
    }

    async fn next_row(&mut self) -> Option<PgWireResult<DataRow>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(row) = self.encoded.next() {
                if let Some(log) = &mut self.log {
                    log.rows += 1;
                }
                return Some(Ok(row));
            }
            let batch = match self.pending.pop_front() {
                Some(b) => Ok(Some(b)),
                None => tokio::select! {
                    b = self.stream.next() => b.transpose().map_err(|e| datafusion_error(&e)),
                    _ = self.signal.cancelled() => Err(cancelled()),
                    _ = sleep_until(self.deadline) => Err(timed_out(self.timeout)),
                },
            };
            match batch {
                Ok(Some(batch)) => match encode::rows(&batch, &self.fields) {
                    Ok(rows) => self.encoded = rows.into_iter(),
                    Err(e) => return Some(Err(self.fail(error("XX000", e.to_string())))),
                },
                Ok(None) => {
                    self.done = true;
                    if let Some(log) = self.log.take() {
                        log.finished();
                    }
                    return None;
                }
                Err(e) => return Some(Err(self.fail(e))),
            }
        }
    }

    fn fail(&mut self, e: ErrorInfo) -> PgWireError {
        self.done = true;
        if let Some(log) = self.log.take() {
            log.failed(&e.message);
        }
        PgWireError::UserError(Box::new(e))
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        // The client went away (or stopped reading a portal) before the last row.
        if let Some(log) = self.log.take() {
            log.failed("not read to the end");
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.conn(client)?;
        let parsed = match self.parse(query) {
            Ok(p) => p,
            Err(e) => return Ok(vec![Response::Error(Box::new(e))]),
        };
        if parsed.is_empty() {
            // Only comments (`-- ping`): PostgreSQL answers an empty query.
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(parsed.len());
        let several = parsed.len() > 1;
        for (statement, kind) in &parsed {
            let sql = match (several, statement) {
                (true, Some(s)) => s.to_string(),
                _ => query.to_string(),
            };
            let response = self
                .answer(&conn, statement.as_ref(), kind, &sql, Bound::simple())
                .await;
            let failed = matches!(response, Response::Error(_));
            responses.push(response);
            // As PostgreSQL does: the statements after a failed one are not run.
            if failed {
                break;
            }
        }
        Ok(responses)
    }
}

/// The extended protocol's parser: a statement is planned at Parse, for the types of its
/// parameters and columns that Describe reports; Execute plans it again, so it reads the
/// tables as they are then.
pub struct StatementParser {
    handler: Arc<Handler>,
}

impl StatementParser {
    pub fn new(handler: Arc<Handler>) -> StatementParser {
        StatementParser { handler }
    }
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Parsed;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Parsed>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let handler = &self.handler;
        let conn = handler.conn(client)?;
        // A statement refused at Parse is logged as one that failed.
        let failed = |e: ErrorInfo| {
            log::Query::new(&conn.session, sql, Instant::now()).failed(&e.message);
            user_error(e)
        };
        let mut parsed = handler.parse(sql).map_err(failed)?;
        let (statement, kind) = match parsed.len() {
            0 => return Ok(None),
            1 => parsed.remove(0),
            n => {
                return Err(user_error(error(
                    "42601",
                    format!(
                        "cannot insert multiple commands into a prepared statement ({n} given)"
                    ),
                )));
            }
        };
        let declared: Vec<Option<DataType>> = types
            .iter()
            .map(|t| t.as_ref().and_then(data_type_of))
            .collect();
        let (parameters, schema) = match (&kind, &statement) {
            (Kind::Query, Some(s)) => {
                // Report arguments are planned as typed NULLs: the report's columns do not
                // depend on them.
                let mut planned = s.clone();
                let arguments = handler
                    .bind_report_arguments(&mut planned, &|_, dt| constant(&ScalarValue::Null, dt));
                let plan = handler
                    .plan(&conn, &planned, &declared)
                    .await
                    .map_err(failed)?;
                let inferred = plan
                    .get_parameter_types()
                    .map_err(|e| failed(datafusion_error(&e)))?;
                let count = inferred
                    .len()
                    .max(declared.len())
                    .max(arguments.iter().map(|(i, _)| i + 1).max().unwrap_or(0));
                let parameters = (0..count)
                    .map(|i| {
                        declared
                            .get(i)
                            .cloned()
                            .flatten()
                            .or_else(|| {
                                arguments
                                    .iter()
                                    .find(|(n, _)| *n == i)
                                    .map(|(_, dt)| dt.clone())
                            })
                            .or_else(|| inferred.get(&format!("${}", i + 1)).cloned().flatten())
                            .unwrap_or(DataType::Utf8)
                    })
                    .collect();
                (parameters, Some(Arc::new(plan.schema().as_arrow().clone())))
            }
            (Kind::Show { name }, _) => {
                let column = name.rsplit(' ').next().unwrap_or(name).to_string();
                (
                    Vec::new(),
                    Some(Arc::new(Schema::new(vec![Field::new(
                        column,
                        DataType::Utf8,
                        false,
                    )]))),
                )
            }
            _ => (Vec::new(), None),
        };
        Ok(Some(Parsed {
            sql: sql.to_string(),
            statement,
            kind,
            parameters,
            schema,
        }))
    }

    fn get_parameter_types(&self, stmt: &Parsed) -> PgWireResult<Vec<Type>> {
        Ok(stmt.parameters.iter().map(encode::pg_type).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Parsed,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(stmt
            .schema
            .as_ref()
            .map(|s| encode::fields(s, column_format.unwrap_or(&Format::UnifiedText)))
            .unwrap_or_default())
    }
}

/// The extended protocol: Parse/Bind/Describe/Execute with typed parameters.
pub struct Extended {
    handler: Arc<Handler>,
    parser: Arc<StatementParser>,
}

impl Extended {
    pub fn new(handler: Arc<Handler>) -> Extended {
        Extended {
            parser: Arc::new(StatementParser::new(Arc::clone(&handler))),
            handler,
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Extended {
    type Statement = Parsed;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        Arc::clone(&self.parser)
    }

    /// An Execute that reads a portal to its end streams the rows to the client as they come
    /// (pgwire's own gathers every row of such a portal first, which a large result cannot
    /// afford); an Execute of some rows (`max_rows`), or of a portal already started, is
    /// pgwire's.
    async fn on_execute<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Execute,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        use pgwire::api::portal::PortalExecutionState;
        use pgwire::api::query::{send_execution_response, send_query_response};
        use pgwire::api::store::Entry;
        use pgwire::api::{DEFAULT_NAME, PgWireConnectionState};
        use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus};
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_NAME.to_string());
        let portal = match client.portal_store().get_portal(&name) {
            Some(Entry::Value(portal))
                if message.max_rows == 0
                    && matches!(*portal.state().lock().await, PortalExecutionState::Initial)
                    && matches!(client.state(), PgWireConnectionState::ReadyForQuery) =>
            {
                portal
            }
            _ => return self._on_execute(client, message).await,
        };
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut status = client.transaction_status();
        let response = self.do_query(client, portal.as_ref(), 0).await;
        *portal.state().lock().await = PortalExecutionState::Finished;
        let sent = match response {
            Ok(Response::Query(rows)) => send_query_response(client, rows, false).await,
            Ok(Response::EmptyQuery) => client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await
                .map_err(PgWireError::from),
            Ok(Response::Execution(tag)) => send_execution_response(client, tag).await,
            Ok(Response::TransactionStart(tag)) => {
                status = TransactionStatus::Transaction;
                send_execution_response(client, tag).await
            }
            Ok(Response::TransactionEnd(tag)) => {
                status = TransactionStatus::Idle;
                client.portal_store().rm_portal(DEFAULT_NAME);
                send_execution_response(client, tag).await
            }
            Ok(Response::Error(e)) => {
                if status == TransactionStatus::Transaction {
                    status = TransactionStatus::Error;
                }
                client
                    .send(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await
                    .map_err(PgWireError::from)
            }
            // No statement of runql's copies.
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        sent
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Parsed>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let handler = &self.handler;
        let conn = handler.conn(client)?;
        let parsed = &portal.statement.statement;
        let declared: Vec<Option<DataType>> = portal
            .statement
            .parameter_types
            .iter()
            .map(|t| t.as_ref().and_then(data_type_of))
            .collect();
        let params = if parsed.parameters.is_empty() && portal.parameter_len() == 0 {
            None
        } else {
            match parameters(portal, &parsed.parameters) {
                Ok(p) => Some(p),
                Err(e) => return Ok(Response::Error(Box::new(e))),
            }
        };
        Ok(handler
            .answer(
                &conn,
                parsed.statement.as_ref(),
                &parsed.kind,
                &parsed.sql,
                Bound {
                    params,
                    types: &declared,
                    format: &portal.result_column_format,
                },
            )
            .await)
    }
}

/// The portal's parameter values, decoded from the client's text or binary form, as the
/// types the statement was planned with.
fn parameters(portal: &Portal<Parsed>, types: &[DataType]) -> Result<Vec<ScalarValue>, ErrorInfo> {
    (0..portal.parameter_len())
        .map(|i| {
            let target = types.get(i).cloned().unwrap_or(DataType::Utf8);
            let declared = portal.statement.parameter_types.get(i).cloned().flatten();
            let bad = |e: PgWireError| error("22P02", format!("parameter ${}: {e}", i + 1));
            let value = match portal.parameters.get(i).cloned().flatten() {
                None => return ScalarValue::try_from(&target).map_err(|e| datafusion_error(&e)),
                Some(bytes) if !portal.parameter_format.is_binary(i) => {
                    let text = String::from_utf8(bytes.to_vec())
                        .map_err(|_| error("22021", format!("parameter ${}: not UTF-8", i + 1)))?;
                    ScalarValue::Utf8(Some(timestamp_text(&text, &target)))
                }
                Some(_) => {
                    let ty = declared.unwrap_or_else(|| encode::pg_type(&target));
                    binary_parameter(portal, i, &ty).map_err(bad)?
                }
            };
            if value.data_type() == target {
                Ok(value)
            } else {
                value.cast_to(&target).map_err(|_| {
                    error(
                        "22P02",
                        format!("parameter ${}: {value} is not a valid {target}", i + 1),
                    )
                })
            }
        })
        .collect()
}

/// PostgreSQL writes a zone as `+00`; Arrow reads `+00:00`.
fn timestamp_text(text: &str, target: &DataType) -> String {
    let b = text.as_bytes();
    if matches!(target, DataType::Timestamp(..))
        && b.len() > 3
        && matches!(b[b.len() - 3], b'+' | b'-')
        && b[b.len() - 2..].iter().all(u8::is_ascii_digit)
        && text[..b.len() - 3].contains(':')
    {
        format!("{text}:00")
    } else {
        text.to_string()
    }
}

/// A parameter in PostgreSQL's binary format for type `ty`.
fn binary_parameter(portal: &Portal<Parsed>, i: usize, ty: &Type) -> PgWireResult<ScalarValue> {
    use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
    Ok(match *ty {
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(i, ty)?),
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(i, ty)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(i, ty)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(i, ty)?),
        Type::OID => ScalarValue::UInt32(portal.parameter::<u32>(i, ty)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(i, ty)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(i, ty)?),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<DateTime<FixedOffset>>(i, ty)?
                .map(|t| t.timestamp_micros()),
            Some("UTC".into()),
        ),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<NaiveDateTime>(i, ty)?
                .map(|t| t.and_utc().timestamp_micros()),
            None,
        ),
        Type::DATE => ScalarValue::Date32(
            portal
                .parameter::<NaiveDate>(i, ty)?
                .map(|d| (d - NaiveDate::default()).num_days() as i32),
        ),
        Type::BYTEA => ScalarValue::Binary(portal.parameter::<Vec<u8>>(i, ty)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            ScalarValue::Utf8(portal.parameter::<String>(i, ty)?)
        }
        _ => {
            // JSON is its text; JSONB its text after a version byte; a UUID its 16 bytes.
            let bytes = portal
                .parameters
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_default();
            let text = match *ty {
                Type::JSONB => {
                    String::from_utf8_lossy(bytes.get(1..).unwrap_or_default()).into_owned()
                }
                Type::UUID if bytes.len() == 16 => {
                    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    crate::tables::dashed_id(&hex).unwrap_or(hex)
                }
                Type::JSON => String::from_utf8_lossy(&bytes).into_owned(),
                _ => {
                    return Err(PgWireError::InvalidRustTypeForParameter(format!(
                        "{} in binary format (send it as text)",
                        ty.name()
                    )));
                }
            };
            ScalarValue::Utf8(Some(text))
        }
    })
}

/// A bound value as a constant of the statement: its text, cast to the SQL type of `dt`
/// (an AST node, never spliced SQL).
fn constant(value: &ScalarValue, dt: &DataType) -> datafusion::sql::sqlparser::ast::Expr {
    use datafusion::sql::sqlparser::ast::{CastKind, Expr, Value};
    let text = if value.is_null() {
        None
    } else {
        value.cast_to(&DataType::Utf8).ok().and_then(|v| match v {
            ScalarValue::Utf8(s) => s,
            _ => None,
        })
    };
    let literal = match text {
        Some(t) => Value::SingleQuotedString(t),
        None => Value::Null,
    };
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::value(literal)),
        data_type: sql_type(dt),
        array: false,
        format: None,
    }
}

/// The SQL type a client-declared parameter type is planned with.
fn sql_type(data_type: &DataType) -> datafusion::sql::sqlparser::ast::DataType {
    use datafusion::sql::sqlparser::ast::{DataType as D, TimezoneInfo};
    match data_type {
        DataType::Boolean => D::Boolean,
        DataType::Int16 => D::SmallInt(None),
        DataType::Int32 => D::Int(None),
        DataType::Int64 => D::BigInt(None),
        DataType::UInt32 => D::IntUnsigned(None),
        DataType::Float32 => D::Real,
        DataType::Float64 => D::DoublePrecision,
        DataType::Timestamp(_, Some(_)) => D::Timestamp(Some(6), TimezoneInfo::Tz),
        DataType::Timestamp(_, None) => D::Timestamp(Some(6), TimezoneInfo::None),
        DataType::Date32 => D::Date,
        DataType::Binary => D::Bytea,
        _ => D::Text,
    }
}

/// What a PostgreSQL type is as an Arrow type, for parameters (`None`: let the plan say).
fn data_type_of(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::OID => DataType::UInt32,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 | Type::NUMERIC => DataType::Float64,
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::JSON
        | Type::JSONB
        | Type::UUID => DataType::Utf8,
        Type::TIMESTAMPTZ => DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        ),
        Type::TIMESTAMP => {
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
        }
        Type::DATE => DataType::Date32,
        Type::BYTEA => DataType::Binary,
        _ => return None,
    })
}

fn error(code: &str, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new("ERROR".to_string(), code.to_string(), message.into())
}

fn user_error(e: ErrorInfo) -> PgWireError {
    PgWireError::UserError(Box::new(e))
}

fn api_error(e: DataFusionError) -> PgWireError {
    user_error(datafusion_error(&e))
}

fn refused(what: &str) -> ErrorInfo {
    error(
        "25006",
        format!("runql serve is read-only: {what} is not allowed (only queries run here)"),
    )
}

fn cancelled() -> ErrorInfo {
    error("57014", "canceling statement due to user request")
}

fn timed_out(timeout: Option<Duration>) -> ErrorInfo {
    error(
        "57014",
        format!(
            "canceling statement due to statement timeout ({} ms)",
            timeout.map_or(0, |t| t.as_millis())
        ),
    )
}

/// A DataFusion error as PostgreSQL's, with the SQLSTATE clients act on.
fn datafusion_error(e: &DataFusionError) -> ErrorInfo {
    let message = crate::cli::exec::one_line(e);
    let lower = message.to_ascii_lowercase();
    let code = match e.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::ResourcesExhausted(_) => "53200",
        _ if lower.contains("table") && lower.contains("not found") => "42P01",
        _ if lower.contains("no field named") || lower.contains("schema error") => "42703",
        _ if lower.contains("invalid function")
            || lower.contains("function") && lower.contains("not found") =>
        {
            "42883"
        }
        DataFusionError::Plan(_) => "42601",
        DataFusionError::NotImplemented(_) => "0A000",
        _ => "XX000",
    };
    error(code, message)
}
