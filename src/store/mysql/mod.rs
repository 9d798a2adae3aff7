//! ZenML stores in MySQL or MariaDB (a ZenML server's database), read live.
//!
//! What a scan sees: each scan runs in its own read-only transaction `WITH CONSISTENT
//! SNAPSHOT`, so it sees the store as it was when the scan started; two tables of one query
//! may see snapshots a ZenML write apart, as on SQLite. Every session is also `READ ONLY`
//! and runs only `SELECT`s runql wrote (translated by [`dialect`]), so runql needs no more
//! than `GRANT SELECT`.
//!
//! Rows stream: a scan reads them as the server sends them, and a scan that stops early
//! (LIMIT reached, Ctrl-C) has the server stop its query (`KILL QUERY`) instead of reading
//! the rest of the result to reuse the connection.
//!
//! The password is held in [`Password`], which prints as `***`; addresses print without it.

pub mod address;
pub mod dialect;

use std::sync::Mutex;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Row};
use rusqlite::types::{Value, ValueRef};

pub use address::{MysqlAddress, Password};
use dialect::{Flavor, ForeignKeys};

use crate::error::{StoreError, StoreResult};

/// Idle connections kept for reuse; more are closed.
const IDLE_CONNECTIONS: usize = 4;

/// How often a scan waiting for the server's next row asks whether it is still wanted.
const CANCEL_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// An open MySQL/MariaDB ZenML store.
#[derive(Debug)]
pub struct MysqlStore {
    address: MysqlAddress,
    flavor: Flavor,
    server: String,
    idle: Mutex<Vec<Conn>>,
    /// The joins the database guarantees a row for ([`dialect::ForeignKeys`]).
    keys: ForeignKeys,
}

impl MysqlStore {
    /// Connects, checks the database is a ZenML store and returns it with its schema
    /// version (`alembic_version`).
    pub async fn open(address: MysqlAddress) -> StoreResult<(Self, String)> {
        let mut conn = connect(&address).await?;
        let found: Option<(String, String)> = conn
            .query_first("SELECT version_num, VERSION() FROM alembic_version")
            .await
            .map_err(|e| match server_code(&e) {
                // ER_NO_SUCH_TABLE: a database, but not ZenML's.
                Some(1146) => StoreError::NotZenmlDatabase {
                    store: address.to_string(),
                    reason: "it has no alembic_version table".to_string(),
                },
                _ => error(&address, e),
            })?;
        let (version, server) = found.ok_or_else(|| StoreError::NotZenmlDatabase {
            store: address.to_string(),
            reason: "its alembic_version table is empty".to_string(),
        })?;
        let flavor = if server.contains("MariaDB") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        let store = Self {
            address,
            flavor,
            server,
            idle: Mutex::new(vec![conn]),
            keys: ForeignKeys::default(),
        };
        Ok((store, version))
    }

    /// Learns which of `tables`' columns are NOT NULL under a single-column foreign key of
    /// an engine that enforces it (InnoDB): a join along one always finds its row. Only the
    /// tables runql reads are asked about, each `information_schema` view on its own (MariaDB
    /// answers a view restricted by table name in under a millisecond, but the three joined
    /// in 10-40 ms). A reader who cannot see them, or a server that fails the question,
    /// leaves every join as written.
    pub async fn learn_foreign_keys(&mut self, tables: &[String]) {
        if tables.is_empty() {
            return;
        }
        let marks = vec!["?"; tables.len()].join(", ");
        let within = format!("TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({marks})");
        let sql = format!(
            "SELECT 'key', TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, \
               REFERENCED_COLUMN_NAME, CONSTRAINT_NAME \
             FROM information_schema.KEY_COLUMN_USAGE \
             WHERE {within} AND REFERENCED_TABLE_NAME IS NOT NULL \
             UNION ALL SELECT 'not null', TABLE_NAME, COLUMN_NAME, NULL, NULL, NULL \
             FROM information_schema.COLUMNS WHERE {within} AND IS_NULLABLE = 'NO' \
             UNION ALL SELECT 'enforced', TABLE_NAME, NULL, NULL, NULL, NULL \
             FROM information_schema.TABLES WHERE {within} AND ENGINE = 'InnoDB'"
        );
        let Some(mut conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) else {
            return;
        };
        type Fact = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let params: Vec<String> = tables
            .iter()
            .cycle()
            .take(3 * tables.len())
            .cloned()
            .collect();
        let facts: Vec<Fact> = conn.exec(sql, params).await.unwrap_or_default();
        self.release(conn);
        let lower = |s: &str| s.to_ascii_lowercase();
        let mut not_null = std::collections::HashSet::new();
        let mut enforced = std::collections::HashSet::new();
        // A composite key's columns guarantee a row only together: count each key's columns.
        let mut columns_per_key = std::collections::HashMap::<(String, String), usize>::new();
        for (kind, table, column, _, _, constraint) in &facts {
            match (kind.as_str(), column, constraint) {
                ("key", _, Some(constraint)) => {
                    *columns_per_key
                        .entry((lower(table), constraint.clone()))
                        .or_default() += 1
                }
                ("not null", Some(column), _) => {
                    not_null.insert((lower(table), lower(column)));
                }
                ("enforced", _, _) => {
                    enforced.insert(lower(table));
                }
                _ => {}
            }
        }
        self.keys = ForeignKeys::new(facts.into_iter().filter_map(
            |(kind, table, column, referenced, referenced_column, constraint)| {
                let (column, referenced, referenced_column, constraint) =
                    (column?, referenced?, referenced_column?, constraint?);
                let table = lower(&table);
                (kind == "key"
                    && enforced.contains(&table)
                    && not_null.contains(&(table.clone(), lower(&column)))
                    && columns_per_key[&(table.clone(), constraint)] == 1)
                    .then_some((table, column, referenced, referenced_column))
            },
        ));
    }

    /// The store's address, without its password.
    pub fn address(&self) -> &MysqlAddress {
        &self.address
    }

    /// The server's own version string, e.g. `10.11.14-MariaDB-0+deb12u2`.
    pub fn server_version(&self) -> &str {
        &self.server
    }

    /// `sql`, written in SQLite's dialect, as this server runs it.
    pub fn translate(&self, sql: &str) -> StoreResult<String> {
        dialect::translate(sql, self.flavor, &self.keys)
            .map_err(|reason| StoreError::Translate { reason })
    }

    /// A session in a read-only snapshot: an idle one, else a new one. An idle session the
    /// server closed meanwhile (`wait_timeout`, a restart, a DBA's KILL) is replaced.
    async fn snapshot(&self) -> StoreResult<Conn> {
        const START: &str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(mut conn) = idle
            && conn.query_drop(START).await.is_ok()
        {
            return Ok(conn);
        }
        let mut conn = connect(&self.address).await?;
        conn.query_drop(START)
            .await
            .map_err(|e| error(&self.address, e))?;
        Ok(conn)
    }

    fn release(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(conn);
            return;
        }
        drop(conn);
    }

    /// Runs `sql` (SQLite's dialect, translated here) in a read-only snapshot and hands each
    /// row's values to `on_row` until the rows run out or it returns `Ok(false)`; a scan that
    /// stops early has the server stop its query. `cancelled` is asked while the server works
    /// before a row comes (sorting, grouping), so a dropped query stops there too.
    pub async fn read<E: From<StoreError>>(
        &self,
        sql: &str,
        params: &[Value],
        cancelled: impl Fn() -> bool,
        mut on_row: impl FnMut(&[ValueRef<'_>]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let sql = self.translate(sql)?;
        let mut conn = self.snapshot().await?;
        let id = conn.id();
        let params = if params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(params.iter().map(to_mysql).collect())
        };
        let mut stopped = false;
        let mut failed: Option<E> = None;
        {
            let mut result = conn
                .exec_iter(sql.as_str(), params)
                .await
                .map_err(|e| self.query_error(e))?;
            let mut texts: Vec<String> = Vec::new();
            loop {
                // Asked at every row, not only while the server is slow: a consumer that has
                // what it wanted (a LIMIT) is gone while rows still pour in.
                if cancelled() {
                    stopped = true;
                    break;
                }
                let next = {
                    let next = result.next();
                    tokio::pin!(next);
                    loop {
                        tokio::select! {
                            row = &mut next => break Some(row),
                            _ = tokio::time::sleep(CANCEL_CHECK) => if cancelled() { break None },
                        }
                    }
                };
                let row: Row = match next {
                    Some(Ok(Some(row))) => row,
                    Some(Ok(None)) => break,
                    Some(Err(e)) => {
                        failed = Some(self.query_error(e).into());
                        break;
                    }
                    None => {
                        stopped = true;
                        break;
                    }
                };
                let values = row.unwrap_raw();
                texts.clear();
                for value in &values {
                    if let Some(mysql_async::Value::Date(..) | mysql_async::Value::Time(..)) = value
                    {
                        texts.push(datetime_text(value.as_ref().expect("checked")));
                    }
                }
                let mut dates = texts.iter();
                let cells: Vec<ValueRef<'_>> = values
                    .iter()
                    .map(|v| cell(v.as_ref(), &mut dates))
                    .collect();
                match on_row(&cells) {
                    Ok(true) => {}
                    Ok(false) => {
                        stopped = true;
                        break;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if stopped || failed.is_some() {
            // The server may still be computing or sending the rest: have it stop first, then
            // close this connection. Closing reads what is left of the result, so the kill
            // must land before it: in the other order the server sends every remaining row.
            self.kill_query(id).await;
            let _ = conn.disconnect().await;
        } else if conn.query_drop("COMMIT").await.is_ok() {
            self.release(conn);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `KILL QUERY id` from a connection of its own (a server that does not answer within
    /// `connect`'s 10 s is given up on: closing the connection stops the query too).
    async fn kill_query(&self, id: u32) {
        // Every moment the kill takes, the server keeps filling the socket with rows.
        if let Ok(mut conn) = connect_with(&self.address, Vec::new()).await {
            let _ = conn.query_drop(format!("KILL QUERY {id}")).await;
            let _ = conn.disconnect().await;
        }
    }

    /// runql's own SQL failing to run names the server's reason, never the SQL.
    fn query_error(&self, e: mysql_async::Error) -> StoreError {
        match &e {
            mysql_async::Error::Server(s) if matches!(s.code, 1054 | 1146 | 1064) => {
                StoreError::MysqlSchema {
                    reason: s.message.clone(),
                }
            }
            _ => error(&self.address, e),
        }
    }
}

/// A new session with runql's settings (see `dialect::SESSION_SETUP`), read-only.
async fn connect(address: &MysqlAddress) -> StoreResult<Conn> {
    let mut setup: Vec<String> = dialect::SESSION_SETUP
        .iter()
        .map(|s| s.to_string())
        .collect();
    setup.push("SET SESSION TRANSACTION READ ONLY".to_string());
    connect_with(address, setup).await
}

/// A new session running the statements `init` first (none for a `KILL QUERY`, which is
/// sent sooner without them).
async fn connect_with(address: &MysqlAddress, init: Vec<String>) -> StoreResult<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(address.host.clone())
        .tcp_port(address.port)
        .user(Some(address.user.clone()))
        .pass(address.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(Some(address.database.clone()))
        // Reached at the address given, never through a local socket it may name.
        .prefer_socket(false)
        .init(init)
        .ssl_opts(address.ssl_opts());
    let connecting = Conn::new(opts);
    match tokio::time::timeout(std::time::Duration::from_secs(10), connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(error(address, e)),
        Err(_) => Err(StoreError::Mysql {
            store: address.to_string(),
            reason: "no answer within 10 s".to_string(),
        }),
    }
}

/// The server's error number, when the server answered with one.
fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// One line for a failure talking to `address`. mysql_async's messages name the user and
/// host at most (the server's "Access denied for user 'u'@'h' (using password: YES)"), never
/// a password: the password is only ever handed to it, never formatted.
fn error(address: &MysqlAddress, e: mysql_async::Error) -> StoreError {
    let reason = match &e {
        mysql_async::Error::Server(s) => s.message.clone(),
        mysql_async::Error::Io(io) => io.to_string(),
        mysql_async::Error::Driver(d) => d.to_string(),
        other => other.to_string(),
    };
    StoreError::Mysql {
        store: address.to_string(),
        reason: reason.trim_end_matches('.').to_string(),
    }
}

fn to_mysql(value: &Value) -> mysql_async::Value {
    match value {
        Value::Null => mysql_async::Value::NULL,
        Value::Integer(i) => mysql_async::Value::Int(*i),
        Value::Real(f) => mysql_async::Value::Double(*f),
        Value::Text(s) => mysql_async::Value::Bytes(s.clone().into_bytes()),
        Value::Blob(b) => mysql_async::Value::Bytes(b.clone()),
    }
}

/// A MySQL value as the SQLite value runql's converters read: datetimes as ZenML's text
/// (taken from `dates`, made beforehand), DECIMALs as their text.
fn cell<'a>(
    value: Option<&'a mysql_async::Value>,
    dates: &mut std::slice::Iter<'a, String>,
) -> ValueRef<'a> {
    use mysql_async::Value as M;
    match value {
        None | Some(M::NULL) => ValueRef::Null,
        Some(M::Bytes(b)) => ValueRef::Text(b),
        Some(M::Int(i)) => ValueRef::Integer(*i),
        Some(M::UInt(u)) => match i64::try_from(*u) {
            Ok(i) => ValueRef::Integer(i),
            Err(_) => ValueRef::Real(*u as f64),
        },
        Some(M::Float(f)) => ValueRef::Real(*f as f64),
        Some(M::Double(f)) => ValueRef::Real(*f),
        Some(M::Date(..) | M::Time(..)) => match dates.next() {
            Some(text) => ValueRef::Text(text.as_bytes()),
            None => ValueRef::Null,
        },
    }
}

/// A DATETIME as ZenML's datetime text (`YYYY-MM-DD HH:MM:SS[.ffffff]`).
fn datetime_text(value: &mysql_async::Value) -> String {
    match value {
        mysql_async::Value::Date(y, mo, d, h, mi, s, us) => {
            if *us == 0 {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
            }
        }
        mysql_async::Value::Time(neg, days, h, mi, s, us) => {
            let sign = if *neg { "-" } else { "" };
            let hours = *days * 24 + u32::from(*h);
            format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}")
        }
        _ => String::new(),
    }
}

/// Runs `future` to completion from synchronous code (a lookup while a query is planned or a
/// function runs): on a worker of the running runtime, or on a runtime of its own.
pub fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let own_runtime = |future: F| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for a store lookup")
            .block_on(future)
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        // Inside a single-threaded runtime no runtime may start on this thread.
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| own_runtime(future))
                .join()
                .expect("a store lookup thread")
        }),
        Err(_) => own_runtime(future),
    }
}
