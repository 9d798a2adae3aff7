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

mod builtin;
mod npy;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::record_batch::{RecordBatch, RecordBatchReader};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

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
        path: PathBuf,
        reason: String,
    },
    #[error(
        "output {output_id}: artifact store {uri} is remote; runql reads local artifact stores (see --artifact-root)"
    )]
    Remote { output_id: String, uri: String },
}

/// Where local artifact stores are now, when they moved since ZenML wrote them (a copied
/// store, a mounted volume): their files are looked up under this folder instead.
#[derive(Debug, Clone, Default)]
pub struct ArtifactRoot(Option<PathBuf>);

impl ArtifactRoot {
    pub fn new(root: Option<PathBuf>) -> Self {
        Self(root.or_else(|| {
            std::env::var_os(ARTIFACT_ROOT_ENV)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        }))
    }

    /// The local folder of `uri`. ZenML's local artifact store lives at
    /// `.../local_stores/<store id>/`; with a root set, what follows goes under the root.
    pub fn resolve(&self, uri: &str) -> Option<PathBuf> {
        if uri.contains("://") && !uri.starts_with("file://") {
            return None;
        }
        let path = uri.strip_prefix("file://").unwrap_or(uri);
        if let Some(root) = &self.0
            && let Some(at) = path.find("/local_stores/")
            && let Some((_, rest)) = path[at + "/local_stores/".len()..].split_once('/')
        {
            return Some(root.join(rest));
        }
        Some(PathBuf::from(path))
    }
}

/// What `output_value` needs: the built-in value as JSON text.
pub fn read_json_value(files: &OutputFiles, root: &ArtifactRoot) -> Result<String, ArtifactError> {
    let dir = local_dir(files, root)?;
    match materializer_name(&files.materializer) {
        "BuiltInMaterializer" | "BuiltInContainerMaterializer" => {
            let path = dir.join("data.json");
            let text = read_file(files, &path)?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| read_error(files, &path, e))?;
            Ok(value.to_string())
        }
        _ => Err(unsupported(files)),
    }
}

/// The output's contents as one record batch.
pub fn read_table(files: &OutputFiles, root: &ArtifactRoot) -> Result<RecordBatch, ArtifactError> {
    let dir = local_dir(files, root)?;
    match materializer_name(&files.materializer) {
        "PandasMaterializer" => {
            // ZenML writes Parquet when pyarrow is installed, else CSV; it reads whichever
            // exists, Parquet first.
            let path = dir.join("df.parquet.gzip");
            let csv = dir.join("df.csv");
            if !path.exists() && csv.exists() {
                return read_csv(files, &csv);
            }
            read_parquet(files, &path)
        }
        "NumpyMaterializer" => {
            let path = dir.join("data.npy");
            let bytes = std::fs::read(&path).map_err(|e| read_error(files, &path, e))?;
            npy::to_batch(&bytes).map_err(|e| read_error(files, &path, e))
        }
        "BuiltInMaterializer" | "BuiltInContainerMaterializer" => {
            let path = dir.join("data.json");
            let text = read_file(files, &path)?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| read_error(files, &path, e))?;
            builtin::to_batch(&value).map_err(|e| read_error(files, &path, e))
        }
        _ => Err(unsupported(files)),
    }
}

fn read_parquet(files: &OutputFiles, path: &Path) -> Result<RecordBatch, ArtifactError> {
    let file = std::fs::File::open(path).map_err(|e| read_error(files, path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| read_error(files, path, e))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(files, path, e))?;
    // pandas writes its index and dtypes as schema metadata; the rows are what matter here.
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
        schema.fields().clone(),
    ));
    let batches: Vec<RecordBatch> = batches
        .into_iter()
        .map(|b| b.with_schema(Arc::clone(&schema)))
        .collect::<Result<_, _>>()
        .map_err(|e| read_error(files, path, e))?;
    datafusion::arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| read_error(files, path, e))
}

/// A DataFrame ZenML saved with `df.to_csv(index=True)` and loads with
/// `pd.read_csv(index_col=0)`: the first column is the index and is dropped. Columns are
/// typed as pandas infers them (integers, floats, booleans); anything else, dates included
/// (pandas parses only the index as dates), stays text.
fn read_csv(files: &OutputFiles, path: &Path) -> Result<RecordBatch, ArtifactError> {
    use datafusion::arrow::csv::{ReaderBuilder, reader::Format};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    let open = || std::fs::File::open(path).map_err(|e| read_error(files, path, e));
    let format = Format::default().with_header(true);
    let (inferred, _) = format
        .infer_schema(open()?, None)
        .map_err(|e| read_error(files, path, e))?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Int64 | DataType::Float64 | DataType::Boolean => f.as_ref().clone(),
            _ => Field::new(f.name(), DataType::Utf8, true),
        })
        .collect();
    if fields.is_empty() {
        return Err(read_error(files, path, "no header row"));
    }
    let schema = Arc::new(Schema::new(fields));
    let reader = ReaderBuilder::new(Arc::clone(&schema))
        .with_format(format)
        .build(open()?)
        .map_err(|e| read_error(files, path, e))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(files, path, e))?;
    let all = datafusion::arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| read_error(files, path, e))?;
    let without_index: Vec<usize> = (1..schema.fields().len()).collect();
    all.project(&without_index)
        .map_err(|e| read_error(files, path, e))
}

fn local_dir(files: &OutputFiles, root: &ArtifactRoot) -> Result<PathBuf, ArtifactError> {
    root.resolve(&files.uri)
        .ok_or_else(|| ArtifactError::Remote {
            output_id: files.output_id.clone(),
            uri: files.uri.clone(),
        })
}

fn read_file(files: &OutputFiles, path: &Path) -> Result<String, ArtifactError> {
    std::fs::read_to_string(path).map_err(|e| read_error(files, path, e))
}

fn read_error(files: &OutputFiles, path: &Path, reason: impl std::fmt::Display) -> ArtifactError {
    ArtifactError::Read {
        output_id: files.output_id.clone(),
        path: path.to_path_buf(),
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
        let root = ArtifactRoot(Some(PathBuf::from("/data/artifacts")));
        assert_eq!(
            root.resolve("/tmp/x/config/local_stores/ccb3/step_1/X/abc/123"),
            Some(PathBuf::from("/data/artifacts/step_1/X/abc/123"))
        );
        assert_eq!(
            ArtifactRoot(None).resolve("/a/b"),
            Some(PathBuf::from("/a/b"))
        );
        assert_eq!(root.resolve("s3://bucket/x"), None);
    }
}
