//! Where a MySQL/MariaDB store is and how to log in, from a URL or ZenML's config keys.
//!
//! A password lives only in [`Password`]: its `Debug` and `Display` print `***`, and an
//! address prints as `mysql://user@host:port/database`, so no error, `--info` line or
//! EXPLAIN made from one can show it.

use std::fmt;
use std::path::PathBuf;

use mysql_async::{ClientIdentity, SslOpts};

use crate::error::{StoreError, StoreResult};

/// A MySQL password: a [`Secret`], never printed.
pub type Password = crate::store::secret::Secret;

/// TLS as ZenML's config describes it (`ssl_ca`, `ssl_cert`, `ssl_key`,
/// `ssl_verify_server_cert`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Check that the certificate names the host (the chain is always checked).
    pub verify_server_cert: bool,
}

/// A MySQL/MariaDB ZenML store's address and login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlAddress {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Password>,
    pub database: String,
    /// `None`: no TLS.
    pub tls: Option<Tls>,
}

impl fmt::Display for MysqlAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "mysql://{}@{host}:{}/{}",
            self.user, self.port, self.database
        )
    }
}

/// Whether `store` names a MySQL/MariaDB store (by its URL scheme).
pub fn is_mysql_url(store: &str) -> bool {
    let lower = store.to_ascii_lowercase();
    [
        "mysql://",
        "mariadb://",
        "mysql+pymysql://",
        "mariadb+pymysql://",
    ]
    .iter()
    .any(|scheme| lower.starts_with(scheme))
}

impl MysqlAddress {
    /// `mysql://user[:password]@host[:port]/database[?ssl_ca=...&ssl_cert=...&ssl_key=...
    /// &ssl_verify_server_cert=true]` (also `mariadb://`, and SQLAlchemy's `+pymysql`).
    /// An error never repeats the URL, which may hold the password.
    pub fn parse(store: &str) -> StoreResult<Self> {
        let bad = |reason: &str| StoreError::MysqlUrl(reason.to_string());
        let scheme_end = store.find("://").ok_or_else(|| bad("no scheme"))?;
        // `url` knows no `mysql` scheme rules; parse as a generic authority URL.
        let url = url::Url::parse(&format!("mysql{}", &store[scheme_end..]))
            .map_err(|e| bad(&format!("not a URL ({e})")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let database = url.path().trim_start_matches('/').to_string();
        let user = percent_decode(url.username());
        let password = url.password().map(|p| Password::new(percent_decode(p)));
        let mut address = Self {
            host,
            port: url.port().unwrap_or(3306),
            user: if user.is_empty() {
                "root".to_string()
            } else {
                user
            },
            password,
            database,
            tls: None,
        };
        let mut tls = Tls::default();
        let mut wants_tls = false;
        for (key, value) in url.query_pairs() {
            wants_tls |= address.set_tls_key(&mut tls, &key, &value)?;
        }
        if wants_tls {
            address.tls = Some(tls);
        }
        Ok(address)
    }

    /// Applies one of ZenML's `ssl*` settings; true when it asks for TLS.
    pub fn set_tls_key(&mut self, tls: &mut Tls, key: &str, value: &str) -> StoreResult<bool> {
        let path = || Some(PathBuf::from(value)).filter(|p| !p.as_os_str().is_empty());
        let on = || matches!(value.to_ascii_lowercase().as_str(), "true" | "1" | "yes");
        Ok(match key {
            "ssl_ca" => {
                tls.ca = path();
                tls.ca.is_some()
            }
            "ssl_cert" => {
                tls.cert = path();
                tls.cert.is_some()
            }
            "ssl_key" => {
                tls.key = path();
                tls.key.is_some()
            }
            "ssl_verify_server_cert" => {
                tls.verify_server_cert = on();
                false
            }
            "ssl" => on(),
            _ => false,
        })
    }

    pub(super) fn ssl_opts(&self) -> Option<SslOpts> {
        let tls = self.tls.as_ref()?;
        let mut opts = SslOpts::default();
        if let Some(ca) = &tls.ca {
            opts = opts.with_root_certs(vec![ca.clone().into()]);
        } else {
            // ZenML's `ssl: true` without a CA encrypts without checking whom it talks to.
            opts = opts.with_danger_accept_invalid_certs(true);
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            opts = opts.with_client_identity(Some(ClientIdentity::new(
                cert.clone().into(),
                key.clone().into(),
            )));
        }
        Some(opts.with_danger_skip_domain_validation(!tls.verify_server_cert))
    }
}

/// `%40` → `@` in a URL's user or password (what is not valid UTF-8 stays as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_what_they_print() {
        let a = MysqlAddress::parse("mysql://reader:p%40ss@127.0.0.1:3307/zenml").unwrap();
        assert_eq!(a.host, "127.0.0.1");
        assert_eq!(a.port, 3307);
        assert_eq!(a.user, "reader");
        assert_eq!(a.password.as_ref().unwrap().expose(), "p@ss");
        assert_eq!(a.to_string(), "mysql://reader@127.0.0.1:3307/zenml");
        assert!(!format!("{a:?}").contains("p@ss"));
        let b = MysqlAddress::parse("mariadb://u@db.example/zen?ssl_ca=/ca.pem").unwrap();
        assert_eq!(b.port, 3306);
        assert_eq!(b.tls.unwrap().ca, Some(PathBuf::from("/ca.pem")));
        let err = MysqlAddress::parse("mysql://u:secret@/zen").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(is_mysql_url("MySQL://x/y"));
        assert!(!is_mysql_url("sqlite:////x"));
    }
}
