//! PostgreSQL's SQL as DataFusion plans it: what clients write that means the same in
//! DataFusion once spelled differently, rewritten in the parsed statement before planning,
//! and which statements a read-only server runs at all.
//!
//! Every rewrite keeps the meaning: `OPERATOR(pg_catalog.~)` is `~`; `COLLATE` clauses go
//! (runql compares text by its bytes, as PostgreSQL's `C` collation does); casts to
//! PostgreSQL's catalog types become the functions that compute them (`'runs'::regclass` is
//! the table's oid, `to_regclass('runs')`); `pg_catalog.f(...)` is `f(...)`; `current_user`
//! is a call; a catalog table named without its schema is the catalog's; a function in
//! `FROM` with an alias names its one column as PostgreSQL does.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, Function, FunctionArgumentList, FunctionArguments,
    Ident, ObjectName, ObjectNamePart, Statement, TableAliasColumnDef, TableFactor, VisitMut,
    VisitorMut,
};

/// What a statement asks of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Planned and run by DataFusion: queries, `EXPLAIN`.
    Query,
    /// `SET name = value` (or `SET name TO value`, `SET SESSION ...`, `SET TIME ZONE`).
    Set { name: String, value: String },
    /// `RESET name` / `RESET ALL`.
    Reset { name: Option<String> },
    /// `SHOW name`.
    Show { name: String },
    /// `BEGIN` / `START TRANSACTION`: every statement reads the store as it is when it
    /// starts; a transaction changes nothing but the status clients track.
    Begin,
    /// `COMMIT`, `ROLLBACK`, `END`, `ABORT`.
    End { tag: &'static str },
    /// Statements about the session that change nothing here (`DISCARD ALL`,
    /// `DEALLOCATE`, `SAVEPOINT`, `UNLISTEN`, ...), answered with their tag.
    Nothing { tag: String },
    /// Refused: anything that would write, or reach outside the tables (files, settings of
    /// the engine).
    Refused { what: String },
}

/// What `statement` is (see [`Kind`]).
pub fn classify(statement: &Statement) -> Kind {
    use datafusion::sql::sqlparser::ast::Set;
    match statement {
        Statement::Query(_) | Statement::Explain { .. } | Statement::ExplainTable { .. } => {
            Kind::Query
        }
        Statement::StartTransaction { .. } => Kind::Begin,
        Statement::Commit { .. } => Kind::End { tag: "COMMIT" },
        Statement::Rollback {
            savepoint: None, ..
        } => Kind::End { tag: "ROLLBACK" },
        Statement::Rollback { .. } => Kind::Nothing {
            tag: "ROLLBACK".into(),
        },
        Statement::Savepoint { .. } => Kind::Nothing {
            tag: "SAVEPOINT".into(),
        },
        Statement::ReleaseSavepoint { .. } => Kind::Nothing {
            tag: "RELEASE".into(),
        },
        Statement::Discard { .. } => Kind::Nothing {
            tag: "DISCARD ALL".into(),
        },
        Statement::Deallocate { .. } => Kind::Nothing {
            tag: "DEALLOCATE".into(),
        },
        Statement::ShowVariable { variable } => Kind::Show {
            name: variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(" "),
        },
        Statement::Set(set) => match set {
            Set::SingleAssignment {
                variable, values, ..
            } => Kind::Set {
                name: variable.to_string().to_ascii_lowercase(),
                value: values
                    .iter()
                    .map(setting_text)
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            Set::SetTimeZone { value, .. } => Kind::Set {
                name: "timezone".into(),
                value: setting_text(value),
            },
            Set::SetNames { charset_name, .. } => Kind::Set {
                name: "client_encoding".into(),
                value: charset_name.to_string(),
            },
            Set::SetTransaction { .. } | Set::SetSessionAuthorization(..) => {
                Kind::Nothing { tag: "SET".into() }
            }
            other => Kind::Refused {
                what: format!("SET {other}"),
            },
        },
        other => Kind::Refused {
            what: first_words(&other.to_string()),
        },
    }
}

/// Statements sqlparser cannot parse but clients send about their session.
pub fn classify_text(sql: &str) -> Option<Kind> {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect();
    let first = words.first()?.as_str();
    let tag = |t: &str| Some(Kind::Nothing { tag: t.to_string() });
    match (first, words.get(1).map(String::as_str)) {
        ("RESET", Some("ALL")) => Some(Kind::Reset { name: None }),
        ("RESET", Some(name)) => Some(Kind::Reset {
            name: Some(name.to_ascii_lowercase()),
        }),
        ("DISCARD", _) => tag("DISCARD ALL"),
        ("DEALLOCATE", _) => tag("DEALLOCATE"),
        ("UNLISTEN", _) => tag("UNLISTEN"),
        ("CLOSE", _) => tag("CLOSE CURSOR"),
        ("END", _) | ("ABORT", _) => Some(Kind::End {
            tag: if first == "END" { "COMMIT" } else { "ROLLBACK" },
        }),
        _ => None,
    }
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// A setting's value as `SHOW` gives it back: a string literal's contents, else the SQL.
fn setting_text(value: &Expr) -> String {
    match value {
        Expr::Value(v) => match &v.value {
            datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s)
            | datafusion::sql::sqlparser::ast::Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

/// Rewrites `statement` in place for DataFusion (see the module doc). `is_catalog_table`
/// says whether a bare name is one of the catalog's tables (and not one of runql's).
pub fn rewrite(statement: &mut Statement, is_catalog_table: &dyn Fn(&str) -> bool) {
    let mut rewrite = Rewrite { is_catalog_table };
    let _ = statement.visit(&mut rewrite);
}

struct Rewrite<'a> {
    is_catalog_table: &'a dyn Fn(&str) -> bool,
}

/// Schemas whose functions runql registers without a schema.
const FUNCTION_SCHEMAS: [&str; 2] = ["pg_catalog", "information_schema"];

/// Functions returning one column that clients call in `FROM` with a bare alias, which
/// PostgreSQL then uses as the column's name too.
const ONE_COLUMN_FUNCTIONS: [&str; 3] = ["generate_series", "unnest", "regexp_split_to_table"];

/// Scalar functions clients call in `FROM` (Grafana: `string_to_array(...) s`).
const SCALAR_FUNCTIONS_IN_FROM: [&str; 4] = [
    "string_to_array",
    "parse_ident",
    "current_schemas",
    "regexp_split_to_array",
];

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    /// `SELECT c.oid, c.*`: PostgreSQL gives `oid` twice; DataFusion wants each output
    /// name once. The column the wildcard also gives is left to the wildcard (a client reads
    /// it by name and finds the same value).
    fn post_visit_select(
        &mut self,
        select: &mut datafusion::sql::sqlparser::ast::Select,
    ) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{SelectItem, SelectItemQualifiedWildcardKind};
        let wildcards: Vec<String> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                ) => Some(n.to_string().to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        // `SELECT pubname, NULL, NULL`: PostgreSQL names both `?column?`; DataFusion wants
        // distinct names, so the repeats are numbered.
        let mut seen: Vec<String> = Vec::new();
        for item in select.projection.iter_mut() {
            if let SelectItem::UnnamedExpr(e) = item
                && !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
            {
                let text = e.to_string();
                if seen.contains(&text) {
                    let n = seen.iter().filter(|t| **t == text).count();
                    *item = SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: Ident::with_quote('"', format!("?column?{n}")),
                    };
                }
                seen.push(text);
            }
        }
        if !wildcards.is_empty() {
            select.projection.retain(|item| match item {
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) if parts.len() == 2 => {
                    !wildcards.contains(&parts[0].value.to_ascii_lowercase())
                }
                _ => true,
            });
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, alias, args, ..
        } = factor
        {
            match args {
                None => {
                    // `pg_type`, not `pg_catalog.pg_type`: the search path holds pg_catalog.
                    if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice()
                        && (self.is_catalog_table)(&ident.value.to_ascii_lowercase())
                    {
                        let table = ident.clone();
                        name.0 = vec![
                            ObjectNamePart::Identifier(Ident::new("pg_catalog")),
                            ObjectNamePart::Identifier(table),
                        ];
                    }
                }
                Some(table_args) => {
                    strip_function_schema(name);
                    let function = name.to_string().to_ascii_lowercase();
                    // A scalar function in FROM is one row of one column named by its alias:
                    // `string_to_array(...) s` is `(SELECT string_to_array(...) AS s) s`.
                    if SCALAR_FUNCTIONS_IN_FROM.contains(&function.as_str()) {
                        let column = alias
                            .as_ref()
                            .map(|a| a.name.value.clone())
                            .unwrap_or_else(|| function.clone());
                        let args: Vec<String> =
                            table_args.args.iter().map(ToString::to_string).collect();
                        let sql = format!(
                            "SELECT {function}({}) AS \"{}\"",
                            args.join(", "),
                            column.replace('"', "\"\"")
                        );
                        if let Ok(mut parsed) =
                            datafusion::sql::sqlparser::parser::Parser::parse_sql(
                                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                                &sql,
                            )
                            && let Some(Statement::Query(query)) = parsed.pop()
                        {
                            let alias = alias.clone().unwrap_or(
                                datafusion::sql::sqlparser::ast::TableAlias {
                                    explicit: true,
                                    name: Ident::new(column),
                                    columns: vec![],
                                    at: None,
                                },
                            );
                            *factor = TableFactor::Derived {
                                lateral: false,
                                subquery: query,
                                alias: Some(alias),
                                sample: None,
                            };
                            return ControlFlow::Continue(());
                        }
                    }
                    if let Some(alias) = alias
                        && alias.columns.is_empty()
                        && ONE_COLUMN_FUNCTIONS.contains(&function.as_str())
                    {
                        alias
                            .columns
                            .push(TableAliasColumnDef::from_name(alias.name.value.clone()));
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let replaced = match expr {
            Expr::BinaryOp { op, .. } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = op
                    && let Some(plain) = parts.last().and_then(|o| plain_operator(o))
                {
                    *op = plain;
                }
                None
            }
            Expr::Collate { expr: inner, .. } => Some((**inner).clone()),
            Expr::Cast {
                kind,
                expr: inner,
                data_type,
                ..
            } => match cast_target(data_type) {
                Cast::Function(f) => Some(call(f, vec![(**inner).clone()])),
                Cast::Type(t) => {
                    *data_type = t;
                    // `x::t` and `CAST(x AS t)` plan alike; the plain form is DataFusion's.
                    *kind = CastKind::Cast;
                    None
                }
                Cast::Keep => None,
            },
            Expr::Function(f) => {
                strip_function_schema(&mut f.name);
                let name = f.name.to_string().to_ascii_lowercase();
                match &f.args {
                    // `generate_subscripts(a, 1)` beside `unnest(a)` (SQLAlchemy's
                    // constraints): the positions 1..n of a, unnested alongside.
                    FunctionArguments::List(list)
                        if name == "generate_subscripts" && list.args.len() == 2 =>
                    {
                        let array = &list.args[0];
                        parse_expr(&format!(
                            "unnest(range(1, CAST(coalesce(array_length({array}), 0) AS BIGINT) + 1))"
                        ))
                    }
                    // `ARRAY(SELECT x ...)`: the subquery's values as one array. (On no rows
                    // PostgreSQL gives `{}`, this NULL.)
                    FunctionArguments::Subquery(query)
                        if f.name.to_string().eq_ignore_ascii_case("array") =>
                    {
                        Some(array_of(query))
                    }
                    _ => None,
                }
            }
            // `(record).field`: the field, by `get_field`.
            Expr::CompoundFieldAccess { root, access_chain }
                if !matches!(
                    root.as_ref(),
                    Expr::Identifier(_) | Expr::CompoundIdentifier(_)
                ) && matches!(
                    access_chain.first(),
                    Some(datafusion::sql::sqlparser::ast::AccessExpr::Dot(
                        Expr::Identifier(_)
                    ))
                ) =>
            {
                use datafusion::sql::sqlparser::ast::{AccessExpr, Value};
                let mut value = (**root).clone();
                let mut rest = Vec::new();
                for (i, access) in access_chain.iter().enumerate() {
                    match access {
                        AccessExpr::Dot(Expr::Identifier(field)) if rest.is_empty() => {
                            value = call(
                                "get_field",
                                vec![
                                    value,
                                    Expr::value(Value::SingleQuotedString(
                                        field.value.to_ascii_lowercase(),
                                    )),
                                ],
                            );
                        }
                        _ => rest = access_chain[i..].to_vec(),
                    }
                    if !rest.is_empty() {
                        break;
                    }
                }
                Some(if rest.is_empty() {
                    value
                } else {
                    Expr::CompoundFieldAccess {
                        root: Box::new(value),
                        access_chain: rest,
                    }
                })
            }
            // `LIKE p ESCAPE '/'` (SQLAlchemy's reflection): DataFusion escapes with `\`
            // only, so the pattern's escapes are rewritten to `\`, its backslashes doubled.
            Expr::Like {
                pattern,
                escape_char: Some(escape),
                ..
            }
            | Expr::ILike {
                pattern,
                escape_char: Some(escape),
                ..
            } => {
                use datafusion::sql::sqlparser::ast::Value;
                if let Value::SingleQuotedString(c) = &escape.value
                    && c.chars().count() == 1
                    && c != "\\"
                {
                    let ch = c.chars().next().unwrap_or('\\');
                    let regex = if ch.is_ascii_alphanumeric() {
                        ch.to_string()
                    } else {
                        format!("\\{ch}")
                    }
                    .replace('\'', "''");
                    if let Some(new) = parse_expr(&format!(
                        "regexp_replace(replace({pattern}, '\\', '\\\\'), '{regex}(.)', '\\${{1}}', 'g')"
                    )) {
                        **pattern = new;
                        *escape = Value::SingleQuotedString("\\".into()).into();
                    }
                }
                None
            }
            // `x = ANY(array)`: whether the array holds x.
            Expr::AnyOp {
                left,
                compare_op: BinaryOperator::Eq,
                right,
                ..
            } if !matches!(right.as_ref(), Expr::Subquery(_)) => {
                Some(call("array_has", vec![(**right).clone(), (**left).clone()]))
            }
            // `x <> ALL(array)`: whether the array lacks x.
            Expr::AllOp {
                left,
                compare_op: BinaryOperator::NotEq,
                right,
            } if !matches!(right.as_ref(), Expr::Subquery(_)) => Some(Expr::UnaryOp {
                op: datafusion::sql::sqlparser::ast::UnaryOperator::Not,
                expr: Box::new(call("array_has", vec![(**right).clone(), (**left).clone()])),
            }),
            // `current_schema`, `user` and friends are calls without parentheses.
            Expr::Identifier(ident)
                if ident.quote_style.is_none()
                    && matches!(
                        ident.value.to_ascii_lowercase().as_str(),
                        "current_schema" | "user" | "current_role"
                    ) =>
            {
                Some(call(&ident.value.to_ascii_lowercase(), vec![]))
            }
            _ => None,
        };
        if let Some(new) = replaced {
            *expr = new;
        }
        ControlFlow::Continue(())
    }
}

/// `ARRAY(SELECT e FROM ... [ORDER BY o])` as an aggregate DataFusion plans (correlated
/// too): `(SELECT array_agg(e [ORDER BY o]) FROM ...)`; a subquery of another shape is
/// aggregated whole. (On no rows PostgreSQL gives `{}`, this NULL.)
fn array_of(query: &datafusion::sql::sqlparser::ast::Query) -> Expr {
    use datafusion::sql::sqlparser::ast::{
        FunctionArg, FunctionArgExpr, FunctionArgumentClause, GroupByExpr, OrderByKind, SelectItem,
        SetExpr,
    };
    let mut q = query.clone();
    let order = q.order_by.take();
    if q.limit_clause.is_none()
        && let SetExpr::Select(select) = q.body.as_mut()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        && select.having.is_none()
        && select.distinct.is_none()
        && let [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] =
            select.projection.as_slice()
    {
        let clauses = match order.map(|o| o.kind) {
            Some(OrderByKind::Expressions(exprs)) => vec![FunctionArgumentClause::OrderBy(exprs)],
            _ => vec![],
        };
        let aggregate = Expr::Function(Function {
            name: ObjectName::from(vec![Ident::new("array_agg")]),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(e.clone()))],
                clauses,
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: vec![],
        });
        select.projection = vec![SelectItem::UnnamedExpr(aggregate)];
        return Expr::Subquery(Box::new(q));
    }
    parse_expr(&format!(
        "(SELECT array_agg(_array.x) FROM ({query}) AS _array(x))"
    ))
    .unwrap_or_else(|| Expr::Subquery(Box::new(query.clone())))
}

fn parse_expr(sql: &str) -> Option<Expr> {
    datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(sql)
    .ok()?
    .parse_expr()
    .ok()
}

/// A second try for a statement DataFusion would not plan: whether a rewrite applies to
/// `error`, done in place.
///
/// DataFusion plans a correlated scalar subquery (psql's `\d`: a column's default, its
/// collation) when it is aggregated and correlated by equalities only. PostgreSQL runs one
/// that gives at most one row. So each such subquery becomes: its one value as
/// `first_value` (none is NULL, as in PostgreSQL), correlated by its equalities; a condition
/// on the outer row alone moves out as `CASE WHEN condition THEN (subquery) END` (the same:
/// a false condition leaves no row, so NULL); and a condition between outer and inner
/// columns that is no equality moves out too, its inner columns read by subqueries of their
/// own under the same equalities. The last is exact when the equalities find at most one
/// row, as the catalog's lookups by oid do.
pub fn second_chance(
    statement: &mut Statement,
    error: &str,
    is_empty_table: &dyn Fn(&str) -> bool,
) -> bool {
    if error.contains("Cannot infer common argument type for comparison operation List") {
        return array_literals(statement);
    }
    let emptied = (error.contains("OuterReferenceColumn") || error.contains("ScalarSubquery"))
        && rowless_selects(statement, is_empty_table);
    if error.contains("subquery can only be used in") && error.contains("[Sort") {
        return ordered_outside(statement);
    }
    if !error.contains("Correlated scalar subquery must be aggregated")
        && !error.contains("ScalarSubquery")
    {
        return emptied;
    }
    struct Decorrelate<'a> {
        empty: &'a dyn Fn(&str) -> bool,
        changed: bool,
    }
    impl VisitorMut for Decorrelate<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Subquery(query) = expr {
                // Over a catalog table with no rows, a scalar subquery is NULL.
                if let datafusion::sql::sqlparser::ast::SetExpr::Select(select) =
                    query.body.as_ref()
                    && rowless(select, self.empty)
                {
                    *expr = Expr::value(datafusion::sql::sqlparser::ast::Value::Null);
                    self.changed = true;
                } else if let Some(new) = decorrelated(query) {
                    *expr = new;
                    self.changed = true;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Decorrelate {
        empty: is_empty_table,
        changed: false,
    };
    let _ = statement.visit(&mut visitor);
    emptied || visitor.changed
}

/// Whether `select` gives no rows because it joins (not outer-joins) a catalog table with
/// none, and aggregates nothing (an aggregate gives its one row over no rows).
fn rowless(select: &datafusion::sql::sqlparser::ast::Select, empty: &dyn Fn(&str) -> bool) -> bool {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, JoinOperator, SelectItem};
    let empty_name = |f: &TableFactor| match f {
        TableFactor::Table {
            name, args: None, ..
        } => match name.0.last() {
            Some(ObjectNamePart::Identifier(i)) => empty(&i.value.to_ascii_lowercase()),
            _ => false,
        },
        _ => false,
    };
    let joined_empty = select.from.iter().any(|t| {
        empty_name(&t.relation)
            || t.joins.iter().any(|j| {
                matches!(
                    j.join_operator,
                    JoinOperator::Inner(_) | JoinOperator::Join(_)
                ) && empty_name(&j.relation)
            })
    });
    let aggregates = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        || select.projection.iter().any(|i| match i {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                is_aggregate(e)
            }
            _ => false,
        });
    joined_empty && !aggregates
}

/// `ORDER BY CASE WHEN x IN (SELECT ...) THEN 0 ELSE 1 END` (Grafana's table picker):
/// DataFusion takes subqueries in a projection, not in a sort. The query becomes one that
/// computes the sort keys as columns and sorts outside them, keeping the output's names.
fn ordered_outside(statement: &mut Statement) -> bool {
    use datafusion::sql::sqlparser::ast::{
        GroupByExpr, OrderByKind, SelectItem, SetExpr, TableWithJoins, Value,
    };
    let Statement::Query(query) = statement else {
        return false;
    };
    let Some(order_by) = query.order_by.as_mut() else {
        return false;
    };
    let OrderByKind::Expressions(keys) = &mut order_by.kind else {
        return false;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    if select.distinct.is_some()
        || !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
    {
        return false;
    }
    // Every output column named, so the outer query can name it.
    let mut names = Vec::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        let name = match item {
            SelectItem::ExprWithAlias { alias, .. } => alias.clone(),
            SelectItem::UnnamedExpr(Expr::Identifier(id)) => id.clone(),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts
                .last()
                .cloned()
                .unwrap_or_else(|| Ident::new(format!("__c{i}"))),
            SelectItem::UnnamedExpr(e) => {
                let alias = Ident::with_quote('"', e.to_string());
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: alias.clone(),
                };
                alias
            }
            _ => return false,
        };
        names.push(name);
    }
    let mut changed = false;
    for (k, key) in keys.iter_mut().enumerate() {
        match &key.expr {
            // `ORDER BY 1`: the first output column, by its name.
            Expr::Value(v) => {
                if let Value::Number(n, _) = &v.value
                    && let Ok(i) = n.parse::<usize>()
                    && (1..=names.len()).contains(&i)
                {
                    key.expr = Expr::Identifier(names[i - 1].clone());
                }
            }
            e if contains_subquery(e) => {
                let alias = Ident::new(format!("__order{k}"));
                select.projection.push(SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: alias.clone(),
                });
                key.expr = Expr::Identifier(alias);
                changed = true;
            }
            _ => {}
        }
    }
    if !changed {
        return false;
    }
    let inner = datafusion::sql::sqlparser::ast::Query {
        order_by: None,
        limit_clause: None,
        ..(**query).clone()
    };
    let outer_items: Vec<String> = names.iter().map(|n| format!("__ordered.{n}")).collect();
    let Some(Statement::Query(mut outer)) = datafusion::sql::sqlparser::parser::Parser::parse_sql(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
        &format!("SELECT {} FROM x", outer_items.join(", ")),
    )
    .ok()
    .and_then(|mut p| p.pop()) else {
        return false;
    };
    if let SetExpr::Select(o) = outer.body.as_mut() {
        o.from = vec![TableWithJoins {
            relation: TableFactor::Derived {
                lateral: false,
                subquery: Box::new(inner),
                alias: Some(datafusion::sql::sqlparser::ast::TableAlias {
                    explicit: true,
                    name: Ident::new("__ordered"),
                    columns: vec![],
                    at: None,
                }),
                sample: None,
            },
            joins: vec![],
        }];
    }
    outer.order_by = query.order_by.take();
    outer.limit_clause = query.limit_clause.take();
    **query = *outer;
    true
}

/// A SELECT that joins (not outer-joins) a catalog table with no rows gives no rows,
/// whatever its columns compute: its subqueries, which may be correlated in ways DataFusion
/// does not plan (psql's publications of a table: `generate_series` over an outer column),
/// become NULL.
fn rowless_selects(statement: &mut Statement, is_empty_table: &dyn Fn(&str) -> bool) -> bool {
    use datafusion::sql::sqlparser::ast::SelectItem;
    struct Rowless<'a> {
        empty: &'a dyn Fn(&str) -> bool,
        changed: bool,
    }
    impl VisitorMut for Rowless<'_> {
        type Break = ();
        fn pre_visit_select(
            &mut self,
            select: &mut datafusion::sql::sqlparser::ast::Select,
        ) -> ControlFlow<()> {
            if rowless(select, self.empty) {
                for item in select.projection.iter_mut() {
                    let e = match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
                        _ => continue,
                    };
                    if contains_subquery(e) {
                        *e = Expr::value(datafusion::sql::sqlparser::ast::Value::Null);
                        self.changed = true;
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Rowless {
        empty: is_empty_table,
        changed: false,
    };
    let _ = statement.visit(&mut visitor);
    visitor.changed
}

fn contains_subquery(expr: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    struct Find(bool);
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if matches!(
                e,
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }
            ) {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut f = Find(false);
    let _ = expr.visit(&mut f);
    f.0
}

/// `polroles = '{0}'`: an array compared with PostgreSQL's text form of one, which
/// DataFusion cannot cast; compared as text instead (`array_to_string(polroles, ',') =
/// '0'`), the same for elements without commas or quotes.
fn array_literals(statement: &mut Statement) -> bool {
    use datafusion::sql::sqlparser::ast::Value;
    struct Arrays(bool);
    fn literal(e: &Expr) -> Option<String> {
        match e {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) if s.starts_with('{') && s.ends_with('}') => {
                    let inner = &s[1..s.len() - 1];
                    (!inner.contains('"')).then(|| inner.to_string())
                }
                _ => None,
            },
            _ => None,
        }
    }
    impl VisitorMut for Arrays {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::BinaryOp { left, op, right } = expr
                && matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq)
            {
                let text = |e: &Expr| {
                    call(
                        "array_to_string",
                        vec![
                            e.clone(),
                            Expr::value(
                                datafusion::sql::sqlparser::ast::Value::SingleQuotedString(
                                    ",".into(),
                                ),
                            ),
                        ],
                    )
                };
                let string = |s: String| {
                    Expr::value(datafusion::sql::sqlparser::ast::Value::SingleQuotedString(
                        s,
                    ))
                };
                if let Some(inner) = literal(right) {
                    **left = text(left);
                    **right = string(inner);
                    self.0 = true;
                } else if let Some(inner) = literal(left) {
                    **right = text(right);
                    **left = string(inner);
                    self.0 = true;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut arrays = Arrays(false);
    let _ = statement.visit(&mut arrays);
    arrays.0
}

/// The rewrite of one scalar subquery (see [`second_chance`]), or None when it does not
/// have the simple form (one value, no grouping, no limit) or needs none.
fn decorrelated(query: &datafusion::sql::sqlparser::ast::Query) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, SelectItem, SetExpr};
    if query.limit_clause.is_some() || query.with.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    if !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        || select.having.is_some()
        || select.distinct.is_some()
    {
        return None;
    }
    let [item] = select.projection.as_slice() else {
        return None;
    };
    let (value, alias) = match item {
        SelectItem::UnnamedExpr(e) => (e.clone(), None),
        SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
        _ => return None,
    };
    let inner = inner_names(select);
    let mut kept = Vec::new();
    let mut outside = Vec::new();
    let mut mixed = Vec::new();
    for conjunct in conjuncts(select.selection.clone()) {
        let (outer_refs, inner_refs) = references(&conjunct, &inner);
        match (outer_refs, inner_refs) {
            (true, false) => outside.push(conjunct),
            (true, true)
                if !matches!(
                    &conjunct,
                    Expr::BinaryOp {
                        op: BinaryOperator::Eq,
                        ..
                    }
                ) =>
            {
                mixed.push(conjunct)
            }
            _ => kept.push(conjunct),
        }
    }
    let aggregated = is_aggregate(&value);
    if aggregated && outside.is_empty() && mixed.is_empty() {
        return None;
    }
    let with = |projected: Expr| -> Expr {
        let mut q = query.clone();
        if let SetExpr::Select(sel) = q.body.as_mut() {
            sel.selection = conjunction(kept.clone());
            let value = if is_aggregate(&projected) {
                projected
            } else {
                call("first_value", vec![projected])
            };
            sel.projection = vec![match &alias {
                Some(a) => SelectItem::ExprWithAlias {
                    expr: value,
                    alias: a.clone(),
                },
                None => SelectItem::UnnamedExpr(value),
            }];
        }
        Expr::Subquery(Box::new(q))
    };
    let subquery = with(value);
    let mut conditions = outside;
    for mut conjunct in mixed {
        replace_inner(&mut conjunct, &inner, &with);
        conditions.push(conjunct);
    }
    match conjunction(conditions) {
        None => Some(subquery),
        Some(condition) => Some(Expr::Case {
            case_token:
                datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
            end_token:
                datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
            operand: None,
            conditions: vec![datafusion::sql::sqlparser::ast::CaseWhen {
                condition,
                result: subquery,
            }],
            else_result: None,
        }),
    }
}

/// The names a subquery's own tables go by (aliases, else table names).
fn inner_names(select: &datafusion::sql::sqlparser::ast::Select) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |factor: &TableFactor| match factor {
        TableFactor::Table { name, alias, .. } => names.push(
            alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| match name.0.last() {
                    Some(ObjectNamePart::Identifier(i)) => i.value.clone(),
                    _ => String::new(),
                })
                .to_ascii_lowercase(),
        ),
        TableFactor::Derived { alias: Some(a), .. }
        | TableFactor::Function { alias: Some(a), .. } => {
            names.push(a.name.value.to_ascii_lowercase())
        }
        _ => {}
    };
    for table in &select.from {
        add(&table.relation);
        for join in &table.joins {
            add(&join.relation);
        }
    }
    names
}

fn conjuncts(expr: Option<Expr>) -> Vec<Expr> {
    match expr {
        None => Vec::new(),
        Some(Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        }) => {
            let mut out = conjuncts(Some(*left));
            out.extend(conjuncts(Some(*right)));
            out
        }
        Some(Expr::Nested(inner))
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(Some(*inner))
        }
        Some(other) => vec![other],
    }
}

fn conjunction(mut exprs: Vec<Expr>) -> Option<Expr> {
    let first = if exprs.is_empty() {
        return None;
    } else {
        exprs.remove(0)
    };
    Some(exprs.into_iter().fold(first, |acc, e| Expr::BinaryOp {
        left: Box::new(acc),
        op: BinaryOperator::And,
        right: Box::new(e),
    }))
}

/// Whether `expr` reads columns of the outer query (qualified by a name the subquery does
/// not have), and of the subquery's own tables (or unqualified).
fn references(expr: &Expr, inner: &[String]) -> (bool, bool) {
    use datafusion::sql::sqlparser::ast::Visit;
    struct Refs<'a> {
        inner: &'a [String],
        outer: bool,
        own: bool,
    }
    impl datafusion::sql::sqlparser::ast::Visitor for Refs<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                // `a.col` or `pg_catalog.pg_attrdef.col`: qualified by the part before the
                // column.
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    if self
                        .inner
                        .contains(&parts[parts.len() - 2].value.to_ascii_lowercase())
                    {
                        self.own = true;
                    } else {
                        self.outer = true;
                    }
                }
                Expr::Identifier(_) => self.own = true,
                // A nested subquery's columns are its own business.
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                    self.own = true;
                    return ControlFlow::Break(());
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut refs = Refs {
        inner,
        outer: false,
        own: false,
    };
    let _ = expr.visit(&mut refs);
    (refs.outer, refs.own)
}

/// Replaces the subquery's own columns in `expr` with `read(column)`.
fn replace_inner(expr: &mut Expr, inner: &[String], read: &dyn Fn(Expr) -> Expr) {
    struct Replace<'a> {
        inner: &'a [String],
        read: &'a dyn Fn(Expr) -> Expr,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = expr
                && parts.len() >= 2
                && self
                    .inner
                    .contains(&parts[parts.len() - 2].value.to_ascii_lowercase())
            {
                *expr = (self.read)(expr.clone());
            }
            ControlFlow::Continue(())
        }
    }
    let _ = expr.visit(&mut Replace { inner, read });
}

fn is_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::Function(f) => matches!(
            f.name.to_string().to_ascii_lowercase().as_str(),
            "count"
                | "sum"
                | "min"
                | "max"
                | "avg"
                | "array_agg"
                | "string_agg"
                | "bool_and"
                | "bool_or"
                | "first_value"
                | "last_value"
        ),
        _ => false,
    }
}

fn strip_function_schema(name: &mut ObjectName) {
    if name.0.len() == 2
        && let ObjectNamePart::Identifier(schema) = &name.0[0]
        && FUNCTION_SCHEMAS.contains(&schema.value.to_ascii_lowercase().as_str())
    {
        name.0.remove(0);
    }
}

fn plain_operator(op: &str) -> Option<BinaryOperator> {
    Some(match op {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "~~*" => BinaryOperator::PGILikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "!~~*" => BinaryOperator::PGNotILikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "||" => BinaryOperator::StringConcat,
        _ => return None,
    })
}

enum Cast {
    /// The cast is this function of its operand.
    Function(&'static str),
    /// The cast is to this type.
    Type(DataType),
    Keep,
}

/// What a cast to `data_type` is in DataFusion.
fn cast_target(data_type: &DataType) -> Cast {
    match data_type {
        DataType::Regclass => Cast::Function("to_regclass"),
        DataType::JSON | DataType::JSONB | DataType::Uuid => Cast::Type(DataType::Text),
        DataType::Custom(name, _) => {
            let last = match name.0.last() {
                Some(ObjectNamePart::Identifier(i)) => i.value.to_ascii_lowercase(),
                _ => return Cast::Keep,
            };
            match last.as_str() {
                "regclass" => Cast::Function("to_regclass"),
                "regtype" => Cast::Function("to_regtype"),
                "regnamespace" => Cast::Function("to_regnamespace"),
                "regproc" | "regprocedure" => Cast::Function("to_regproc"),
                "regrole" => Cast::Function("to_regrole"),
                "oid" | "xid" | "cid" | "regconfig" | "regoper" => {
                    Cast::Type(DataType::IntUnsigned(None))
                }
                "text" | "name" | "char" | "bpchar" | "citext" | "int2vector" | "oidvector"
                | "pg_node_tree" | "aclitem" | "inet" | "json" | "jsonb" | "uuid" | "unknown" => {
                    Cast::Type(DataType::Text)
                }
                "int2" => Cast::Type(DataType::SmallInt(None)),
                "int4" => Cast::Type(DataType::Int(None)),
                "int8" => Cast::Type(DataType::BigInt(None)),
                "float4" => Cast::Type(DataType::Real),
                "float8" => Cast::Type(DataType::DoublePrecision),
                "bool" => Cast::Type(DataType::Boolean),
                "timestamptz" => Cast::Type(DataType::Timestamp(
                    Some(6),
                    datafusion::sql::sqlparser::ast::TimezoneInfo::Tz,
                )),
                _ => Cast::Keep,
            }
        }
        DataType::Array(datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
            inner,
            size,
        )) => match cast_target(inner) {
            Cast::Type(t) => Cast::Type(DataType::Array(
                datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                    Box::new(t),
                    *size,
                ),
            )),
            // An array of regclass and the like: its oids.
            Cast::Function(_) => Cast::Type(DataType::Array(
                datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(
                    Box::new(DataType::IntUnsigned(None)),
                    *size,
                ),
            )),
            Cast::Keep => Cast::Keep,
        },
        _ => Cast::Keep,
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr};
    let args = if args.is_empty() && matches!(name, "user" | "current_role") {
        FunctionArguments::None
    } else {
        FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        })
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args,
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        rewrite(&mut statements[0], &|t| t == "pg_type");
        statements[0].to_string()
    }

    #[test]
    fn catalog_spellings_become_datafusions() {
        assert_eq!(
            rewritten(
                "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(runs)$' COLLATE pg_catalog.default"
            ),
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname ~ '^(runs)$'"
        );
        assert_eq!(
            rewritten(
                "SELECT 'pg_class'::regclass, x::pg_catalog.text, pg_catalog.format_type(1, 2)"
            ),
            "SELECT to_regclass('pg_class'), CAST(x AS TEXT), format_type(1, 2)"
        );
        assert_eq!(
            rewritten("SELECT typname FROM pg_type"),
            "SELECT typname FROM pg_catalog.pg_type"
        );
        assert_eq!(
            rewritten("SELECT i FROM generate_series(1, 3) AS i"),
            "SELECT i FROM generate_series(1, 3) AS i (i)"
        );
    }

    #[test]
    fn writes_are_refused_and_session_statements_answered() {
        let kind = |sql: &str| classify(&Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap()[0]);
        assert!(matches!(kind("DROP TABLE runs"), Kind::Refused { .. }));
        assert!(matches!(
            kind("COPY runs TO '/tmp/x'"),
            Kind::Refused { .. }
        ));
        assert!(matches!(
            kind("INSERT INTO runs VALUES (1)"),
            Kind::Refused { .. }
        ));
        assert!(matches!(
            kind("SET datafusion.execution.batch_size = 1"),
            Kind::Set { .. }
        ));
        assert_eq!(
            kind("SET application_name = 'psql'"),
            Kind::Set {
                name: "application_name".into(),
                value: "psql".into()
            }
        );
        assert_eq!(kind("BEGIN"), Kind::Begin);
        assert_eq!(kind("SELECT 1"), Kind::Query);
    }
}
