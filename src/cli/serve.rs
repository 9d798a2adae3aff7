//! `runql serve` from the command line: its flags as a server configuration, the users it
//! admits, and Ctrl-C / SIGTERM as the shutdown.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use anyhow::Context;

use super::args::{Args, Subcommands};
use crate::open::Opened;
use crate::server::{self, Users};
use crate::store::secret::Secret;

/// Serves `opened` as the flags of `runql serve` say, until Ctrl-C or SIGTERM.
pub async fn run(args: &Args, opened: Opened) -> anyhow::Result<ExitCode> {
    let Some(Subcommands::Serve {
        listen,
        users,
        tls_cert,
        tls_key,
        max_connections,
        statement_timeout,
        memory_limit_mib,
        max_staleness,
        shutdown_grace,
    }) = &args.command
    else {
        anyhow::bail!("runql serve: no serve arguments");
    };
    let listen = address(listen)?;
    let users = users_of(users.as_deref())?;
    let config = server::Config {
        listen,
        users,
        tls: tls_cert.clone().zip(tls_key.clone()),
        max_connections: *max_connections as usize,
        statement_timeout: Some(*statement_timeout).filter(|t| !t.is_zero()),
        memory_limit: usize::try_from(memory_limit_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        max_staleness: *max_staleness,
        shutdown_grace: *shutdown_grace,
        queries_dir: args.queries_dir.clone(),
    };
    let name = opened.name.clone();
    server::serve(config, opened, &name, shutdown()).await?;
    Ok(ExitCode::SUCCESS)
}

fn address(listen: &str) -> anyhow::Result<SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen}: not a HOST:PORT to listen on"))?
        .next()
        .with_context(|| format!("--listen {listen}: names no address"))
}

/// The users of `--users FILE` and of `$RUNQL_SERVE_PASSWORD`; `None` when neither says any.
fn users_of(file: Option<&std::path::Path>) -> anyhow::Result<Option<Users>> {
    let mut pairs = match file {
        Some(path) => Users::read_file(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    if let Ok(password) = std::env::var("RUNQL_SERVE_PASSWORD")
        && !password.is_empty()
    {
        let user = std::env::var("RUNQL_SERVE_USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "runql".to_string());
        pairs.retain(|(name, _)| *name != user);
        pairs.push((user, Secret::new(password)));
    }
    Ok((!pairs.is_empty()).then(|| Users::new(pairs)))
}

/// Completes at Ctrl-C or SIGTERM.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
