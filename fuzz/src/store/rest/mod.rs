//! `store::rest` as `locate` sees it: a ZenML server's address and credentials.

// Only the parsing is fuzzed; what requests is unused here.
#[allow(dead_code)]
#[path = "../../../../src/store/rest/address.rs"]
mod address;
pub use crate::store::secret::Secret;
pub use address::{Credential, ServerAddress, is_server_url};
