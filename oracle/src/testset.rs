//! Tabular test sets (G and each validator's L) and their hashes.
//!
//! Layouts read:
//! - one CSV file, target in the last column (`breast_cancer.csv`): fields split
//!   on commas, or on white space when a line has no comma; a first line that is not all numbers
//!   is a header (scikit-learn's `569,30,malignant,benign` is one);
//! - two files, features and targets (the layout of the diabetes set).
//!
//! The hash the chain records is SHA3-256 of the file's bytes as stored; for two files, SHA3-256
//! of the two files' hashes, features first. Compressed files (`.gz`) are refused for now: the
//! gzip decoders on crates.io change the features of crates under the node's whole dependency
//! tree (`miniz_oxide` under `backtrace`), which would rebuild it; gunzip such a set first.

use sha3::{Digest, Sha3_256};
use std::{
    io::Read,
    path::{Path, PathBuf},
};

/// Why a test set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TestSetError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}, line {line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No data rows.
    #[error("{0}: no data rows")]
    Empty(PathBuf),
    /// Feature and target files disagree.
    #[error("{features} feature rows but {targets} targets")]
    RowCountMismatch {
        /// Feature rows.
        features: usize,
        /// Target rows.
        targets: usize,
    },
    /// The file is gzip-compressed.
    #[error("{0}: compressed test sets are not read; gunzip it first")]
    Compressed(PathBuf),
    /// A target is not a class label.
    #[error("row {row}: target {value} is not a class label (a non-negative integer)")]
    NotALabel {
        /// 0-based row.
        row: usize,
        /// The target.
        value: f64,
    },
}

/// Result of loading.
pub type Result<T> = core::result::Result<T, TestSetError>;

/// A tabular test set: `rows × width` features (row-major) and one target per row.
#[derive(Debug, Clone, PartialEq)]
pub struct TabularSet {
    /// Number of samples.
    pub rows: usize,
    /// Features per sample.
    pub width: usize,
    /// Features, row-major.
    pub features: Vec<f32>,
    /// Target of each sample (a class index, or a value for regression).
    pub targets: Vec<f64>,
    /// SHA3-256 of the stored file(s), as recorded on chain.
    pub hash: [u8; 32],
}

impl TabularSet {
    /// One CSV file with the target in the last column.
    pub fn from_csv(path: &Path) -> Result<Self> {
        let (bytes, text) = read(path)?;
        let table = parse_table(path, &text)?;
        let width = table.width.checked_sub(1).filter(|w| *w > 0).ok_or_else(|| TestSetError::Line {
            path: path.to_path_buf(),
            line: table.first_line,
            reason: "needs at least one feature and a target".into(),
        })?;
        let mut features = Vec::with_capacity(table.rows * width);
        let mut targets = Vec::with_capacity(table.rows);
        for row in table.values.chunks(table.width) {
            features.extend(row[..width].iter().map(|v| *v as f32));
            targets.push(row[width]);
        }
        Ok(Self { rows: table.rows, width, features, targets, hash: sha3(&bytes) })
    }

    /// Features and targets in two files (one target per line).
    pub fn from_features_and_targets(features_path: &Path, targets_path: &Path) -> Result<Self> {
        let (feature_bytes, feature_text) = read(features_path)?;
        let (target_bytes, target_text) = read(targets_path)?;
        let features = parse_table(features_path, &feature_text)?;
        let targets = parse_table(targets_path, &target_text)?;
        if targets.width != 1 {
            return Err(TestSetError::Line {
                path: targets_path.to_path_buf(),
                line: targets.first_line,
                reason: format!("{} fields; a target file has one per line", targets.width),
            });
        }
        if features.rows != targets.rows {
            return Err(TestSetError::RowCountMismatch { features: features.rows, targets: targets.rows });
        }
        let mut hasher = Sha3_256::new();
        hasher.update(sha3(&feature_bytes));
        hasher.update(sha3(&target_bytes));
        Ok(Self {
            rows: features.rows,
            width: features.width,
            features: features.values.iter().map(|v| *v as f32).collect(),
            targets: targets.values,
            hash: hasher.finalize().into(),
        })
    }

    /// The targets as class labels; refused if one is not a non-negative integer.
    pub fn labels(&self) -> Result<Vec<u32>> {
        self.targets
            .iter()
            .enumerate()
            .map(|(row, value)| {
                if value.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(value) {
                    Ok(*value as u32)
                } else {
                    Err(TestSetError::NotALabel { row, value: *value })
                }
            })
            .collect()
    }
}

fn sha3(bytes: &[u8]) -> [u8; 32] {
    Sha3_256::digest(bytes).into()
}

/// The stored bytes and their text.
fn read(path: &Path) -> Result<(Vec<u8>, String)> {
    let io = |source| TestSetError::Io { path: path.to_path_buf(), source };
    let bytes = std::fs::read(path).map_err(io)?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(TestSetError::Compressed(path.to_path_buf()));
    }
    let mut text = String::new();
    (&bytes[..]).read_to_string(&mut text).map_err(io)?;
    Ok((bytes, text))
}

struct Table {
    rows: usize,
    width: usize,
    values: Vec<f64>,
    first_line: usize,
}

fn fields(line: &str) -> Vec<&str> {
    if line.contains(',') {
        line.split(',').map(str::trim).collect()
    } else {
        line.split_whitespace().collect()
    }
}

fn numbers(fields: &[&str]) -> Option<Vec<f64>> {
    fields.iter().map(|f| f.parse::<f64>().ok()).collect()
}

fn parse_table(path: &Path, text: &str) -> Result<Table> {
    let mut lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()).peekable();
    let bad = |line: usize, reason: String| TestSetError::Line { path: path.to_path_buf(), line: line + 1, reason };
    // A header: a first line that is not all numbers.
    if lines.peek().is_some_and(|(_, first)| numbers(&fields(first)).is_none()) {
        lines.next();
    }
    let mut table = Table { rows: 0, width: 0, values: Vec::new(), first_line: 1 };
    for (number, line) in lines {
        let row = fields(line);
        if table.rows == 0 {
            table.width = row.len();
            table.first_line = number + 1;
        } else if row.len() != table.width {
            return Err(bad(number, format!("{} fields, expected {}", row.len(), table.width)));
        }
        for field in row {
            let value: f64 = field.parse().map_err(|_| bad(number, format!("`{field}` is not a number")))?;
            if !value.is_finite() {
                return Err(bad(number, format!("`{field}` is not finite")));
            }
            table.values.push(value);
        }
        table.rows += 1;
    }
    if table.rows == 0 {
        return Err(TestSetError::Empty(path.to_path_buf()));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn datasets() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets")
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
        path
    }

    #[test]
    fn the_shared_breast_cancer_set_loads_with_its_header_skipped() {
        let path = datasets().join("breast_cancer.csv");
        let set = TabularSet::from_csv(&path).unwrap();
        assert_eq!((set.rows, set.width), (569, 30));
        assert_eq!(set.features[0], 17.99);
        let labels = set.labels().unwrap();
        // 212 malignant (0), 357 benign (1), as the dataset's description says.
        assert_eq!(labels.iter().filter(|l| **l == 0).count(), 212);
        assert_eq!(labels.iter().filter(|l| **l == 1).count(), 357);
        assert_eq!(set.hash, sha3(&std::fs::read(&path).unwrap()));
    }

    #[test]
    fn two_file_sets_load_and_compressed_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // The first two rows of the diabetes set, as its two files lay them out.
        let features = write(&dir, "x.txt", "59 2 32.1 101.0 157 93.2 38.0 4.0 4.8598 87\n48 1 21.6 87.0 183 103.2 70.0 3.0 3.8918 69\n");
        let targets = write(&dir, "y.txt", "1.510000000000000000e+02\n7.500000000000000000e+01\n");
        let set = TabularSet::from_features_and_targets(&features, &targets).unwrap();
        assert_eq!((set.rows, set.width), (2, 10));
        assert_eq!((set.features[10], set.targets[1]), (48.0, 75.0));
        let mut expected = Sha3_256::new();
        expected.update(sha3(&std::fs::read(&features).unwrap()));
        expected.update(sha3(&std::fs::read(&targets).unwrap()));
        assert_eq!(set.hash, <[u8; 32]>::from(expected.finalize()));
        let error = TabularSet::from_csv(&datasets().join("digits.csv.gz")).unwrap_err();
        assert!(matches!(error, TestSetError::Compressed(_)), "{error}");
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let ragged = write(&dir, "ragged.csv", "1,2,0\n3,4\n");
        let error = TabularSet::from_csv(&ragged).unwrap_err().to_string();
        assert!(error.ends_with("line 2: 2 fields, expected 3"), "{error}");
        let word = write(&dir, "word.csv", "1,2,0\n3,x,1\n");
        assert!(TabularSet::from_csv(&word).unwrap_err().to_string().contains("`x` is not a number"));
        let nan = write(&dir, "nan.csv", "1,2,0\n3,NaN,1\n");
        assert!(TabularSet::from_csv(&nan).unwrap_err().to_string().contains("not finite"));
        let empty = write(&dir, "empty.csv", "a,b,label\n");
        assert!(matches!(TabularSet::from_csv(&empty), Err(TestSetError::Empty(_))));
        let fraction = write(&dir, "fraction.csv", "1,2,0.5\n");
        assert!(matches!(
            TabularSet::from_csv(&fraction).unwrap().labels(),
            Err(TestSetError::NotALabel { row: 0, .. })
        ));
        let targets = write(&dir, "t.csv", "1\n2\n");
        let features = write(&dir, "f.csv", "1 2\n");
        assert!(matches!(
            TabularSet::from_features_and_targets(&features, &targets),
            Err(TestSetError::RowCountMismatch { features: 1, targets: 2 })
        ));
        assert!(matches!(
            TabularSet::from_csv(&dir.path().join("missing.csv")),
            Err(TestSetError::Io { .. })
        ));
    }
}
