//! The demo store: the real ZenML 0.98 fixture store and its artifact files, compiled into
//! the binary, so `--demo` shows everything runql does, `read_output` included.
//!
//! SQLite needs a file and artifacts are read from folders, so the bytes are written once to
//! the temp directory, into a folder whose name carries a hash of them; later runs reuse it.
//! The folder is filled under another name and renamed into place, so a concurrent runql
//! never sees half of it.

use std::io;
use std::path::PathBuf;

const DEMO_STORE: &[u8] = include_bytes!("../../tests/fixtures/zenml-0.98.0/zenml.db");

/// The artifact store's files: path under the store, contents (listed by `build.rs`).
const DEMO_ARTIFACTS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/demo_artifacts.rs"));

/// Where the demo is on disk.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The store file.
    pub store: PathBuf,
    /// The folder holding the artifact store's files (an `--artifact-root` for the store).
    pub artifacts: PathBuf,
}

/// The demo store and its artifacts, written if need be.
pub fn demo() -> io::Result<Demo> {
    // A hash of the bytes, computed by build.rs: a run that finds the folder touches none.
    let dir = std::env::temp_dir().join(concat!("runql-demo-", env!("RUNQL_DEMO_HASH")));
    let demo = Demo {
        store: dir.join("zenml.db"),
        artifacts: dir.join("artifacts"),
    };
    if dir.is_dir() {
        return Ok(demo);
    }
    let staging = tempfile::Builder::new()
        .prefix(".runql-demo-")
        .tempdir_in(std::env::temp_dir())?;
    std::fs::write(staging.path().join("zenml.db"), DEMO_STORE)?;
    for (path, bytes) in DEMO_ARTIFACTS {
        let file = staging.path().join("artifacts").join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, bytes)?;
    }
    match std::fs::rename(staging.path(), &dir) {
        Ok(()) => {
            // Renamed away: nothing is left for the guard to remove.
            let _ = staging.keep();
            Ok(demo)
        }
        // Another runql finished first: its folder holds the same bytes.
        Err(_) if dir.is_dir() => Ok(demo),
        Err(e) => Err(e),
    }
}
