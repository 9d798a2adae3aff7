//! The one place SQLite's SQL becomes MySQL's: runql's table layer writes every query in
//! SQLite's dialect (the era mappings, pushed filters, sorts), and a MySQL scan runs it
//! through [`translate`].
//!
//! Some differences are settled by the session instead ([`SESSION_SETUP`]): `"..."` quotes
//! identifiers (`ANSI_QUOTES`), `||` concatenates (`PIPES_AS_CONCAT`), a backslash is an
//! ordinary character in literals and `LIKE` (`NO_BACKSLASH_ESCAPES`), datetimes are UTC and
//! `GROUP_CONCAT` is not cut at 1 KiB. The rest is rewritten here, each to what SQLite
//! computes:
//! - `json_extract(j, p)`: SQLite gives a JSON string unquoted, JSON `null` as NULL and an
//!   object or array as minified text; MariaDB's `JSON_EXTRACT` gives JSON (`{"a": 1}`).
//! - `unixepoch(t)` → `UNIX_TIMESTAMP(t)` (whole seconds; the session is UTC).
//! - `CAST(x AS INTEGER)` → `CAST(x AS SIGNED)`; `CAST(x AS BINARY)` (text compared as
//!   bytes, written by the pushdown) → the bytes of `x` in UTF-8, as DataFusion compares, also
//!   in a latin1 table.
//! - `group_concat(x, char(31) ORDER BY k)` → `GROUP_CONCAT(x ORDER BY k SEPARATOR U+001F)`,
//!   `k` compared as bytes, as SQLite's BINARY collation sorts it.
//! - `ORDER BY x NULLS FIRST|LAST`, which MySQL lacks → `x IS NULL` as a leading key.
//! - A unary `+` (SQLite's way to keep a column off its index) is dropped: on MySQL it would
//!   turn a string into a number.
//! - `t.rowid`, SQLite's storage order, → `t.id`: InnoDB stores rows in primary-key order.
//! - Every bare identifier is quoted, so ZenML's column names that are reserved words in
//!   MySQL (`key`, `index`) parse.
//!
//! - `LEFT JOIN x ON x.c = y.d` → `JOIN` when the database guarantees `y` a row of `x`:
//!   `y.d` is NOT NULL under a single-column foreign key to `x.c` (InnoDB enforces it), and
//!   `y` is itself always present. The answers are the same, and MariaDB may then start from
//!   either side (a LEFT JOIN fixes the order: the latest outputs read every output row and
//!   looked up its version, where the versions' own order finds the three at once).
//!
//! Comparisons of text stay as written: that MySQL compares case-insensitively and ignores
//! trailing spaces is the pushdown's business (`tables::push_down`), which writes the exact
//! forms it needs.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, Ident, JoinConstraint, JoinOperator, OrderByExpr, OrderByKind,
    OrderByOptions, Query, Select, SelectItem, Statement, TableFactor, UnaryOperator, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::SQLiteDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Statements each MySQL session of runql runs first (see the module doc).
pub const SESSION_SETUP: &[&str] = &[
    "SET SESSION sql_mode = 'ANSI_QUOTES,PIPES_AS_CONCAT,NO_BACKSLASH_ESCAPES'",
    "SET SESSION time_zone = '+00:00'",
    "SET SESSION group_concat_max_len = 4294967295",
];

/// Which server speaks: they differ in what their JSON functions return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// The store's foreign keys that guarantee a row: `(table, column)` NOT NULL and referencing
/// `(table, column)` alone, in tables whose engine enforces them. Names in lowercase.
#[derive(Debug, Default, Clone)]
pub struct ForeignKeys(HashSet<(String, String, String, String)>);

impl ForeignKeys {
    pub fn new(keys: impl IntoIterator<Item = (String, String, String, String)>) -> Self {
        Self(
            keys.into_iter()
                .map(|(t, c, rt, rc)| {
                    let lower = |s: String| s.to_ascii_lowercase();
                    (lower(t), lower(c), lower(rt), lower(rc))
                })
                .collect(),
        )
    }

    /// Whether every row of `table` has a row of `referenced` with `referenced_column` equal
    /// to its `column`.
    fn guarantee(
        &self,
        table: &str,
        column: &str,
        referenced: &str,
        referenced_column: &str,
    ) -> bool {
        let key = |s: &str| s.to_ascii_lowercase();
        self.0.contains(&(
            key(table),
            key(column),
            key(referenced),
            key(referenced_column),
        ))
    }
}

/// `sql`, written for SQLite, as MySQL/MariaDB SQL that computes the same. An error names
/// what could not be translated (runql's own SQL, so a bug, not a user's mistake).
pub fn translate(sql: &str, flavor: Flavor, keys: &ForeignKeys) -> Result<String, String> {
    let mut statements = Parser::parse_sql(&SQLiteDialect {}, sql).map_err(|e| e.to_string())?;
    let mut rewrite = Rewrite { flavor, keys };
    if let ControlFlow::Break(e) = statements.visit(&mut rewrite) {
        return Err(e);
    }
    match statements.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(format!(
            "expected one statement, found {}",
            statements.len()
        )),
    }
}

struct Rewrite<'a> {
    flavor: Flavor,
    keys: &'a ForeignKeys,
}

impl VisitorMut for Rewrite<'_> {
    type Break = String;

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<String> {
        let replaced = match expr {
            Expr::Identifier(ident) => {
                quote(ident);
                None
            }
            Expr::CompoundIdentifier(idents) => {
                // SQLite's storage order is its rowid; InnoDB keeps rows in primary-key
                // order, and ZenML's primary key is `id`.
                if let Some(last) = idents.last_mut()
                    && last.quote_style.is_none()
                    && last.value.eq_ignore_ascii_case("rowid")
                {
                    last.value = "id".to_string();
                }
                idents.iter_mut().for_each(quote);
                None
            }
            Expr::UnaryOp {
                op: UnaryOperator::Plus,
                expr: inner,
            } => Some(inner.to_string()),
            Expr::Cast {
                kind: CastKind::Cast,
                expr: inner,
                data_type: DataType::Integer(None) | DataType::Int(None) | DataType::BigInt(None),
                ..
            } => Some(format!("CAST({inner} AS SIGNED)")),
            // Text as bytes means its UTF-8 bytes, whatever character set the table has
            // (ZenML creates tables in the server's default: latin1 on some servers).
            Expr::Cast {
                kind: CastKind::Cast,
                expr: inner,
                data_type: DataType::Binary(None),
                ..
            } => Some(format!("CAST(CONVERT({inner} USING utf8mb4) AS BINARY)")),
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("group_concat") => {
                match group_concat(&f.args) {
                    Ok(sql) => Some(sql),
                    Err(e) => return ControlFlow::Break(e),
                }
            }
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_lowercase();
                let args = match plain_args(&f.args) {
                    Some(args) => args,
                    None => return ControlFlow::Continue(()),
                };
                match (name.as_str(), args.as_slice()) {
                    ("json_extract", [json, path]) => Some(self.json_extract(json, path)),
                    ("unixepoch", [t]) => Some(format!("UNIX_TIMESTAMP({t})")),
                    ("char", [code]) => Some(format!("CHAR({code} USING utf8mb4)")),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(sql) = replaced {
            *expr = raw(sql);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<String> {
        for item in &mut select.projection {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                quote(alias);
            }
        }
        self.inner_joins_where_guaranteed(select);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<String> {
        if let Some(order) = &mut query.order_by
            && let OrderByKind::Expressions(keys) = &mut order.kind
        {
            let mut explicit = Vec::with_capacity(keys.len() * 2);
            for key in keys.drain(..) {
                let Some(nulls_first) = key.options.nulls_first else {
                    explicit.push(key);
                    continue;
                };
                // MySQL puts NULLs first ascending and last descending; say where, as a key.
                explicit.push(OrderByExpr {
                    expr: raw(format!("({} IS NULL)", key.expr)),
                    options: OrderByOptions {
                        asc: Some(!nulls_first),
                        nulls_first: None,
                    },
                    with_fill: None,
                });
                explicit.push(OrderByExpr {
                    options: OrderByOptions {
                        nulls_first: None,
                        ..key.options
                    },
                    ..key
                });
            }
            *keys = explicit;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<String> {
        match statement {
            Statement::Query(_) => ControlFlow::Continue(()),
            other => ControlFlow::Break(format!("only queries are translated, not {other}")),
        }
    }
}

impl Rewrite<'_> {
    /// Each `LEFT JOIN x ON x.c = y.d` (either way round) whose row the database guarantees
    /// becomes a `JOIN`, left to right: `y` must be the `FROM` table or a join already known
    /// to give a row for every row (an inner join), else a NULL-extended `y` would lose rows.
    fn inner_joins_where_guaranteed(&self, select: &mut Select) {
        for from in &mut select.from {
            // Alias → table of the relations that are present in every row.
            let mut present: Vec<(String, String)> = Vec::new();
            if let Some(named) = named_table(&from.relation) {
                present.push(named);
            }
            for join in &mut from.joins {
                let Some((alias, table)) = named_table(&join.relation) else {
                    continue;
                };
                let on = match &join.join_operator {
                    JoinOperator::Left(JoinConstraint::On(on))
                    | JoinOperator::LeftOuter(JoinConstraint::On(on)) => on,
                    JoinOperator::Join(_) | JoinOperator::Inner(_) => {
                        present.push((alias, table));
                        continue;
                    }
                    _ => continue,
                };
                let guaranteed = equated_columns(on).is_some_and(|(a, b)| {
                    // The joined table's column on one side, a present one's on the other.
                    let (joined, other) = if a.0 == alias { (a, b) } else { (b, a) };
                    joined.0 == alias
                        && present.iter().any(|(present_alias, present_table)| {
                            *present_alias == other.0
                                && self
                                    .keys
                                    .guarantee(present_table, &other.1, &table, &joined.1)
                        })
                });
                if guaranteed {
                    join.join_operator = JoinOperator::Join(JoinConstraint::On(on.clone()));
                    present.push((alias, table));
                }
            }
        }
    }

    /// SQLite's `json_extract` on MySQL: NULL for JSON null, strings unquoted, objects and
    /// arrays as compact text (MariaDB's `JSON_COMPACT` prints them as SQLite does).
    fn json_extract(&self, json: &str, path: &str) -> String {
        let value = format!("JSON_EXTRACT({json}, {path})");
        let container = match self.flavor {
            Flavor::MariaDb => format!("JSON_COMPACT({value})"),
            // MySQL has no JSON_COMPACT: objects keep MySQL's own spacing there.
            Flavor::MySql => format!("JSON_UNQUOTE({value})"),
        };
        format!(
            "CASE JSON_TYPE({value}) WHEN 'NULL' THEN NULL WHEN 'OBJECT' THEN {container} \
             WHEN 'ARRAY' THEN {container} ELSE JSON_UNQUOTE({value}) END"
        )
    }
}

/// SQLite's `group_concat(x, sep ORDER BY key)` as MySQL's `GROUP_CONCAT(x ORDER BY key
/// SEPARATOR sep)`, keys compared as bytes as SQLite's BINARY collation does.
fn group_concat(args: &FunctionArguments) -> Result<String, String> {
    let FunctionArguments::List(list) = args else {
        return Err("group_concat without arguments".to_string());
    };
    let values: Vec<String> = list
        .args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.to_string()),
            other => Err(format!("group_concat argument {other}")),
        })
        .collect::<Result<_, _>>()?;
    let (x, sep) = match values.as_slice() {
        [x] => (x, "','".to_string()),
        // The separator runql's list columns use, U+001F, raw in the literal.
        [x, sep] if sep == "CHAR(31 USING utf8mb4)" => (x, "'\u{1f}'".to_string()),
        [x, sep] if sep.starts_with('\'') => (x, sep.clone()),
        _ => {
            return Err(format!(
                "group_concat({}) has no MySQL form",
                values.join(", ")
            ));
        }
    };
    let mut order = Vec::new();
    for clause in &list.clauses {
        match clause {
            FunctionArgumentClause::OrderBy(keys) => {
                for key in keys {
                    let direction = match key.options.asc {
                        Some(false) => " DESC",
                        _ => "",
                    };
                    order.push(format!("CAST({} AS BINARY){direction}", key.expr));
                }
            }
            other => return Err(format!("group_concat clause {other}")),
        }
    }
    let order = if order.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", order.join(", "))
    };
    Ok(format!("GROUP_CONCAT({x}{order} SEPARATOR {sep})"))
}

/// The arguments of a plain call `f(a, b)` as SQL text, or `None` for other forms.
fn plain_args(args: &FunctionArguments) -> Option<Vec<String>> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.to_string()),
            _ => None,
        })
        .collect()
}

fn quote(ident: &mut Ident) {
    if ident.quote_style.is_none() {
        ident.quote_style = Some('"');
    }
}

/// A subtree already in MySQL's dialect, printed as is. (An unquoted identifier prints its
/// text verbatim, and nothing visits it again: the rewrite works bottom-up.)
fn raw(sql: String) -> Expr {
    Expr::Identifier(Ident::new(sql))
}

/// A plain table's alias (its name when it has none) and name, in lowercase.
fn named_table(relation: &TableFactor) -> Option<(String, String)> {
    let TableFactor::Table { name, alias, .. } = relation else {
        return None;
    };
    let table = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    let alias = alias
        .as_ref()
        .map(|a| a.name.value.to_ascii_lowercase())
        .unwrap_or_else(|| table.clone());
    Some((alias, table))
}

/// `a.x = b.y` as `((a, x), (b, y))`, in lowercase; anything else is `None`.
fn equated_columns(on: &Expr) -> Option<((String, String), (String, String))> {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = on
    else {
        return None;
    };
    let column = |e: &Expr| match e {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => Some((
            parts[0].value.to_ascii_lowercase(),
            parts[1].value.to_ascii_lowercase(),
        )),
        _ => None,
    };
    Some((column(left)?, column(right)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(sql: &str) -> String {
        translate(sql, Flavor::MariaDb, &ForeignKeys::default()).unwrap()
    }

    #[test]
    fn left_joins_the_database_guarantees_become_inner_joins() {
        let key = |t: &str, c: &str, rt: &str| (t.into(), c.into(), rt.into(), "id".into());
        let keys = ForeignKeys::new([
            key(
                "step_run_output_artifact",
                "artifact_id",
                "artifact_version",
            ),
            key("step_run_output_artifact", "step_id", "step_run"),
            key("step_run", "pipeline_run_id", "pipeline_run"),
        ]);
        let with = |keys: &ForeignKeys, sql: &str| translate(sql, Flavor::MariaDb, keys).unwrap();
        let outputs = "SELECT o.name FROM step_run_output_artifact o \
             LEFT JOIN artifact_version av ON av.id = o.artifact_id \
             LEFT JOIN artifact a ON a.id = av.artifact_id \
             LEFT JOIN step_run s ON o.step_id = s.id \
             LEFT JOIN pipeline_run r ON r.id = s.pipeline_run_id";
        assert_eq!(
            with(&keys, outputs),
            "SELECT \"o\".\"name\" FROM step_run_output_artifact o \
             JOIN artifact_version av ON \"av\".\"id\" = \"o\".\"artifact_id\" \
             LEFT JOIN artifact a ON \"a\".\"id\" = \"av\".\"artifact_id\" \
             JOIN step_run s ON \"o\".\"step_id\" = \"s\".\"id\" \
             JOIN pipeline_run r ON \"r\".\"id\" = \"s\".\"pipeline_run_id\""
        );
        // A step run that may be missing (no key for o.step_id) keeps its run's join LEFT:
        // an inner join there would drop the outputs whose step is NULL-extended.
        let fewer = ForeignKeys::new([key("step_run", "pipeline_run_id", "pipeline_run")]);
        assert_eq!(with(&fewer, outputs).matches("LEFT JOIN").count(), 4);
        // No keys known (a reader who may not see them, or MyISAM): nothing changes.
        assert_eq!(
            with(&ForeignKeys::default(), outputs)
                .matches("LEFT JOIN")
                .count(),
            4
        );
        // A key to another column than the one joined on guarantees nothing.
        let other = "SELECT 1 FROM step_run_output_artifact o \
                     LEFT JOIN artifact_version av ON av.uri = o.artifact_id";
        assert!(with(&keys, other).contains("LEFT JOIN"));
    }

    #[test]
    fn sqlite_functions_become_mysql_ones() {
        assert_eq!(
            mysql(
                "SELECT unixepoch(r.end_time) - unixepoch(r.start_time) AS d FROM pipeline_run r"
            ),
            "SELECT UNIX_TIMESTAMP(\"r\".\"end_time\") - UNIX_TIMESTAMP(\"r\".\"start_time\") \
             AS \"d\" FROM pipeline_run r"
        );
        assert_eq!(
            mysql("SELECT CAST(substr(x, 21, 6) AS INTEGER) FROM t"),
            "SELECT CAST(SUBSTR(\"x\", 21, 6) AS SIGNED) FROM t"
        );
        let json = mysql("SELECT json_extract(c, '$.parameters') FROM t");
        assert!(json.starts_with("SELECT CASE JSON_TYPE(JSON_EXTRACT(\"c\", '$.parameters'))"));
        assert!(json.contains("JSON_COMPACT"));
        assert_eq!(
            mysql(
                "SELECT (SELECT group_concat(t.name, char(31) ORDER BY t.name) FROM tag t) FROM x"
            ),
            "SELECT (SELECT GROUP_CONCAT(\"t\".\"name\" ORDER BY CAST(\"t\".\"name\" AS BINARY) \
             SEPARATOR '\u{1f}') FROM tag t) FROM x"
        );
    }

    #[test]
    fn sorts_say_where_nulls_go() {
        assert_eq!(
            mysql("SELECT a FROM t ORDER BY \"a\" DESC NULLS LAST, b ASC NULLS FIRST LIMIT 3"),
            "SELECT \"a\" FROM t ORDER BY (\"a\" IS NULL) ASC, \"a\" DESC, (\"b\" IS NULL) DESC, \"b\" ASC LIMIT 3"
        );
    }

    #[test]
    fn storage_order() {
        assert_eq!(
            mysql("SELECT ROW_NUMBER() OVER (ORDER BY s.rowid) FROM step_run s"),
            "SELECT ROW_NUMBER() OVER (ORDER BY \"s\".\"id\") FROM step_run s"
        );
    }

    #[test]
    fn plus_and_reserved_words() {
        assert_eq!(
            mysql("SELECT m.key AS key FROM t WHERE +\"run_id\" >= ?"),
            "SELECT \"m\".\"key\" AS \"key\" FROM t WHERE \"run_id\" >= ?"
        );
    }

    #[test]
    fn only_queries() {
        assert!(translate("DELETE FROM t", Flavor::MariaDb, &ForeignKeys::default()).is_err());
        assert!(
            translate(
                "SELECT 1; SELECT 2",
                Flavor::MariaDb,
                &ForeignKeys::default()
            )
            .is_err()
        );
    }
}
