//! Read-only access to a ZenML SQL store: where it is, how to open it, which schema it has.
//!
//! runql never writes: every connection is opened with `SQLITE_OPEN_READ_ONLY` and
//! `PRAGMA query_only`, so neither a bug nor a user's SQL can change ZenML's file.

pub mod demo;
pub mod locate;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{StoreError, StoreResult};
use schema::{Fit, SchemaMapping};

/// An open ZenML store: its file, the ZenML schema version found in it, and the mapping
/// from runql's tables to that version's SQL.
#[derive(Debug)]
pub struct ZenStore {
    path: PathBuf,
    version: String,
    mapping: &'static SchemaMapping,
    fit: Fit,
    /// Connections a finished scan handed back: opening one makes SQLite parse ZenML's whole
    /// schema (about a third of a one-shot `SELECT`'s instructions), so they are reused.
    idle: Mutex<Vec<Connection>>,
}

/// Idle connections kept for reuse; more are closed.
const IDLE_CONNECTIONS: usize = 4;

impl ZenStore {
    /// Opens the store at `path` and checks it is a ZenML store of a supported version.
    pub fn open(path: impl Into<PathBuf>) -> StoreResult<Self> {
        let path = path.into();
        if !path.is_file() {
            return Err(StoreError::NotFound(path));
        }
        let conn = open_read_only(&path)?;
        let version = read_version(&conn, &path)?;
        let (mapping, fit) = schema::mapping_for(&version)?;
        Ok(Self {
            path,
            version,
            mapping,
            fit,
            // The connection that read the version serves the first scan.
            idle: Mutex::new(vec![conn]),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// ZenML's schema version, as recorded in `alembic_version`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether runql was verified against this store's ZenML release.
    pub fn fit(&self) -> Fit {
        self.fit
    }

    /// How runql's tables map onto this store's schema.
    pub fn mapping(&self) -> &'static SchemaMapping {
        self.mapping
    }

    /// A read-only connection of its own: an idle one, else a new one. Each scan gets its
    /// own, so scans run in parallel and a long query never blocks another.
    pub fn connect(&self) -> StoreResult<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => open_read_only(&self.path),
        }
    }

    /// Hands back a connection whose statements all ended (no read transaction is open), for
    /// the next scan to reuse.
    pub fn release(&self, conn: Connection) {
        if !conn.is_autocommit() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
    }
}

fn open_read_only(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // ZenML may be writing while we read: wait for its write lock instead of failing.
    conn.busy_timeout(Duration::from_secs(10))?;
    // `query_only` guards against writes even through SQL that SQLite would let a read-only
    // handle try; `case_sensitive_like` makes a pushed-down LIKE agree with DataFusion's.
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA case_sensitive_like = ON;")
        .map_err(|e| not_zenml(path, e))?;
    Ok(conn)
}

fn read_version(conn: &Connection, path: &Path) -> StoreResult<String> {
    conn.query_row("SELECT version_num FROM alembic_version", [], |row| {
        row.get::<_, String>(0)
    })
    .map_err(|e| not_zenml(path, e))
}

/// Maps SQLite's complaints about a file that is not a ZenML database to one clear line.
fn not_zenml(path: &Path, err: rusqlite::Error) -> StoreError {
    let reason = match &err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::NotADatabase => {
            "not a SQLite database".to_string()
        }
        rusqlite::Error::SqliteFailure(_, Some(msg)) if msg.contains("no such table") => {
            "it has no alembic_version table".to_string()
        }
        rusqlite::Error::QueryReturnedNoRows => "its alembic_version table is empty".to_string(),
        other => other.to_string(),
    };
    StoreError::NotZenml {
        path: path.to_path_buf(),
        reason,
    }
}
