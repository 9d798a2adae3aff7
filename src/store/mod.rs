//! Read-only access to a ZenML SQL store: where it is, how to open it, which schema it has.
//!
//! Two backends sit behind [`ZenStore`]: a SQLite file (`sqlite`, this module's SQLite half)
//! and a MySQL/MariaDB database ([`mysql`]). Both are read with the same era mappings
//! (`schema`), written in SQLite's SQL; MySQL's differences live in `mysql::dialect`.
//!
//! runql never writes: every SQLite connection is opened with `SQLITE_OPEN_READ_ONLY` and
//! `PRAGMA query_only`, every MySQL session is `READ ONLY`, so neither a bug nor a user's
//! SQL can change ZenML's store.

pub mod demo;
mod dialect;
pub mod locate;
pub mod mysql;
pub mod rest;
pub mod schema;
pub mod secret;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{StoreError, StoreResult};
pub use dialect::{Dialect, SQLITE_SETTINGS};
use schema::{Fit, SchemaMapping};

/// An open ZenML store: where it is, the ZenML schema version found in it, and the mapping
/// from runql's tables to that version's SQL.
#[derive(Debug)]
pub struct ZenStore {
    backend: Backend,
    version: String,
    mapping: &'static SchemaMapping,
    fit: Fit,
}

/// The database behind a store.
#[derive(Debug)]
pub enum Backend {
    Sqlite(SqliteFile),
    // Boxed: a MySQL store carries its connections and foreign keys, ten times a file's size.
    Mysql(Box<mysql::MysqlStore>),
}

/// A ZenML SQLite file.
#[derive(Debug)]
pub struct SqliteFile {
    path: PathBuf,
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
            backend: Backend::Sqlite(SqliteFile {
                path,
                // The connection that read the version serves the first scan.
                idle: Mutex::new(vec![conn]),
            }),
            version,
            mapping,
            fit,
        })
    }

    /// Connects to the MySQL/MariaDB store at `address` and checks it is a ZenML store of a
    /// supported version.
    pub async fn open_mysql(address: mysql::MysqlAddress) -> StoreResult<Self> {
        let (mut store, version) = mysql::MysqlStore::open(address).await?;
        let (mapping, fit) = schema::mapping_for(&version)?;
        store.learn_foreign_keys(&mapping.tables_read()).await;
        Ok(Self {
            backend: Backend::Mysql(Box::new(store)),
            version,
            mapping,
            fit,
        })
    }

    /// Opens the store `location` names.
    pub async fn open_location(location: &locate::Location) -> StoreResult<Self> {
        match location {
            locate::Location::File(path) => Self::open(path.clone()),
            locate::Location::Mysql(address) => Self::open_mysql(address.clone()).await,
            // Queries never go to a server: they read its mirror (`crate::mirror`).
            locate::Location::Server(server) => Err(StoreError::Server {
                server: server.to_string(),
                reason: "a ZenML server is read through its local mirror, not opened as a store"
                    .to_string(),
            }),
        }
    }

    /// The store's file, for a SQLite store.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(file) => Some(&file.path),
            Backend::Mysql(_) => None,
        }
    }

    /// Where the store is, as a user may see it: a path, or a MySQL address without its
    /// password.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(file) => file.path.display().to_string(),
            Backend::Mysql(db) => db.address().to_string(),
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The dialect the store's queries finally run in.
    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Mysql(_) => Dialect::Mysql,
        }
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

    /// A mark that changes whenever a write is committed to the store, where one is that
    /// cheap to read; `None`: only the store's rows can say what changed.
    pub fn change_mark(&self) -> Option<String> {
        match &self.backend {
            Backend::Sqlite(file) => file.change_mark(),
            Backend::Mysql(_) => None,
        }
    }
}

impl SqliteFile {
    /// A read-only connection of its own: an idle one, else a new one. Each scan gets its
    /// own, so scans run in parallel and a long query never blocks another.
    pub fn connect(&self) -> StoreResult<Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => open_read_only(&self.path),
        }
    }

    /// SQLite's file header counts the write transactions committed to the file (in
    /// rollback-journal mode, which ZenML uses; a WAL database's commits leave the header as
    /// it was, so it has no mark). A journal beside the file means a write is under way or
    /// was interrupted: no mark either.
    fn change_mark(&self) -> Option<String> {
        use std::io::Read;
        let mut journal = self.path.clone().into_os_string();
        journal.push("-journal");
        if Path::new(&journal).exists() {
            return None;
        }
        let mut header = [0u8; 100];
        std::fs::File::open(&self.path)
            .ok()?
            .read_exact(&mut header)
            .ok()?;
        // Bytes 18 and 19: the file format's write and read versions, 1 for rollback journal.
        if header[18] != 1 || header[19] != 1 {
            return None;
        }
        let counter = u32::from_be_bytes(header[24..28].try_into().ok()?);
        let pages = u32::from_be_bytes(header[28..32].try_into().ok()?);
        Some(format!("sqlite change counter {counter}, {pages} pages"))
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
    conn.execute_batch(dialect::SQLITE_SETTINGS)
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
