//! PostgreSQL's functions that clients call while finding their way (`version()`,
//! `current_schema()`, `format_type`, `pg_table_is_visible`, `obj_description`, `quote_ident`,
//! `current_setting`, ...), over the catalog's lookups and the connection's session.
//!
//! They evaluate row by row over `ScalarValue`s and take their arguments as they come (an oid
//! may arrive as a number, an unsigned catalog column or a quoted string, as PostgreSQL
//! allows): they answer catalog questions, on catalog-sized inputs.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::catalog::{DATABASE, Lookup, OWNER, SCHEMA, SEARCH_PATH};

type Body = dyn Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync;

/// A function of PostgreSQL's, evaluated row by row.
struct PgFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: Arc<Body>,
}

impl std::fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.body, &other.body)
    }
}

impl Eq for PgFunction {}

impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        if all_scalar {
            let values: Vec<ScalarValue> = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(_) => unreachable!("all scalar"),
                })
                .collect();
            return Ok(ColumnarValue::Scalar(self.cast((self.body)(&values)?)?));
        }
        let arrays: Vec<_> = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            let values: Vec<ScalarValue> = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<Result<_>>()?;
            out.push(self.cast((self.body)(&values)?)?);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&self.returns),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

impl PgFunction {
    /// A NULL of the return type for a body's plain NULL.
    fn cast(&self, value: ScalarValue) -> Result<ScalarValue> {
        if value.data_type() == self.returns {
            Ok(value)
        } else if value.is_null() {
            ScalarValue::try_from(&self.returns)
        } else {
            value.cast_to(&self.returns)
        }
    }
}

/// Any number of arguments of any type (none included).
fn any_args() -> Signature {
    Signature::one_of(
        vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
        Volatility::Stable,
    )
}

fn udf(
    name: &'static str,
    returns: DataType,
    body: impl Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(PgFunction {
        name,
        signature: any_args(),
        returns,
        body: Arc::new(body),
    })
}

/// An argument as text (numbers in their decimal form), or None for NULL.
fn text(v: &ScalarValue) -> Option<String> {
    if v.is_null() {
        return None;
    }
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An argument as an oid: a number, or a string of digits.
fn oid(v: &ScalarValue) -> Option<u32> {
    text(v)
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|n| u32::try_from(n).ok())
}

fn int(v: &ScalarValue) -> Option<i64> {
    text(v).and_then(|s| s.trim().parse::<i64>().ok())
}

fn arg(args: &[ScalarValue], i: usize) -> &ScalarValue {
    args.get(i).unwrap_or(&ScalarValue::Null)
}

fn s(value: Option<String>) -> ScalarValue {
    ScalarValue::Utf8(value)
}

fn text_list(items: Vec<String>) -> ScalarValue {
    let values: Vec<ScalarValue> = items
        .into_iter()
        .map(|i| ScalarValue::Utf8(Some(i)))
        .collect();
    ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Utf8))
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// The functions that read the catalog, and those that need no connection.
pub fn register_catalog(ctx: &SessionContext, lookup: &Arc<Lookup>) {
    let version = format!(
        "PostgreSQL {} (runql {}) on {}, served by runql over Apache DataFusion",
        super::auth::SERVER_VERSION,
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    let u = DataType::Utf8;
    let functions = vec![
        udf("version", u.clone(), move |_| Ok(s(Some(version.clone())))),
        udf("current_database", u.clone(), |_| {
            Ok(s(Some(DATABASE.into())))
        }),
        udf("current_catalog", u.clone(), |_| {
            Ok(s(Some(DATABASE.into())))
        }),
        udf("current_schema", u.clone(), |_| Ok(s(Some(SCHEMA.into())))),
        udf("current_schemas", list_type(), |args| {
            let mut schemas = Vec::new();
            if matches!(arg(args, 0), ScalarValue::Boolean(Some(true))) {
                schemas.push("pg_catalog".to_string());
            }
            schemas.extend(SEARCH_PATH.split(',').map(|s| s.trim().to_string()));
            Ok(text_list(schemas))
        }),
        udf("pg_get_userbyid", u.clone(), |_| Ok(s(Some(OWNER.into())))),
        udf("pg_encoding_to_char", u.clone(), |args| {
            Ok(s(
                int(arg(args, 0)).map(|e| if e == 6 { "UTF8" } else { "SQL_ASCII" }.into())
            ))
        }),
        udf("pg_is_in_recovery", DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(false)))
        }),
        udf("pg_postmaster_start_time", u.clone(), {
            let started = chrono::Utc::now().to_rfc3339();
            move |_| Ok(s(Some(started.clone())))
        }),
        udf("txid_current", DataType::Int64, |_| {
            Ok(ScalarValue::Int64(Some(1)))
        }),
        udf("pg_relation_is_publishable", DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(false)))
        }),
        // Sizes: runql's tables are views of a store it does not own.
        udf("pg_relation_size", DataType::Int64, |_| {
            Ok(ScalarValue::Int64(Some(0)))
        }),
        udf("pg_total_relation_size", DataType::Int64, |_| {
            Ok(ScalarValue::Int64(Some(0)))
        }),
        udf("pg_table_size", DataType::Int64, |_| {
            Ok(ScalarValue::Int64(Some(0)))
        }),
        udf("pg_indexes_size", DataType::Int64, |_| {
            Ok(ScalarValue::Int64(Some(0)))
        }),
        udf("pg_size_pretty", u.clone(), |args| {
            Ok(s(int(arg(args, 0)).map(|b| format!("{b} bytes"))))
        }),
        // Expressions, definitions: runql's catalog has none (no defaults, indexes, views).
        udf("pg_get_expr", u.clone(), |args| Ok(s(text(arg(args, 0))))),
        udf("pg_get_indexdef", u.clone(), |_| Ok(s(None))),
        udf("pg_get_constraintdef", u.clone(), |_| Ok(s(None))),
        udf("pg_get_viewdef", u.clone(), |_| Ok(s(None))),
        udf("pg_get_triggerdef", u.clone(), |_| Ok(s(None))),
        udf("pg_get_ruledef", u.clone(), |_| Ok(s(None))),
        udf("pg_get_partkeydef", u.clone(), |_| Ok(s(None))),
        udf("pg_get_statisticsobjdef_columns", u.clone(), |_| {
            Ok(s(None))
        }),
        udf("pg_tablespace_location", u.clone(), |_| {
            Ok(s(Some(String::new())))
        }),
        udf("pg_collation_is_visible", DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(true)))
        }),
        // runql's tables have no serial columns.
        udf("pg_get_serial_sequence", u.clone(), |_| Ok(s(None))),
        udf("json_build_object", u.clone(), |args| {
            json_object(args).map(|t| s(Some(t)))
        }),
        udf("pg_stat_get_numscans", DataType::Int64, |_| {
            Ok(ScalarValue::Int64(Some(0)))
        }),
        udf("quote_ident", u.clone(), |args| {
            Ok(s(text(arg(args, 0)).map(|t| quote_ident(&t))))
        }),
        udf("quote_literal", u.clone(), |args| {
            Ok(s(
                text(arg(args, 0)).map(|t| format!("'{}'", t.replace('\'', "''")))
            ))
        }),
        udf("parse_ident", list_type(), |args| {
            Ok(match text(arg(args, 0)) {
                Some(t) => text_list(parse_ident(&t)),
                None => ScalarValue::try_from(&list_type())?,
            })
        }),
        udf("format", u.clone(), |args| {
            format_text(args).map(|t| s(Some(t)))
        }),
        // bigint, not PostgreSQL's integer: DataFusion's generate_series takes bigints.
        udf("array_lower", DataType::Int64, |args| {
            Ok(ScalarValue::Int64(
                list_len(arg(args, 0)).filter(|n| *n > 0).map(|_| 1),
            ))
        }),
        udf("array_upper", DataType::Int64, |args| {
            Ok(ScalarValue::Int64(
                list_len(arg(args, 0)).filter(|n| *n > 0).map(i64::from),
            ))
        }),
        // Privileges: everything runql lists may be read, nothing written.
        udf("has_table_privilege", DataType::Boolean, |args| {
            Ok(privilege(args))
        }),
        udf("has_any_column_privilege", DataType::Boolean, |args| {
            Ok(privilege(args))
        }),
        udf("has_column_privilege", DataType::Boolean, |args| {
            Ok(privilege(args))
        }),
        udf("has_schema_privilege", DataType::Boolean, |args| {
            Ok(privilege(args))
        }),
        udf("has_database_privilege", DataType::Boolean, |args| {
            Ok(privilege(args))
        }),
        udf("has_function_privilege", DataType::Boolean, |args| {
            Ok(privilege(args))
        }),
        udf("has_sequence_privilege", DataType::Boolean, |_| {
            Ok(ScalarValue::Boolean(Some(false)))
        }),
    ];
    for f in functions {
        ctx.register_udf(f);
    }
    // information_schema._pg_expandarray: PostgreSQL's set-returning function over an index's
    // key columns (pgjdbc's getPrimaryKeys reads `(_pg_expandarray(indkey)).n`). runql's
    // pg_index has no rows, so it is never called on one; it plans, as a (x, n) record.
    let record = DataType::Struct(
        vec![
            Field::new("x", DataType::Int16, true),
            Field::new("n", DataType::Int32, true),
        ]
        .into(),
    );
    ctx.register_udf(udf("_pg_expandarray", record.clone(), move |_| {
        ScalarValue::try_from(&record)
    }));

    let l = Arc::clone(lookup);
    ctx.register_udf(udf("format_type", u.clone(), move |args| {
        Ok(s(oid(arg(args, 0)).and_then(|o| l.format_type(o))))
    }));
    let l = Arc::clone(lookup);
    ctx.register_udf(udf("pg_table_is_visible", DataType::Boolean, move |args| {
        Ok(ScalarValue::Boolean(
            oid(arg(args, 0)).map(|o| l.relation_visible(o)),
        ))
    }));
    let l = Arc::clone(lookup);
    ctx.register_udf(udf("pg_type_is_visible", DataType::Boolean, move |args| {
        Ok(ScalarValue::Boolean(
            oid(arg(args, 0)).map(|o| l.type_visible(o)),
        ))
    }));
    let l = Arc::clone(lookup);
    ctx.register_udf(udf(
        "pg_function_is_visible",
        DataType::Boolean,
        move |args| {
            Ok(ScalarValue::Boolean(
                oid(arg(args, 0)).map(|o| l.proc_visible(o)),
            ))
        },
    ));
    for name in [
        "pg_get_function_arguments",
        "pg_get_function_identity_arguments",
    ] {
        let l = Arc::clone(lookup);
        ctx.register_udf(udf(name, u.clone(), move |args| {
            Ok(s(oid(arg(args, 0)).and_then(|o| l.proc_arguments(o))))
        }));
    }
    let l = Arc::clone(lookup);
    ctx.register_udf(udf("pg_get_function_result", u.clone(), move |args| {
        Ok(s(oid(arg(args, 0)).and_then(|o| l.proc_result(o))))
    }));
    let l = Arc::clone(lookup);
    ctx.register_udf(udf("obj_description", u.clone(), move |args| {
        let class = text(arg(args, 1)).and_then(|c| Lookup::class_oid(&c));
        Ok(s(oid(arg(args, 0)).and_then(|o| l.description(o, class, 0))))
    }));
    let l = Arc::clone(lookup);
    ctx.register_udf(udf("col_description", u.clone(), move |args| {
        let column = int(arg(args, 1)).unwrap_or(0) as i32;
        Ok(s(oid(arg(args, 0)).and_then(|o| {
            l.description(o, Lookup::class_oid("pg_class"), column)
        })))
    }));
    ctx.register_udf(udf("shobj_description", u.clone(), |_| Ok(s(None))));
    // Casts to the catalog's oid types (`'runs'::regclass`): a name's oid, an oid as it is.
    type Find = fn(&Lookup, &str) -> Option<u32>;
    let finds: [(&'static str, Find); 4] = [
        ("to_regclass", Lookup::relation),
        ("to_regtype", Lookup::type_oid),
        ("to_regnamespace", Lookup::namespace),
        ("to_regrole", |_, name| (name == OWNER).then_some(10)),
    ];
    for (name, find) in finds {
        let l = Arc::clone(lookup);
        ctx.register_udf(udf(name, DataType::UInt32, move |args| {
            let v = arg(args, 0);
            Ok(ScalarValue::UInt32(match v {
                ScalarValue::Utf8(Some(t))
                | ScalarValue::LargeUtf8(Some(t))
                | ScalarValue::Utf8View(Some(t)) => t.parse::<u32>().ok().or_else(|| find(&l, t)),
                other => oid(other),
            }))
        }));
    }
    // A function's regproc is its name, as PostgreSQL prints one.
    ctx.register_udf(udf("to_regproc", u, |args| Ok(s(text(arg(args, 0))))));
}

/// What a connection knows of itself: its user, its process id (for cancel requests), and
/// the settings it changed with `SET`.
#[derive(Debug)]
pub struct Session {
    pub user: String,
    pub pid: i32,
    pub application_name: Mutex<String>,
    settings: Mutex<HashMap<String, String>>,
}

/// Settings a client may read with `SHOW` or `current_setting` before setting any.
pub fn default_settings() -> Vec<(&'static str, String)> {
    vec![
        ("server_version", super::auth::SERVER_VERSION.to_string()),
        (
            "server_version_num",
            super::auth::SERVER_VERSION
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
                .map_or("150000".to_string(), |m| (m * 10_000).to_string()),
        ),
        ("server_encoding", "UTF8".to_string()),
        ("client_encoding", "UTF8".to_string()),
        ("search_path", SEARCH_PATH.to_string()),
        ("timezone", "UTC".to_string()),
        ("datestyle", "ISO, MDY".to_string()),
        ("intervalstyle", "postgres".to_string()),
        ("standard_conforming_strings", "on".to_string()),
        ("integer_datetimes", "on".to_string()),
        ("default_transaction_read_only", "on".to_string()),
        ("transaction_read_only", "on".to_string()),
        ("transaction_isolation", "read committed".to_string()),
        (
            "default_transaction_isolation",
            "read committed".to_string(),
        ),
        ("max_identifier_length", "63".to_string()),
        ("max_index_keys", "32".to_string()),
        ("lc_collate", "C".to_string()),
        ("lc_ctype", "C".to_string()),
        ("extra_float_digits", "1".to_string()),
        ("statement_timeout", "0".to_string()),
        ("is_superuser", "off".to_string()),
        ("application_name", String::new()),
        ("default_table_access_method", "heap".to_string()),
        ("bytea_output", "hex".to_string()),
        ("lc_messages", "C".to_string()),
        ("lc_monetary", "C".to_string()),
        ("lc_numeric", "C".to_string()),
        ("lc_time", "C".to_string()),
        ("block_size", "8192".to_string()),
    ]
}

impl Session {
    pub fn new(user: String, pid: i32, startup: &HashMap<String, String>) -> Session {
        let mut settings: HashMap<String, String> = default_settings()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        // What the client said at startup (`application_name`, `DateStyle`, `options`).
        for (k, v) in startup {
            let k = k.to_ascii_lowercase();
            if !matches!(k.as_str(), "user" | "database" | "options" | "replication") {
                settings.insert(k, v.clone());
            }
        }
        Session {
            application_name: Mutex::new(
                settings
                    .get("application_name")
                    .cloned()
                    .unwrap_or_default(),
            ),
            user,
            pid,
            settings: Mutex::new(settings),
        }
    }

    pub fn setting(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        let name = match name.as_str() {
            "transaction isolation level" => "transaction_isolation",
            "time zone" => "timezone",
            other => other,
        };
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn set(&self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        if name == "application_name" {
            *self
                .application_name
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = value.to_string();
        }
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, value.to_string());
    }

    pub fn reset(&self, name: Option<&str>) {
        let defaults: HashMap<String, String> = default_settings()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match name {
            None => *settings = defaults,
            Some(name) => {
                let name = name.to_ascii_lowercase();
                match defaults.get(&name) {
                    Some(v) => settings.insert(name, v.clone()),
                    None => settings.remove(&name),
                };
            }
        }
    }

    /// All settings, sorted by name (`SHOW ALL`).
    pub fn all(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        all
    }
}

/// The functions that answer for one connection.
pub fn register_session(ctx: &SessionContext, session: &Arc<Session>) {
    let u = DataType::Utf8;
    for name in ["current_user", "session_user", "user", "current_role"] {
        let user = session.user.clone();
        ctx.register_udf(udf(name, u.clone(), move |_| Ok(s(Some(user.clone())))));
    }
    let pid = session.pid;
    ctx.register_udf(udf("pg_backend_pid", DataType::Int32, move |_| {
        Ok(ScalarValue::Int32(Some(pid)))
    }));
    let sess = Arc::clone(session);
    ctx.register_udf(udf("current_setting", u.clone(), move |args| {
        let name = text(arg(args, 0)).unwrap_or_default();
        let missing_ok = matches!(arg(args, 1), ScalarValue::Boolean(Some(true)));
        match sess.setting(&name) {
            Some(v) => Ok(s(Some(v))),
            None if missing_ok => Ok(s(None)),
            None => Err(DataFusionError::Plan(format!(
                "unrecognized configuration parameter \"{name}\""
            ))),
        }
    }));
    let sess = Arc::clone(session);
    ctx.register_udf(udf("set_config", u, move |args| {
        let name = text(arg(args, 0)).unwrap_or_default();
        let value = text(arg(args, 1)).unwrap_or_default();
        sess.set(&name, &value);
        Ok(s(Some(value)))
    }));
}

/// `has_*_privilege(...)`: reading is allowed, writing never.
fn privilege(args: &[ScalarValue]) -> ScalarValue {
    let wanted = args
        .last()
        .and_then(text)
        .unwrap_or_default()
        .to_ascii_uppercase();
    let read = wanted
        .split(',')
        .map(|p| p.trim().trim_end_matches(" WITH GRANT OPTION"))
        .all(|p| {
            matches!(
                p,
                "SELECT" | "USAGE" | "CONNECT" | "EXECUTE" | "TEMPORARY" | "TEMP"
            )
        });
    ScalarValue::Boolean(Some(read && !wanted.is_empty()))
}

fn list_len(v: &ScalarValue) -> Option<i32> {
    match v {
        ScalarValue::List(l) if !v.is_null() => Some(l.value_length(0)),
        ScalarValue::LargeList(l) if !v.is_null() => Some(l.value_length(0) as i32),
        _ => None,
    }
}

/// PostgreSQL's `quote_ident`: quoted unless a plain lower-case name.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain && !is_reserved(name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "all"
            | "and"
            | "any"
            | "array"
            | "as"
            | "asc"
            | "case"
            | "cast"
            | "check"
            | "column"
            | "create"
            | "default"
            | "desc"
            | "distinct"
            | "do"
            | "else"
            | "end"
            | "false"
            | "for"
            | "from"
            | "grant"
            | "group"
            | "having"
            | "in"
            | "into"
            | "is"
            | "join"
            | "limit"
            | "not"
            | "null"
            | "offset"
            | "on"
            | "or"
            | "order"
            | "select"
            | "table"
            | "then"
            | "to"
            | "true"
            | "union"
            | "user"
            | "using"
            | "when"
            | "where"
            | "with"
    )
}

/// PostgreSQL's `parse_ident`: `a."B c".d` → `[a, B c, d]`.
fn parse_ident(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('.', false) => parts.push(std::mem::take(&mut current)),
            (c, true) => current.push(c),
            (c, false) => current.push(c.to_ascii_lowercase()),
        }
    }
    parts.push(current);
    parts
}

/// PostgreSQL's `json_build_object(key, value, ...)`, as JSON text.
fn json_object(args: &[ScalarValue]) -> Result<String> {
    if !args.len().is_multiple_of(2) {
        return Err(DataFusionError::Plan(
            "json_build_object takes an even number of arguments".into(),
        ));
    }
    let mut object = serde_json::Map::new();
    for pair in args.chunks(2) {
        let key = text(&pair[0])
            .ok_or_else(|| DataFusionError::Plan("json_build_object: a key is null".into()))?;
        let value = match &pair[1] {
            v if v.is_null() => serde_json::Value::Null,
            ScalarValue::Boolean(Some(b)) => serde_json::Value::Bool(*b),
            ScalarValue::Int8(_)
            | ScalarValue::Int16(_)
            | ScalarValue::Int32(_)
            | ScalarValue::Int64(_)
            | ScalarValue::UInt8(_)
            | ScalarValue::UInt16(_)
            | ScalarValue::UInt32(_)
            | ScalarValue::UInt64(_) => int(&pair[1]).map_or(serde_json::Value::Null, Into::into),
            ScalarValue::Float32(Some(f)) => serde_json::json!(f),
            ScalarValue::Float64(Some(f)) => serde_json::json!(f),
            other => serde_json::Value::String(text(other).unwrap_or_default()),
        };
        object.insert(key, value);
    }
    Ok(serde_json::Value::Object(object).to_string())
}

/// PostgreSQL's `format(fmt, ...)`: `%s` (as text), `%I` (identifier), `%L` (literal), `%%`.
fn format_text(args: &[ScalarValue]) -> Result<String> {
    let fmt = text(arg(args, 0)).unwrap_or_default();
    let mut out = String::new();
    let mut next = 1;
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let value = || text(arg(args, next));
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s') => {
                out.push_str(&value().unwrap_or_default());
                next += 1;
            }
            Some('I') => {
                out.push_str(&quote_ident(&value().unwrap_or_default()));
                next += 1;
            }
            Some('L') => {
                out.push_str(&value().map_or("NULL".to_string(), |v| {
                    format!("'{}'", v.replace('\'', "''"))
                }));
                next += 1;
            }
            other => {
                return Err(DataFusionError::Plan(format!(
                    "format(): unsupported conversion %{}",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_quote_and_parse_as_postgresql_does() {
        assert_eq!(quote_ident("runs"), "runs");
        assert_eq!(quote_ident("Runs"), "\"Runs\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(parse_ident("zenml.\"Runs x\""), vec!["zenml", "Runs x"]);
        assert_eq!(parse_ident("Zenml.runs"), vec!["zenml", "runs"]);
    }

    #[test]
    fn format_fills_its_conversions() {
        let args = [
            ScalarValue::Utf8(Some("%I.%I = %L, %s%%".into())),
            ScalarValue::Utf8(Some("zenml".into())),
            ScalarValue::Utf8(Some("Runs".into())),
            ScalarValue::Utf8(Some("it's".into())),
            ScalarValue::Int64(Some(3)),
        ];
        assert_eq!(format_text(&args).unwrap(), "zenml.\"Runs\" = 'it''s', 3%");
    }

    #[test]
    fn only_reading_is_a_privilege() {
        let p = |s: &str| {
            privilege(&[
                ScalarValue::Utf8(Some("runs".into())),
                ScalarValue::Utf8(Some(s.into())),
            ])
        };
        assert_eq!(p("SELECT"), ScalarValue::Boolean(Some(true)));
        assert_eq!(p("select"), ScalarValue::Boolean(Some(true)));
        assert_eq!(p("INSERT"), ScalarValue::Boolean(Some(false)));
        assert_eq!(p("SELECT, UPDATE"), ScalarValue::Boolean(Some(false)));
    }
}
