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
    #[error("unsupported store URL {0}: runql reads ZenML's SQLite stores (sqlite:///...)")]
    UnsupportedUrl(String),
    #[error(
        "the store does not have what runql's {mapping} expects ({reason}); \
         its ZenML schema version is {version}"
    )]
    SchemaMismatch {
        version: String,
        mapping: String,
        reason: String,
    },
    #[error("reading the ZenML store failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;
