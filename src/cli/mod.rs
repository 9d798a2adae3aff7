//! The command line: argument parsing, one-shot runs and the REPL.

mod args;
pub mod command;
pub mod describe;
pub mod exec;
mod helper;
mod progress;
mod repl;
pub mod script;
pub mod shell;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

pub use args::{Args, Script, Subcommands};
use exec::{ExecError, print_dataframe};
use shell::{Shell, ShellError};

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
    let options = PrintOptions {
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
    let export_dir = match &location {
        Location::File(path) if crate::export::is_export(path) => Some(path.clone()),
        Location::Server(server) => match server_mirror(&args, server).await? {
            Some(dir) => Some(dir),
            None => return Ok(ExitCode::SUCCESS),
        },
        _ => None,
    };
    // A `runql export` folder reads as the same tables; a ZenML store is opened read-only.
    let mut refresh = None;
    let (ctx, store, store_name, mirror_manifest) = if let Some(path) = export_dir {
        let root = crate::artifacts::ArtifactRoot::new(
            args.artifact_root.clone().or(demo_artifacts.clone()),
        );
        let (ctx, manifest) = crate::export_session(&path, root).await?;
        if args.info {
            if let Location::Server(server) = &location {
                print_mirror_info(server, &path, &manifest);
                return Ok(ExitCode::SUCCESS);
            }
            println!("store: {} (runql export)", path.display());
            println!(
                "exported from: {} (zenml schema version {})",
                manifest.store, manifest.zenml_version
            );
            println!("exported at: {}", manifest.exported_at);
            return Ok(ExitCode::SUCCESS);
        }
        match &location {
            Location::Server(server) => (
                ctx,
                None,
                format!("{server} (mirror of {})", manifest.exported_at),
                Some(manifest),
            ),
            _ => (ctx, None, path.display().to_string(), None),
        }
    } else {
        let store = Arc::new(ZenStore::open_location(&location).await?);
        if store.fit() == crate::store::schema::Fit::Untested {
            eprintln!(
                "warning: ZenML schema version {} is untested; reading it as the {} (verified: {})",
                store.version(),
                store.mapping().name,
                crate::store::schema::supported_versions().join(", ")
            );
        }
        if args.grants {
            let crate::store::Backend::Mysql(db) = store.backend() else {
                anyhow::bail!("--grants is for MySQL stores: a SQLite store is a file to read");
            };
            let database = db.address().database.replace('`', "``");
            for table in store.mapping().tables_read() {
                println!("GRANT SELECT ON `{database}`.`{table}` TO '<user>'@'<host>';");
            }
            return Ok(ExitCode::SUCCESS);
        }
        // The demo's artifacts are where the demo was written, unless told otherwise.
        let root =
            crate::artifacts::ArtifactRoot::new(args.artifact_root.clone().or(demo_artifacts));
        if args.mirror {
            let dir = crate::mirror::local::default_dir(&store);
            if args.info {
                print_store_info(&store);
                print_local_mirror_info(&dir)?;
                return Ok(ExitCode::SUCCESS);
            }
            let manifest = store_mirror(&args, &store, &dir, &root).await?;
            if !args.offline {
                refresh = Some(refresh_mirror(&store, &dir, &root, &manifest));
            }
            let (ctx, _) = crate::export_session(&dir, root).await?;
            let name = format!("{} (mirror of {})", store.describe(), manifest.exported_at);
            (ctx, None, name, Some(manifest))
        } else {
            if args.info {
                print_store_info(&store);
                return Ok(ExitCode::SUCCESS);
            }
            let push_down = if args.no_pushdown {
                crate::tables::PushDown::Off
            } else {
                crate::tables::PushDown::On
            };
            let name = store.describe();
            (
                crate::session_with(Arc::clone(&store), root, push_down)?,
                Some(store),
                name,
                None,
            )
        }
    };
    let session = Session {
        ctx,
        store,
        store_name,
        mirror_manifest,
        refresh,
    };
    run_with(args, scripts, options, session, location).await
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

/// `--mirror`: brings the store's mirror up to date (unless `--offline`) and says what it
/// holds.
async fn store_mirror(
    args: &Args,
    store: &Arc<ZenStore>,
    dir: &std::path::Path,
    root: &crate::artifacts::ArtifactRoot,
) -> anyhow::Result<crate::export::Manifest> {
    if args.offline {
        return crate::mirror::last_sync(dir)?.ok_or_else(|| {
            anyhow::anyhow!(
                "no mirror of {} in {} yet: run once without --offline to fill it",
                store.describe(),
                dir.display()
            )
        });
    }
    let how = if args.full_sync {
        crate::mirror::Sync::Full
    } else {
        crate::mirror::Sync::Changes
    };
    crate::mirror::local::sync(store, dir, how, root)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bring the mirror up to date: {}", exec::one_line(&e)))
}

/// Before each statement of a REPL or script on `--mirror`: the mirror brought up to date
/// and, when it changed, its tables registered again in the session.
fn refresh_mirror(
    store: &Arc<ZenStore>,
    dir: &std::path::Path,
    root: &crate::artifacts::ArtifactRoot,
    synced: &crate::export::Manifest,
) -> shell::Refresh {
    let (store, dir, root) = (Arc::clone(store), dir.to_path_buf(), root.clone());
    let last = Arc::new(std::sync::Mutex::new(synced.exported_at.clone()));
    Box::new(move |ctx| {
        let (store, dir, root, last) = (
            Arc::clone(&store),
            dir.clone(),
            root.clone(),
            Arc::clone(&last),
        );
        Box::pin(async move {
            let failed = |e: datafusion::error::DataFusionError| {
                format!("cannot bring the mirror up to date: {}", exec::one_line(&e))
            };
            let now = crate::mirror::local::sync(&store, &dir, crate::mirror::Sync::Changes, &root)
                .await
                .map_err(failed)?;
            let changed = {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let changed = *last != now.exported_at;
                *last = now.exported_at.clone();
                changed
            };
            if changed {
                crate::export::reregister_export(&ctx, &dir)
                    .await
                    .map_err(failed)?;
            }
            Ok(())
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
    location: Location,
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
        let source = match (&store, &location, &mirror_manifest) {
            (Some(store), _, _) => crate::export::Source::of(store),
            (None, _, Some(m)) => crate::export::Source {
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

/// A ZenML server's mirror folder, brought up to date unless `--offline` (`None` when
/// `--info` found no mirror to describe and said so).
async fn server_mirror(
    args: &Args,
    server: &crate::store::rest::ServerAddress,
) -> anyhow::Result<Option<PathBuf>> {
    let dir = crate::mirror::default_dir(server);
    if args.info || args.offline {
        if crate::mirror::last_sync(&dir)?.is_none() {
            if args.info {
                println!("store: {server} (ZenML server)");
                println!("mirror: {} (not filled yet)", dir.display());
                return Ok(None);
            }
            return Err(crate::error::StoreError::NoMirror {
                server: server.to_string(),
                dir,
            }
            .into());
        }
        return Ok(Some(dir));
    }
    let credential = locate::credential(server, args.api_key_file.as_deref())?;
    // How long one request may take; a slow proxy or a huge page may need more.
    let timeout = match std::env::var("RUNQL_SERVER_TIMEOUT") {
        Ok(s) => std::time::Duration::from_secs_f64(
            s.parse::<f64>()
                .ok()
                .filter(|t| *t > 0.0 && t.is_finite())
                .with_context(|| format!("RUNQL_SERVER_TIMEOUT={s}: not a number of seconds"))?,
        ),
        Err(_) => crate::store::rest::DEFAULT_TIMEOUT,
    };
    let client = crate::store::rest::RestClient::new(server.clone(), credential, timeout)?;
    let mut display = progress::Display::new(std::io::stderr().is_terminal());
    let how = if args.full_sync {
        crate::mirror::Sync::Full
    } else {
        crate::mirror::Sync::Changes
    };
    let result = crate::mirror::sync(&client, &dir, how, &mut |p| display.show(p)).await;
    display.finish();
    let manifest = result.map_err(|e| anyhow::anyhow!("{}", exec::one_line(&e)))?;
    if !crate::mirror::verified(&manifest.zenml_version) {
        eprintln!(
            "warning: ZenML server release {} is untested; runql's tests read {}",
            manifest.zenml_version,
            crate::mirror::VERIFIED_SERVERS.join(", ")
        );
    }
    Ok(Some(dir))
}

fn print_mirror_info(
    server: &crate::store::rest::ServerAddress,
    dir: &std::path::Path,
    manifest: &crate::export::Manifest,
) {
    println!("store: {server} (ZenML server)");
    println!("server release: ZenML {}", manifest.zenml_version);
    println!("mirror: {}", dir.display());
    print_mirror_state(manifest);
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
