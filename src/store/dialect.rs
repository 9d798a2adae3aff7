//! Which SQL a store's queries are finally run in: what pushdown must account for.
//!
//! Its own file, so the pushdown translator's fuzz target (fuzz/) compiles it as it is.

/// The SQL dialect a store's queries are finally run in (what pushdown must account for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Mysql,
}

/// What every SQLite connection runql reads with is set to. `query_only` guards against
/// writes even through SQL that SQLite would let a read-only handle try;
/// `case_sensitive_like` makes a pushed-down LIKE agree with DataFusion's (the translator
/// relies on it, and so does the fuzz target's oracle).
pub const SQLITE_SETTINGS: &str = "PRAGMA query_only = ON; PRAGMA case_sensitive_like = ON;";
