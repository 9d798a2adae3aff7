//! numpy's `.npy` format (what ZenML's `NumpyMaterializer` writes with `np.save`): a magic
//! string, a header that is a Python dict literal (`descr`, `fortran_order`, `shape`), then
//! the elements in C or Fortran order.

use std::sync::Arc;

use super::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, StringArray, UInt8Array, UInt16Array, UInt32Array, UInt32Array as Indices,
    UInt64Array,
};
use super::arrow::compute::take;
use super::arrow::datatypes::{Field, Schema};
use super::arrow::record_batch::RecordBatch;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The most rows an array with no columns (shape `(n, 0)`) may claim.
const MAX_EMPTY_ROWS: usize = 1 << 20;
/// The most columns an array with no rows (shape `(0, n)`) may claim.
const MAX_EMPTY_COLUMNS: usize = 1 << 12;

#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// The array as rows: 0-D and 1-D as `index`, `value`; 2-D as `row`, `c0`, `c1`, ...
pub fn to_batch(bytes: &[u8]) -> Result<RecordBatch, String> {
    let (header, data) = parse(bytes)?;
    // The header's shape is a claim, not a fact: every count derived from it is checked
    // against the bytes that follow it before anything is allocated.
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or_else(|| format!("the .npy shape {:?} is too large", header.shape))?;
    let flat = decode(&header.descr, data, count)?;
    let (rows, cols) = match header.shape.as_slice() {
        [] => (1, None),
        [n] => (*n, None),
        [r, c] => (*r, Some(*c)),
        more => {
            return Err(format!(
                "{}-D arrays are not supported (shape {more:?}); 0-D, 1-D and 2-D are",
                more.len()
            ));
        }
    };
    // Only an empty array has more rows or columns than elements: they cost memory and no
    // byte of the file, so their number is bounded here (fuzz/'s npy target found `(0, n)`).
    if (rows > count && rows > MAX_EMPTY_ROWS)
        || cols.is_some_and(|c| c > count && c > MAX_EMPTY_COLUMNS)
    {
        return Err(format!(
            "the .npy shape {:?} claims rows or columns of no elements",
            header.shape
        ));
    }
    if count > u32::MAX as usize {
        return Err(format!(
            "{count} elements are more than runql reads from one .npy file"
        ));
    }
    let index: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
    let Some(cols) = cols else {
        let schema = Schema::new(vec![
            Field::new("index", index.data_type().clone(), false),
            Field::new("value", flat.data_type().clone(), true),
        ]);
        return RecordBatch::try_new(Arc::new(schema), vec![index, flat])
            .map_err(|e| e.to_string());
    };
    let mut fields = vec![Field::new("row", index.data_type().clone(), false)];
    let mut columns = vec![index];
    for j in 0..cols {
        // Element (i, j) sits at i*cols + j in C order, j*rows + i in Fortran order.
        let positions: Indices = (0..rows)
            .map(|i| if header.fortran_order { j * rows + i } else { i * cols + j } as u32)
            .collect();
        let column = take(flat.as_ref(), &positions, None).map_err(|e| e.to_string())?;
        fields.push(Field::new(
            format!("c{j}"),
            column.data_type().clone(),
            true,
        ));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (no \\x93NUMPY magic)".to_string());
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(format!(".npy format version {major} is not supported")),
    };
    let end = start + len;
    if bytes.len() < end {
        return Err("truncated .npy header".to_string());
    }
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| "the .npy header is not text".to_string())?;
    Ok((parse_header(text)?, &bytes[end..]))
}

/// `{'descr': '<f8', 'fortran_order': False, 'shape': (90, 4), }`
fn parse_header(text: &str) -> Result<Header, String> {
    let value_after = |key: &str| -> Result<&str, String> {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| format!(".npy header has no {key}"))?;
        let rest = &text[at + key.len() + 2..];
        Ok(rest.trim_start().trim_start_matches(':').trim_start())
    };
    let descr = value_after("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or("structured .npy dtypes are not supported")?
        .to_string();
    let fortran_order = value_after("fortran_order")?.starts_with("True");
    let shape_text = value_after("shape")?;
    let shape_text = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or(".npy header has a bad shape")?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!(".npy header has a bad shape ({shape_text})"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Header {
        descr,
        fortran_order,
        shape,
    })
}

macro_rules! numbers {
    ($array:ty, $t:ty, $data:expr, $count:expr, $big:expr) => {{
        const SIZE: usize = std::mem::size_of::<$t>();
        let values = $data[..$count * SIZE].chunks_exact(SIZE).map(|c| {
            let bytes: [u8; SIZE] = c.try_into().expect("chunk size");
            if $big {
                <$t>::from_be_bytes(bytes)
            } else {
                <$t>::from_le_bytes(bytes)
            }
        });
        Arc::new(<$array>::from_iter_values(values)) as ArrayRef
    }};
}

/// The `count` elements of `data` as one Arrow array, in file order.
fn decode(descr: &str, data: &[u8], count: usize) -> Result<ArrayRef, String> {
    let unsupported = || format!("dtype {descr} is not supported");
    // `<f8`: byte order, kind, item size; anything shorter or not ASCII is no dtype runql reads.
    if descr.len() < 3 || !descr.is_ascii() {
        return Err(unsupported());
    }
    let (order, kind) = descr.split_at(1);
    let big = order == ">";
    let (code, size) = kind.split_at(1);
    let size: usize = size.parse().map_err(|_| unsupported())?;
    let item = if code == "U" {
        size.checked_mul(4)
    } else {
        Some(size)
    }
    .filter(|n| *n > 0)
    .ok_or_else(unsupported)?;
    let needed = count
        .checked_mul(item)
        .ok_or_else(|| format!("{count} elements of {descr} are too large for a .npy file"))?;
    if data.len() < needed {
        return Err(format!(
            "truncated .npy data: {count} elements of {descr} need {needed} bytes, the file has {}",
            data.len()
        ));
    }
    Ok(match (code, size) {
        ("f", 8) => numbers!(Float64Array, f64, data, count, big),
        ("f", 4) => numbers!(Float32Array, f32, data, count, big),
        ("i", 8) => numbers!(Int64Array, i64, data, count, big),
        ("i", 4) => numbers!(Int32Array, i32, data, count, big),
        ("i", 2) => numbers!(Int16Array, i16, data, count, big),
        ("i", 1) => numbers!(Int8Array, i8, data, count, big),
        ("u", 8) => numbers!(UInt64Array, u64, data, count, big),
        ("u", 4) => numbers!(UInt32Array, u32, data, count, big),
        ("u", 2) => numbers!(UInt16Array, u16, data, count, big),
        ("u", 1) => numbers!(UInt8Array, u8, data, count, big),
        ("b", 1) => Arc::new(BooleanArray::from_iter(
            data[..count].iter().map(|b| Some(*b != 0)),
        )),
        ("U", n) => {
            // Fixed-width UTF-32, padded with NULs.
            let strings = data[..needed].chunks_exact(n * 4).map(|chunk| {
                chunk
                    .chunks_exact(4)
                    .map(|c| {
                        let b = [c[0], c[1], c[2], c[3]];
                        if big {
                            u32::from_be_bytes(b)
                        } else {
                            u32::from_le_bytes(b)
                        }
                    })
                    .take_while(|cp| *cp != 0)
                    .filter_map(char::from_u32)
                    .collect::<String>()
            });
            Arc::new(StringArray::from_iter_values(strings))
        }
        _ => return Err(format!("dtype {descr} is not supported")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn headers_parse() {
        let h =
            parse_header("{'descr': '<f8', 'fortran_order': False, 'shape': (90, 4), }").unwrap();
        assert_eq!(
            h,
            Header {
                descr: "<f8".into(),
                fortran_order: false,
                shape: vec![90, 4]
            }
        );
        assert_eq!(
            parse_header("{'descr': '<i8', 'fortran_order': True, 'shape': (3,), }")
                .unwrap()
                .shape,
            vec![3]
        );
    }

    #[test]
    fn fortran_order_reads_as_rows() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column: 1 4 2 5 3 6.
        let data: Vec<u8> = [1i32, 4, 2, 5, 3, 6]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let batch = to_batch(&npy("<i4", true, "(2, 3)", &data)).unwrap();
        let c0 = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        let c2 = batch
            .column(3)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        assert_eq!(c0.values(), &[1, 4]);
        assert_eq!(c2.values(), &[3, 6]);
    }

    #[test]
    fn truncated_data_is_an_error() {
        let data: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let err = to_batch(&npy("<f8", false, "(3,)", &data)).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        assert!(to_batch(b"garbage").unwrap_err().contains("magic"));
    }

    #[test]
    fn unicode_and_big_endian() {
        let data: Vec<u8> = ["ab", "c"]
            .iter()
            .flat_map(|s| {
                let mut v: Vec<u8> = s.chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
                v.resize(8, 0);
                v
            })
            .collect();
        let batch = to_batch(&npy("<U2", false, "(2,)", &data)).unwrap();
        let values = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(values.value(0), "ab");
        assert_eq!(values.value(1), "c");
        let data: Vec<u8> = 7i64.to_be_bytes().to_vec();
        let batch = to_batch(&npy(">i8", false, "()", &data)).unwrap();
        assert_eq!(
            batch
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            7
        );
    }

    /// Headers whose claims the data cannot back: each an error, none a panic or an
    /// allocation the file's size does not pay for.
    #[test]
    fn headers_claiming_more_than_the_file_holds_are_errors() {
        let cases = [
            ("<U0", "(1000000000000,)"),
            ("<f0", "(5,)"),
            ("<", "(1,)"),
            ("\u{e9}f8", "(1,)"),
            ("<f8", "(18446744073709551615, 3)"),
            ("<f8", "(4294967296, 4294967296)"),
            ("<f8", "(1000000000000000, 0)"),
            ("<i8", "(0, 4073709551615)"),
            ("<U4611686018427387904", "(1,)"),
        ];
        for (descr, shape) in cases {
            let err = to_batch(&npy(descr, false, shape, &[0; 16])).unwrap_err();
            assert!(!err.is_empty(), "{descr} {shape}");
        }
        // An empty 2-D array of a few rows is still read.
        let batch = to_batch(&npy("<f8", false, "(3, 0)", &[])).unwrap();
        assert_eq!((batch.num_rows(), batch.num_columns()), (3, 1));
    }

    /// Found by fuzz/'s npy target: `(0, 4073709551615)` made four trillion empty columns.
    #[test]
    fn fuzz_found_empty_rows_of_many_columns() {
        let file = include_bytes!("../../tests/fixtures/fuzz/npy-empty-rows-of-many-columns.npy");
        assert!(to_batch(file).is_err());
    }
}
