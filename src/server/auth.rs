//! Who may connect to `runql serve`: users and passwords from a file or the environment,
//! checked with SCRAM-SHA-256 (the password never crosses the wire, and with TLS the
//! exchange is bound to the server's certificate); with no users, connections are trusted,
//! which `runql serve` allows on a loopback address only.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthDriver, AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, ConnectionManager, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::store::secret::Secret;

/// SCRAM's PBKDF2 rounds: PostgreSQL's default.
const ITERATIONS: usize = 4096;

/// The version runql reports as `server_version`: clients pick their catalog queries by it,
/// and runql's catalog answers those of PostgreSQL 15.
pub const SERVER_VERSION: &str = "15.0";

/// Users who may connect, each with a salted password (the plain one is not kept).
pub struct Users {
    salted: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.salted.keys().collect();
        names.sort();
        f.debug_struct("Users").field("names", &names).finish()
    }
}

impl Users {
    /// The `name:password` lines (`#` starts a comment). The file must be readable
    /// by its owner only, as libpq and ssh ask of theirs: a password file others can read is
    /// refused, not used.
    pub fn read_file(path: &Path) -> Result<Vec<(String, Secret)>, String> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "{shown} can be read by others: chmod 600 it (it holds passwords)"
                ));
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let mut pairs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Only the line number: the line holds a password.
            let (name, password) = line
                .split_once(':')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .ok_or_else(|| format!("{shown}: line {}: not name:password", i + 1))?;
            pairs.push((name.to_string(), Secret::new(password.to_string())));
        }
        if pairs.is_empty() {
            return Err(format!("{shown} names no user"));
        }
        Ok(pairs)
    }

    pub fn new(pairs: Vec<(String, Secret)>) -> Users {
        let salted = pairs
            .into_iter()
            .map(|(name, password)| {
                let salt = random_salt();
                let hash = gen_salted_password(password.expose(), &salt, ITERATIONS);
                (name, (salt, hash))
            })
            .collect();
        Users { salted }
    }

    /// The users' names, sorted (the catalog lists them as roles).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.salted.keys().cloned().collect();
        names.sort();
        names
    }
}

fn random_salt() -> Vec<u8> {
    let mut salt = vec![0u8; 16];
    // Getrandom through ring, which rustls already links.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .expect("the system's random source");
    salt
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        match login.user().and_then(|u| self.salted.get(u)) {
            Some((salt, hash)) => Ok(Password::new(Some(salt.clone()), hash.clone())),
            // An unknown user fails as a wrong password does, at the same step, so a client
            // cannot tell which names exist.
            None => {
                let salt = random_salt();
                let hash = gen_salted_password(&hex(&random_salt()), &salt, ITERATIONS);
                Ok(Password::new(Some(salt), hash))
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parameters a client learns at startup.
pub fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = SERVER_VERSION.to_string();
    p.search_path = crate::server::catalog::SEARCH_PATH.to_string();
    p.is_superuser = false;
    p.default_transaction_read_only = true;
    p.scram_iterations = ITERATIONS;
    p
}

/// The startup phase: SCRAM-SHA-256 when there are users, trust otherwise. Every
/// connection is registered for cancel requests.
pub struct Startup {
    scram: Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
    trust: AuthDriver<Arc<DefaultServerParameterProvider>>,
}

impl Startup {
    /// `certificate`: the TLS certificate chain (PEM), for SCRAM's channel binding.
    pub fn new(
        users: Option<Arc<Users>>,
        certificate: Option<&[u8]>,
        manager: Arc<ConnectionManager>,
    ) -> PgWireResult<Startup> {
        let scram = match users {
            Some(users) => {
                let mut scram = ScramAuth::new(users);
                scram.set_iterations(ITERATIONS);
                if let Some(pem) = certificate {
                    scram.configure_certificate(pem)?;
                }
                Some(
                    SASLAuthStartupHandler::new(Arc::new(parameters()))
                        .with_scram(scram)
                        .with_connection_manager(Arc::clone(&manager)),
                )
            }
            None => None,
        };
        let trust = AuthDriver::new(Arc::new(parameters())).with_connection_manager(manager);
        Ok(Startup { scram, trust })
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(scram) = &self.scram {
            let result = scram.on_startup(client, message).await;
            if let Err(e) = &result {
                let user = client.metadata().get(METADATA_USER).cloned();
                crate::server::log::refused(client.socket_addr(), user.as_deref(), e);
                // PostgreSQL's words and the user who logged in (SCRAM's own message names
                // none): clients match on them (Metabase: "password authentication failed").
                if matches!(e, PgWireError::InvalidPassword(_)) {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".into(),
                        "28P01".into(),
                        format!(
                            "password authentication failed for user \"{}\"",
                            user.unwrap_or_default()
                        ),
                    ))));
                }
            }
            return result;
        }
        if let PgWireFrontendMessage::Startup(startup) = &message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            self.trust.complete_authentication(client, None).await?;
        }
        Ok(())
    }
}
