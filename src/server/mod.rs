//! `runql serve`: the same tables, reports and functions over the PostgreSQL wire protocol,
//! read-only, for dashboards and BI tools (Grafana, Metabase, Superset, notebooks) and any
//! PostgreSQL driver.
//!
//! Each connection gets its own DataFusion session over the tables opened once (`open`):
//! a store read live answers every query from the store as it is then; a mirror is brought
//! up to date before each query (or within `--max-staleness`), one sync serving every query
//! that waits for it. Around that: SCRAM-SHA-256 users (or trust, on loopback only), TLS,
//! a connection limit, per-query time and memory limits, cancel requests, a catalog for the
//! clients' introspection (`catalog`), one log line per connection and query (`log`), and a
//! bounded graceful shutdown.

pub mod auth;
mod catalog;
mod encode;
mod functions;
mod handler;
mod log;
mod rewrite;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Sink;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{
    ClientInfo, ConnectionManager, METADATA_APPLICATION_NAME, METADATA_USER, PgWireConnectionState,
    PgWireServerHandlers,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::export::Manifest;
use crate::open::{Mirror, Opened};

pub use auth::Users;

/// How long a connection may take to authenticate before it is dropped, so connections
/// that say nothing cannot hold the server's sockets.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How `runql serve` listens and what it allows.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// Users who may connect (SCRAM-SHA-256); `None` trusts every connection, which is
    /// allowed on a loopback address only.
    pub users: Option<Users>,
    /// A certificate chain and its private key (PEM): TLS on, and required.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_connections: usize,
    /// The longest a statement may run; clients may ask for less (`SET statement_timeout`).
    pub statement_timeout: Option<Duration>,
    /// The memory a connection's query may hold in sorts, joins and aggregates.
    pub memory_limit: usize,
    /// How long a mirror's last sync stays fresh enough for a new query (zero: each query
    /// waits for a sync that started after it arrived).
    pub max_staleness: Duration,
    /// How long running queries may go on after a shutdown was asked for.
    pub shutdown_grace: Duration,
    /// A folder of the user's own reports, served beside the built-in ones.
    pub queries_dir: Option<PathBuf>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without authentication: pass --users FILE \
         (or listen on a loopback address such as 127.0.0.1)"
    )]
    OpenToTheNetwork(SocketAddr),
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Setup(String),
}

/// Per-query limits.
#[derive(Debug, Clone)]
pub struct Limits {
    statement_timeout: Option<Duration>,
    memory_bytes: usize,
}

impl Limits {
    /// The timeout a connection's next statement runs under: the server's, or the client's
    /// `statement_timeout` when that is shorter.
    fn statement_timeout(&self, session: &functions::Session) -> Option<Duration> {
        let asked = session
            .setting("statement_timeout")
            .and_then(|v| self.parse_timeout(&v))
            .filter(|t| !t.is_zero());
        match (self.statement_timeout, asked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// PostgreSQL's spellings of a timeout: milliseconds, or a number with `ms`, `s`, `min`,
    /// `h`; `0` is none.
    fn parse_timeout(&self, value: &str) -> Option<Duration> {
        let v = value.trim().trim_matches('\'').trim();
        let split = v
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(v.len());
        let (number, unit) = v.split_at(split);
        let n: f64 = number
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
        let ms = match unit.trim() {
            "" | "ms" => n,
            "s" => n * 1e3,
            "min" => n * 60e3,
            "h" => n * 3600e3,
            _ => return None,
        };
        Some(Duration::from_secs_f64(ms / 1e3))
    }
}

/// How a mirror is kept fresh for the queries that read it.
pub struct Freshness {
    mirror: Mirror,
    max_staleness: Duration,
    state: tokio::sync::Mutex<Synced>,
    /// Queries read under its shared side; a sync that writes takes it whole, so no query
    /// reads files a sync replaces.
    reading: Arc<tokio::sync::RwLock<()>>,
}

struct Synced {
    manifest: Manifest,
    started: Option<Instant>,
}

/// A query's hold on what it reads, until its last row.
pub type ReadGuard = tokio::sync::OwnedRwLockReadGuard<()>;

impl Freshness {
    fn new(mirror: Mirror, manifest: Manifest, max_staleness: Duration) -> Freshness {
        Freshness {
            mirror,
            max_staleness,
            state: tokio::sync::Mutex::new(Synced {
                manifest,
                started: Some(Instant::now()),
            }),
            reading: Arc::new(tokio::sync::RwLock::new(())),
        }
    }

    /// Makes sure the tables in `ctx` reflect a sync that started after `arrived` (less
    /// the allowed staleness), and returns a hold on them for the query.
    async fn ensure(&self, ctx: &datafusion::prelude::SessionContext) -> Result<ReadGuard, String> {
        let arrived = Instant::now();
        {
            let mut synced = self.state.lock().await;
            let fresh = synced
                .started
                .is_some_and(|s| s + self.max_staleness >= arrived);
            if !fresh {
                let started = Instant::now();
                if !self.mirror.unchanged(&synced.manifest) {
                    let _writing = self.reading.write().await;
                    self.mirror
                        .refresh(ctx, &mut synced.manifest)
                        .await
                        .map_err(|e| crate::cli::exec::one_line(&e))?;
                }
                synced.started = Some(started);
            }
        }
        Ok(Arc::clone(&self.reading).read_owned().await)
    }
}

/// A query's cancel signal: set by a cancel request, watched by the query.
#[derive(Debug, Default)]
pub struct CancelSignal {
    fired: AtomicBool,
    notify: Notify,
}

impl CancelSignal {
    fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.fired.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// A connection's current query's signal.
#[derive(Debug, Default)]
pub struct CancelSlot {
    current: Mutex<Arc<CancelSignal>>,
}

impl CancelSlot {
    /// A new query starts: a fresh signal, so an old cancel request cannot stop it.
    fn start(&self) -> Arc<CancelSignal> {
        let signal = Arc::new(CancelSignal::default());
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&signal);
        signal
    }

    fn cancel(&self) {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fire();
    }
}

/// The connections that may be sent a cancel request: process id → secret key and slot.
#[derive(Debug, Default)]
pub struct Cancels {
    map: Mutex<HashMap<i32, (Bytes, Arc<CancelSlot>)>>,
}

/// A connection's entry in [`Cancels`], removed when the connection closes.
pub struct Registered {
    cancels: Arc<Cancels>,
    pid: i32,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.cancels
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.pid);
    }
}

impl Cancels {
    fn register(self: &Arc<Self>, pid: i32, secret: Bytes, slot: Arc<CancelSlot>) -> Registered {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, (secret, slot));
        Registered {
            cancels: Arc::clone(self),
            pid,
        }
    }

    /// Cancels the running query of `pid`, if `secret` is that connection's.
    fn cancel(&self, pid: i32, secret: &Bytes) {
        let slot = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .filter(|(s, _)| s == secret)
            .map(|(_, slot)| Arc::clone(slot));
        if let Some(slot) = slot {
            slot.cancel();
        }
    }
}

struct CancelRequests {
    manager: Arc<ConnectionManager>,
    cancels: Arc<Cancels>,
}

#[async_trait]
impl CancelHandler for CancelRequests {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.cancels
            .cancel(request.pid, &request.secret_key.to_bytes());
        self.manager.cancel(request.pid, &request.secret_key).await;
    }
}

/// The startup of one connection: TLS when required, a place under the connection limit,
/// then authentication.
struct Gate {
    startup: Arc<auth::Startup>,
    permits: Arc<Semaphore>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    max_connections: usize,
    require_tls: bool,
    authenticated: Arc<AtomicBool>,
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

#[async_trait]
impl StartupHandler for Gate {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            let user = startup.parameters.get(METADATA_USER).map(String::as_str);
            if self.require_tls && !client.is_secure() {
                let reason = "runql serve requires TLS here: connect with sslmode=require";
                log::refused(client.socket_addr(), user, &reason);
                return Err(fatal("28000", reason.to_string()));
            }
            match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(permit) => *self.permit.lock().unwrap_or_else(|e| e.into_inner()) = Some(permit),
                Err(_) => {
                    let reason = format!(
                        "sorry, too many clients already (runql serve --max-connections {})",
                        self.max_connections
                    );
                    log::refused(client.socket_addr(), user, &reason);
                    return Err(fatal("53300", reason));
                }
            }
        }
        self.startup.on_startup(client, message).await?;
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery)
            && !self.authenticated.swap(true, Ordering::SeqCst)
        {
            let metadata = client.metadata();
            log::connected(
                client.socket_addr(),
                metadata.get(METADATA_USER).map_or("", String::as_str),
                client.pid_and_secret_key().0,
                metadata
                    .get(METADATA_APPLICATION_NAME)
                    .map_or("", String::as_str),
                client.is_secure(),
            );
        }
        Ok(())
    }
}

/// The handlers of one connection.
struct Connection {
    gate: Arc<Gate>,
    simple: Arc<handler::Handler>,
    extended: Arc<handler::Extended>,
    cancel: Arc<CancelRequests>,
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        Arc::clone(&self.simple)
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::clone(&self.extended)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.gate)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// The TLS acceptor for a certificate chain and key, and the chain (for SCRAM's channel
/// binding).
fn tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(pgwire::tokio::TlsAcceptor, Vec<u8>), ServeError> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let pem = std::fs::read(cert)
        .map_err(|e| ServeError::Tls(format!("cannot read {}: {e}", cert.display())))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            ServeError::Tls(format!(
                "{}: not a PEM certificate chain: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(ServeError::Tls(format!(
            "{} holds no certificate",
            cert.display()
        )));
    }
    // The key's own error would not name the file; and never prints the key.
    let private = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        ServeError::Tls(format!(
            "{}: cannot read a PEM private key from it",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            ServeError::Tls(format!(
                "{} and {} do not make a certificate and key: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    Ok((pgwire::tokio::TlsAcceptor::from(Arc::new(config)), pem))
}

/// Serves `opened` until `shutdown` completes, then lets running queries finish for the
/// configured grace before closing what is left.
pub async fn serve(
    config: Config,
    opened: Opened,
    store_name: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    if config.users.is_none() && !config.listen.ip().is_loopback() {
        return Err(ServeError::OpenToTheNetwork(config.listen));
    }
    let (acceptor, certificate) = match &config.tls {
        Some((cert, key)) => {
            let (a, c) = tls(cert, key)?;
            (Some(a), Some(c))
        }
        None => (None, None),
    };
    let user_names: Vec<String> = config.users.as_ref().map(|u| u.names()).unwrap_or_default();
    let auth_name = if config.users.is_some() {
        "scram-sha-256"
    } else {
        "trust"
    };
    let Opened {
        ctx: base,
        manifest,
        mirror,
        ..
    } = opened;
    {
        // The server's catalog answers for information_schema, with PostgreSQL's columns.
        let state = base.state_ref();
        state
            .write()
            .config_mut()
            .options_mut()
            .catalog
            .information_schema = false;
    }
    let (reports, unplanned) =
        crate::reports::register_functions(&base, config.queries_dir.as_deref())
            .await
            .map_err(|e| ServeError::Setup(crate::cli::exec::one_line(&e)))?;
    for report in unplanned {
        eprintln!("warning: report {report}: left out");
    }
    let catalog = Arc::new(catalog::Catalog::new(&base, &reports, &user_names));
    catalog
        .register(&base)
        .map_err(|e| ServeError::Setup(crate::cli::exec::one_line(&e)))?;
    functions::register_catalog(&base, &catalog.lookup);

    let freshness = match (mirror, manifest) {
        (Some(m), Some(manifest)) => Some(Freshness::new(m, manifest, config.max_staleness)),
        _ => None,
    };
    let shared = Arc::new(handler::Shared {
        reports: reports
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect(),
        base,
        catalog,
        limits: Limits {
            statement_timeout: config.statement_timeout,
            memory_bytes: config.memory_limit,
        },
        freshness,
        cancels: Arc::new(Cancels::default()),
    });
    let manager = Arc::new(ConnectionManager::new());
    let startup = Arc::new(
        auth::Startup::new(
            config.users.map(Arc::new),
            certificate.as_deref(),
            Arc::clone(&manager),
        )
        .map_err(|e| ServeError::Tls(e.to_string()))?,
    );
    let simple = Arc::new(handler::Handler::new(Arc::clone(&shared)));
    let extended = Arc::new(handler::Extended::new(Arc::clone(&simple)));
    let cancel = Arc::new(CancelRequests {
        manager,
        cancels: Arc::clone(&shared.cancels),
    });
    let permits = Arc::new(Semaphore::new(config.max_connections));
    // Sockets not yet past startup are bounded too, so a flood of silent ones cannot take
    // every file descriptor; past the bound a new socket is closed at once.
    let sockets = Arc::new(Semaphore::new(config.max_connections * 2 + 16));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Listen {
            address: config.listen,
            reason: e.to_string(),
        })?;
    let address = listener.local_addr().map_err(|e| ServeError::Listen {
        address: config.listen,
        reason: e.to_string(),
    })?;
    log::listening(address, store_name, auth_name, acceptor.is_some());

    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait, do not spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok(socket_permit) = Arc::clone(&sockets).try_acquire_owned() else {
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let authenticated = Arc::new(AtomicBool::new(false));
        let handlers = Connection {
            gate: Arc::new(Gate {
                startup: Arc::clone(&startup),
                permits: Arc::clone(&permits),
                permit: Mutex::new(None),
                max_connections: config.max_connections,
                require_tls: acceptor.is_some(),
                authenticated: Arc::clone(&authenticated),
            }),
            simple: Arc::clone(&simple),
            extended: Arc::clone(&extended),
            cancel: Arc::clone(&cancel),
        };
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let _socket_permit = socket_permit;
            let since = Instant::now();
            let serving = pgwire::tokio::process_socket(socket, acceptor, handlers);
            tokio::pin!(serving);
            let startup = tokio::time::sleep(STARTUP_TIMEOUT);
            tokio::pin!(startup);
            tokio::select! {
                _ = &mut serving => {}
                _ = &mut startup => {
                    // Said nothing, or never finished authenticating: close it. (The flag
                    // is read when the timer fires: a select does not look at it again.)
                    if !authenticated.load(Ordering::SeqCst) {
                        return;
                    }
                    let _ = (&mut serving).await;
                }
            }
            if authenticated.load(Ordering::SeqCst) {
                log::disconnected(peer, since.elapsed().as_secs_f64());
            }
        });
    }
    drop(listener);
    log::stopping(connections.len());
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    eprintln!("runql serve: stopped");
    Ok(())
}
