//! A ZenML server's REST API (`/api/v1`): its address, the credential runql logs in with,
//! and paged reads of its lists, with bounded retries.
//!
//! The API has no joins and a full read of a large server takes minutes, so runql never
//! queries it per statement: [`crate::mirror`] copies what changed into a local mirror and
//! queries answer from that. This module only reads; it never sends anything but `GET`s and
//! the login `POST`.
//!
//! A credential lives only in [`Secret`]: its `Debug` and `Display` print `***`, errors name
//! the server by its address (which holds no credential) and HTTP statuses, never a header
//! or a body that could echo a key.

mod address;
pub mod rows;

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::error::{StoreError, StoreResult};

pub use crate::store::secret::Secret;
pub use address::{Credential, ServerAddress, is_server_url};

/// What `/api/v1/info` says about a server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub database_type: Option<String>,
}

/// One page of a list: `{index, max_size, total_pages, total, items}`.
#[derive(Debug)]
pub struct Page {
    pub total: u64,
    pub total_pages: u64,
    pub items: Vec<Value>,
}

/// How long one request may take before it counts as failed (and is retried).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts per request for transient failures (connection refused or reset, timeouts,
/// 5xx, 429), with doubling pauses from [`FIRST_BACKOFF`]: bounded, so a dead server is
/// reported in seconds, not retried forever.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A logged-in reader of one server.
pub struct RestClient {
    http: reqwest::Client,
    address: ServerAddress,
    credential: Credential,
    /// The bearer token of the current login.
    token: tokio::sync::Mutex<Option<Secret>>,
    /// Where the login's token is kept between runql processes (see [`Session`]).
    session: Option<Session>,
}

/// The token a login gave, kept in a file of the user's alone so that the next runql process
/// need not log in again: ZenML spends most of a second verifying an API key (or password)
/// at `/login`, and a one-shot command would pay that at every start. ZenML's own client
/// keeps its token likewise (in `credentials.yaml`). The server checks at every request
/// that the key behind a token is still there, active and not rotated, so a deleted key
/// ends a kept token too; a refused token is dropped and the login made again. The file
/// names the credential it was made with by a SHA-256 of it, never the credential itself.
#[derive(Debug)]
struct Session {
    file: std::path::PathBuf,
    credential: String,
}

impl Session {
    fn new(file: std::path::PathBuf, address: &ServerAddress, credential: &Credential) -> Self {
        let material = match credential {
            Credential::ApiKey(key) | Credential::Token(key) => key.expose().to_string(),
            Credential::Password { username, password } => {
                format!("{username}\0{}", password.expose())
            }
        };
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{address}\0{material}").as_bytes(),
        );
        let credential = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Self { file, credential }
    }

    /// The kept token, when it was made with this credential.
    fn token(&self) -> Option<Secret> {
        let text = std::fs::read_to_string(&self.file).ok()?;
        let (credential, token) = text.split_once('\n')?;
        (credential == self.credential && !token.trim().is_empty())
            .then(|| Secret::new(token.trim()))
    }

    /// Keeps `token` (readable by the user only; written whole, then renamed into place).
    /// A folder that cannot hold it only costs the next process a login.
    fn keep(&self, token: &Secret) {
        use std::io::Write;
        let staged = self.file.with_extension(format!("{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&staged).and_then(|mut f| {
            writeln!(f, "{}", self.credential)?;
            writeln!(f, "{}", token.expose())
        });
        if written.is_err() || std::fs::rename(&staged, &self.file).is_err() {
            let _ = std::fs::remove_file(&staged);
        }
    }

    /// Drops the kept token if it is this credential's (another's stays for its owner).
    fn forget(&self) {
        if self.token().is_some() {
            let _ = std::fs::remove_file(&self.file);
        }
    }
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, and whether another may succeed.
enum Failure {
    Transient(String),
    Final(StoreError),
}

impl RestClient {
    pub fn new(
        address: ServerAddress,
        credential: Credential,
        timeout: Duration,
    ) -> StoreResult<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("runql/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StoreError::Server {
                server: address.to_string(),
                reason: format!("cannot start an HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            address,
            credential,
            token: tokio::sync::Mutex::new(None),
            session: None,
        })
    }

    /// Keeps the login's token in `file` for the next process (see [`Session`]).
    pub fn keep_session_in(mut self, file: std::path::PathBuf) -> Self {
        self.session = Some(Session::new(file, &self.address, &self.credential));
        self
    }

    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    fn error(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Server {
            server: self.address.to_string(),
            reason: reason.into(),
        }
    }

    /// The server's release and database (no login needed).
    pub async fn info(&self) -> StoreResult<ServerInfo> {
        let info = self.get_json("/info", &[], false).await?;
        let version = info["version"]
            .as_str()
            .ok_or_else(|| self.error("/api/v1/info names no version: not a ZenML server?"))?
            .to_string();
        Ok(ServerInfo {
            version,
            database_type: info["database_type"].as_str().map(str::to_string),
        })
    }

    /// One page of the list at `path` (`/runs`, `/steps`, ...), pages counted from 1.
    pub async fn page(
        &self,
        path: &str,
        query: &[(&str, String)],
        page: u64,
        size: u64,
    ) -> StoreResult<Page> {
        let mut q: Vec<(&str, String)> = query.to_vec();
        q.push(("page", page.to_string()));
        q.push(("size", size.to_string()));
        let body = self.get_json(path, &q, true).await?;
        let items = match body.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => return Err(self.error(format!("{path}: the answer is not a page of items"))),
        };
        Ok(Page {
            total: body["total"].as_u64().unwrap_or(items.len() as u64),
            total_pages: body["total_pages"].as_u64().unwrap_or(1),
            items,
        })
    }

    /// Every item of the list at `path`, page by page (a few pages in flight at once),
    /// handed to `on_page` in order with the list's total. Returns the total. `on_page` may
    /// fail with its own error type, which stops the listing.
    pub async fn list<E: From<StoreError>>(
        &self,
        path: &str,
        query: &[(&str, String)],
        size: u64,
        on_page: &mut (dyn FnMut(Vec<Value>, u64) -> Result<(), E> + Send),
    ) -> Result<u64, E> {
        use futures::StreamExt;
        let first = self.page(path, query, 1, size).await?;
        let total = first.total;
        let pages = first.total_pages;
        on_page(first.items, total)?;
        let mut rest = futures::stream::iter(2..=pages)
            .map(|n| self.page(path, query, n, size))
            .buffered(PAGES_IN_FLIGHT);
        while let Some(page) = rest.next().await {
            on_page(page?.items, total)?;
        }
        Ok(total)
    }

    /// The items of `path` whose `field` is one of `ids`, asked in chunks (a URL has a
    /// length limit).
    pub async fn list_where_one_of<E: From<StoreError>>(
        &self,
        path: &str,
        query: &[(&str, String)],
        field: &'static str,
        ids: &[String],
        on_page: &mut (dyn FnMut(Vec<Value>, u64) -> Result<(), E> + Send),
    ) -> Result<(), E> {
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            let mut q = query.to_vec();
            q.push((
                field,
                format!("oneof:{}", serde_json::to_string(chunk).unwrap_or_default()),
            ));
            self.list(path, &q, IDS_PER_REQUEST as u64, on_page).await?;
        }
        Ok(())
    }

    /// The token to send: this process's, else the kept one, else a new login's. `renew`
    /// after the server refused the token in hand.
    async fn bearer(&self, renew: bool) -> StoreResult<Secret> {
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref().filter(|_| !renew) {
            return Ok(t.clone());
        }
        let kept = self
            .session
            .as_ref()
            .filter(|_| !renew)
            .and_then(Session::token);
        let fresh = match (&self.credential, kept) {
            (Credential::Token(t), _) => t.clone(),
            (_, Some(kept)) => kept,
            (Credential::ApiKey(key), None) => self.login(&[("password", key.expose())]).await?,
            (Credential::Password { username, password }, None) => {
                self.login(&[("username", username), ("password", password.expose())])
                    .await?
            }
        };
        *token = Some(fresh.clone());
        Ok(fresh)
    }

    /// A new token for the credential, kept for the next process (a refused login forgets
    /// the kept one).
    async fn login(&self, form: &[(&str, &str)]) -> StoreResult<Secret> {
        let url = self.address.endpoint("/login");
        let login = self
            .retrying("/login", || self.http.post(&url).form(form))
            .await
            .and_then(|body| {
                body["access_token"]
                    .as_str()
                    .map(|t| Secret::new(t.trim()))
                    .ok_or_else(|| self.error("the login answer has no access token"))
            });
        if let Some(session) = &self.session {
            match &login {
                Ok(token) => session.keep(token),
                Err(_) => session.forget(),
            }
        }
        login
    }

    /// GET `path`; `auth` sends the bearer token, logging in again once when the server
    /// refuses it (a token can expire during a long fill).
    async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        auth: bool,
    ) -> StoreResult<Value> {
        let url = self.address.endpoint(path);
        let get = |token: Option<&Secret>| {
            let request = self.http.get(&url).query(query);
            match token {
                Some(t) => request.bearer_auth(t.expose()),
                None => request,
            }
        };
        if !auth {
            return self.retrying(path, || get(None)).await;
        }
        let token = self.bearer(false).await?;
        match self.retrying(path, || get(Some(&token))).await {
            Err(StoreError::ServerAuth { .. })
                if !matches!(self.credential, Credential::Token(_)) =>
            {
                let token = self.bearer(true).await?;
                self.retrying(path, || get(Some(&token))).await
            }
            answer => answer,
        }
    }

    /// Sends what `request` builds, again after a pause while the failure is transient
    /// (at most [`ATTEMPTS`] times), and reads the answer's JSON.
    async fn retrying(
        &self,
        path: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> StoreResult<Value> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(FIRST_BACKOFF * 2u32.pow(attempt - 1)).await;
            }
            match self.attempt(path, request()).await {
                Ok(v) => return Ok(v),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(reason)) => last = reason,
            }
        }
        Err(self.error(format!("{path}: gave up after {ATTEMPTS} attempts: {last}")))
    }

    async fn attempt(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, Failure> {
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transient(transport_reason(&e)))?;
        let status = response.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(Failure::Final(StoreError::ServerAuth {
                server: self.address.to_string(),
                status: status.as_u16(),
            }));
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Failure::Transient(format!("HTTP {}", status.as_u16())));
        }
        if status.as_u16() == 404 {
            return Err(Failure::Final(self.error(format!(
                "{path}: not found (HTTP 404): not a ZenML server, or a release without this API"
            ))));
        }
        if !status.is_success() {
            return Err(Failure::Final(
                self.error(format!("{path}: HTTP {}", status.as_u16())),
            ));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Transient(transport_reason(&e)))?;
        serde_json::from_slice(&bytes).map_err(|_| {
            Failure::Final(self.error(format!(
                "{path}: the answer is not JSON ({} bytes): not a ZenML server, or a proxy's page",
                bytes.len()
            )))
        })
    }
}

/// Pages of one list asked for at once: a server answers each in its own worker.
const PAGES_IN_FLIGHT: usize = 3;
/// Ids in one `oneof:[...]` filter.
const IDS_PER_REQUEST: usize = 100;

/// A transport error in words, without the URL reqwest would add (it holds no secret, but
/// the address is already in the message).
fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = None;
    while let Some(s) = source {
        detail = Some(s.to_string());
        source = s.source();
    }
    match detail {
        Some(d) => format!("{kind} ({d})"),
        None => kind.to_string(),
    }
}
