//! Opening what runql reads as one DataFusion session: a ZenML store read live, a store's
//! local mirror (`--mirror`), a ZenML server's mirror, or a `runql export` folder. The
//! command line and `runql serve` both open through here, so they choose a backend, fill a
//! mirror and register the tables the same way.
//!
//! What a session sees: a store read live answers each scan from the store as it is when
//! the scan starts; a mirror answers from its files as the last [`Mirror::sync`] left them,
//! so whoever wants exact freshness syncs before each statement (the REPL and the wire
//! server do).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use crate::artifacts::ArtifactRoot;
use crate::error::StoreError;
use crate::export::Manifest;
use crate::mirror::{Progress, Sync};
use crate::store::ZenStore;
use crate::store::locate::{self, Location};
use crate::store::rest::{RestClient, ServerAddress};
use crate::tables::PushDown;

/// What a location names, opened as far as needs no session: a store's schema version is
/// read, a mirror's folder is found, nothing is synced yet.
#[derive(Debug, Clone)]
pub enum Target {
    /// A SQLite or MySQL store, read live.
    Live(Arc<ZenStore>),
    /// A SQLite or MySQL store, read through its local mirror.
    StoreMirror { store: Arc<ZenStore>, dir: PathBuf },
    /// A ZenML server: always read through its local mirror.
    Server { server: ServerAddress, dir: PathBuf },
    /// A `runql export` folder.
    Export(PathBuf),
}

impl Target {
    /// Opens `location`; `mirror` asks for a SQLite or MySQL store's local mirror.
    pub async fn open(location: &Location, mirror: bool) -> Result<Target, StoreError> {
        Ok(match location {
            Location::File(path) if crate::export::is_export(path) => Target::Export(path.clone()),
            Location::Server(server) => Target::Server {
                server: server.clone(),
                dir: crate::mirror::default_dir(server),
            },
            _ => {
                let store = Arc::new(ZenStore::open_location(location).await?);
                if mirror {
                    let dir = crate::mirror::local::default_dir(&store);
                    Target::StoreMirror { store, dir }
                } else {
                    Target::Live(store)
                }
            }
        })
    }

    /// The store opened, when one is (live or mirrored).
    pub fn store(&self) -> Option<&Arc<ZenStore>> {
        match self {
            Target::Live(store) | Target::StoreMirror { store, .. } => Some(store),
            _ => None,
        }
    }

    /// The mirror's folder, when the target is read through one.
    pub fn mirror_dir(&self) -> Option<&Path> {
        match self {
            Target::StoreMirror { dir, .. } | Target::Server { dir, .. } => Some(dir),
            _ => None,
        }
    }
}

/// How a session is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where artifacts are read, when they moved since ZenML wrote them.
    pub artifact_root: ArtifactRoot,
    /// For a store read live: whether the store evaluates filters, limits and join keys.
    pub push_down: PushDown,
    /// For a mirror: answer from it as the last sync left it, asking nothing.
    pub offline: bool,
    /// For a mirror: read the whole store or server again instead of what changed.
    pub full_sync: bool,
    /// For a server: a file holding its API key (else ZenML's own places).
    pub api_key_file: Option<PathBuf>,
    /// Whether SQL may read files by path (`SELECT * FROM 'export/runs.parquet'`): yes on
    /// the command line, where the user reads their own files; no for a server's clients.
    pub read_files: bool,
}

/// A session over a target, and what it reads.
pub struct Opened {
    pub ctx: SessionContext,
    /// The store, when it is read live.
    pub store: Option<Arc<ZenStore>>,
    /// Where the tables come from, as `\store` shows it (never a password or key).
    pub name: String,
    /// The manifest of the export or mirror read, if one is.
    pub manifest: Option<Manifest>,
    /// How the mirror read is brought up to date, unless `offline` (or none is read).
    pub mirror: Option<Mirror>,
}

/// Opens a session over `target`; a mirror is brought up to date first (filled the first
/// time), unless `offline`. `progress` hears what a server's sync is reading.
pub async fn session(
    target: &Target,
    options: &Options,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Opened> {
    let mut opened = open_target(target, options, progress).await?;
    if options.read_files {
        opened.ctx = opened.ctx.enable_url_table();
    }
    Ok(opened)
}

async fn open_target(
    target: &Target,
    options: &Options,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Opened> {
    let root = options.artifact_root.clone();
    match target {
        Target::Live(store) => Ok(Opened {
            ctx: crate::session_with(Arc::clone(store), root, options.push_down)?,
            store: Some(Arc::clone(store)),
            name: store.describe(),
            manifest: None,
            mirror: None,
        }),
        Target::Export(dir) => {
            let (ctx, manifest) = crate::export_session(dir, root).await?;
            Ok(Opened {
                ctx,
                store: None,
                name: dir.display().to_string(),
                manifest: Some(manifest),
                mirror: None,
            })
        }
        Target::StoreMirror { store, dir } => {
            let mirror = Mirror {
                source: Source::Store(Arc::clone(store)),
                dir: dir.clone(),
                artifact_root: root.clone(),
            };
            let name = store.describe();
            mirrored(mirror, name, options, progress).await
        }
        Target::Server { server, dir } => {
            if options.offline {
                // No key is needed to read what the last sync left.
                offline_manifest(dir, &server.to_string())?;
                let (ctx, manifest) = crate::export_session(dir, root).await?;
                return Ok(Opened {
                    ctx,
                    store: None,
                    name: mirror_name(&server.to_string(), &manifest),
                    manifest: Some(manifest),
                    mirror: None,
                });
            }
            let credential = locate::credential(server, options.api_key_file.as_deref())?;
            let client = RestClient::new(server.clone(), credential, server_timeout()?)?
                .keep_session_in(dir.join(".session"));
            let mirror = Mirror {
                source: Source::Server(Arc::new(client)),
                dir: dir.clone(),
                artifact_root: root,
            };
            mirrored(mirror, server.to_string(), options, progress).await
        }
    }
}

/// A session over a mirror: synced first unless offline.
async fn mirrored(
    mirror: Mirror,
    name: String,
    options: &Options,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Opened> {
    let manifest = if options.offline {
        offline_manifest(&mirror.dir, &name)?
    } else {
        let how = if options.full_sync {
            Sync::Full
        } else {
            Sync::Changes
        };
        mirror.sync(how, progress).await?
    };
    let (ctx, _) = crate::export_session(&mirror.dir, mirror.artifact_root.clone()).await?;
    Ok(Opened {
        ctx,
        store: None,
        name: mirror_name(&name, &manifest),
        manifest: Some(manifest),
        mirror: (!options.offline).then_some(mirror),
    })
}

fn mirror_name(source: &str, manifest: &Manifest) -> String {
    format!("{source} (mirror of {})", manifest.exported_at)
}

/// The manifest an `--offline` session reads, or why there is none.
fn offline_manifest(dir: &Path, source: &str) -> Result<Manifest> {
    crate::mirror::last_sync(dir)?.ok_or_else(|| {
        StoreError::NoMirror {
            server: source.to_string(),
            dir: dir.to_path_buf(),
        }
        .into()
    })
}

/// How long one request to a ZenML server may take: `RUNQL_SERVER_TIMEOUT` seconds (a slow
/// proxy or a huge page may need more than the default).
fn server_timeout() -> Result<Duration> {
    match std::env::var("RUNQL_SERVER_TIMEOUT") {
        Ok(s) => s
            .parse::<f64>()
            .ok()
            .filter(|t| *t > 0.0 && t.is_finite())
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                DataFusionError::Configuration(format!(
                    "RUNQL_SERVER_TIMEOUT={s}: not a number of seconds"
                ))
            }),
        Err(_) => Ok(crate::store::rest::DEFAULT_TIMEOUT),
    }
}

/// What a mirror mirrors.
#[derive(Debug, Clone)]
enum Source {
    Store(Arc<ZenStore>),
    Server(Arc<RestClient>),
}

/// A mirror that can be brought up to date: what it mirrors and its folder. Cloning it is
/// cheap; every clone syncs the same folder (a lock file serialises syncs).
#[derive(Debug, Clone)]
pub struct Mirror {
    source: Source,
    dir: PathBuf,
    artifact_root: ArtifactRoot,
}

impl Mirror {
    /// Brings the mirror up to date and says what it holds now.
    pub async fn sync(
        &self,
        how: Sync,
        progress: &mut (dyn FnMut(Progress<'_>) + Send),
    ) -> Result<Manifest> {
        match &self.source {
            Source::Store(store) => {
                crate::mirror::local::sync(store, &self.dir, how, &self.artifact_root).await
            }
            Source::Server(client) => crate::mirror::sync(client, &self.dir, how, progress).await,
        }
    }

    /// The mirror's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the mirror last synced as `last` is known, without reading the store, to be
    /// the store as it is: a SQLite store's header counts every committed write.
    pub fn unchanged(&self, last: &Manifest) -> bool {
        match &self.source {
            Source::Store(store) => {
                let mark = store.change_mark();
                mark.is_some() && mark == last.source_mark
            }
            Source::Server(_) => false,
        }
    }

    /// Brings the mirror up to date and, when that changed its tables, registers them again
    /// in `ctx` (the rest of the session stays). Says whether the tables changed; `last` is
    /// the manifest the session's tables were registered from, and becomes the new one.
    pub async fn refresh(&self, ctx: &SessionContext, last: &mut Manifest) -> Result<bool> {
        let now = self.sync(Sync::Changes, &mut |_| {}).await?;
        // A sync that found nothing new writes a manifest with a new time and the same
        // tables.
        let same_tables = now.exported_at == last.exported_at
            || (now.runs_read == 0
                && serde_json::to_string(&(&now.tables, &now.changes)).ok()
                    == serde_json::to_string(&(&last.tables, &last.changes)).ok());
        if !same_tables {
            crate::export::reregister_export(ctx, &self.dir).await?;
        }
        *last = now;
        Ok(!same_tables)
    }
}
