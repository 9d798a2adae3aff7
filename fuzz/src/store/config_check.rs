//! What the `zenml_config` target checks of runql's reading of ZenML's `config.yaml` and
//! `credentials.yaml`: any text gives a store (or credential) or a one-line error, and what
//! runql prints of the result is the same whatever the password, key or token read.

use std::path::{Path, PathBuf};

use super::locate::{self, Location};
use super::mysql::address::MysqlAddress;
use super::rest::{Credential, ServerAddress};
use super::secret::Secret;

/// Reads `text` as a `config.yaml`.
pub fn check_config(text: &str) {
    let path = Path::new("/home/u/.config/zenml/config.yaml");
    match locate::store_in_config(text, path, PathBuf::from("default.db")) {
        Ok(Location::Mysql(address)) if address.password.is_some() => {
            let printed = |address: &MysqlAddress| {
                let location = Location::Mysql(address.clone());
                format!("{address} {address:?} {location:?}")
            };
            let mut other = address.clone();
            other.password = Some(Secret::new("another password"));
            assert_eq!(printed(&address), printed(&other), "a password shows");
        }
        Ok(_) => {}
        Err(e) => assert_one_line(&e.to_string()),
    }
}

/// Reads `text` as a `credentials.yaml`, for a server it may or may not name.
pub fn check_credentials(text: &str, server: &str) {
    let path = Path::new("/home/u/.config/zenml/credentials.yaml");
    let Ok(server) = ServerAddress::parse(server) else {
        return;
    };
    match locate::credential_in(text, path, &server) {
        Ok(Some(credential)) => {
            let other = Secret::new("another secret");
            let replaced = match &credential {
                Credential::ApiKey(_) => Credential::ApiKey(other),
                Credential::Token(_) => Credential::Token(other),
                Credential::Password { username, .. } => Credential::Password {
                    username: username.clone(),
                    password: other,
                },
            };
            assert_eq!(
                format!("{credential:?}"),
                format!("{replaced:?}"),
                "a credential shows"
            );
        }
        Ok(None) => {}
        Err(e) => assert_one_line(&e.to_string()),
    }
}

fn assert_one_line(message: &str) {
    assert!(!message.contains('\n'), "an error is one line: {message:?}");
}
