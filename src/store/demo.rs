//! The demo store: the real ZenML 0.98 fixture store, compiled into the binary.
//!
//! SQLite needs a file, so the bytes are written once to the temp directory under a name
//! that carries their length and a hash; later runs reuse that file.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;

const DEMO_STORE: &[u8] = include_bytes!("../../tests/fixtures/zenml-0.98.0/zenml.db");

/// The path of a file holding the demo store, written if needed.
pub fn demo_store_path() -> std::io::Result<PathBuf> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    DEMO_STORE.hash(&mut hasher);
    let name = format!(
        "runql-demo-{}-{:016x}.db",
        DEMO_STORE.len(),
        hasher.finish()
    );
    let path = std::env::temp_dir().join(name);
    let complete = std::fs::metadata(&path).is_ok_and(|m| m.len() == DEMO_STORE.len() as u64);
    if !complete {
        // Write beside the target and rename, so a concurrent runql never sees half a file.
        let mut tmp = tempfile::NamedTempFile::new_in(std::env::temp_dir())?;
        tmp.write_all(DEMO_STORE)?;
        tmp.persist(&path).map_err(|e| e.error)?;
    }
    Ok(path)
}
