//! A DataFrame in Parquet, as ZenML's `PandasMaterializer` writes it with pyarrow.

use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once};

use super::arrow::array::ArrayData;
use super::arrow::compute::concat_batches;
use super::arrow::datatypes::Schema;
use super::arrow::record_batch::{RecordBatch, RecordBatchReader};
use super::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use super::parquet::errors::ParquetError;
use super::parquet::file::metadata::ParquetMetaData;

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
    to_batch_within(bytes, MOST_DECODED)
}

/// The most one DataFrame may decode to (its Arrow buffers), 2 GiB. Run-length encoding lets
/// a few bytes stand for billions of rows: 139 bytes of one run of 2^28 rows took 4.3 GB and
/// 12 s to read and join into one batch, and a run of 2^31 would exhaust the machine. ZenML's
/// DataFrames that runql reads for a query are far smaller; a file past this is refused.
const MOST_DECODED: usize = 2 << 30;

/// [`to_batch`] with another budget for the decoded rows (the fuzzer's is smaller than its
/// 2 GB memory limit).
pub fn to_batch_within(bytes: Vec<u8>, most: usize) -> Result<RecordBatch, ParquetError> {
    let bytes = bytes::Bytes::from(bytes);
    let footer = thrift::check(&bytes)?;
    let attempt = |skip_arrow_schema: bool| {
        let (bytes, footer) = (bytes.clone(), footer.clone());
        quietly(move || read(bytes, footer, skip_arrow_schema, most))
    };
    attempt(false)
        .or_else(|| attempt(true))
        .unwrap_or_else(|| Err(ParquetError::General("the Parquet file is damaged".into())))
}

fn read(
    bytes: bytes::Bytes,
    footer: Option<Arc<ParquetMetaData>>,
    skip_arrow_schema: bool,
    most: usize,
) -> Result<RecordBatch, ParquetError> {
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(skip_arrow_schema);
    let builder = match footer {
        Some(footer) => ParquetRecordBatchReaderBuilder::new_with_metadata(
            bytes,
            ArrowReaderMetadata::try_new(footer, options)?,
        ),
        None => ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)?,
    };
    let reader = builder.build()?;
    let schema = reader.schema();
    let mut batches = Vec::new();
    let mut decoded = 0usize;
    let mut seen = HashSet::new();
    for batch in reader {
        let batch = batch?;
        for column in batch.columns() {
            decoded = decoded.saturating_add(new_bytes(&column.to_data(), &mut seen));
        }
        if decoded > most {
            return Err(ParquetError::General(format!(
                "the DataFrame decodes to more than {} MiB, more than runql reads from one \
                 artifact",
                most >> 20
            )));
        }
        batches.push(batch);
    }
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
/// The walk only bounds parquet if both read the same bytes the same way. parquet 59 reads a
/// known field by the type its schema gives it, whatever type the wire claims, so the walk
/// knows those types ([`Shape`], for the footer's structs and a page header's) and refuses a
/// field whose wire type differs; it also reads field ids as parquet does (16 bits). Without
/// that, parquet reads on out of step with the walk, into bytes the walk never checked:
/// - a page header (a 3.4 KB file found by the fuzzer cost 2.3 s that way);
/// - the footer: 37 bytes whose `row_groups` field is an i32 on the wire make parquet reserve
///   room for 2^31 row groups before reading one, and the failed 206 GB allocation aborts
///   the process (found by reading parquet's footer decoder, not by the fuzzer).
///
/// A list of booleans is refused too: parquet skips it without reading its one byte per
/// element, and no writer produces one.
mod thrift {
    use super::super::parquet::basic::Compression;
    use std::sync::Arc;

    use super::super::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
    use super::ParquetError;

    /// Deeper than any structure Parquet writes (parquet's own limit).
    const MAX_DEPTH: u32 = 64;

    fn damaged(what: &str) -> ParquetError {
        ParquetError::General(format!("the Parquet file is damaged ({what})"))
    }

    /// The walked file's footer as parquet read it, for the reader to use rather than read
    /// it again; `None` where parquet should say itself what is wrong with the file.
    pub fn check(file: &bytes::Bytes) -> Result<Option<Arc<ParquetMetaData>>, ParquetError> {
        let Some(tail) = file.len().checked_sub(8).map(|at| &file[at..]) else {
            return Ok(None); // too short for Parquet: parquet says so
        };
        if &tail[4..] != b"PAR1" {
            return Ok(None); // not Parquet, or an encrypted footer: parquet says what it is
        }
        let length = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as usize;
        let Some(start) = (file.len() - 8).checked_sub(length) else {
            return Ok(None);
        };
        Walk::new(&file[start..file.len() - 8]).structure(Shape::FileMetaData, 0)?;
        // The footer is sound: parquet may read it, and it says where the pages are.
        let Ok(metadata) = ParquetMetaDataReader::new().parse_and_finish(file) else {
            return Ok(None);
        };
        for group in metadata.row_groups() {
            for chunk in group.columns() {
                let most = expansion(chunk.compression());
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
                    if let (Some(most), Some(claim)) = (most, walk.page_claim)
                        && claim > (page as i64).saturating_mul(most)
                    {
                        return Err(damaged("a page larger than its codec can make it"));
                    }
                    at = at.saturating_add(walk.read).saturating_add(page);
                }
            }
        }
        Ok(Some(Arc::new(metadata)))
    }

    /// How many times its compressed size a page of `codec` can decode to, for the codecs
    /// whose output parquet 59 sizes to the page's claimed `uncompressed_page_size` before
    /// decoding (`Vec::resize`, zero-filled, so the memory is really taken): 572 bytes with 8
    /// snappy pages claiming 2 GB each held 16.8 GB. Snappy's densest element is a 3-byte
    /// copy of 64 bytes (21.3x); LZ4's match length grows 255 per byte. gzip, zstd and brotli
    /// grow their output as they decode, so their claims cost nothing.
    fn expansion(codec: Compression) -> Option<i64> {
        match codec {
            Compression::SNAPPY => Some(24),
            Compression::LZ4 | Compression::LZ4_RAW => Some(256),
            _ => None,
        }
    }

    /// `DELTA_LENGTH_BYTE_ARRAY` and `DELTA_BYTE_ARRAY`: parquet 59's Arrow reader makes a
    /// zeroed `Vec` as long as the count in a page's first bytes (`vec![0; values_left]`)
    /// before decoding a value, so 106 bytes claiming 2^40 strings abort the process on a
    /// failed 4 TiB allocation. Bounding that count means decompressing the page and parsing
    /// its levels; pandas and pyarrow (ZenML's writers) never use these encodings unless
    /// asked, so a page in either is refused instead.
    const DELTA_STRINGS: [i64; 2] = [6, 7];

    const BOOL_TRUE: u8 = 1;
    const BOOL_FALSE: u8 = 2;
    const BYTE: u8 = 3;
    const I16: u8 = 4;
    const I32: u8 = 5;
    const I64: u8 = 6;
    const DOUBLE: u8 = 7;
    const BINARY: u8 = 8;
    const LIST: u8 = 9;
    const STRUCT: u8 = 12;

    /// A struct whose known fields parquet 59 reads by their declared types, or one it only
    /// skips (`Unknown`, also the empty structs of unions such as `TimeUnit`, which parquet
    /// reads as one stop byte). The footer's structs (`FileMetaData` and what it holds) and a
    /// page header's. Built without parquet's `encryption` feature, parquet skips the
    /// encryption fields, so they are not declared here.
    #[derive(Clone, Copy)]
    enum Shape {
        Unknown,
        FileMetaData,
        SchemaElement,
        LogicalType,
        DecimalType,
        TimestampType,
        TimeUnit,
        IntType,
        VariantType,
        GeometryType,
        GeographyType,
        KeyValue,
        ColumnOrder,
        RowGroup,
        SortingColumn,
        ColumnChunk,
        ColumnMetaData,
        Statistics,
        PageEncodingStats,
        SizeStatistics,
        GeospatialStatistics,
        BoundingBox,
        PageHeader,
        DataPageHeader,
        IndexPageHeader,
        DictionaryPageHeader,
        DataPageHeaderV2,
    }

    /// How parquet reads a known field. Enums (`Type`, `Encoding`, `PageType`, ...) are i32
    /// on the wire.
    #[derive(Clone, Copy)]
    enum Declared {
        /// A value of this compact-Thrift type.
        Value(u8),
        Struct(Shape),
        /// A list of values of this type (and shape, for structs): parquet checks the
        /// list's element type and reads each element by it.
        List(u8, Shape),
    }

    /// What parquet 59 reads field `id` of `shape` as (its `parquet.thrift` readers in
    /// `file/metadata/thrift`, `basic.rs` and the page reader).
    fn declared(shape: Shape, id: i16) -> Option<Declared> {
        use Declared::{List, Struct, Value};
        use Shape::*;
        Some(match (shape, id) {
            (FileMetaData, 1) => Value(I32),
            (FileMetaData, 2) => List(STRUCT, SchemaElement),
            (FileMetaData, 3) => Value(I64),
            (FileMetaData, 4) => List(STRUCT, RowGroup),
            (FileMetaData, 5) => List(STRUCT, KeyValue),
            (FileMetaData, 6) => Value(BINARY),
            (FileMetaData, 7) => List(STRUCT, ColumnOrder),
            (SchemaElement, 1..=3 | 5..=9) => Value(I32),
            (SchemaElement, 4) => Value(BINARY),
            (SchemaElement, 10) => Struct(LogicalType),
            (LogicalType, 1..=4 | 6 | 11..=15) => Struct(Unknown),
            (LogicalType, 5) => Struct(DecimalType),
            (LogicalType, 7 | 8) => Struct(TimestampType),
            (LogicalType, 10) => Struct(IntType),
            (LogicalType, 16) => Struct(VariantType),
            (LogicalType, 17) => Struct(GeometryType),
            (LogicalType, 18) => Struct(GeographyType),
            (DecimalType, 1 | 2) => Value(I32),
            (TimestampType, 1) => Value(BOOL_TRUE),
            (TimestampType, 2) => Struct(TimeUnit),
            (TimeUnit, 1..=3) => Struct(Unknown),
            (IntType, 1) => Value(BYTE),
            (IntType, 2) => Value(BOOL_TRUE),
            (VariantType, 1) => Value(BYTE),
            (GeometryType, 1) => Value(BINARY),
            (GeographyType, 1) => Value(BINARY),
            (GeographyType, 2) => Value(I32),
            (KeyValue, 1 | 2) => Value(BINARY),
            (ColumnOrder, 1) => Struct(Unknown),
            (RowGroup, 1) => List(STRUCT, ColumnChunk),
            (RowGroup, 2 | 3 | 5) => Value(I64),
            (RowGroup, 4) => List(STRUCT, SortingColumn),
            (RowGroup, 7) => Value(I16),
            (SortingColumn, 1) => Value(I32),
            (SortingColumn, 2 | 3) => Value(BOOL_TRUE),
            (ColumnChunk, 1) => Value(BINARY),
            (ColumnChunk, 2 | 4 | 6) => Value(I64),
            (ColumnChunk, 3) => Struct(ColumnMetaData),
            (ColumnChunk, 5 | 7) => Value(I32),
            (ColumnMetaData, 1 | 4 | 15) => Value(I32),
            (ColumnMetaData, 2) => List(I32, Unknown),
            (ColumnMetaData, 5..=7 | 9..=11 | 14) => Value(I64),
            (ColumnMetaData, 12) => Struct(Statistics),
            (ColumnMetaData, 13) => List(STRUCT, PageEncodingStats),
            (ColumnMetaData, 16) => Struct(SizeStatistics),
            (ColumnMetaData, 17) => Struct(GeospatialStatistics),
            (Statistics, 1 | 2 | 5 | 6) => Value(BINARY),
            (Statistics, 3 | 4) => Value(I64),
            (Statistics, 7 | 8) => Value(BOOL_TRUE),
            (PageEncodingStats, 1..=3) => Value(I32),
            (SizeStatistics, 1) => Value(I64),
            (SizeStatistics, 2 | 3) => List(I64, Unknown),
            (GeospatialStatistics, 1) => Struct(BoundingBox),
            (GeospatialStatistics, 2) => List(I32, Unknown),
            (BoundingBox, 1..=8) => Value(DOUBLE),
            (PageHeader, 1..=4) => Value(I32),
            (PageHeader, 5) => Struct(DataPageHeader),
            (PageHeader, 6) => Struct(IndexPageHeader),
            (PageHeader, 7) => Struct(DictionaryPageHeader),
            (PageHeader, 8) => Struct(DataPageHeaderV2),
            (DataPageHeader, 1..=4) => Value(I32),
            (DataPageHeader, 5) => Struct(Statistics),
            (DictionaryPageHeader, 1 | 2) => Value(I32),
            (DictionaryPageHeader, 3) => Value(BOOL_TRUE),
            (DataPageHeaderV2, 1..=6) => Value(I32),
            (DataPageHeaderV2, 7) => Value(BOOL_TRUE),
            (DataPageHeaderV2, 8) => Struct(Statistics),
            _ => return None,
        })
    }

    struct Walk<'a> {
        bytes: &'a [u8],
        read: usize,
        /// A top-level `compressed_page_size` (field 3, i32): how far the next page header is.
        page_size: Option<i64>,
        /// A top-level `uncompressed_page_size` (field 2, i32): what the page claims to decode to.
        page_claim: Option<i64>,
    }

    impl<'a> Walk<'a> {
        fn new(bytes: &'a [u8]) -> Self {
            Self {
                bytes,
                read: 0,
                page_size: None,
                page_claim: None,
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
                9 | 10 => self.list(None, depth),
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

        /// A list or set; with `declared`, the element type (and shape) parquet reads it by,
        /// which the list must have (parquet checks it too).
        fn list(&mut self, declared: Option<(u8, Shape)>, depth: u32) -> Result<(), ParquetError> {
            let header = self.byte()?;
            let element = header & 0x0f;
            let short = u64::from(header >> 4);
            let n = if short == 15 { self.varint()? } else { short };
            let n = self.count(n)?;
            let shape = match declared {
                // parquet reads a header of 0 as an empty list of any type.
                Some((kind, shape)) if header != 0 => {
                    if element != kind {
                        return Err(damaged("a list of the wrong type"));
                    }
                    shape
                }
                _ => Shape::Unknown,
            };
            for _ in 0..n {
                match element {
                    STRUCT => self.structure(shape, depth + 1)?,
                    _ => self.element(element, depth + 1)?,
                }
            }
            Ok(())
        }

        /// A struct's fields up to its stop byte; a field `shape` declares must have the
        /// declared type, and is read as parquet reads it.
        fn structure(&mut self, shape: Shape, depth: u32) -> Result<(), ParquetError> {
            if depth > MAX_DEPTH {
                return Err(damaged("structures nested too deep"));
            }
            let mut id: i16 = 0;
            loop {
                let header = self.byte()?;
                if header == 0 {
                    return Ok(());
                }
                let kind = header & 0x0f;
                // A field id as parquet reads it: an i16, from a delta on the last id or in
                // full, where a longer number is cut to its low 16 bits. A walk that kept
                // the whole number would skip by the wire a field parquet reads as declared.
                id = match header >> 4 {
                    0 => zigzag(self.varint()?) as i16,
                    delta => id
                        .checked_add(i16::from(delta))
                        .ok_or_else(|| damaged("a field id past 32767"))?,
                };
                let Some(declared) = declared(shape, id) else {
                    self.value(kind, depth + 1)?;
                    continue;
                };
                let wrong_type = || damaged("a field of the wrong type");
                match declared {
                    Declared::Value(expected) => {
                        let is_bool = |k| k == BOOL_TRUE || k == BOOL_FALSE;
                        if kind != expected && !(is_bool(kind) && is_bool(expected)) {
                            return Err(wrong_type());
                        }
                        match (shape, id) {
                            (Shape::PageHeader, 2) => {
                                self.page_claim = Some(zigzag(self.varint()?))
                            }
                            (Shape::PageHeader, 3) => self.page_size = Some(zigzag(self.varint()?)),
                            (Shape::DataPageHeader | Shape::DictionaryPageHeader, 2)
                            | (Shape::DataPageHeaderV2, 4) => {
                                let encoding = zigzag(self.varint()?);
                                if DELTA_STRINGS.contains(&encoding) {
                                    return Err(ParquetError::General(
                                        "runql does not read Parquet's DELTA_LENGTH_BYTE_ARRAY \
                                         and DELTA_BYTE_ARRAY encodings: parquet 59 reserves \
                                         memory for them by a count it does not check"
                                            .into(),
                                    ));
                                }
                            }
                            _ => self.value(kind, depth + 1)?,
                        }
                    }
                    Declared::Struct(inner) if kind == STRUCT => {
                        self.structure(inner, depth + 1)?
                    }
                    Declared::List(element, inner) if kind == LIST => {
                        self.list(Some((element, inner)), depth + 1)?
                    }
                    Declared::Struct(_) | Declared::List(..) => return Err(wrong_type()),
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

/// The memory of `data`'s buffers not yet `seen`: the batches of a dictionary column share
/// its dictionary, which counted once per batch would make a DataFrame of a few megabytes
/// look like gigabytes.
fn new_bytes(data: &ArrayData, seen: &mut HashSet<usize>) -> usize {
    let mut bytes = 0usize;
    let nulls = data.nulls().map(|n| n.buffer());
    for buffer in data.buffers().iter().chain(nulls) {
        if seen.insert(buffer.data_ptr().as_ptr() as usize) {
            bytes = bytes.saturating_add(buffer.capacity());
        }
    }
    for child in data.child_data() {
        bytes = bytes.saturating_add(new_bytes(child, seen));
    }
    bytes
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

    /// `tests/fixtures/parquet/<name>.parquet`.
    fn parquet_fixture(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parquet");
        std::fs::read(format!("{dir}/{name}.parquet")).unwrap()
    }

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
            err.to_string().contains("a field of the wrong type"),
            "{err}"
        );
    }

    /// A 37-byte file whose footer's `row_groups` (field 4, a list) is an i32 on the wire:
    /// parquet 59 reads the varint's bytes as a list header claiming 2^31 - 1 row groups and
    /// reserves room for them all before reading one; the 206 GB allocation fails and aborts
    /// the process (no panic to catch). The walk reads field 4 as the list parquet reads, so
    /// parquet never sees this footer.
    #[test]
    fn footer_field_of_the_wrong_type_is_refused_before_parquet_reserves_for_it() {
        let footer: &[u8] = &[
            0x15, 0x02, // field 1 version: i32 1
            0x19, 0x1c, // field 2 schema: a list of one struct
            0x48, 6, b's', b'c', b'h', b'e', b'm', b'a', // name: "schema"
            0x15, 0x00, 0x00, // num_children: 0, end of the SchemaElement
            0x16, 0x00, // field 3 num_rows: i64 0
            0x15, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, // field 4 row_groups, as an i32
            0x00, // end of FileMetaData
        ];
        let mut file = b"PAR1".to_vec();
        file.extend_from_slice(footer);
        file.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        file.extend_from_slice(b"PAR1");
        let err = to_batch(file).unwrap_err();
        assert!(
            err.to_string().contains("a field of the wrong type"),
            "{err}"
        );
    }

    /// 572 bytes of 8 snappy pages, each claiming to decode to 2 GB: parquet 59 zero-fills
    /// that much before decoding a page, and held 16.8 GB for this file (one more column per
    /// 2 GB, and the machine runs out). The same file with honest claims reads.
    #[test]
    fn pages_claiming_more_than_snappy_can_make_are_refused() {
        let err = to_batch(parquet_fixture("snappy-pages-claiming-2gb")).unwrap_err();
        assert!(
            err.to_string()
                .contains("a page larger than its codec can make it"),
            "{err}"
        );
        let batch = to_batch(parquet_fixture("snappy-pages-claiming-8-bytes")).unwrap();
        assert_eq!((batch.num_rows(), batch.num_columns()), (1, 8));
    }

    /// 106 bytes whose one DELTA_LENGTH_BYTE_ARRAY page claims 2^40 strings: parquet 59 makes
    /// a zeroed `Vec` of that many lengths first, and the failed 4 TiB allocation aborts the
    /// process. Pages in that encoding (and DELTA_BYTE_ARRAY) are refused with a line saying
    /// so, an honest pyarrow file too (`make_delta_strings.py`).
    #[test]
    fn delta_string_pages_are_refused_before_parquet_sizes_them() {
        for name in ["delta-strings-claiming-2-40", "delta-strings"] {
            let err = to_batch(parquet_fixture(name)).unwrap_err();
            assert!(
                err.to_string()
                    .contains("runql does not read Parquet's DELTA_LENGTH_BYTE_ARRAY"),
                "{name}: {err}"
            );
        }
    }

    /// 139 bytes holding one run-length-encoded run of 2^31 - 1 rows (16 GiB decoded, made by
    /// `make_long_run.py`): reading stops at the budget, here 64 MiB to keep the test quick,
    /// with a line saying so.
    #[test]
    fn a_long_run_stops_at_the_decoding_budget() {
        let err = to_batch_within(parquet_fixture("long-run-2-31-rows"), 64 << 20).unwrap_err();
        assert!(
            err.to_string()
                .contains("the DataFrame decodes to more than 64 MiB"),
            "{err}"
        );
    }

    /// 20,000 rows of one shared 200 kB category (`make_typed_frames.py`): each batch holds
    /// the same dictionary, so counted per batch the rows would pass 1 MiB; counted once they
    /// fit, and read.
    #[test]
    fn a_shared_dictionary_counts_once_against_the_budget() {
        let bytes = parquet_fixture("categorical-shared-dictionary");
        let per_batch: usize =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.clone()))
                .unwrap()
                .build()
                .unwrap()
                .map(|b| b.unwrap().get_array_memory_size())
                .sum();
        assert!(per_batch > 1 << 20, "{per_batch}");
        let batch = to_batch_within(bytes, 1 << 20).unwrap();
        assert_eq!(batch.num_rows(), 20_000);
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

    /// pyarrow files that use every part of the footer the walk declares (each logical type,
    /// statistics, sorting columns, page indexes, a bloom filter, v1 and v2 pages) and pages
    /// as dense as their codec makes them pass the walk and read whole (made by
    /// `tests/fixtures/parquet/make_typed_frames.py`).
    #[test]
    fn typed_frames_pass_the_walk() {
        for name in ["typed-v1", "typed-v2", "typed-plain"] {
            let bytes = parquet_fixture(name);
            thrift::check(&bytes::Bytes::from(bytes.clone()))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let batch = to_batch(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((batch.num_rows(), batch.num_columns()), (50, 21), "{name}");
        }
        // A page of zeros at each codec's densest ratio (snappy 21x, lz4 222x) is within the
        // bound on what a page may claim.
        for name in ["zeros-snappy", "zeros-lz4"] {
            let batch = to_batch(parquet_fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(batch.num_rows(), 1 << 17, "{name}");
        }
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
