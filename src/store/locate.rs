//! Finding the store: `--store`, else `RUNQL_STORE`, else ZenML's own `ZENML_STORE_URL`,
//! else the active ZenML config.
//!
//! ZenML keeps its config in `$ZENML_CONFIG_PATH` (default `~/.config/zenml`); `config.yaml`
//! there names the store under `store.url`. When the key is absent ZenML uses its default
//! local store, `<config dir>/local_stores/default_zen_store/zenml.db`, and so does runql.
//! A MySQL store's login may be split over `store.username`, `store.password`,
//! `store.database` and `store.ssl_*`, each overridden by `ZENML_STORE_<KEY>` as in ZenML.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::mysql::address::{MysqlAddress, Password, is_mysql_url};
use super::rest::{Credential, Secret, ServerAddress, is_server_url};
use crate::error::{StoreError, StoreResult};

/// Environment variable naming a store, used when `--store` is not given.
pub const STORE_ENV: &str = "RUNQL_STORE";

/// What a store argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (or a `runql export` folder).
    File(PathBuf),
    Mysql(MysqlAddress),
    /// A ZenML server, read through its REST API into a local mirror.
    Server(ServerAddress),
}

/// Where a store was found, for `--info` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub location: Location,
    pub source: &'static str,
}

/// Resolves the store from the flag, the environment and ZenML's config, in that order.
pub fn locate(flag: Option<&str>) -> StoreResult<Located> {
    if let Some(store) = flag {
        return Ok(Located {
            location: parse_store(store)?,
            source: "--store",
        });
    }
    if let Some(store) = env(STORE_ENV) {
        return Ok(Located {
            location: parse_store(&store)?,
            source: STORE_ENV,
        });
    }
    // What ZenML itself would use: its environment overrides its config file.
    if let Some(url) = env("ZENML_STORE_URL") {
        return Ok(Located {
            location: zenml_store(&url, &Yaml::BadValue)?,
            source: "ZENML_STORE_URL",
        });
    }
    let config_dir = zenml_config_dir().ok_or(StoreError::NotConfigured)?;
    match from_zenml_config(&config_dir)? {
        Some(location) => Ok(Located {
            location,
            source: "ZenML config",
        }),
        None => Err(StoreError::NotConfigured),
    }
}

/// A store argument: a path, ZenML's URL form `sqlite:////abs/path/zenml.db`, or
/// `mysql://user:password@host[:port]/database`.
pub fn parse_store(store: &str) -> StoreResult<Location> {
    if let Some(rest) = store.strip_prefix("sqlite:///") {
        // `sqlite:////abs` keeps its leading slash; `sqlite:///rel` is relative, as in SQLAlchemy.
        let path = rest.split('?').next().unwrap_or(rest);
        return Ok(Location::File(PathBuf::from(path)));
    }
    if is_mysql_url(store) {
        return MysqlAddress::parse(store).map(Location::Mysql);
    }
    if is_server_url(store) {
        return ServerAddress::parse(store).map(Location::Server);
    }
    if let Some((scheme, _)) = store.split_once("://") {
        return Err(StoreError::UnsupportedUrl(format!("{scheme}://")));
    }
    Ok(Location::File(PathBuf::from(store)))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// The credential for `server`, where ZenML's own client would find it: `--api-key-file`,
/// then `ZENML_STORE_API_KEY`, then what `zenml login` left in `credentials.yaml` beside
/// ZenML's `config.yaml` (an API key, a user's login, or a token).
pub fn credential(server: &ServerAddress, api_key_file: Option<&Path>) -> StoreResult<Credential> {
    if let Some(path) = api_key_file {
        let text = std::fs::read_to_string(path).map_err(|e| StoreError::Config {
            path: path.to_path_buf(),
            reason: format!("cannot read the API key file: {e}"),
        })?;
        let key = text.trim();
        if key.is_empty() {
            return Err(StoreError::Config {
                path: path.to_path_buf(),
                reason: "the API key file is empty".to_string(),
            });
        }
        return Ok(Credential::ApiKey(Secret::new(key)));
    }
    if let Some(key) = env("ZENML_STORE_API_KEY") {
        return Ok(Credential::ApiKey(Secret::new(key.trim())));
    }
    if let Some(dir) = zenml_config_dir()
        && let Some(found) = from_credentials_file(&dir.join("credentials.yaml"), server)?
    {
        return Ok(found);
    }
    Err(StoreError::NoCredential {
        server: server.to_string(),
    })
}

/// The entry of ZenML's `credentials.yaml` (a map from server URL to credentials) for
/// `server`.
fn from_credentials_file(path: &Path, server: &ServerAddress) -> StoreResult<Option<Credential>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::Config {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    credential_in(&text, path, server)
}

/// The credential for `server` in the text of a `credentials.yaml` (read from `path`).
pub fn credential_in(
    text: &str,
    path: &Path,
    server: &ServerAddress,
) -> StoreResult<Option<Credential>> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| not_yaml(path, &e))?;
    let Some(Yaml::Hash(entries)) = docs.first() else {
        return Ok(None);
    };
    for (url, entry) in entries {
        let Some(url) = url.as_str() else { continue };
        if ServerAddress::parse(url).ok().as_ref() != Some(server) {
            continue;
        }
        if let Some(key) = entry["api_key"].as_str() {
            return Ok(Some(Credential::ApiKey(Secret::new(key.trim()))));
        }
        if let (Some(username), Some(password)) =
            (entry["username"].as_str(), entry["password"].as_str())
        {
            return Ok(Some(Credential::Password {
                username: username.to_string(),
                password: Secret::new(password),
            }));
        }
        if let Some(token) = entry["api_token"]["access_token"].as_str() {
            return Ok(Some(Credential::Token(Secret::new(token))));
        }
    }
    Ok(None)
}

fn zenml_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ZENML_CONFIG_PATH").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|s| !s.is_empty())
        .map(|home| PathBuf::from(home).join(".config").join("zenml"))
}

/// The store ZenML's settings name: `url`, and for MySQL the keys beside it (`store` is the
/// config's `store:` mapping), each overridden by its `ZENML_STORE_<KEY>` variable. What the
/// URL itself says wins over a key.
fn zenml_store(url: &str, store: &Yaml) -> StoreResult<Location> {
    let mut location = parse_store(url)?;
    if let Location::Mysql(address) = &mut location {
        let key = |name: &str| {
            env(&format!("ZENML_STORE_{}", name.to_ascii_uppercase())).or_else(|| {
                match &store[name] {
                    Yaml::String(s) => Some(s.clone()),
                    Yaml::Boolean(b) => Some(b.to_string()),
                    Yaml::Integer(i) => Some(i.to_string()),
                    _ => None,
                }
            })
        };
        if !url.contains('@')
            && let Some(user) = key("username")
        {
            address.user = user;
        }
        if address.password.is_none() {
            address.password = key("password").map(Password::new);
        }
        if address.database.is_empty()
            && let Some(database) = key("database")
        {
            address.database = database;
        }
        let mut tls = address.tls.clone().unwrap_or_default();
        let mut wants_tls = address.tls.is_some();
        for name in [
            "ssl",
            "ssl_ca",
            "ssl_cert",
            "ssl_key",
            "ssl_verify_server_cert",
        ] {
            if let Some(value) = key(name) {
                wants_tls |= address.set_tls_key(&mut tls, name, &value)?;
            }
        }
        address.tls = wants_tls.then_some(tls);
    }
    Ok(location)
}

/// The store of the ZenML config in `dir`, or `None` when there is no ZenML there.
fn from_zenml_config(dir: &Path) -> StoreResult<Option<Location>> {
    let config = dir.join("config.yaml");
    let default_store = dir.join("local_stores/default_zen_store/zenml.db");
    if !config.is_file() {
        return Ok(default_store
            .is_file()
            .then_some(Location::File(default_store)));
    }
    let text = std::fs::read_to_string(&config).map_err(|e| StoreError::Config {
        path: config.clone(),
        reason: e.to_string(),
    })?;
    store_in_config(&text, &config, default_store).map(Some)
}

/// The store the text of a ZenML `config.yaml` (read from `path`) names, or `default_store`
/// when it names none.
pub fn store_in_config(text: &str, path: &Path, default_store: PathBuf) -> StoreResult<Location> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| not_yaml(path, &e))?;
    let store = docs.first().map(|doc| &doc["store"]);
    match store.and_then(|s| s["url"].as_str()) {
        Some(url) => zenml_store(url, store.unwrap_or(&Yaml::BadValue)),
        None => Ok(Location::File(default_store)),
    }
}

/// A config file that is not YAML. The parser's message may quote the file, which can hold
/// a password or key: say where, not what.
fn not_yaml(path: &Path, e: &yaml_rust2::ScanError) -> StoreError {
    StoreError::Config {
        path: path.to_path_buf(),
        reason: format!("not YAML (line {})", e.marker().line()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Location {
        Location::File(PathBuf::from(path))
    }

    #[test]
    fn zenml_urls_become_locations() {
        assert_eq!(
            parse_store("sqlite:////abs/zenml.db").unwrap(),
            file("/abs/zenml.db")
        );
        assert_eq!(
            parse_store("sqlite:///rel/zenml.db").unwrap(),
            file("rel/zenml.db")
        );
        assert_eq!(parse_store("plain.db").unwrap(), file("plain.db"));
        assert!(matches!(
            parse_store("mysql://user@host/zenml"),
            Ok(Location::Mysql(_))
        ));
        let err = parse_store("postgresql://u:secret@host/zenml").unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl(_)));
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn config_yaml_names_the_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "user_id: x\nstore:\n  url: sqlite:////data/zen/zenml.db\n  type: sql\n",
        )
        .unwrap();
        assert_eq!(
            from_zenml_config(dir.path()).unwrap(),
            Some(file("/data/zen/zenml.db"))
        );
    }

    #[test]
    fn config_yaml_splits_a_mysql_login() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "store:\n  type: sql\n  driver: mysql\n  url: mysql://127.0.0.1:3307\n  \
             username: zen\n  password: s3cret\n  database: zenml\n  ssl: false\n  \
             ssl_verify_server_cert: false\n",
        )
        .unwrap();
        let Some(Location::Mysql(a)) = from_zenml_config(dir.path()).unwrap() else {
            panic!("a MySQL store");
        };
        assert_eq!(a.to_string(), "mysql://zen@127.0.0.1:3307/zenml");
        assert_eq!(a.password, Some(Password::new("s3cret")));
        assert_eq!(a.tls, None);
    }

    #[test]
    fn config_yaml_names_a_server_and_credentials_yaml_its_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "store:\n  type: rest\n  url: https://zen.example.com\n",
        )
        .unwrap();
        let Some(Location::Server(server)) = from_zenml_config(dir.path()).unwrap() else {
            panic!("a server");
        };
        assert_eq!(server.to_string(), "https://zen.example.com");
        let creds = dir.path().join("credentials.yaml");
        std::fs::write(
            &creds,
            "https://other.example.com:\n  url: https://other.example.com\n  api_key: ZENKEY_other\n\
             https://zen.example.com/:\n  url: https://zen.example.com/\n  api_token:\n    access_token: tok\n",
        )
        .unwrap();
        let found = from_credentials_file(&creds, &server).unwrap();
        assert_eq!(found, Some(Credential::Token(Secret::new("tok"))));
        std::fs::write(&creds, "https://zen.example.com: [unclosed\n").unwrap();
        let err = from_credentials_file(&creds, &server)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("unclosed"), "{err}");
    }

    #[test]
    fn config_without_store_means_default_local_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yaml"), "user_id: x\n").unwrap();
        assert_eq!(
            from_zenml_config(dir.path()).unwrap(),
            Some(Location::File(
                dir.path().join("local_stores/default_zen_store/zenml.db")
            ))
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(from_zenml_config(empty.path()).unwrap(), None);
    }
}
