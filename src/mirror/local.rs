//! A local store's mirror (`--mirror`): a SQLite or MySQL store's tables kept as Parquet in an
//! export folder with change sets, brought up to date before each use, so repeated analysis
//! reads columnar files instead of asking the store to join and compute every column again.
//!
//! What a query sees: the store as it was when the sync before it started. A SQLite store in
//! rollback-journal mode (ZenML's) counts committed writes in its file header: while that
//! count is the one the mirror was made at, nothing was written and the store is not read at
//! all. Otherwise (and always for MySQL) the export's incremental read runs: runs new or
//! deleted since the last sync, runs whose `updated` moved, and runs it saw unfinished, with
//! everything attached to them, appended as a change set (`crate::export`). Tags and
//! metadata attached to a run after it finished move no run's `updated`: `--full-sync`
//! reads the store whole again, as for a server's mirror.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::error::Result;

use super::{Sync, create_private_dir, mirrors_dir};
use crate::artifacts::ArtifactRoot;
use crate::export::{ExportOptions, Manifest, Source, export, read_manifest};
use crate::store::ZenStore;

/// The folder the mirror of `store` lives in: `<cache>/mirrors/store_<name>_<hash>`, the
/// hash of where the store is (a path, or a MySQL address without its password), so two
/// stores never share one and the same store always finds its own.
pub fn default_dir(store: &ZenStore) -> PathBuf {
    let place = identity(store);
    let name: String = place
        .rsplit(['/', '\\'])
        .find(|part| !part.is_empty())
        .unwrap_or("store")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    mirrors_dir().join(format!("store_{name}_{:016x}", fnv1a(place.as_bytes())))
}

/// Where the store is, spelled the same however the user named it: a SQLite file's
/// canonical path, or a MySQL address without its password.
fn identity(store: &ZenStore) -> String {
    match store.path().and_then(|p| p.canonicalize().ok()) {
        Some(path) => path.display().to_string(),
        None => store.describe(),
    }
}

/// FNV-1a, 64 bits: a folder name that stays the same across runql builds (std's hasher
/// may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Brings the mirror in `dir` up to date with `store` and says what it holds now. A sync
/// changes nothing until it is complete (the export's atomic writer); one sync at a time
/// per mirror.
pub async fn sync(
    store: &Arc<ZenStore>,
    dir: &Path,
    how: Sync,
    artifact_root: &ArtifactRoot,
) -> Result<Manifest> {
    create_private_dir(dir)?;
    let lock = std::fs::File::create(dir.join(".lock"))?;
    lock.lock()?;
    // Read before the store is: a write committed while the sync reads makes the next
    // query's mark differ, and that sync reads the change.
    let mark = store.change_mark();
    let previous = read_manifest(dir)?;
    if how == Sync::Changes
        && let Some(previous) = &previous
        && mark.is_some()
        && previous.source_mark == mark
        && previous.store == identity(store)
    {
        return Ok(previous.clone());
    }
    if how == Sync::Full && previous.is_some() {
        // Without a manifest the export reads every run again; the old tables stay
        // readable until the new ones replace them, and a failed read leaves no mirror.
        std::fs::remove_file(dir.join(crate::export::MANIFEST))?;
    }
    let options = ExportOptions {
        to: dir.to_path_buf(),
        tables: Vec::new(),
        since: None,
        partition_by: None,
        change_sets: true,
        source_mark: mark,
        pipelines_from_runs: store.mapping().pipelines_count_runs_by_id(),
    };
    let source = Source {
        store: identity(store),
        zenml_version: store.version().to_string(),
    };
    let ctx = crate::session(Arc::clone(store), artifact_root.clone())?;
    export(&ctx, &source, &options, &mut |_| {}).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_stable_and_per_store() {
        // FNV-1a's published test vector: the name must not change between builds.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a(b"/a/zenml.db"), fnv1a(b"/b/zenml.db"));
    }
}
