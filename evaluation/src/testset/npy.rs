//! NumPy `.npy` test sets: `features.npy` of shape `(N, ...)` and `targets.npy` of shape `(N,)`
//! or `(N, ...)` (masks), as `numpy.save` writes them (format versions 1 to 3, C order,
//! little-endian or byte-sized numbers: `f4`, `f8`, `i1`, `i2`, `i4`, `i8`, `u1`, `u2`, `u4`,
//! `u8`, `b1`). The hash is that of the two files, as for the other two-file layout.

use super::{pair_hash, read_content, Result, TestSet, TestSetError};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A parsed array: its shape and its values as `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<f64>,
}

/// Load `features.npy` and `targets.npy`.
pub fn load(features_path: &Path, targets_path: &Path) -> Result<TestSet> {
    let (feature_hash, feature_bytes) = read_content(features_path)?;
    let (target_hash, target_bytes) = read_content(targets_path)?;
    let features = parse(&feature_bytes).map_err(|reason| format_error(features_path, reason))?;
    let targets = parse(&target_bytes).map_err(|reason| format_error(targets_path, reason))?;
    let rows = |a: &Array| a.shape.first().copied().unwrap_or(0);
    if rows(&features) != rows(&targets) {
        return Err(TestSetError::RowCountMismatch { features: rows(&features), targets: rows(&targets) });
    }
    if rows(&features) == 0 {
        return Err(TestSetError::Empty(features_path.to_path_buf()));
    }
    let sample_shape = features.shape.get(1..).unwrap_or_default().to_vec();
    if sample_shape.is_empty() {
        return Err(format_error(features_path, "features need a shape (N, ...), not (N,)".into()));
    }
    let target_width = targets.shape.get(1..).unwrap_or_default().iter().product();
    let inputs = features.values.iter().map(|v| *v as f32).collect();
    let hash = pair_hash(&feature_hash, &target_hash);
    Ok(TestSet::loaded(sample_shape, inputs, targets.values, target_width, hash))
}

fn format_error(path: &Path, reason: String) -> TestSetError {
    TestSetError::Format { path: path.to_path_buf(), reason }
}

/// Parse the bytes of an `.npy` file.
pub fn parse(bytes: &[u8]) -> core::result::Result<Array, String> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("not an .npy file (no \\x93NUMPY magic)")?;
    let (&major, rest) = rest.split_first().ok_or("truncated header")?;
    let rest = rest.get(1..).ok_or("truncated header")?;
    let (header_len, rest) = match major {
        1 => {
            let (len, rest) = rest.split_at_checked(2).ok_or("truncated header")?;
            (usize::from(u16::from_le_bytes([len[0], len[1]])), rest)
        }
        2 | 3 => {
            let (len, rest) = rest.split_at_checked(4).ok_or("truncated header")?;
            (u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize, rest)
        }
        other => return Err(format!("format version {other} is not read (1 to 3 are)")),
    };
    let (header, data) = rest.split_at_checked(header_len).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = field(header, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if field(header, "fortran_order")? != "False" {
        return Err("Fortran-order arrays are not read; save in C order".into());
    }
    let shape_text = field(header, "shape")?;
    let shape = shape_text
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| format!("shape {shape_text} is not a tuple of sizes")))
        .collect::<core::result::Result<Vec<_>, _>>()?;
    let count = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d)).ok_or("shape overflows")?;
    let (kind, size) = dtype(descr)?;
    let expected = count.checked_mul(size).ok_or("shape overflows")?;
    if data.len() != expected {
        return Err(format!("{} data bytes, the header's shape {shape:?} of {descr} needs {expected}", data.len()));
    }
    let values = data.chunks_exact(size).map(kind).collect::<Vec<f64>>();
    if values.iter().any(|v| !v.is_finite()) {
        return Err("a value is NaN or infinite".into());
    }
    Ok(Array { shape, values })
}

/// The value of `key` in the header's dictionary literal.
fn field<'a>(header: &'a str, key: &str) -> core::result::Result<&'a str, String> {
    let missing = || format!("header has no '{key}'");
    let start = header.find(&format!("'{key}'")).ok_or_else(missing)? + key.len() + 2;
    let value =
        header.get(start..).ok_or_else(missing)?.trim_start().strip_prefix(':').ok_or_else(missing)?.trim_start();
    let end = if value.starts_with('(') { value.find(')').map(|i| i + 1) } else { value.find([',', '}']) };
    Ok(value.get(..end.ok_or_else(missing)?).ok_or_else(missing)?.trim())
}

type Reader = fn(&[u8]) -> f64;

/// A reader and the size of one element of the type `descr`.
fn dtype(descr: &str) -> core::result::Result<(Reader, usize), String> {
    fn bytes<const N: usize>(chunk: &[u8]) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(chunk);
        out
    }
    let reader: (Reader, usize) = match descr {
        "<f4" => (|c| f64::from(f32::from_le_bytes(bytes(c))), 4),
        "<f8" => (|c| f64::from_le_bytes(bytes(c)), 8),
        "|i1" => (|c| f64::from(i8::from_le_bytes(bytes(c))), 1),
        "<i2" => (|c| f64::from(i16::from_le_bytes(bytes(c))), 2),
        "<i4" => (|c| f64::from(i32::from_le_bytes(bytes(c))), 4),
        "<i8" => (|c| i64::from_le_bytes(bytes(c)) as f64, 8),
        "|u1" => (|c| f64::from(c[0]), 1),
        "<u2" => (|c| f64::from(u16::from_le_bytes(bytes(c))), 2),
        "<u4" => (|c| f64::from(u32::from_le_bytes(bytes(c))), 4),
        "<u8" => (|c| u64::from_le_bytes(bytes(c)) as f64, 8),
        "|b1" => (|c| f64::from(u8::from(c[0] != 0)), 1),
        other => return Err(format!("element type {other} is not read (little-endian numbers and bools are)")),
    };
    Ok(reader)
}

/// The bytes of a version-1 `.npy` file of `f32` values, as `numpy.save` writes it (for tests,
/// benchmarks and members preparing sets).
pub fn encode_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // numpy pads the header with spaces to a multiple of 64 bytes, ending in a newline.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    values.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_files_round_trip_and_bad_ones_are_refused() {
        let bytes = encode_f32(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        assert_eq!(bytes.len() % 64, 24, "header padded to 64 bytes, then 6 floats");
        let array = parse(&bytes).unwrap();
        assert_eq!(array.shape, vec![2, 3]);
        assert_eq!(array.values[5], 6.5);
        assert_eq!(parse(&encode_f32(&[3], &[1.0, 2.0, 3.0])).unwrap().shape, vec![3]);

        // Bytes numpy 1.26 writes for `np.save(f, np.array([[1, 0], [0, 1]], dtype=np.uint8))`.
        let mut u8s = b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }".to_vec();
        u8s.resize(10 + 117, b' ');
        u8s.push(b'\n');
        u8s.extend_from_slice(&[1, 0, 0, 1]);
        assert_eq!(parse(&u8s).unwrap().values, vec![1.0, 0.0, 0.0, 1.0]);

        let truncated = &bytes[..bytes.len() - 3];
        assert!(parse(truncated).unwrap_err().contains("data bytes"), "{:?}", parse(truncated));
        assert!(parse(b"PK\x03\x04").unwrap_err().contains("magic"));
        let mut fortran = bytes.clone();
        let at = fortran.windows(5).position(|w| w == b"False").unwrap();
        fortran[at..at + 5].copy_from_slice(b"True ");
        assert!(parse(&fortran).unwrap_err().contains("Fortran"));
        let mut big_endian = bytes.clone();
        let at = big_endian.windows(3).position(|w| w == b"<f4").unwrap();
        big_endian[at] = b'>';
        assert!(parse(&big_endian).unwrap_err().contains(">f4"));
        let nan = encode_f32(&[1, 1], &[f32::NAN]);
        assert!(parse(&nan).unwrap_err().contains("NaN"));
    }
}
