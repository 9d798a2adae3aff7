//! runql's artifact decoders, from `src/artifacts/`, given what their parent module gives
//! them there: Arrow and Parquet by these names.

pub(crate) use ::arrow;
pub(crate) use ::parquet;

#[path = "../../../src/artifacts/builtin.rs"]
pub mod builtin;
#[path = "../../../src/artifacts/csv.rs"]
pub mod csv;
#[path = "../../../src/artifacts/npy.rs"]
pub mod npy;
#[path = "../../../src/artifacts/parquet_file.rs"]
pub mod parquet_file;
