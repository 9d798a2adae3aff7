//! Where an output's files are: a local folder, or a prefix in a remote object store (S3,
//! GCS, Azure) read through the `object_store` crate DataFusion links anyway.
//!
//! Remote stores take their credentials the way each cloud's own tools do, from the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `GOOGLE_SERVICE_ACCOUNT`,
//! `AZURE_STORAGE_ACCOUNT_NAME`, ...; see `object_store`'s `from_env` builders). One client
//! per bucket is kept for the process, so reading many outputs does not reconnect each time.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme};
use url::Url;

/// The largest artifact file runql reads, 2 GiB: a file is held in memory whole while it is
/// decoded (and a DataFrame may decode to 2 GiB more, `parquet_file`'s budget), so a larger
/// one is refused before a byte is read rather than exhausting the machine's memory.
pub const MOST_BYTES: u64 = 2 << 30;

fn within_reach(size: u64) -> Result<(), String> {
    if size > MOST_BYTES {
        return Err(format!(
            "the file is {:.1} GiB, more than runql reads for one artifact ({} GiB)",
            size as f64 / f64::from(1u32 << 30),
            MOST_BYTES >> 30
        ));
    }
    Ok(())
}

/// An output's folder.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Remote {
        store: Arc<dyn ObjectStore>,
        prefix: StorePath,
        /// The folder's URL, for messages.
        url: String,
    },
}

impl Location {
    /// Local paths stay local; `scheme://...` URLs (other than `file://`) are remote.
    pub fn parse(uri: &str) -> Result<Self, String> {
        match uri.split_once("://") {
            Some(("file", path)) => Ok(Self::Local(PathBuf::from(path))),
            Some(_) => {
                let url = Url::parse(uri).map_err(|e| format!("not a URL: {e}"))?;
                let (scheme, path) = ObjectStoreScheme::parse(&url).map_err(|e| e.to_string())?;
                let prefix = StorePath::parse(path).map_err(|e| e.to_string())?;
                Ok(Self::Remote {
                    store: client(scheme, &url)?,
                    prefix,
                    url: uri.trim_end_matches('/').to_string(),
                })
            }
            None => Ok(Self::Local(PathBuf::from(uri))),
        }
    }

    /// Where file `name` of this folder is, as a path or URL.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Self::Local(dir) => dir.join(name).display().to_string(),
            Self::Remote { url, .. } => format!("{url}/{name}"),
        }
    }

    /// The bytes of file `name`, when it is at most [`MOST_BYTES`] long.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, String> {
        match self {
            Self::Local(dir) => {
                use std::io::Read;
                // One handle for the size and the bytes, and never more than the limit even
                // if the file grows in between.
                let file = std::fs::File::open(dir.join(name)).map_err(|e| e.to_string())?;
                let size = file.metadata().map_err(|e| e.to_string())?.len();
                within_reach(size)?;
                let mut bytes = Vec::with_capacity(size as usize);
                file.take(MOST_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| e.to_string())?;
                within_reach(bytes.len() as u64)?;
                Ok(bytes)
            }
            Self::Remote { store, prefix, .. } => {
                let store = Arc::clone(store);
                let path = prefix.clone().join(name);
                block_on(async move {
                    let got = store.get(&path).await.map_err(|e| e.to_string())?;
                    within_reach(got.meta.size)?;
                    got.bytes().await.map_err(|e| e.to_string())
                })
                .map(|bytes| bytes.to_vec())
            }
        }
    }

    /// Whether file `name` exists (an error reaching a remote store reads as "no").
    pub fn exists(&self, name: &str) -> bool {
        match self {
            Self::Local(dir) => dir.join(name).exists(),
            Self::Remote { store, prefix, .. } => {
                let store = Arc::clone(store);
                let path = prefix.clone().join(name);
                block_on(async move { store.head(&path).await }).is_ok()
            }
        }
    }
}

/// The client for the bucket of `url`, made once per process from the environment.
fn client(scheme: ObjectStoreScheme, url: &Url) -> Result<Arc<dyn ObjectStore>, String> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let bucket = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(client) = clients.get(&bucket) {
        return Ok(Arc::clone(client));
    }
    let made: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(|e| e.to_string())?,
        ),
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(|e| e.to_string())?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("{other:?} artifact stores are not supported")),
    };
    clients.insert(bucket, Arc::clone(&made));
    Ok(made)
}

/// Runs `fut` to completion from synchronous code (a table function's planning, a scalar
/// function's threads), on a small runtime of its own: the caller may be a tokio worker,
/// where starting a runtime would panic, or a plain thread, where there is none.
fn block_on<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    static IO: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let io = IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("runql-artifacts")
            .enable_all()
            .build()
            .expect("an I/O runtime for artifact stores")
    });
    let (tx, rx) = std::sync::mpsc::channel();
    io.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let wait = move || {
        rx.recv()
            .expect("the artifact store task ends with a value")
    };
    match tokio::runtime::Handle::try_current() {
        // Tell a multi-threaded runtime its worker blocks, so its other tasks move on.
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 GiB file (sparse: nothing is written) is refused before it is read.
    #[test]
    fn a_file_past_the_limit_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("df.parquet.gzip")).unwrap();
        file.set_len(3 << 30).unwrap();
        let err = Location::Local(dir.path().to_path_buf())
            .read("df.parquet.gzip")
            .unwrap_err();
        assert_eq!(
            err,
            "the file is 3.0 GiB, more than runql reads for one artifact (2 GiB)"
        );
        std::fs::File::create(dir.path().join("small"))
            .unwrap()
            .set_len(10)
            .unwrap();
        assert_eq!(
            Location::Local(dir.path().to_path_buf())
                .read("small")
                .unwrap()
                .len(),
            10
        );
    }
}
