//! Reading what steps produced: an output's files in the artifact store, decoded by the
//! materializer that wrote them.
//!
//! | materializer | file | rows |
//! |---|---|---|
//! | `PandasMaterializer` | `df.parquet.gzip` | the DataFrame's own columns and types |
//! | `PandasMaterializer` without pyarrow | `df.csv` | the DataFrame's columns, typed as pandas' `read_csv` would (integers, floats, booleans, else text) |
//! | `NumpyMaterializer` | `data.npy` | 1-D: `index`, `value`; 2-D: `row`, `c0`, `c1`, ... (one column per array column) |
//! | `BuiltInMaterializer`, `BuiltInContainerMaterializer` | `data.json` | a scalar: one `value`; a list: `index`, `value`; a dict: `key`, `value` |
//!
//! Anything else (pickled models, custom materializers) is an error that names the
//! materializer and the data type: runql never guesses at bytes.
//!
//! Files are read from local artifact stores and from S3, GCS and Azure ones
//! (see [`location`]); `--artifact-root` points at where a local store's files are now.

mod builtin;
mod csv;
mod location;
mod npy;
mod parquet_file;

// The decoders (`builtin`, `csv`, `npy`, `parquet_file`) read untrusted bytes. They name
// Arrow and Parquet through this module, not through DataFusion, so `fuzz/` builds them
// with Arrow and Parquet alone, in minutes.
use datafusion::arrow;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet;

use location::Location;

/// Environment variable naming where the artifact store's files are now.
pub const ARTIFACT_ROOT_ENV: &str = "RUNQL_ARTIFACT_ROOT";

/// An output to read: where ZenML put it and how.
#[derive(Debug, Clone)]
pub struct OutputFiles {
    pub output_id: String,
    pub uri: String,
    pub materializer: String,
    pub data_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(
        "output {output_id} ({data_type}) was written by {materializer}, which runql cannot read: it reads pandas DataFrames, numpy arrays and built-in values"
    )]
    Unsupported {
        output_id: String,
        materializer: String,
        data_type: String,
    },
    #[error("output {output_id}: {path}: {reason}")]
    Read {
        output_id: String,
        /// A local path or a URL.
        path: String,
        reason: String,
    },
    #[error("output {output_id}: artifact store {uri}: {reason}")]
    Store {
        output_id: String,
        uri: String,
        reason: String,
    },
}

/// Where local artifact stores are now, when they moved since ZenML wrote them (a copied
/// store, a mounted volume, a bucket they were uploaded to): a folder or an `s3://`, `gs://`
/// or `az://` URL their files are looked up under instead.
#[derive(Debug, Clone, Default)]
pub struct ArtifactRoot(Option<String>);

impl ArtifactRoot {
    pub fn new(root: Option<String>) -> Self {
        Self(root.or_else(|| {
            std::env::var(ARTIFACT_ROOT_ENV)
                .ok()
                .filter(|s| !s.is_empty())
        }))
    }

    /// Where `uri` is now. ZenML's local artifact store lives at
    /// `.../local_stores/<store id>/`; with a root set, what follows goes under the root.
    /// Remote URIs are read where they are.
    pub fn resolve(&self, uri: &str) -> String {
        let path = uri.strip_prefix("file://").unwrap_or(uri);
        if let Some(root) = &self.0
            && !path.contains("://")
            && let Some(at) = path.find("/local_stores/")
            && let Some((_, rest)) = path[at + "/local_stores/".len()..].split_once('/')
        {
            return format!("{}/{rest}", root.trim_end_matches('/'));
        }
        uri.to_string()
    }
}

/// What `output_value` needs: the built-in value as JSON text.
pub fn read_json_value(files: &OutputFiles, root: &ArtifactRoot) -> Result<String, ArtifactError> {
    let dir = locate(files, root)?;
    match materializer_name(&files.materializer) {
        "BuiltInMaterializer" | "BuiltInContainerMaterializer" => {
            let value = read_json(files, &dir)?;
            Ok(value.to_string())
        }
        _ => Err(unsupported(files)),
    }
}

/// The output's contents as one record batch.
pub fn read_table(files: &OutputFiles, root: &ArtifactRoot) -> Result<RecordBatch, ArtifactError> {
    let dir = locate(files, root)?;
    match materializer_name(&files.materializer) {
        "PandasMaterializer" => {
            // ZenML writes Parquet when pyarrow is installed, else CSV; it reads whichever
            // exists, Parquet first. One request in the usual case: CSV is looked for only
            // when there is no Parquet file to read.
            match read_bytes(files, &dir, PARQUET) {
                Ok(bytes) => {
                    parquet_file::to_batch(bytes).map_err(|e| read_error(files, &dir, PARQUET, e))
                }
                Err(no_parquet) if dir.exists(CSV) => {
                    let bytes = read_bytes(files, &dir, CSV).map_err(|_| no_parquet)?;
                    csv::to_batch(&bytes).map_err(|e| read_error(files, &dir, CSV, e))
                }
                Err(no_parquet) => Err(no_parquet),
            }
        }
        "NumpyMaterializer" => {
            let bytes = read_bytes(files, &dir, NPY)?;
            npy::to_batch(&bytes).map_err(|e| read_error(files, &dir, NPY, e))
        }
        "BuiltInMaterializer" | "BuiltInContainerMaterializer" => {
            let value = read_json(files, &dir)?;
            builtin::to_batch(&value).map_err(|e| read_error(files, &dir, JSON, e))
        }
        _ => Err(unsupported(files)),
    }
}

const PARQUET: &str = "df.parquet.gzip";
const CSV: &str = "df.csv";
const NPY: &str = "data.npy";
const JSON: &str = "data.json";

fn read_json(files: &OutputFiles, dir: &Location) -> Result<serde_json::Value, ArtifactError> {
    let bytes = read_bytes(files, dir, JSON)?;
    serde_json::from_slice(&bytes).map_err(|e| read_error(files, dir, JSON, e))
}

fn locate(files: &OutputFiles, root: &ArtifactRoot) -> Result<Location, ArtifactError> {
    let uri = root.resolve(&files.uri);
    Location::parse(&uri).map_err(|reason| ArtifactError::Store {
        output_id: files.output_id.clone(),
        uri,
        reason,
    })
}

fn read_bytes(files: &OutputFiles, dir: &Location, name: &str) -> Result<Vec<u8>, ArtifactError> {
    dir.read(name).map_err(|e| read_error(files, dir, name, e))
}

fn read_error(
    files: &OutputFiles,
    dir: &Location,
    name: &str,
    reason: impl std::fmt::Display,
) -> ArtifactError {
    ArtifactError::Read {
        output_id: files.output_id.clone(),
        path: dir.describe(name),
        reason: reason.to_string(),
    }
}

fn unsupported(files: &OutputFiles) -> ArtifactError {
    ArtifactError::Unsupported {
        output_id: files.output_id.clone(),
        materializer: files.materializer.clone(),
        data_type: files.data_type.clone(),
    }
}

/// `zenml.integrations.numpy.materializers.numpy_materializer.NumpyMaterializer` → `NumpyMaterializer`.
fn materializer_name(import_path: &str) -> &str {
    import_path.rsplit('.').next().unwrap_or(import_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_local_stores_resolve_under_the_root() {
        let root = ArtifactRoot(Some("/data/artifacts".into()));
        assert_eq!(
            root.resolve("/tmp/x/config/local_stores/ccb3/step_1/X/abc/123"),
            "/data/artifacts/step_1/X/abc/123"
        );
        let bucket = ArtifactRoot(Some("s3://team-bucket/zenml/".into()));
        assert_eq!(
            bucket.resolve("/tmp/x/config/local_stores/ccb3/step_1/X/abc/123"),
            "s3://team-bucket/zenml/step_1/X/abc/123"
        );
        assert_eq!(ArtifactRoot(None).resolve("/a/b"), "/a/b");
        // Remote URIs are read where they are.
        assert_eq!(root.resolve("s3://bucket/x"), "s3://bucket/x");
    }
}
