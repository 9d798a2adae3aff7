//! The command line: argument parsing, one-shot runs and the REPL.

mod args;
pub mod command;
pub mod describe;
pub mod exec;
mod helper;
mod progress;
mod repl;
pub mod script;
mod serve;
pub mod shell;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

pub use args::{Args, Script, Subcommands};
use exec::{ExecError, print_dataframe};
use shell::{Shell, ShellError};

use crate::open::{self, Target};
use crate::print_format::PrintOptions;
use crate::store::locate::Location;
use crate::store::mysql::Password;
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
    let options_print = PrintOptions {
        format: args.format,
        header: !args.no_header,
        max_rows: args.max_rows,
        max_width: None,
    };
    // Listing reports and a report's help read no store: ask for none.
    if let Some(Subcommands::Query {
        name, list, help, ..
    }) = &args.command
        && (*list || *help)
    {
        return describe_reports(&args, name.as_deref(), *list);
    }
    let (location, demo_artifacts) = store_location(&args)?;
    let target = Target::open(&location, args.mirror).await?;
    if let Some(store) = target.store()
        && store.fit() == crate::store::schema::Fit::Untested
    {
        eprintln!(
            "warning: ZenML schema version {} is untested; reading it as the {} (verified: {})",
            store.version(),
            store.mapping().name,
            crate::store::schema::supported_versions().join(", ")
        );
    }
    if args.grants {
        let Some(crate::store::Backend::Mysql(db)) = target.store().map(|s| s.backend()) else {
            anyhow::bail!("--grants is for MySQL stores: a SQLite store is a file to read");
        };
        let database = db.address().database.replace('`', "``");
        for table in target
            .store()
            .map(|s| s.mapping().tables_read())
            .unwrap_or_default()
        {
            println!("GRANT SELECT ON `{database}`.`{table}` TO '<user>'@'<host>';");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.info {
        print_info(&target)?;
        return Ok(ExitCode::SUCCESS);
    }
    let options = open::Options {
        // The demo's artifacts are where the demo was written, unless told otherwise.
        artifact_root: crate::artifacts::ArtifactRoot::new(
            args.artifact_root.clone().or(demo_artifacts),
        ),
        push_down: if args.no_pushdown {
            crate::tables::PushDown::Off
        } else {
            crate::tables::PushDown::On
        },
        offline: args.offline,
        full_sync: args.full_sync,
        api_key_file: args.api_key_file.clone(),
        // A server's clients read the store's tables, never the server's files.
        read_files: !matches!(args.command, Some(Subcommands::Serve { .. })),
    };
    let mut display = progress::Display::new(std::io::stderr().is_terminal());
    let opened = open::session(&target, &options, &mut |p| display.show(p)).await;
    display.finish();
    let opened = opened.map_err(|e| match &target {
        Target::StoreMirror { .. } if !args.offline => {
            anyhow::anyhow!("cannot bring the mirror up to date: {}", exec::one_line(&e))
        }
        _ => anyhow::anyhow!("{}", exec::one_line(&e)),
    })?;
    if let (Target::Server { .. }, Some(manifest), false) =
        (&target, &opened.manifest, args.offline)
        && !crate::mirror::verified(&manifest.zenml_version)
    {
        eprintln!(
            "warning: ZenML server release {} is untested; runql's tests read {}",
            manifest.zenml_version,
            crate::mirror::VERIFIED_SERVERS.join(", ")
        );
    }
    let refresh = opened
        .mirror
        .clone()
        .zip(opened.manifest.clone())
        .map(|(mirror, manifest)| refresh_mirror(mirror, manifest));
    if let Some(Subcommands::Serve { .. }) = &args.command {
        return serve::run(&args, opened).await;
    }
    let session = Session {
        ctx: opened.ctx,
        store: opened.store,
        store_name: opened.name,
        // A live store's export names the store; a mirror's, what it mirrors.
        mirror_manifest: opened
            .manifest
            .filter(|_| !matches!(target, Target::Export(_))),
        refresh,
    };
    run_with(args, scripts, options_print, session).await
}

/// What statements run on: the DataFusion session and where its tables come from.
struct Session {
    ctx: datafusion::prelude::SessionContext,
    /// The store read live, if it is.
    store: Option<Arc<ZenStore>>,
    /// Where the tables come from, as `\store` shows it.
    store_name: String,
    /// The manifest of the mirror read, if a mirror is.
    mirror_manifest: Option<crate::export::Manifest>,
    /// How a `--mirror` session is brought up to date before each statement.
    refresh: Option<shell::Refresh>,
}

/// `--info` of a store read live.
fn print_store_info(store: &ZenStore) {
    println!("store: {}", store.describe());
    if let crate::store::Backend::Mysql(db) = store.backend() {
        println!("server: {}", db.server_version());
    }
    println!("zenml schema version: {}", store.version());
    println!("mapping: {}", store.mapping().name);
    let fit = match store.fit() {
        crate::store::schema::Fit::Verified => "verified",
        crate::store::schema::Fit::Untested => "untested",
    };
    println!("this release: {fit}");
}

/// `--info`: what the target is and, for a mirror, what it holds as the last sync left it
/// (nothing is synced).
fn print_info(target: &Target) -> anyhow::Result<()> {
    match target {
        Target::Live(store) => print_store_info(store),
        Target::StoreMirror { store, dir } => {
            print_store_info(store);
            print_local_mirror_info(dir)?;
        }
        Target::Server { server, dir } => {
            println!("store: {server} (ZenML server)");
            match crate::mirror::last_sync(dir)? {
                None => println!("mirror: {} (not filled yet)", dir.display()),
                Some(manifest) => {
                    println!("server release: ZenML {}", manifest.zenml_version);
                    println!("mirror: {}", dir.display());
                    print_mirror_state(&manifest);
                }
            }
        }
        Target::Export(dir) => {
            let manifest = crate::mirror::last_sync(dir)?
                .with_context(|| format!("{} has no manifest", dir.display()))?;
            println!("store: {} (runql export)", dir.display());
            println!(
                "exported from: {} (zenml schema version {})",
                manifest.store, manifest.zenml_version
            );
            println!("exported at: {}", manifest.exported_at);
        }
    }
    Ok(())
}

/// Before each statement of the REPL on a mirror: the mirror brought up to date and, when
/// it changed, its tables registered again in the session.
fn refresh_mirror(mirror: open::Mirror, synced: crate::export::Manifest) -> shell::Refresh {
    let last = Arc::new(tokio::sync::Mutex::new(synced));
    Box::new(move |ctx| {
        let (mirror, last) = (mirror.clone(), Arc::clone(&last));
        Box::pin(async move {
            let mut last = last.lock().await;
            mirror
                .refresh(&ctx, &mut last)
                .await
                .map(|_| ())
                .map_err(|e| format!("cannot bring the mirror up to date: {}", exec::one_line(&e)))
        })
    })
}

/// `--info --mirror`: where the mirror is and what it holds, as the last sync left it.
fn print_local_mirror_info(dir: &std::path::Path) -> anyhow::Result<()> {
    match crate::mirror::last_sync(dir)? {
        None => println!("mirror: {} (not filled yet)", dir.display()),
        Some(manifest) => {
            println!("mirror: {}", dir.display());
            print_mirror_state(&manifest);
        }
    }
    Ok(())
}

/// When a mirror was last brought up to date and what it holds.
fn print_mirror_state(manifest: &crate::export::Manifest) {
    println!("last brought up to date: {}", manifest.exported_at);
    let rows = crate::mirror::table_rows(manifest);
    let counts: Vec<String> = crate::tables::TABLES
        .iter()
        .filter_map(|t| rows.get(t.name).map(|n| format!("{n} {}", t.name)))
        .collect();
    println!("holds: {}", counts.join(", "));
    println!(
        "change sets: {} (the rows of {} runs appended since the tables were last written whole)",
        manifest.changes.len(),
        manifest.changes.iter().map(|c| c.runs.len()).sum::<usize>()
    );
}

/// Runs what the arguments ask on a session: an export, a report, the REPL or scripts.
async fn run_with(
    args: Args,
    scripts: Vec<Script>,
    options: PrintOptions,
    session: Session,
) -> anyhow::Result<ExitCode> {
    let Session {
        ctx,
        store,
        store_name,
        mirror_manifest,
        refresh,
    } = session;
    if let Some(Subcommands::Export {
        to,
        tables,
        since,
        partition_by,
    }) = &args.command
    {
        // A store, or a server's mirror (which holds the server's runs as of this start);
        // an export folder is already an export.
        let source = match (&store, &mirror_manifest) {
            (Some(store), _) => crate::export::Source::of(store),
            (None, Some(m)) => crate::export::Source {
                store: m.store.clone(),
                zenml_version: m.zenml_version.clone(),
            },
            _ => anyhow::bail!("export reads a ZenML store or server, not an export folder"),
        };
        let export = crate::export::ExportOptions {
            to: to.clone(),
            tables: tables.clone(),
            since: since.clone(),
            partition_by: *partition_by,
            change_sets: false,
            source_mark: None,
            pipelines_from_runs: false,
        };
        return run_export(&ctx, &source, &export, options).await;
    }
    if let Some(Subcommands::Query { name, params, .. }) = &args.command {
        return run_report(&ctx, &args, name.as_deref(), params, options).await;
    }

    if scripts.is_empty() && std::io::stdin().is_terminal() {
        let history = if args.no_history {
            None
        } else {
            args.history_file.clone().or_else(default_history)
        };
        let mut shell = Shell::new(
            ctx,
            store,
            store_name,
            options,
            args.queries_dir.clone(),
            true,
        );
        if args.timing {
            shell.set_timing(Some(command::Timing::Detail));
        }
        if let Some(refresh) = refresh {
            shell.set_refresh(refresh);
        }
        repl::Repl::new(shell, history).run().await?;
        return Ok(ExitCode::SUCCESS);
    }

    let scripts = if scripts.is_empty() {
        let mut sql = String::new();
        std::io::stdin()
            .read_to_string(&mut sql)
            .context("reading SQL from stdin")?;
        vec![(Some(String::from("stdin")), sql)]
    } else {
        scripts
            .into_iter()
            .map(|script| match script {
                Script::Command(sql) => Ok((None, sql)),
                Script::File(path) => std::fs::read_to_string(&path)
                    .map(|sql| (Some(path.display().to_string()), sql))
                    .with_context(|| format!("cannot read {}", path.display())),
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };

    // Statements and backslash commands run one by one; the first that fails stops the rest.
    let mut shell = Shell::new(
        ctx,
        store,
        store_name,
        options,
        args.queries_dir.clone(),
        false,
    );
    if args.timing {
        shell.set_timing(Some(command::Timing::Detail));
    }
    for (source, text) in scripts {
        match shell.run_text(source.as_deref(), &text, None).await {
            Ok(shell::Flow::Continue) => {}
            Ok(shell::Flow::Quit) => break,
            Err(ShellError::BrokenPipe) => return Ok(ExitCode::SUCCESS),
            Err(e) => {
                let _ = shell.finish();
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_FAILURE));
            }
        }
    }
    match shell.finish() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `runql query --list` and `runql query NAME --help`: what the reports are, with no store.
fn describe_reports(args: &Args, name: Option<&str>, list: bool) -> anyhow::Result<ExitCode> {
    let reports = crate::reports::all(args.queries_dir.as_deref()).context("reading reports")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match (list, name) {
        (true, _) => list_reports(&mut out, &reports),
        (false, Some(name)) => {
            let report = find_report(&reports, name)?;
            report_help(&mut out, report)
        }
        (false, None) => {
            // `runql query --help`: clap's own help of the subcommand.
            let mut command = <Args as clap::CommandFactory>::command();
            let help = command
                .find_subcommand_mut("query")
                .map(|c| c.render_long_help().to_string())
                .unwrap_or_default();
            write!(out, "{help}")
        }
    };
    match written.and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn list_reports<W: Write>(out: &mut W, reports: &[crate::reports::Report]) -> std::io::Result<()> {
    let width = reports.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for r in reports {
        let params: Vec<String> = r
            .parameters()
            .into_iter()
            .map(|p| format!("--param {p}=..."))
            .collect();
        writeln!(
            out,
            "{:<width$}  {}{}",
            r.name,
            r.description(),
            if params.is_empty() {
                String::new()
            } else {
                format!("  [{}]", params.join(" "))
            }
        )?;
    }
    Ok(())
}

/// A report's description, how to run it, where it comes from and its SQL.
fn report_help<W: Write>(out: &mut W, report: &crate::reports::Report) -> std::io::Result<()> {
    writeln!(out, "{}: {}", report.name, report.description())?;
    let params: Vec<String> = report
        .parameters()
        .into_iter()
        .map(|p| format!(" --param {p}=VALUE"))
        .collect();
    writeln!(
        out,
        "\nUsage: runql query {}{}",
        report.name,
        params.concat()
    )?;
    writeln!(out, "Origin: {}\n", report.origin)?;
    writeln!(out, "{}", report.sql.trim_end())
}

fn find_report<'r>(
    reports: &'r [crate::reports::Report],
    name: &str,
) -> anyhow::Result<&'r crate::reports::Report> {
    reports.iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
        anyhow::anyhow!("no report named {name}; reports: {}", names.join(", "))
    })
}

/// `runql query NAME --param K=V`.
async fn run_report(
    ctx: &datafusion::prelude::SessionContext,
    args: &Args,
    name: Option<&str>,
    params: &[(String, String)],
    options: PrintOptions,
) -> anyhow::Result<ExitCode> {
    let reports = crate::reports::all(args.queries_dir.as_deref()).context("reading reports")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let report = find_report(&reports, name.unwrap_or_default())?;
    let df = match crate::reports::plan(ctx, report, params).await {
        Ok(df) => df,
        Err(e) => anyhow::bail!("{}: {}", report.name, exec::one_line(&e)),
    };
    let start = std::time::Instant::now();
    match print_dataframe(df, &mut out, options).await {
        Ok(printed) => {
            if args.timing {
                let done = exec::Done {
                    rows: printed.rows,
                    elapsed: start.elapsed(),
                    scans: printed.scans,
                };
                let _ = out.flush();
                for line in shell::timing_lines(&done) {
                    eprintln!("{line}");
                }
            }
        }
        Err(ExecError::BrokenPipe) => {}
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

/// The store to open and, for the demo, the folder its artifacts were written to.
fn store_location(args: &Args) -> anyhow::Result<(Location, Option<String>)> {
    if args.demo {
        let demo = demo::demo().context("cannot write the demo store")?;
        return Ok((
            Location::File(demo.store),
            Some(demo.artifacts.display().to_string()),
        ));
    }
    let mut location = locate::locate(args.store.as_deref())?.location;
    if let Location::Mysql(address) = &mut location {
        // A password in a file, else MySQL's own variable, when the URL and config have none.
        if let Some(file) = &args.password_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read password file {}", file.display()))?;
            let password = text.lines().next().unwrap_or("").to_string();
            address.password = Some(Password::new(password));
        } else if address.password.is_none()
            && let Ok(password) = std::env::var("MYSQL_PWD")
        {
            address.password = Some(Password::new(password));
        }
    }
    Ok((location, None))
}

/// `runql export`: a line per table on a terminal while it runs, a summary at the end.
async fn run_export(
    ctx: &datafusion::prelude::SessionContext,
    source: &crate::export::Source,
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
    let manifest = crate::export::export(ctx, source, export, &mut progress)
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
