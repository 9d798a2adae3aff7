//! Errors runql reports to its user: each one renders as a single line.

use std::path::PathBuf;

/// Everything that can go wrong opening or reading a ZenML store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no ZenML store found: pass --store PATH (or sqlite:////abs/path/zenml.db), set RUNQL_STORE, \
         point ZENML_CONFIG_PATH at a ZenML config, or try --demo"
    )]
    NotConfigured,
    #[error("ZenML store not found: {0}")]
    NotFound(PathBuf),
    #[error("{path} is not a ZenML store: {reason}")]
    NotZenml { path: PathBuf, reason: String },
    #[error(
        "ZenML schema version {found} is not supported: runql reads stores of ZenML {oldest} and later \
         (verified: {supported})"
    )]
    UnsupportedVersion {
        found: String,
        oldest: String,
        supported: String,
    },
    #[error("cannot read ZenML config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    /// The scheme only: the rest of a URL may hold a password.
    #[error(
        "unsupported store URL scheme {0}: runql reads ZenML's SQLite stores (sqlite:///...) \
         MySQL/MariaDB stores (mysql://user:password@host/database) and ZenML servers \
         (https://host)"
    )]
    UnsupportedUrl(String),
    #[error("bad MySQL store URL: {0}")]
    MysqlUrl(String),
    #[error("cannot read MySQL store {store}: {reason}")]
    Mysql { store: String, reason: String },
    #[error("{store} is not a ZenML store: {reason}")]
    NotZenmlDatabase { store: String, reason: String },
    #[error("runql cannot write this query for MySQL (a runql bug): {reason}")]
    Translate { reason: String },
    #[error("the MySQL store does not have what runql expects: {reason}")]
    MysqlSchema { reason: String },
    #[error(
        "the store does not have what runql's {mapping} expects ({reason}); \
         its ZenML schema version is {version}"
    )]
    SchemaMismatch {
        version: String,
        mapping: String,
        reason: String,
    },
    #[error("bad ZenML server URL: {0}")]
    ServerUrl(String),
    #[error("ZenML server {server}: {reason}")]
    Server { server: String, reason: String },
    #[error(
        "ZenML server {server} refused runql (HTTP {status}): the API key or login is wrong, \
         expired or revoked, or lacks read access"
    )]
    ServerAuth { server: String, status: u16 },
    #[error(
        "no API key for ZenML server {server}: set ZENML_STORE_API_KEY, pass --api-key-file FILE, \
         or log in with `zenml login {server}`"
    )]
    NoCredential { server: String },
    #[error(
        "ZenML server {server} runs ZenML {version}, which runql cannot read: runql reads servers \
         of ZenML {oldest} and later (verified: {verified})"
    )]
    UnsupportedServer {
        server: String,
        version: String,
        oldest: String,
        verified: String,
    },
    #[error("no mirror of {server} yet ({dir}): run once without --offline to fill it")]
    NoMirror { server: String, dir: PathBuf },
    #[error("reading the ZenML store failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A store's failure inside a query: DataFusion carries it, and `cli::exec::one_line` shows
/// its message alone.
impl From<StoreError> for datafusion::error::DataFusionError {
    fn from(e: StoreError) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}
