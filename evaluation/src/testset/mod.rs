//! Test sets (G and each validator's L) and the hashes the chain records for them.
//!
//! Layouts read ([`TestSet::open`] tells them apart):
//! - one CSV file, target in the last column (`breast_cancer.csv`): fields split on commas, or on
//!   white space when a line has no comma; a first line that is not all numbers is a header
//!   (scikit-learn's `569,30,malignant,benign` is one);
//! - a folder with `features.*` and `targets.*` text files (the layout of the diabetes set);
//! - a folder with `features.npy` and `targets.npy` ([`npy`]);
//! - a folder of images with one subfolder per class, PNG or JPEG ([`images`]; the public chest
//!   X-ray layout `NORMAL/`, `PNEUMONIA/`), resized and normalised as the coalition declares.
//!
//! Text files may be gzip-compressed (decoded with `zune-inflate`: the usual `flate2` would change
//! `miniz_oxide`'s features under the node's whole tree and rebuild it).
//!
//! The hash the chain records is SHA3-256 of a file's bytes as stored; for two files, SHA3-256 of
//! the two files' hashes, features first; for an image folder, see [`images`].
//!
//! Tabular and `.npy` inputs are held in memory: what is evaluated is exactly what was hashed,
//! and tabular sets are small (56,900 rows of 30 features: 44 MiB peak for `oracle evaluate`).
//! Images are decoded batch by batch, so memory follows the batch size (1,797 or 7,188 PNG files:
//! 77 or 78 MiB peak); each file's bytes are checked against the hash taken when the set was
//! opened, so a file changed since cannot be evaluated under the old hash.

pub mod images;
pub mod npy;

use sha3::{Digest, Sha3_256};
use std::{
    borrow::Cow,
    ops::Range,
    path::{Path, PathBuf},
};

pub use tclearn_model::genesis::ImageSpec;

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
    /// A file is malformed as a whole (npy header, image, gzip stream).
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No samples.
    #[error("{0}: no samples")]
    Empty(PathBuf),
    /// Feature and target files disagree.
    #[error("{features} feature rows but {targets} targets")]
    RowCountMismatch {
        /// Feature rows.
        features: usize,
        /// Target rows.
        targets: usize,
    },
    /// A target is not a class label.
    #[error("row {row}: target {value} is not a class label (a non-negative integer)")]
    NotALabel {
        /// 0-based row.
        row: usize,
        /// The target.
        value: f64,
    },
    /// The path is none of the layouts.
    #[error("{0}: not a test set (a CSV file, or a folder with features and targets, or class subfolders of images)")]
    Layout(PathBuf),
    /// An image folder without the coalition's image declaration.
    #[error("{0}: an image folder needs the coalition's image declaration (size, channels, normalisation)")]
    NoImageSpec(PathBuf),
}

/// Result of loading.
pub type Result<T> = core::result::Result<T, TestSetError>;

/// Where a test set's inputs come from.
#[derive(Debug, Clone, PartialEq)]
enum Inputs {
    /// All inputs, row-major.
    Loaded(Vec<f32>),
    /// Image files, decoded per batch.
    Images {
        /// One file per sample, with the SHA3-256 its bytes had when the set was hashed.
        files: Vec<(PathBuf, [u8; 32])>,
        /// How each is turned into a tensor.
        spec: ImageSpec,
    },
}

/// A test set: `samples` inputs of `sample_shape` and `target_width` targets per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSet {
    /// Number of samples.
    pub samples: usize,
    /// One sample's input shape, without the batch dimension.
    pub sample_shape: Vec<usize>,
    /// Targets, row-major: a class index or value per sample, or a mask.
    pub targets: Vec<f64>,
    /// Targets per sample.
    pub target_width: usize,
    /// SHA3-256 as recorded on chain.
    pub hash: [u8; 32],
    inputs: Inputs,
}

impl TestSet {
    /// The same set with every input decoded once and kept in memory (image sets are otherwise
    /// decoded batch by batch, each file checked against its hash again): for a set scored
    /// many times, as G is by a validator, at the cost of holding its tensors.
    pub fn decoded(self) -> Result<Self> {
        if matches!(self.inputs, Inputs::Loaded(_)) {
            return Ok(self);
        }
        let inputs = self.inputs(0..self.samples)?.into_owned();
        Ok(Self { inputs: Inputs::Loaded(inputs), ..self })
    }

    /// Open `path` in whichever layout it has; `image` is the coalition's image declaration.
    pub fn open(path: &Path, image: Option<&ImageSpec>) -> Result<Self> {
        if path.is_file() {
            return Self::from_csv(path);
        }
        let entries = list_dir(path)?;
        let named = |stem: &str| entries.iter().find(|p| p.is_file() && file_stem(p) == stem).cloned();
        let (features, targets) = (named("features"), named("targets"));
        if let (Some(features), Some(targets)) = (features, targets) {
            let npy = |p: &Path| p.extension().is_some_and(|e| e == "npy");
            return if npy(&features) && npy(&targets) {
                npy::load(&features, &targets)
            } else {
                Self::from_features_and_targets(&features, &targets)
            };
        }
        if entries.iter().any(|p| p.is_dir()) {
            let spec = image.ok_or_else(|| TestSetError::NoImageSpec(path.to_path_buf()))?;
            return images::load(path, spec);
        }
        Err(TestSetError::Layout(path.to_path_buf()))
    }

    /// One CSV file with the target in the last column.
    pub fn from_csv(path: &Path) -> Result<Self> {
        let (hash, table) = read_table(path)?;
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
        Ok(Self::loaded(vec![width], features, targets, 1, hash))
    }

    /// Features and targets in two text files (one target per line).
    pub fn from_features_and_targets(features_path: &Path, targets_path: &Path) -> Result<Self> {
        let (feature_hash, features) = read_table(features_path)?;
        let (target_hash, targets) = read_table(targets_path)?;
        if features.rows != targets.rows {
            return Err(TestSetError::RowCountMismatch { features: features.rows, targets: targets.rows });
        }
        let hash = pair_hash(&feature_hash, &target_hash);
        let inputs = features.values.iter().map(|v| *v as f32).collect();
        Ok(Self::loaded(vec![features.width], inputs, targets.values, targets.width, hash))
    }

    /// A set whose inputs are all in memory.
    pub(crate) fn loaded(
        sample_shape: Vec<usize>,
        inputs: Vec<f32>,
        targets: Vec<f64>,
        target_width: usize,
        hash: [u8; 32],
    ) -> Self {
        let samples = targets.len() / target_width.max(1);
        Self { samples, sample_shape, targets, target_width, hash, inputs: Inputs::Loaded(inputs) }
    }

    /// Values in one sample's input.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// The inputs of samples `rows`, row-major: borrowed when loaded, decoded for images.
    pub fn inputs(&self, rows: Range<usize>) -> Result<Cow<'_, [f32]>> {
        let rows = rows.start.min(self.samples)..rows.end.min(self.samples);
        match &self.inputs {
            Inputs::Loaded(values) => {
                let len = self.sample_len();
                Ok(Cow::Borrowed(values.get(rows.start * len..rows.end * len).unwrap_or_default()))
            }
            Inputs::Images { files, spec } => {
                let mut values = Vec::with_capacity(rows.len() * self.sample_len());
                for (file, hash) in files.get(rows).unwrap_or_default() {
                    images::decode(file, hash, spec, &mut values)?;
                }
                Ok(Cow::Owned(values))
            }
        }
    }

    /// The targets as class labels (one per sample); refused if one is not a non-negative integer.
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

/// SHA3-256 of the hashes of a features file and a targets file, features first.
fn pair_hash(features: &[u8; 32], targets: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha3_256::new();
    hasher.update(features);
    hasher.update(targets);
    hasher.finalize().into()
}

fn file_stem(path: &Path) -> &str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.split('.').next().unwrap_or_default()
}

/// The entries of a folder, sorted by name.
fn list_dir(path: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| TestSetError::Io { path: path.to_path_buf(), source };
    let mut entries = std::fs::read_dir(path)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io)?;
    entries.sort();
    Ok(entries)
}

fn sha3(bytes: &[u8]) -> [u8; 32] {
    Sha3_256::digest(bytes).into()
}

/// A file's stored bytes.
fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| TestSetError::Io { path: path.to_path_buf(), source })
}

/// The SHA3-256 of a file's stored bytes and its content parsed as a table: the hash is taken
/// on one thread while the content is gunzipped (when it is gzip) and parsed on others.
fn read_table(path: &Path) -> Result<([u8; 32], Table)> {
    let bytes = read(path)?;
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| sha3(&bytes));
        let table = content(path, &bytes).and_then(|content| {
            let text = std::str::from_utf8(&content)
                .map_err(|_| TestSetError::Format { path: path.to_path_buf(), reason: "not UTF-8 text".into() })?;
            parse_table(path, text)
        });
        let hash = hashing.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((hash, table?))
    })
}

/// A file's content from its stored bytes: gunzipped when it is gzip.
fn content<'a>(path: &Path, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let content = zune_inflate::DeflateDecoder::new(bytes)
            .decode_gzip()
            .map_err(|e| TestSetError::Format { path: path.to_path_buf(), reason: format!("gzip: {e:?}") })?;
        return Ok(Cow::Owned(content));
    }
    Ok(Cow::Borrowed(bytes))
}

/// The SHA3-256 of a file's stored bytes, and its content: gunzipped when it is gzip.
fn read_content(path: &Path) -> Result<([u8; 32], Vec<u8>)> {
    let bytes = read(path)?;
    let hash = sha3(&bytes);
    let content = content(path, &bytes)?.into_owned();
    Ok((hash, content))
}

#[derive(Debug)]
struct Table {
    rows: usize,
    width: usize,
    values: Vec<f64>,
    first_line: usize,
}

/// The fields of a line: comma-separated (trimmed) if it has a comma, else separated by white
/// space.
fn fields(line: &str) -> impl Iterator<Item = &str> {
    let commas = line.contains(',');
    let (by_comma, by_space) =
        if commas { (Some(line.split(',').map(str::trim)), None) } else { (None, Some(line.split_whitespace())) };
    by_comma.into_iter().flatten().chain(by_space.into_iter().flatten())
}

fn is_numeric(line: &str) -> bool {
    fields(line).all(|f| f.parse::<f64>().is_ok())
}

/// Texts above this size are parsed on several threads.
const PARALLEL_PARSE_BYTES: usize = 1 << 20;

fn parse_table(path: &Path, text: &str) -> Result<Table> {
    // A header: a first non-empty line that is not all numbers.
    let mut start = 0;
    let mut first_line = 0;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        if !line.trim().is_empty() {
            if !is_numeric(line.trim_end_matches(['\n', '\r'])) {
                start += line.len();
                first_line = number + 1;
            }
            break;
        }
        start += line.len();
        first_line = number + 1;
    }
    let body = &text[start..];
    // Chunks that end at line ends, one per core for large texts.
    let threads = if body.len() > PARALLEL_PARSE_BYTES {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
    } else {
        1
    };
    let mut chunks: Vec<&str> = Vec::with_capacity(threads);
    let mut rest = body;
    for remaining in (1..=threads).rev() {
        let cut = if remaining == 1 {
            rest.len()
        } else {
            let target = rest.len() / remaining;
            rest[target..].find('\n').map_or(rest.len(), |i| target + i + 1)
        };
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    // Line numbers where each chunk starts.
    let mut offsets = Vec::with_capacity(chunks.len());
    let mut line = first_line;
    for chunk in &chunks {
        offsets.push(line);
        line += chunk.matches('\n').count();
    }
    let parsed: Vec<Result<Table>> = if chunks.len() == 1 {
        vec![parse_rows(path, chunks[0], offsets[0])]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .zip(&offsets)
                .map(|(chunk, offset)| scope.spawn(move || parse_rows(path, chunk, *offset)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        })
    };
    let mut table = Table { rows: 0, width: 0, values: Vec::new(), first_line: 1 };
    for part in parsed {
        let part = part?;
        if part.rows == 0 {
            continue;
        }
        if table.rows == 0 {
            table.width = part.width;
            table.first_line = part.first_line;
            table.values.reserve(part.values.len() * chunks.len());
        } else if part.width != table.width {
            return Err(TestSetError::Line {
                path: path.to_path_buf(),
                line: part.first_line,
                reason: format!("{} fields, expected {}", part.width, table.width),
            });
        }
        table.rows += part.rows;
        table.values.extend_from_slice(&part.values);
    }
    if table.rows == 0 {
        return Err(TestSetError::Empty(path.to_path_buf()));
    }
    Ok(table)
}

/// The rows of `text`, whose first line is line `first_line` (0-based) of the file.
fn parse_rows(path: &Path, text: &str, first_line: usize) -> Result<Table> {
    let bad = |line: usize, reason: String| TestSetError::Line { path: path.to_path_buf(), line: line + 1, reason };
    let mut table = Table { rows: 0, width: 0, values: Vec::with_capacity(text.len() / 8), first_line: 1 };
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = first_line + index;
        let mut width = 0;
        for field in fields(line) {
            let value: f64 = field.parse().map_err(|_| bad(number, format!("`{field}` is not a number")))?;
            if !value.is_finite() {
                return Err(bad(number, format!("`{field}` is not finite")));
            }
            table.values.push(value);
            width += 1;
        }
        if table.rows == 0 {
            table.width = width;
            table.first_line = number + 1;
        } else if width != table.width {
            return Err(bad(number, format!("{width} fields, expected {}", table.width)));
        }
        table.rows += 1;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn datasets() -> PathBuf {
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
        let set = TestSet::open(&path, None).unwrap();
        assert_eq!((set.samples, set.sample_shape.as_slice(), set.target_width), (569, &[30][..], 1));
        assert_eq!(set.inputs(0..1).unwrap()[0], 17.99);
        assert_eq!(set.inputs(568..600).unwrap().len(), 30, "ranges past the end are clipped");
        let labels = set.labels().unwrap();
        // 212 malignant (0), 357 benign (1), as the dataset's description says.
        assert_eq!(labels.iter().filter(|l| **l == 0).count(), 212);
        assert_eq!(labels.iter().filter(|l| **l == 1).count(), 357);
        assert_eq!(set.hash, sha3(&std::fs::read(&path).unwrap()));
    }

    #[test]
    fn a_large_table_parsed_on_several_threads_is_the_table_parsed_on_one() {
        // 60,000 rows (about 2 MiB, above the parallel threshold) after a header.
        let mut text = String::from("a,b,target\n");
        for i in 0..60_000u32 {
            text.push_str(&format!("{}.25, {},{}\r\n", i, f64::from(i) * -0.5, i % 3));
        }
        let path = Path::new("big.csv");
        let table = parse_table(path, &text).unwrap();
        let one_thread = parse_rows(path, &text[text.find('\n').unwrap() + 1..], 1).unwrap();
        assert!(text.len() > PARALLEL_PARSE_BYTES);
        assert_eq!((table.rows, table.width, table.first_line), (60_000, 3, 2));
        assert_eq!(table.values, one_thread.values);
        assert_eq!(&table.values[3..6], &[1.25, -0.5, 1.0]);
        // An error in the last rows is reported at its line of the file.
        let broken = text.replacen("59998.25", "x", 1);
        let error = parse_table(path, &broken).unwrap_err().to_string();
        assert!(error.contains("line 60000: `x` is not a number"), "{error}");
        let ragged = format!("{text}1,2\n");
        assert!(parse_table(path, &ragged).unwrap_err().to_string().contains("line 60002: 2 fields, expected 3"));
    }

    #[test]
    fn the_shared_diabetes_set_loads_from_its_two_gzip_files() {
        let dir = tempfile::tempdir().unwrap();
        let features = dir.path().join("features.csv.gz");
        let targets = dir.path().join("targets.csv.gz");
        std::fs::copy(datasets().join("diabetes_data_raw.csv.gz"), &features).unwrap();
        std::fs::copy(datasets().join("diabetes_target.csv.gz"), &targets).unwrap();
        let set = TestSet::open(dir.path(), None).unwrap();
        // 442 patients, 10 measurements; the first is 59 years old with a target of 151.
        assert_eq!((set.samples, set.sample_shape.as_slice()), (442, &[10][..]));
        assert_eq!((set.inputs(0..1).unwrap()[0], set.targets[0]), (59.0, 151.0));
        let expected = pair_hash(&sha3(&std::fs::read(&features).unwrap()), &sha3(&std::fs::read(&targets).unwrap()));
        assert_eq!(set.hash, expected, "the hash is over the stored (compressed) bytes");
    }

    #[test]
    fn npy_folders_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("features.npy"), npy::encode_f32(&[2, 1, 2, 2], &[0.5; 8])).unwrap();
        std::fs::write(
            dir.path().join("targets.npy"),
            npy::encode_f32(&[2, 4], &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0]),
        )
        .unwrap();
        let set = TestSet::open(dir.path(), None).unwrap();
        assert_eq!((set.samples, set.sample_shape.as_slice(), set.target_width), (2, &[1, 2, 2][..], 4));
        assert_eq!(set.inputs(1..2).unwrap().len(), 4);
        std::fs::write(dir.path().join("targets.npy"), npy::encode_f32(&[3], &[1.0; 3])).unwrap();
        assert!(matches!(
            TestSet::open(dir.path(), None),
            Err(TestSetError::RowCountMismatch { features: 2, targets: 3 })
        ));
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let ragged = write(&dir, "ragged.csv", "1,2,0\n3,4\n");
        let error = TestSet::from_csv(&ragged).unwrap_err().to_string();
        assert!(error.ends_with("line 2: 2 fields, expected 3"), "{error}");
        let word = write(&dir, "word.csv", "1,2,0\n3,x,1\n");
        assert!(TestSet::from_csv(&word).unwrap_err().to_string().contains("`x` is not a number"));
        let nan = write(&dir, "nan.csv", "1,2,0\n3,NaN,1\n");
        assert!(TestSet::from_csv(&nan).unwrap_err().to_string().contains("not finite"));
        let empty = write(&dir, "empty.csv", "a,b,label\n");
        assert!(matches!(TestSet::from_csv(&empty), Err(TestSetError::Empty(_))));
        let fraction = write(&dir, "fraction.csv", "1,2,0.5\n");
        assert!(matches!(TestSet::from_csv(&fraction).unwrap().labels(), Err(TestSetError::NotALabel { row: 0, .. })));
        let targets = write(&dir, "t.csv", "1\n2\n");
        let features = write(&dir, "f.csv", "1 2\n");
        assert!(matches!(
            TestSet::from_features_and_targets(&features, &targets),
            Err(TestSetError::RowCountMismatch { features: 1, targets: 2 })
        ));
        assert!(matches!(TestSet::from_csv(&dir.path().join("missing.csv")), Err(TestSetError::Io { .. })));
        let fake_gzip = dir.path().join("fake.csv.gz");
        std::fs::write(&fake_gzip, [0x1f, 0x8b, 0, 1, 2]).unwrap();
        assert!(TestSet::from_csv(&fake_gzip).unwrap_err().to_string().contains("gzip"));
        let nothing = tempfile::tempdir().unwrap();
        assert!(matches!(TestSet::open(nothing.path(), None), Err(TestSetError::Layout(_))));
    }
}
