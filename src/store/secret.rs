//! A credential (a database password, an API key, a token) that never prints: its `Debug`
//! and `Display` show `***`, so no error, `--info` line or log made from a value holding one
//! can show it.

use std::fmt;

/// A password, key or token, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the places that hand it to a server.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_print_as_stars() {
        let s = super::Secret::new("ZENKEY_abc");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
    }
}
