//! A DataFrame in Parquet, as ZenML's `PandasMaterializer` writes it with pyarrow.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once};

use super::arrow::compute::concat_batches;
use super::arrow::datatypes::Schema;
use super::arrow::record_batch::{RecordBatch, RecordBatchReader};
use super::parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use super::parquet::errors::ParquetError;

/// The file's rows as one batch.
///
/// The file's Thrift structures are walked first ([`thrift::check`]): parquet 59 can spend
/// hours of CPU on a few kilobytes of them.
///
/// arrow-ipc 59 panics (`unimplemented!`) on some Arrow schemas a file may embed in its
/// metadata (found by `fuzz/`'s parquet_artifact target). Such a file is read again with
/// Parquet's own schema, and a panic in that read too is an error: a file in a bucket is
/// untrusted input, and it must not end the process.
pub fn to_batch(bytes: Vec<u8>) -> Result<RecordBatch, ParquetError> {
    let bytes = bytes::Bytes::from(bytes);
    thrift::check(&bytes)?;
    let attempt = |skip_arrow_schema: bool| {
        let bytes = bytes.clone();
        quietly(move || read(bytes, skip_arrow_schema))
    };
    attempt(false)
        .or_else(|| attempt(true))
        .unwrap_or_else(|| Err(ParquetError::General("the Parquet file is damaged".into())))
}

fn read(bytes: bytes::Bytes, skip_arrow_schema: bool) -> Result<RecordBatch, ParquetError> {
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(skip_arrow_schema);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)?.build()?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    // pandas writes its index and dtypes as schema metadata; the rows are what matter here.
    let schema = Arc::new(Schema::new(schema.fields().clone()));
    let batches: Vec<RecordBatch> = batches
        .into_iter()
        .map(|b| b.with_schema(Arc::clone(&schema)))
        .collect::<Result<_, _>>()?;
    Ok(concat_batches(&schema, &batches)?)
}

/// A bounded walk of a Parquet file's Thrift structures (its footer and every page header),
/// before parquet reads them.
///
/// parquet 59 skips a field it does not know without bounds: a list of booleans is skipped
/// element by element without reading a byte (compact Thrift spends one byte on each), so a
/// header that claims 2^31 of them costs seconds, and a file of such headers hours (found by
/// `fuzz/`'s parquet_artifact target; parquet 60 reads them, but DataFusion 55 links 59).
/// Every element of a compact-Thrift collection takes at least one byte, so a collection
/// claiming more elements than there are bytes left is damage, and refusing it keeps this
/// walk, and parquet's after it, linear in the file's size.
///
/// The walk only bounds parquet if both read the same bytes the same way. Two places where
/// parquet 59 departs from the wire types are refused, as no writer produces them:
/// - a page header's known field is read by the type parquet's schema gives it, whatever
///   type the wire claims ([`Shape`]); a field of another type would send parquet into
///   bytes this walk never read (a 3.4 KB file found by the fuzzer cost 2.3 s that way);
/// - a list of booleans is skipped by parquet without reading its one byte per element.
mod thrift {
    use super::super::parquet::file::metadata::ParquetMetaDataReader;
    use super::ParquetError;

    /// Deeper than any structure Parquet writes (parquet's own limit).
    const MAX_DEPTH: u32 = 64;

    fn damaged(what: &str) -> ParquetError {
        ParquetError::General(format!("the Parquet file is damaged ({what})"))
    }

    pub fn check(file: &bytes::Bytes) -> Result<(), ParquetError> {
        let Some(tail) = file.len().checked_sub(8).map(|at| &file[at..]) else {
            return Ok(()); // too short for Parquet: parquet says so
        };
        if &tail[4..] != b"PAR1" {
            return Ok(()); // not Parquet, or an encrypted footer: parquet says what it is
        }
        let length = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as usize;
        let Some(start) = (file.len() - 8).checked_sub(length) else {
            return Ok(());
        };
        Walk::new(&file[start..file.len() - 8]).structure(Shape::Unknown, 0)?;
        // The footer is sound: parquet may read it, and it says where the pages are.
        let Ok(metadata) = ParquetMetaDataReader::new().parse_and_finish(file) else {
            return Ok(());
        };
        for group in metadata.row_groups() {
            for chunk in group.columns() {
                let first = chunk
                    .dictionary_page_offset()
                    .unwrap_or(chunk.data_page_offset())
                    .min(chunk.data_page_offset());
                let (Ok(mut at), Ok(size)) = (
                    usize::try_from(first),
                    usize::try_from(chunk.compressed_size()),
                ) else {
                    continue;
                };
                let end = at.saturating_add(size).min(file.len());
                while at < end {
                    let mut walk = Walk::new(&file[at..end]);
                    walk.structure(Shape::PageHeader, 0)?;
                    let Some(page) = walk.page_size.and_then(|n| usize::try_from(n).ok()) else {
                        break;
                    };
                    at = at.saturating_add(walk.read).saturating_add(page);
                }
            }
        }
        Ok(())
    }

    const BOOL_TRUE: u8 = 1;
    const BOOL_FALSE: u8 = 2;
    const I32: u8 = 5;
    const I64: u8 = 6;
    const BINARY: u8 = 8;
    const STRUCT: u8 = 12;

    /// A struct whose known fields parquet reads by their declared types (parquet 59's
    /// `PageHeader` and the structs inside it), or one it only skips.
    #[derive(Clone, Copy)]
    enum Shape {
        Unknown,
        PageHeader,
        DataPageHeader,
        IndexPageHeader,
        DictionaryPageHeader,
        DataPageHeaderV2,
        PageStatistics,
    }

    /// What parquet reads field `id` of `shape` as: a compact-Thrift type, and the shape
    /// of a struct field. Enums (`PageType`, `Encoding`) are i32 on the wire.
    fn declared(shape: Shape, id: i64) -> Option<(u8, Shape)> {
        use Shape::*;
        let field = |kind| Some((kind, Unknown));
        match (shape, id) {
            (Unknown | IndexPageHeader, _) => None,
            (PageHeader, 1..=4) => field(I32),
            (PageHeader, 5) => Some((STRUCT, DataPageHeader)),
            (PageHeader, 6) => Some((STRUCT, IndexPageHeader)),
            (PageHeader, 7) => Some((STRUCT, DictionaryPageHeader)),
            (PageHeader, 8) => Some((STRUCT, DataPageHeaderV2)),
            (DataPageHeader, 1..=4) => field(I32),
            (DataPageHeader, 5) => Some((STRUCT, PageStatistics)),
            (DictionaryPageHeader, 1 | 2) => field(I32),
            (DictionaryPageHeader, 3) => field(BOOL_TRUE),
            (DataPageHeaderV2, 1..=6) => field(I32),
            (DataPageHeaderV2, 7) => field(BOOL_TRUE),
            (DataPageHeaderV2, 8) => Some((STRUCT, PageStatistics)),
            (PageStatistics, 1 | 2 | 5 | 6) => field(BINARY),
            (PageStatistics, 3 | 4) => field(I64),
            (PageStatistics, 7 | 8) => field(BOOL_TRUE),
            _ => None,
        }
    }

    struct Walk<'a> {
        bytes: &'a [u8],
        read: usize,
        /// A top-level `compressed_page_size` (field 3, i32): how far the next page header is.
        page_size: Option<i64>,
    }

    impl<'a> Walk<'a> {
        fn new(bytes: &'a [u8]) -> Self {
            Self {
                bytes,
                read: 0,
                page_size: None,
            }
        }

        fn left(&self) -> usize {
            self.bytes.len() - self.read
        }

        fn byte(&mut self) -> Result<u8, ParquetError> {
            let b = *self
                .bytes
                .get(self.read)
                .ok_or_else(|| damaged("cut short"))?;
            self.read += 1;
            Ok(b)
        }

        fn skip(&mut self, n: usize) -> Result<(), ParquetError> {
            if n > self.left() {
                return Err(damaged("cut short"));
            }
            self.read += n;
            Ok(())
        }

        fn varint(&mut self) -> Result<u64, ParquetError> {
            let mut value = 0u64;
            for shift in (0..64).step_by(7) {
                let b = self.byte()?;
                value |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return Ok(value);
                }
            }
            Err(damaged("a number longer than 64 bits"))
        }

        /// A count of elements, each at least a byte.
        fn count(&mut self, count: u64) -> Result<u64, ParquetError> {
            if count > self.left() as u64 {
                return Err(damaged("a list longer than the bytes left"));
            }
            Ok(count)
        }

        /// One element of a list, set or map: as a value, but a boolean there is a byte of
        /// its own (in a struct its value is in the field's type).
        fn element(&mut self, kind: u8, depth: u32) -> Result<(), ParquetError> {
            if kind == BOOL_TRUE || kind == BOOL_FALSE {
                // parquet 59 skips such an element without reading its byte, and so reads
                // what follows out of step with the file; parquet writes no such list.
                Err(damaged("a list of booleans"))
            } else {
                self.value(kind, depth)
            }
        }

        /// One value of compact-Thrift type `kind`.
        fn value(&mut self, kind: u8, depth: u32) -> Result<(), ParquetError> {
            if depth > MAX_DEPTH {
                return Err(damaged("structures nested too deep"));
            }
            match kind {
                BOOL_TRUE | BOOL_FALSE => Ok(()),
                3 => self.skip(1),
                4..=6 => self.varint().map(|_| ()),
                7 => self.skip(8),
                8 => {
                    let n = self.varint()?;
                    self.skip(usize::try_from(n).map_err(|_| damaged("cut short"))?)
                }
                9 | 10 => {
                    let header = self.byte()?;
                    let element = header & 0x0f;
                    let short = u64::from(header >> 4);
                    let n = if short == 15 { self.varint()? } else { short };
                    for _ in 0..self.count(n)? {
                        self.element(element, depth + 1)?;
                    }
                    Ok(())
                }
                11 => {
                    let n = self.varint()?;
                    let n = self.count(n)?;
                    if n > 0 {
                        let kinds = self.byte()?;
                        for _ in 0..n {
                            self.element(kinds >> 4, depth + 1)?;
                            self.element(kinds & 0x0f, depth + 1)?;
                        }
                    }
                    Ok(())
                }
                STRUCT => self.structure(Shape::Unknown, depth),
                13 => self.skip(16),
                _ => Err(damaged("an unknown Thrift type")),
            }
        }

        /// A struct's fields up to its stop byte; a field `shape` declares must have the
        /// declared type.
        fn structure(&mut self, shape: Shape, depth: u32) -> Result<(), ParquetError> {
            if depth > MAX_DEPTH {
                return Err(damaged("structures nested too deep"));
            }
            let mut id: i64 = 0;
            loop {
                let header = self.byte()?;
                if header == 0 {
                    return Ok(());
                }
                let kind = header & 0x0f;
                id = match header >> 4 {
                    0 => zigzag(self.varint()?),
                    delta => id + i64::from(delta),
                };
                let Some((declared_kind, inner)) = declared(shape, id) else {
                    self.value(kind, depth + 1)?;
                    continue;
                };
                let is_bool = |k| k == BOOL_TRUE || k == BOOL_FALSE;
                if kind != declared_kind && !(is_bool(kind) && is_bool(declared_kind)) {
                    return Err(damaged("a page header field of the wrong type"));
                }
                match (shape, id) {
                    (Shape::PageHeader, 3) => self.page_size = Some(zigzag(self.varint()?)),
                    _ if kind == STRUCT => self.structure(inner, depth + 1)?,
                    _ => self.value(kind, depth + 1)?,
                }
            }
        }
    }

    fn zigzag(n: u64) -> i64 {
        ((n >> 1) as i64) ^ -((n & 1) as i64)
    }
}

thread_local! {
    /// Set while this thread decodes under [`quietly`]: its panics are caught, not reported.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// `f`'s result, or `None` when it panicked, with the panic's message kept off stderr (the
/// process-wide hook stays as it was for every other panic).
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let out = catch_unwind(AssertUnwindSafe(f)).ok();
    QUIET.with(|q| q.set(was));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzz/'s parquet_artifact target: 5.5 KB whose page headers hold lists of
    /// booleans claiming billions of elements took parquet 1.3 s a read here (40 s under the
    /// fuzzer). The walk refuses it before parquet reads it (parquet's own error would be
    /// "failed to fill whole buffer", after the long skip).
    #[test]
    fn fuzz_found_lists_of_billions_of_booleans() {
        let file = include_bytes!("../../tests/fixtures/fuzz/parquet-40-seconds-to-decode.parquet");
        let err = to_batch(file.to_vec()).unwrap_err();
        assert!(
            err.to_string()
                .contains("a list longer than the bytes left"),
            "{err}"
        );
    }

    /// Found by fuzz/'s parquet_artifact target after the walk above: 3.4 KB whose first page
    /// header has a list where parquet reads a `DataPageHeader` struct took parquet 2.3 s a
    /// read (18 s under the fuzzer): parquet read on from there by the struct's types, out of
    /// step with the walk, into collections whose elements it skips with `std::io::copy`,
    /// which does not fail at the file's end. The walk now checks that a page header's known
    /// fields have their declared types, so parquet never reads this file.
    #[test]
    fn fuzz_found_page_header_field_of_the_wrong_type() {
        let file = include_bytes!("../../tests/fixtures/fuzz/parquet-2-seconds-to-decode.parquet");
        let err = to_batch(file.to_vec()).unwrap_err();
        assert!(
            err.to_string()
                .contains("a page header field of the wrong type"),
            "{err}"
        );
    }

    /// Every real DataFrame of the fixtures still reads (the walk refuses no sound file).
    #[test]
    fn the_fixtures_parquet_frames_pass_the_walk() {
        let mut found = 0;
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures"
        ))];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|n| n == "df.parquet.gzip") {
                    let bytes = std::fs::read(&path).unwrap();
                    thrift::check(&bytes::Bytes::from(bytes.clone()))
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert!(to_batch(bytes).is_ok(), "{}", path.display());
                    found += 1;
                }
            }
        }
        assert!(found > 10, "{found} Parquet frames in the fixtures");
    }

    /// Found by fuzz/'s parquet_artifact target: an embedded Arrow schema with a field of type
    /// NONE made arrow-ipc panic. Parquet's own schema reads the file, or it is an error.
    #[test]
    fn fuzz_found_arrow_schema_of_type_none() {
        let file =
            include_bytes!("../../tests/fixtures/fuzz/parquet-arrow-schema-type-none.parquet");
        match to_batch(file.to_vec()) {
            Ok(batch) => assert!(batch.num_columns() > 0),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
