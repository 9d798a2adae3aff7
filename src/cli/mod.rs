//! The command line: argument parsing, one-shot runs and the REPL.

mod args;
pub mod command;
pub mod describe;
pub mod exec;
mod helper;
mod repl;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

pub use args::{Args, Script, Subcommands};
use exec::{ExecError, print_dataframe, run_sql};

use crate::print_format::PrintOptions;
use crate::store::{ZenStore, demo, locate};

/// Exit status for a failed statement or store.
const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage error.
const EXIT_USAGE: u8 = 2;

/// Runs runql with the process's arguments; the binary's `main` is just this.
pub fn main() -> ExitCode {
    let (args, scripts) = match Args::parse_with_scripts(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(args, scripts)) {
        Ok(code) => code,
        Err(e) => {
            let message = format!("{e:#}");
            eprintln!(
                "error: {}",
                message.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// clap's help and version go to stdout with status 0; its errors become one line.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("error: bad arguments");
    eprintln!("{first} (runql --help lists the options)");
    ExitCode::from(EXIT_USAGE)
}

async fn run(args: Args, scripts: Vec<Script>) -> anyhow::Result<ExitCode> {
    let path = store_path(&args)?;
    let options = PrintOptions {
        format: args.format,
        header: !args.no_header,
        max_rows: args.max_rows,
        max_width: None,
    };
    // A `runql export` folder reads as the same tables; a ZenML store is opened read-only.
    let (ctx, store) = if crate::export::is_export(&path) {
        let (ctx, manifest) = crate::export_session(&path).await?;
        if args.info {
            println!("store: {} (runql export)", path.display());
            println!(
                "exported from: {} (zenml schema version {})",
                manifest.store, manifest.zenml_version
            );
            println!("exported at: {}", manifest.exported_at);
            return Ok(ExitCode::SUCCESS);
        }
        (ctx, None)
    } else {
        let store = Arc::new(ZenStore::open(path.clone())?);
        if store.fit() == crate::store::schema::Fit::Untested {
            eprintln!(
                "warning: ZenML schema version {} is untested; reading it as the {} (verified: {})",
                store.version(),
                store.mapping().name,
                crate::store::schema::supported_versions().join(", ")
            );
        }
        if args.info {
            println!("store: {}", store.path().display());
            println!("zenml schema version: {}", store.version());
            println!("mapping: {}", store.mapping().name);
            let fit = match store.fit() {
                crate::store::schema::Fit::Verified => "verified",
                crate::store::schema::Fit::Untested => "untested",
            };
            println!("this release: {fit}");
            return Ok(ExitCode::SUCCESS);
        }
        let root = crate::artifacts::ArtifactRoot::new(args.artifact_root.clone());
        (crate::session(Arc::clone(&store), root)?, Some(store))
    };

    if let Some(Subcommands::Export {
        to,
        tables,
        since,
        partition_by,
    }) = &args.command
    {
        let store = store.context("export reads a ZenML store, not an export folder")?;
        let export = crate::export::ExportOptions {
            to: to.clone(),
            tables: tables.clone(),
            since: since.clone(),
            partition_by: *partition_by,
        };
        return run_export(&ctx, &store, &export, options).await;
    }
    if let Some(Subcommands::Query { name, params, list }) = &args.command {
        return run_report(&ctx, &args, name.as_deref(), params, *list, options).await;
    }

    if scripts.is_empty() && std::io::stdin().is_terminal() {
        let history = if args.no_history {
            None
        } else {
            args.history_file.clone().or_else(default_history)
        };
        repl::Repl::new(ctx, store, path, options, history, args.queries_dir.clone())
            .run()
            .await?;
        return Ok(ExitCode::SUCCESS);
    }

    let scripts = if scripts.is_empty() {
        let mut sql = String::new();
        std::io::stdin()
            .read_to_string(&mut sql)
            .context("reading SQL from stdin")?;
        vec![(String::from("stdin"), sql)]
    } else {
        scripts
            .into_iter()
            .map(|script| match script {
                Script::Command(sql) => Ok((String::from("-c"), sql)),
                Script::File(path) => std::fs::read_to_string(&path)
                    .map(|sql| (path.display().to_string(), sql))
                    .with_context(|| format!("cannot read {}", path.display())),
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (source, sql) in scripts {
        match run_sql(&ctx, &sql, &mut out, options, &mut |_| {}).await {
            Ok(()) => {}
            Err(ExecError::BrokenPipe) => return Ok(ExitCode::SUCCESS),
            Err(e) => {
                let _ = out.flush();
                let source = if source == "-c" {
                    String::new()
                } else {
                    format!("{source}: ")
                };
                eprintln!("error: {source}{e}");
                return Ok(ExitCode::from(EXIT_FAILURE));
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `runql query NAME --param K=V` and `runql query --list`.
async fn run_report(
    ctx: &datafusion::prelude::SessionContext,
    args: &Args,
    name: Option<&str>,
    params: &[(String, String)],
    list: bool,
    options: PrintOptions,
) -> anyhow::Result<ExitCode> {
    let reports = crate::reports::all(args.queries_dir.as_deref()).context("reading reports")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if list {
        for r in &reports {
            let params: Vec<String> = r
                .parameters()
                .into_iter()
                .map(|p| format!("--param {p}=..."))
                .collect();
            writeln!(
                out,
                "{:<18} {}{}",
                r.name,
                r.description(),
                if params.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", params.join(" "))
                }
            )?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let name = name.unwrap_or_default();
    let Some(report) = reports.iter().find(|r| r.name == name) else {
        let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
        anyhow::bail!("no report named {name}; reports: {}", names.join(", "));
    };
    let df = match crate::reports::plan(ctx, report, params).await {
        Ok(df) => df,
        Err(e) => anyhow::bail!("{}: {}", report.name, exec::one_line(&e)),
    };
    match print_dataframe(df, &mut out, options).await {
        Ok(_) | Err(ExecError::BrokenPipe) => {}
        Err(e) => {
            let _ = out.flush();
            anyhow::bail!("{}: {e}", report.name);
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn store_path(args: &Args) -> anyhow::Result<PathBuf> {
    Ok(if args.demo {
        demo::demo_store_path().context("cannot write the demo store")?
    } else {
        locate::locate(args.store.as_deref())?.path
    })
}

/// `runql export`: a line per table on a terminal while it runs, a summary at the end.
async fn run_export(
    ctx: &datafusion::prelude::SessionContext,
    store: &ZenStore,
    export: &crate::export::ExportOptions,
    options: PrintOptions,
) -> anyhow::Result<ExitCode> {
    let terminal = std::io::stderr().is_terminal();
    let start = std::time::Instant::now();
    let mut progress = |table: &str| {
        if terminal {
            eprintln!(
                "[{:>6.1}s] exporting {table}",
                start.elapsed().as_secs_f64()
            );
        }
    };
    let manifest = crate::export::export(ctx, store, export, &mut progress)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "export to {} failed: {}",
                export.to.display(),
                exec::one_line(&e)
            )
        })?;
    let summary = describe::export_summary(&manifest)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut writer = crate::print_format::ResultWriter::new(&mut out, summary.schema(), options);
    writer.write(&summary)?;
    writer.finish()?;
    Ok(ExitCode::SUCCESS)
}

fn default_history() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".runql_history"))
}
