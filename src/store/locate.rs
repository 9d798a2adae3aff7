//! Finding the store: `--store`, else `RUNQL_STORE`, else the active ZenML config.
//!
//! ZenML keeps its config in `$ZENML_CONFIG_PATH` (default `~/.config/zenml`); `config.yaml`
//! there names the store under `store.url`. When the key is absent ZenML uses its default
//! local store, `<config dir>/local_stores/default_zen_store/zenml.db`, and so does runql.

use std::path::{Path, PathBuf};

use yaml_rust2::YamlLoader;

use crate::error::{StoreError, StoreResult};

/// Environment variable naming a store, used when `--store` is not given.
pub const STORE_ENV: &str = "RUNQL_STORE";

/// Where a store was found, for `--info` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    pub source: &'static str,
}

/// Resolves the store's path from the flag, the environment and ZenML's config, in that order.
pub fn locate(flag: Option<&str>) -> StoreResult<Located> {
    if let Some(store) = flag {
        return Ok(Located {
            path: parse_store(store)?,
            source: "--store",
        });
    }
    if let Some(store) = std::env::var_os(STORE_ENV).filter(|s| !s.is_empty()) {
        return Ok(Located {
            path: parse_store(&store.to_string_lossy())?,
            source: STORE_ENV,
        });
    }
    let config_dir = zenml_config_dir().ok_or(StoreError::NotConfigured)?;
    match from_zenml_config(&config_dir)? {
        Some(path) => Ok(Located {
            path,
            source: "ZenML config",
        }),
        None => Err(StoreError::NotConfigured),
    }
}

/// A store argument: a path, or ZenML's URL form `sqlite:////abs/path/zenml.db`.
pub fn parse_store(store: &str) -> StoreResult<PathBuf> {
    if let Some(rest) = store.strip_prefix("sqlite:///") {
        // `sqlite:////abs` keeps its leading slash; `sqlite:///rel` is relative, as in SQLAlchemy.
        let path = rest.split('?').next().unwrap_or(rest);
        return Ok(PathBuf::from(path));
    }
    if store.contains("://") {
        return Err(StoreError::UnsupportedUrl(store.to_string()));
    }
    Ok(PathBuf::from(store))
}

fn zenml_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ZENML_CONFIG_PATH").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|s| !s.is_empty())
        .map(|home| PathBuf::from(home).join(".config").join("zenml"))
}

/// The store of the ZenML config in `dir`, or `None` when there is no ZenML there.
fn from_zenml_config(dir: &Path) -> StoreResult<Option<PathBuf>> {
    let config = dir.join("config.yaml");
    let default_store = dir.join("local_stores/default_zen_store/zenml.db");
    if !config.is_file() {
        return Ok(default_store.is_file().then_some(default_store));
    }
    let text = std::fs::read_to_string(&config).map_err(|e| StoreError::Config {
        path: config.clone(),
        reason: e.to_string(),
    })?;
    let docs = YamlLoader::load_from_str(&text).map_err(|e| StoreError::Config {
        path: config.clone(),
        reason: e.to_string(),
    })?;
    let url = docs
        .first()
        .and_then(|doc| doc["store"]["url"].as_str())
        .map(str::to_string);
    match url {
        Some(url) => parse_store(&url).map(Some),
        None => Ok(Some(default_store)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zenml_urls_become_paths() {
        assert_eq!(
            parse_store("sqlite:////abs/zenml.db").unwrap(),
            PathBuf::from("/abs/zenml.db")
        );
        assert_eq!(
            parse_store("sqlite:///rel/zenml.db").unwrap(),
            PathBuf::from("rel/zenml.db")
        );
        assert_eq!(parse_store("plain.db").unwrap(), PathBuf::from("plain.db"));
        assert!(matches!(
            parse_store("mysql://user@host/zenml"),
            Err(StoreError::UnsupportedUrl(_))
        ));
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
            Some(PathBuf::from("/data/zen/zenml.db"))
        );
    }

    #[test]
    fn config_without_store_means_default_local_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yaml"), "user_id: x\n").unwrap();
        assert_eq!(
            from_zenml_config(dir.path()).unwrap(),
            Some(dir.path().join("local_stores/default_zen_store/zenml.db"))
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(from_zenml_config(empty.path()).unwrap(), None);
    }
}
