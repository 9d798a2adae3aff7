//! Command-line arguments.

use std::path::PathBuf;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::print_format::PrintFormat;

#[derive(Debug, Parser)]
#[command(
    name = "runql",
    version,
    about = "SQL over ZenML pipeline run history",
    long_about = "SQL over ZenML pipeline run history.\n\n\
        Tables: pipelines, runs, steps, outputs, inputs, metadata (see `\\d` in the REPL).\n\
        Without -c or -f, runql starts a REPL on a terminal and reads SQL from stdin otherwise."
)]
pub struct Args {
    /// The ZenML store: a path to zenml.db, ZenML's URL form sqlite:////abs/path/zenml.db,
    /// a ZenML server's database mysql://user[:password]@host[:port]/database, or a ZenML
    /// server https://host (read into a local mirror, brought up to date at each start)
    /// [default: $RUNQL_STORE, else $ZENML_STORE_URL, else the active ZenML config's store]
    #[arg(long, value_name = "STORE", conflicts_with = "demo", global = true)]
    pub store: Option<String>,

    /// Read a MySQL store's password from FILE (first line) instead of the URL, ZenML's
    /// config or $MYSQL_PWD
    #[arg(long, value_name = "FILE", global = true)]
    pub password_file: Option<PathBuf>,

    /// Read a ZenML server's API key from FILE instead of $ZENML_STORE_API_KEY or what
    /// `zenml login` saved
    #[arg(long, value_name = "FILE", global = true)]
    pub api_key_file: Option<PathBuf>,

    /// Answer from a local Parquet mirror of the store (SQLite or MySQL), brought up to date
    /// first: only what changed is read (a ZenML server is always read through one)
    #[arg(long, global = true)]
    pub mirror: bool,

    /// For a ZenML server or --mirror: answer from the local mirror as the last sync left
    /// it, without asking the server or store
    #[arg(long, global = true, conflicts_with = "full_sync")]
    pub offline: bool,

    /// For a ZenML server or --mirror: read the whole store again instead of what changed
    /// (also tags and metadata attached to runs after they finished, which a sync cannot see)
    #[arg(long, global = true)]
    pub full_sync: bool,

    /// Use the demo store bundled with runql (a real ZenML 0.98 store)
    #[arg(long, global = true)]
    pub demo: bool,

    /// Run SQL (one or more statements); may repeat
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub commands: Vec<String>,

    /// Run the SQL statements in FILE; may repeat
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// How results are printed
    #[arg(long, value_enum, default_value_t = PrintFormat::Table, global = true)]
    pub format: PrintFormat,

    /// Leave out the header row (csv, tsv)
    #[arg(long, global = true)]
    pub no_header: bool,

    /// Show at most N rows of a table result [default: 40 in the REPL, all otherwise]
    #[arg(long, value_name = "N", global = true)]
    pub max_rows: Option<usize>,

    /// Where the local artifact store's files are now, if they moved since ZenML wrote them:
    /// a folder or an s3://, gs:// or az:// URL (read_output, output_value)
    /// [default: $RUNQL_ARTIFACT_ROOT, else the paths ZenML recorded]
    #[arg(long, value_name = "DIR|URL", global = true)]
    pub artifact_root: Option<String>,

    /// A folder of your own reports (NAME.sql), beside the built-in ones
    #[arg(long, value_name = "DIR", global = true)]
    pub queries_dir: Option<PathBuf>,

    /// Evaluate every filter, LIMIT and join key in DataFusion, none in the store: slower,
    /// and the same answer (to check one)
    #[arg(long, global = true)]
    pub no_pushdown: bool,

    /// After each statement, print on stderr how long it took, each scan's rows and time in
    /// the store, and the time in DataFusion (the REPL's `\timing detail`)
    #[arg(long, global = true)]
    pub timing: bool,

    /// Print which store is open and its ZenML schema version, then exit
    #[arg(long)]
    pub info: bool,

    /// Print the GRANT statements a MySQL reader needs for this store (SELECT on exactly the
    /// tables runql reads, never ZenML's secrets, keys or users), then exit
    #[arg(long, conflicts_with = "info")]
    pub grants: bool,

    /// REPL history file [default: ~/.runql_history]
    #[arg(long, value_name = "PATH", conflicts_with = "no_history")]
    pub history_file: Option<PathBuf>,

    /// Keep no REPL history
    #[arg(long)]
    pub no_history: bool,

    #[command(subcommand)]
    pub command: Option<Subcommands>,
}

#[derive(Debug, Subcommand)]
pub enum Subcommands {
    /// Run a named report: a built-in one from queries/ or one of --queries-dir
    // `runql query NAME --help` shows the report itself (its parameters and SQL), so the
    // subcommand answers --help on its own rather than with clap's generic text.
    #[command(disable_help_flag = true)]
    Query {
        /// The report's name (runql query --list shows them)
        #[arg(required_unless_present_any = ["list", "help"])]
        name: Option<String>,
        /// A value for the report's $KEY placeholder; may repeat
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = crate::reports::parse_param)]
        params: Vec<(String, String)>,
        /// List the reports with their descriptions and parameters
        #[arg(long)]
        list: bool,
        /// Print help; with NAME, the report's description, parameters and SQL
        #[arg(short = 'h', long)]
        help: bool,
    },
    /// Write every table as Parquet (zstd), one folder per table; read it back with --store DIR
    Export {
        /// The folder to write (created if needed)
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Only these tables (comma-separated) [default: all]
        #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
        tables: Vec<String>,
        /// Only runs created at or after this time (e.g. 2026-01-01T00:00:00Z), with their
        /// steps, outputs, inputs and metadata
        #[arg(long, value_name = "TIMESTAMP")]
        since: Option<String>,
        /// Hive-style partitions
        #[arg(long, value_enum)]
        partition_by: Option<crate::export::PartitionBy>,
    },
    /// Serve the tables, reports and functions over the PostgreSQL wire protocol, read-only,
    /// for psql, Grafana, Metabase and any PostgreSQL driver
    Serve {
        /// The address to listen on; without --users only a loopback address is allowed
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5433")]
        listen: String,
        /// Users who may connect, as `name:password` lines in FILE (readable by its owner
        /// only); they log in with SCRAM-SHA-256. $RUNQL_SERVE_PASSWORD adds the user
        /// $RUNQL_SERVE_USER (default: runql)
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
        /// A PEM certificate chain: with --tls-key, TLS is on and required
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's PEM private key
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Connections served at once; the next one is refused with PostgreSQL's
        /// "too many clients"
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        max_connections: u32,
        /// The longest a statement may run (e.g. 30s, 5min; 0: no limit); a client may ask
        /// for less with SET statement_timeout
        #[arg(long, value_name = "TIME", default_value = "5min", value_parser = parse_duration)]
        statement_timeout: std::time::Duration,
        /// Memory one query may hold in sorts, joins and aggregates, in MiB; past it the query
        /// fails, the server goes on
        #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(16..))]
        memory_limit_mib: u64,
        /// For a mirror (a ZenML server, or --mirror): how old its last sync may be for a new
        /// query (e.g. 10s); 0 waits for a sync that started after the query arrived
        #[arg(long, value_name = "TIME", default_value = "0", value_parser = parse_duration)]
        max_staleness: std::time::Duration,
        /// After Ctrl-C or SIGTERM: how long running queries may finish before their
        /// connections are closed
        #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_duration)]
        shutdown_grace: std::time::Duration,
    },
}

/// `250ms`, `30s`, `5min`, `1h`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("{text:?} is not a time (e.g. 30s, 5min, 250ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "min" | "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, min, h)")),
    };
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// SQL to run in one-shot mode, in the order given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    Command(String),
    File(PathBuf),
}

impl Args {
    /// Parses the process arguments, keeping `-c`/`-f` in their command-line order.
    pub fn parse_with_scripts<I, T>(argv: I) -> Result<(Args, Vec<Script>), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Args::command().try_get_matches_from(argv)?;
        let args = Args::from_arg_matches(&matches)?;
        let scripts = scripts_in_order(&matches, &args);
        Ok((args, scripts))
    }
}

fn scripts_in_order(matches: &ArgMatches, args: &Args) -> Vec<Script> {
    let mut scripts: Vec<(usize, Script)> = Vec::new();
    if let Some(indices) = matches.indices_of("commands") {
        scripts.extend(indices.zip(args.commands.iter().cloned().map(Script::Command)));
    }
    if let Some(indices) = matches.indices_of("files") {
        scripts.extend(indices.zip(args.files.iter().cloned().map(Script::File)));
    }
    scripts.sort_by_key(|(i, _)| *i);
    scripts.into_iter().map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_keep_command_line_order() {
        let (_, scripts) =
            Args::parse_with_scripts(["runql", "-f", "a.sql", "-c", "SELECT 1", "-f", "b.sql"])
                .unwrap();
        assert_eq!(
            scripts,
            vec![
                Script::File("a.sql".into()),
                Script::Command("SELECT 1".into()),
                Script::File("b.sql".into())
            ]
        );
    }
}
