//! Named SQL reports: the files of `queries/`, compiled into the binary, plus a user's own
//! folder (`--queries-dir`), run by `runql query NAME --param KEY=VALUE`.
//!
//! A report is one SQL statement. Its first comment line describes it; `$name` placeholders
//! are its parameters, bound by DataFusion as typed values (the type each placeholder has in
//! the plan), never spliced into the SQL text.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{DataFrame, SessionContext};

macro_rules! built_in {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../queries/", $name, ".sql")))),*]
    };
}

/// The reports shipped in `queries/`.
pub static BUILT_IN: &[(&str, &str)] = built_in![
    "pipelines",
    "pipeline_by_name",
    "pipeline_runs",
    "latest_run",
    "run_by_name",
    "run_details",
    "run_steps",
    "step_by_name",
    "step_outputs",
    "step_output",
    "last_step_output",
    "failure_rate",
    "slowest_steps",
    "cache_hit_rate",
    "config_changes",
    "lineage",
    "latest_outputs",
    "metric_over_runs",
    "last_step_output_value",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub name: String,
    pub sql: String,
    /// `built in` or the file it was read from.
    pub origin: String,
}

impl Report {
    /// The first comment line.
    pub fn description(&self) -> &str {
        self.sql
            .lines()
            .find_map(|l| l.trim().strip_prefix("--"))
            .map(str::trim)
            .unwrap_or("")
    }

    /// `$name` placeholders in the SQL text, for listings (the plan decides when running).
    pub fn parameters(&self) -> BTreeSet<String> {
        self.parameters_in_order().into_iter().collect()
    }

    /// The placeholders in the order they first appear in the SQL (comments aside): the
    /// order a report called as a function takes its arguments in.
    pub fn parameters_in_order(&self) -> Vec<String> {
        let mut params: Vec<String> = Vec::new();
        let code: String = self
            .sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for (i, c) in code.char_indices() {
            if c == '$' {
                let name: String = code[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && !params.contains(&name)
                {
                    params.push(name);
                }
            }
        }
        params
    }
}

/// Every report: the built-in ones, then those in `dir` (which override a built-in of the
/// same name), sorted by name.
pub fn all(dir: Option<&Path>) -> std::io::Result<Vec<Report>> {
    let mut reports: Vec<Report> = BUILT_IN
        .iter()
        .map(|(name, sql)| Report {
            name: name.to_string(),
            sql: sql.to_string(),
            origin: "built in".to_string(),
        })
        .collect();
    if let Some(dir) = dir {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "sql") {
                let name = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let report = Report {
                    name: name.clone(),
                    sql: std::fs::read_to_string(&path)?,
                    origin: path.display().to_string(),
                };
                reports.retain(|r| r.name != name);
                reports.push(report);
            }
        }
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}

/// Parses `KEY=VALUE`.
pub fn parse_param(text: &str) -> std::result::Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--param takes KEY=VALUE, got {text:?}"))?;
    let key = key.trim().trim_start_matches('$');
    if key.is_empty() {
        return Err(format!("--param takes KEY=VALUE, got {text:?}"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Plans `report` with `params` bound: every placeholder needs a value, every value a
/// placeholder; each value takes the type its placeholder has in the plan.
pub async fn plan(
    ctx: &SessionContext,
    report: &Report,
    params: &[(String, String)],
) -> Result<DataFrame> {
    let plan = ctx.state().create_logical_plan(&report.sql).await?;
    let types = plan.get_parameter_types()?;
    let wanted: BTreeSet<String> = types
        .keys()
        .map(|k| k.trim_start_matches('$').to_string())
        .collect();
    let listing = || {
        if wanted.is_empty() {
            format!("report {} takes no parameters", report.name)
        } else {
            let list: Vec<String> = wanted.iter().map(|p| format!("--param {p}=...")).collect();
            format!("report {} takes {}", report.name, list.join(" "))
        }
    };
    let given: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(unknown) = given.keys().find(|k| !wanted.contains(**k)) {
        return Err(DataFusionError::Plan(format!(
            "unknown parameter {unknown}: {}",
            listing()
        )));
    }
    if let Some(missing) = wanted.iter().find(|w| !given.contains_key(w.as_str())) {
        return Err(DataFusionError::Plan(format!(
            "missing parameter {missing}: {}",
            listing()
        )));
    }
    let mut values: HashMap<String, ScalarValue> = HashMap::new();
    for (id, data_type) in &types {
        let name = id.trim_start_matches('$');
        let text = given[name].to_string();
        let value = match data_type {
            Some(dt) => ScalarValue::try_from_string(text.clone(), dt).map_err(|e| {
                DataFusionError::Plan(format!(
                    "parameter {name}: {text:?} is not a {dt}: {}",
                    crate::cli::exec::one_line(&e)
                ))
            })?,
            None => ScalarValue::Utf8(Some(text)),
        };
        values.insert(name.to_string(), value);
    }
    ctx.execute_logical_plan(plan)
        .await?
        .with_param_values(values)
}

/// A report as a set-returning function: `SELECT * FROM failure_rate('2026-01-01',
/// '2027-01-01')` runs the report with its parameters given in the order they first appear
/// in its SQL.
#[derive(Debug, Clone)]
pub struct ReportSignature {
    pub name: String,
    pub description: String,
    /// Parameter names and the types their placeholders have in the plan, in call order.
    pub parameters: Vec<(String, DataType)>,
    pub columns: SchemaRef,
}

/// Registers every report (built-in, and those of `dir`) as a set-returning function of
/// `ctx`, and says what each takes and gives. A report that does not plan on this store is
/// left out, named in the error list.
pub async fn register_functions(
    ctx: &SessionContext,
    dir: Option<&Path>,
) -> Result<(Vec<ReportSignature>, Vec<String>)> {
    let mut signatures = Vec::new();
    let mut failed = Vec::new();
    for report in all(dir)? {
        let plan = match ctx.state().create_logical_plan(&report.sql).await {
            Ok(p) => p,
            Err(e) => {
                failed.push(format!(
                    "{}: {}",
                    report.name,
                    crate::cli::exec::one_line(&e)
                ));
                continue;
            }
        };
        let types = plan.get_parameter_types()?;
        let parameters = report
            .parameters_in_order()
            .into_iter()
            .map(|name| {
                let dt = types
                    .get(&format!("${name}"))
                    .cloned()
                    .flatten()
                    .unwrap_or(DataType::Utf8);
                (name, dt)
            })
            .collect();
        let signature = ReportSignature {
            name: report.name.clone(),
            description: report.description().to_string(),
            parameters,
            columns: Arc::new(plan.schema().as_arrow().clone()),
        };
        ctx.register_udtf(
            &report.name,
            Arc::new(ReportFunction {
                sql: report.sql.clone(),
                signature: signature.clone(),
            }),
        );
        signatures.push(signature);
    }
    Ok((signatures, failed))
}

#[derive(Debug)]
struct ReportFunction {
    sql: String,
    signature: ReportSignature,
}

impl TableFunctionImpl for ReportFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let sig = &self.signature;
        let exprs = args.exprs();
        let usage = || {
            let params: Vec<&str> = sig.parameters.iter().map(|(n, _)| n.as_str()).collect();
            format!("{}({})", sig.name, params.join(", "))
        };
        if exprs.len() != sig.parameters.len() {
            return Err(DataFusionError::Plan(format!(
                "report {} takes {} argument(s): {}",
                sig.name,
                sig.parameters.len(),
                usage()
            )));
        }
        let mut values = HashMap::new();
        for (expr, (name, data_type)) in exprs.iter().zip(&sig.parameters) {
            let value = match expr {
                Expr::Literal(v, _) => v.clone(),
                Expr::Cast(c) => match c.expr.as_ref() {
                    Expr::Literal(v, _) => v.cast_to(c.field.data_type())?,
                    _ => return Err(not_constant(name, &usage())),
                },
                _ => return Err(not_constant(name, &usage())),
            };
            let value = if value.data_type() == *data_type || value.is_null() {
                value
            } else {
                value.cast_to(data_type).map_err(|_| {
                    DataFusionError::Plan(format!(
                        "report {}: {name} = {value} is not a {data_type}",
                        sig.name
                    ))
                })?
            };
            values.insert(name.clone(), value);
        }
        Ok(Arc::new(ReportTable {
            sql: self.sql.clone(),
            values,
            columns: Arc::clone(&sig.columns),
        }))
    }
}

fn not_constant(name: &str, usage: &str) -> DataFusionError {
    DataFusionError::Plan(format!(
        "a report's arguments are constants: {name} in {usage}"
    ))
}

/// One call of a report: planned when it is scanned, in the session that scans it, so it
/// reads the tables as they are then.
#[derive(Debug)]
struct ReportTable {
    sql: String,
    values: HashMap<String, ScalarValue>,
    columns: SchemaRef,
}

#[async_trait]
impl TableProvider for ReportTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.columns)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = session
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("a report needs a SessionState".into()))?;
        let plan = state
            .create_logical_plan(&self.sql)
            .await?
            .with_param_values(ParamValues::from(self.values.clone()))?;
        let mut df = DataFrame::new(state.clone(), plan);
        if let Some(columns) = projection {
            let names: Vec<String> = columns
                .iter()
                .map(|i| self.columns.field(*i).name().clone())
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            df = df.select_columns(&names)?;
        }
        df.create_physical_plan().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_reports_describe_themselves() {
        let reports = all(None).unwrap();
        assert_eq!(reports.len(), BUILT_IN.len());
        for r in &reports {
            assert!(!r.description().is_empty(), "{} has no description", r.name);
        }
        let latest = reports.iter().find(|r| r.name == "latest_run").unwrap();
        assert_eq!(
            latest.parameters().into_iter().collect::<Vec<_>>(),
            ["pipeline"]
        );
    }

    #[test]
    fn params_parse() {
        assert_eq!(
            parse_param("pipeline=a=b"),
            Ok(("pipeline".into(), "a=b".into()))
        );
        assert_eq!(parse_param("$x=1"), Ok(("x".into(), "1".into())));
        assert!(parse_param("nothing").is_err());
    }
}
