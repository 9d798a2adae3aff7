//! A ZenML server's address and the credential runql logs in with: parsed from `--store`,
//! ZenML's `config.yaml` and `credentials.yaml`, without a network client (the fuzz target
//! of ZenML's config files, fuzz/, compiles this file as it is).

use std::fmt;

use crate::error::{StoreError, StoreResult};
use crate::store::secret::Secret;

/// How runql logs in to a server: what ZenML's own client would use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A service account's API key (`ZENKEY_...`): exchanged for a token at `/login`.
    ApiKey(Secret),
    /// A token `zenml login` left in `credentials.yaml`, sent as it is.
    Token(Secret),
    /// A user's name and password from `credentials.yaml`.
    Password { username: String, password: Secret },
}

/// A ZenML server's address: `https://host[:port][/prefix]`, or `http://` on loopback.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddress {
    /// Without a trailing slash.
    url: String,
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Whether `store` names a ZenML server (by its URL scheme).
pub fn is_server_url(store: &str) -> bool {
    let lower = store.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

impl ServerAddress {
    /// An error never repeats the URL: a user may have pasted a key into it.
    pub fn parse(store: &str) -> StoreResult<Self> {
        let bad = |reason: &str| StoreError::ServerUrl(reason.to_string());
        let url = url::Url::parse(store.trim()).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "a server URL takes no user or password: log in with an API key \
                 (ZENML_STORE_API_KEY or --api-key-file)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a server URL takes no query or fragment"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        match url.scheme() {
            "https" => {}
            // A key sent in the clear is a key given away, except to this machine.
            "http" if is_loopback(host) => {}
            "http" => {
                return Err(bad(
                    "plain http is for servers on this machine (127.0.0.1, ::1, localhost): \
                     use https:// so the API key is not sent in the clear",
                ));
            }
            other => return Err(bad(&format!("unsupported scheme {other}://"))),
        }
        let mut text = url.to_string();
        while text.ends_with('/') {
            text.pop();
        }
        Ok(Self { url: text })
    }

    /// Host and port, for naming the mirror folder.
    pub fn host_port(&self) -> String {
        let url = url::Url::parse(&self.url).expect("parsed before");
        let host = url
            .host_str()
            .unwrap_or("server")
            .replace([':', '[', ']'], "_");
        format!("{host}_{}", url.port_or_known_default().unwrap_or(0))
    }

    pub(super) fn endpoint(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url)
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let a = ServerAddress::parse("https://zenml.example.com/").unwrap();
        assert_eq!(a.to_string(), "https://zenml.example.com");
        assert_eq!(a.host_port(), "zenml.example.com_443");
        assert!(ServerAddress::parse("http://127.0.0.1:8237").is_ok());
        assert!(ServerAddress::parse("http://localhost:8237").is_ok());
        assert!(ServerAddress::parse("http://[::1]:8237").is_ok());
        let err = ServerAddress::parse("http://zenml.example.com").unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        let err = ServerAddress::parse("https://me:ZENKEY_secret@zenml.example.com").unwrap_err();
        assert!(!err.to_string().contains("ZENKEY_secret"), "{err}");
        assert!(ServerAddress::parse("https://h/?key=x").is_err());
    }

    #[test]
    fn secrets_print_as_stars() {
        let c = Credential::ApiKey(Secret::new("ZENKEY_abc"));
        assert!(!format!("{c:?}").contains("abc"));
    }
}
