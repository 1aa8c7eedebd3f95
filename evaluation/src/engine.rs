//! Inference with ONNX Runtime (through `ort`, the library loaded at run time from
//! `ORT_DYLIB_PATH`, a path given here, or where `scripts/setup.sh` installed it).
//!
//! A [`Model`] runs a test set in batches of a fixed number of rows, so memory follows the batch
//! size, not the test set's size; ONNX Runtime parallelises each batch over `threads` cores.
//! Models reach it only after [`tclearn_model::checks::check`].

use ort::{
    environment::Environment,
    session::{builder::GraphOptimizationLevel, Session},
    value::TensorRef,
};
use std::{
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
};
use tclearn_model::genesis::{Optimization, RuntimeSpec};

/// Why inference failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The ONNX Runtime library could not be loaded.
    #[error("loading ONNX Runtime from {path}: {reason}")]
    Library {
        /// Where it was looked for.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// The library is not the version the coalition declares.
    #[error("ONNX Runtime {loaded} is loaded but the coalition's declaration says {declared}: every validator runs the same version, so that honest validators agree")]
    Version {
        /// The loaded library's.
        loaded: String,
        /// The declaration's.
        declared: String,
    },
    /// ONNX Runtime refused the model or the run.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// The model's inputs or outputs are not one float tensor in, one out.
    #[error("model signature: {0}")]
    Signature(String),
    /// The features do not fill whole rows of `width`.
    #[error("{len} feature values do not make rows of {width}")]
    Ragged {
        /// Number of values.
        len: usize,
        /// Row width.
        width: usize,
    },
}

/// `library`, else [`default_library`], which must be a file: ort would ignore a later path
/// silently, so a missing file is reported here instead.
fn resolve_library(library: Option<&Path>) -> Result<PathBuf, EngineError> {
    let path = match library {
        Some(path) => path.to_path_buf(),
        None => default_library().ok_or_else(|| EngineError::Library {
            path: format!("$ORT_DYLIB_PATH, or libonnxruntime.so.{ONNXRUNTIME_VERSION} in scripts/setup.sh's cache"),
            reason: "not set, and not installed (run scripts/setup.sh, or pass --ort-library)".into(),
        })?,
    };
    if !path.is_file() {
        return Err(EngineError::Library { path: path.display().to_string(), reason: "no such file".into() });
    }
    Ok(path)
}

/// The version an ONNX Runtime library reports (`OrtGetApiBase()->GetVersionString()`).
fn library_version(path: &Path) -> Result<String, String> {
    // SAFETY: loading ONNX Runtime's library runs nothing but its own initialisers (ort loads
    // the same file the same way; if it already has, this only takes a reference);
    // `OrtGetApiBase` is ONNX Runtime's C entry point,
    // takes nothing and returns a pointer to a static table whose `GetVersionString` returns a
    // static NUL-terminated string.
    unsafe {
        let library = libloading::Library::new(path).map_err(|e| e.to_string())?;
        let get_api_base: libloading::Symbol<unsafe extern "system" fn() -> *const ort::sys::OrtApiBase> =
            library.get(b"OrtGetApiBase").map_err(|e| format!("not ONNX Runtime: {e}"))?;
        let base = get_api_base();
        if base.is_null() {
            return Err("OrtGetApiBase returned nothing".into());
        }
        let version = ((*base).GetVersionString)();
        if version.is_null() {
            return Err("no version string".into());
        }
        Ok(std::ffi::CStr::from_ptr(version).to_string_lossy().into_owned())
    }
}

fn runtime(error: ort::Error) -> EngineError {
    EngineError::Runtime(error.to_string())
}

/// ONNX Runtime, loaded once, and the settings of the sessions it makes.
pub struct Engine {
    environment: &'static Environment,
    threads: usize,
    optimization: Optimization,
    version: String,
}

pub use tclearn_model::genesis::ONNXRUNTIME_VERSION;

/// Where ONNX Runtime is when nobody says: `$ORT_DYLIB_PATH` if set, else the library
/// `scripts/setup.sh` put in its cache (`$TCLEARN_CACHE`, by default `~/.cache/tclearn`,
/// `onnxruntime/<version>/libonnxruntime.so.<version>`), so that the installed binaries run as
/// the README writes them.
pub fn default_library() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(path.into());
    }
    let cache = std::env::var_os("TCLEARN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/tclearn")))?;
    let path =
        cache.join("onnxruntime").join(ONNXRUNTIME_VERSION).join(format!("libonnxruntime.so.{ONNXRUNTIME_VERSION}"));
    path.is_file().then_some(path)
}

/// The process's one ONNX Runtime environment (ONNX Runtime allows one per process) and the
/// library it was loaded from.
static ENVIRONMENT: OnceLock<(PathBuf, Environment)> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

impl Engine {
    /// Load ONNX Runtime from `library`, else [`default_library`]; sessions use `threads`
    /// threads. The library is loaded once per process; asking for another one afterwards is an
    /// error.
    pub fn new(library: Option<&Path>, threads: usize) -> Result<Self, EngineError> {
        let path = resolve_library(library)?;
        let library_error = |reason: String| EngineError::Library { path: path.display().to_string(), reason };
        let _loading = LOADING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (loaded, environment) = match ENVIRONMENT.get() {
            Some(loaded) => loaded,
            None => {
                let environment = ort::init_from(&path)
                    .map_err(|e| library_error(e.to_string()))?
                    .with_name("tclearn-oracle")
                    .build()
                    .map_err(|e| library_error(e.to_string()))?;
                ENVIRONMENT.get_or_init(|| (path.clone(), environment))
            }
        };
        let same = |a: &Path, b: &Path| a.canonicalize().ok() == b.canonicalize().ok();
        if !same(loaded, &path) {
            return Err(library_error(format!("this process already runs ONNX Runtime from {}", loaded.display())));
        }
        let version = library_version(&path).map_err(library_error)?;
        Ok(Self { environment, threads: threads.max(1), optimization: Optimization::All, version })
    }

    /// Refuse the library [`Engine::new`] would load (`library`, else [`default_library`]) if it
    /// is another version than `runtime` declares, without starting ONNX Runtime in this
    /// process (the worker's evaluations run in a child process that does).
    pub fn check_runtime(library: Option<&Path>, runtime: &RuntimeSpec) -> Result<(), EngineError> {
        let path = resolve_library(library)?;
        let loaded = library_version(&path)
            .map_err(|reason| EngineError::Library { path: path.display().to_string(), reason })?;
        if loaded != runtime.version {
            return Err(EngineError::Version { loaded, declared: runtime.version.clone() });
        }
        Ok(())
    }

    /// Load ONNX Runtime as [`Engine::new`] does, and refuse a library of another version than
    /// the coalition declares; sessions use the declared optimisation level.
    pub fn for_runtime(library: Option<&Path>, threads: usize, runtime: &RuntimeSpec) -> Result<Self, EngineError> {
        let engine = Self::new(library, threads)?;
        if engine.version != runtime.version {
            return Err(EngineError::Version { loaded: engine.version, declared: runtime.version.clone() });
        }
        Ok(engine.with_optimization(runtime.optimization))
    }

    /// The same engine with sessions at `optimization`.
    pub fn with_optimization(mut self, optimization: Optimization) -> Self {
        self.optimization = optimization;
        self
    }

    /// The loaded library's version (`major.minor.patch`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A model from its ONNX bytes: one float tensor in, one float tensor out.
    pub fn load(&self, onnx: &[u8]) -> Result<Model, EngineError> {
        self.load_scoring(onnx, None)
    }

    /// A model from its ONNX bytes whose output `output` (its only output when `None`) is the
    /// one scored; one float tensor in.
    pub fn load_scoring(&self, onnx: &[u8], output: Option<&str>) -> Result<Model, EngineError> {
        let session = Session::builder(self.environment)
            .map_err(runtime)?
            .with_intra_threads(self.threads)
            .map_err(|e| EngineError::Runtime(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| EngineError::Runtime(e.to_string()))?
            .with_optimization_level(match self.optimization {
                Optimization::Disable => GraphOptimizationLevel::Disable,
                Optimization::Basic => GraphOptimizationLevel::Level1,
                Optimization::Extended => GraphOptimizationLevel::Level2,
                Optimization::All => GraphOptimizationLevel::All,
            })
            .map_err(|e| EngineError::Runtime(e.to_string()))?
            .commit_from_memory(onnx)
            .map_err(runtime)?;
        if session.inputs().len() != 1 {
            return Err(EngineError::Signature(format!(
                "{} inputs; the coalition's models have one",
                session.inputs().len()
            )));
        }
        let output = match output {
            Some(name) => session
                .outputs()
                .iter()
                .position(|o| o.name() == name)
                .ok_or_else(|| EngineError::Signature(format!("no output named {name:?}")))?,
            None if session.outputs().len() == 1 => 0,
            None => {
                return Err(EngineError::Signature(format!(
                    "{} outputs; the coalition's models have one, or the declaration names the scored one",
                    session.outputs().len()
                )))
            }
        };
        Ok(Model { session, output })
    }
}

/// A loaded model.
pub struct Model {
    session: Session,
    /// The position of the scored output.
    output: usize,
}

/// A model's outputs: one row of `width` values per input row.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Outputs, row-major.
    pub values: Vec<f32>,
    /// Values per row.
    pub width: usize,
}

impl Model {
    /// Run one batch: `inputs` holds whole samples of `sample_shape` (without the batch
    /// dimension), row-major. ONNX Runtime reads the batch where it lies, without a copy.
    pub fn run_batch(&mut self, inputs: &[f32], sample_shape: &[usize]) -> Result<Predictions, EngineError> {
        let sample_len: usize = sample_shape.iter().product();
        if sample_len == 0 || !inputs.len().is_multiple_of(sample_len) {
            return Err(EngineError::Ragged { len: inputs.len(), width: sample_len });
        }
        let rows = inputs.len() / sample_len;
        let shape: Vec<usize> = std::iter::once(rows).chain(sample_shape.iter().copied()).collect();
        let input = TensorRef::from_array_view((shape, inputs)).map_err(runtime)?;
        let outputs = self.session.run(ort::inputs![input]).map_err(runtime)?;
        let (shape, data) = outputs[self.output].try_extract_tensor::<f32>().map_err(runtime)?;
        let produced_rows = shape.first().copied().unwrap_or(0);
        if produced_rows != rows as i64 || rows == 0 || data.len() % rows != 0 {
            return Err(EngineError::Signature(format!("{rows} rows in, output shape {shape:?}")));
        }
        Ok(Predictions { values: data.to_vec(), width: data.len() / rows })
    }

    /// Run `inputs` (samples of `sample_shape`) through the model, `batch` samples at a time.
    pub fn predict(
        &mut self,
        inputs: &[f32],
        sample_shape: &[usize],
        batch: usize,
    ) -> Result<Predictions, EngineError> {
        let sample_len: usize = sample_shape.iter().product();
        if sample_len == 0 || !inputs.len().is_multiple_of(sample_len) {
            return Err(EngineError::Ragged { len: inputs.len(), width: sample_len });
        }
        let mut all = Predictions { values: Vec::new(), width: 0 };
        for chunk in inputs.chunks(batch.max(1) * sample_len) {
            let predictions = self.run_batch(chunk, sample_shape)?;
            all.width = predictions.width;
            all.values.extend_from_slice(&predictions.values);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tclearn_model::architectures::{Cnn, Dense, Mlp};

    #[test]
    fn the_version_is_the_one_setup_installs() {
        let env = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/env.sh")).unwrap();
        assert!(
            env.contains(&format!("ONNXRUNTIME_VERSION=\"{ONNXRUNTIME_VERSION}\"")),
            "scripts/env.sh pins another version"
        );
    }

    #[test]
    fn the_loaded_version_is_checked_against_the_declaration() {
        let declared = |version: &str| RuntimeSpec { version: version.into(), ..RuntimeSpec::default() };
        Engine::check_runtime(Some(&library()), &declared(ONNXRUNTIME_VERSION)).unwrap();
        let error = Engine::check_runtime(Some(&library()), &declared("1.20.0")).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "ONNX Runtime {ONNXRUNTIME_VERSION} is loaded but the coalition's declaration says 1.20.0"
            )),
            "{error}"
        );
        assert!(matches!(
            Engine::for_runtime(Some(&library()), 1, &declared("1.20.0")),
            Err(EngineError::Version { .. })
        ));
        assert_eq!(
            Engine::for_runtime(Some(&library()), 1, &declared(ONNXRUNTIME_VERSION)).unwrap().version(),
            ONNXRUNTIME_VERSION
        );
        assert!(Engine::check_runtime(Some(Path::new("/nonexistent.so")), &declared(ONNXRUNTIME_VERSION)).is_err());
    }

    fn library() -> std::path::PathBuf {
        // Set by .cargo/config.toml for every cargo command in the repository.
        std::env::var_os("ORT_DYLIB_PATH").expect("ORT_DYLIB_PATH (scripts/setup.sh links the library)").into()
    }

    /// Deterministic values in about [-1, 1].
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i + seed) * 7919 % 211) as f32 - 105.0) / 105.0).collect()
    }

    fn assert_close(got: &[f32], want: &[f32], context: &str) {
        assert_eq!(got.len(), want.len(), "{context}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{context}: {g} vs {w}");
        }
    }

    #[test]
    fn onnx_runtime_matches_an_independent_forward_pass_in_every_batch_size() {
        let (inputs, hidden, classes) = (3, 4, 2);
        let mlp = Mlp {
            hidden: Some(Dense {
                inputs,
                outputs: hidden,
                weights: values(inputs * hidden, 1),
                bias: values(hidden, 2),
            }),
            output: Dense {
                inputs: hidden,
                outputs: classes,
                weights: values(hidden * classes, 3),
                bias: values(classes, 4),
            },
        };
        let engine = Engine::new(Some(&library()), 2).unwrap();
        let mut model = engine.load(&mlp.to_onnx()).unwrap();
        let features: Vec<f32> = values(10 * inputs, 5).iter().map(|v| v * 3.0).collect();
        let expected: Vec<f32> = features.chunks(inputs).flat_map(|x| mlp.forward(x)).collect();
        for batch in [1, 3, 10, 64] {
            let predictions = model.predict(&features, &[inputs], batch).unwrap();
            assert_eq!(predictions.width, classes);
            assert_close(&predictions.values, &expected, &format!("batch {batch}"));
        }
    }

    #[test]
    fn a_small_cnn_matches_an_independent_forward_pass() {
        let (channels, side, filters, classes) = (2, 6, 3, 4);
        let dense_inputs = filters * (side / 2) * (side / 2);
        let cnn = Cnn {
            channels,
            height: side,
            width: side,
            filters,
            kernel: values(filters * channels * 9, 6),
            kernel_bias: values(filters, 7),
            dense: Dense {
                inputs: dense_inputs,
                outputs: classes,
                weights: values(dense_inputs * classes, 8),
                bias: values(classes, 9),
            },
        };
        let engine = Engine::new(Some(&library()), 2).unwrap();
        let mut model = engine.load(&cnn.to_onnx()).unwrap();
        let sample = channels * side * side;
        let images = values(5 * sample, 10);
        let expected: Vec<f32> = images.chunks(sample).flat_map(|x| cnn.forward(x)).collect();
        let predictions = model.predict(&images, &[channels, side, side], 2).unwrap();
        assert_eq!(predictions.width, classes);
        assert_close(&predictions.values, &expected, "cnn");
    }

    #[test]
    fn bad_models_and_inputs_are_refused_with_a_reason() {
        let engine = Engine::new(Some(&library()), 1).unwrap();
        let error = engine.load(b"not an onnx model").err().expect("garbage is refused").to_string();
        assert!(error.starts_with("ONNX Runtime:"), "{error}");
        let mlp =
            Mlp { hidden: None, output: Dense { inputs: 2, outputs: 2, weights: vec![0.0; 4], bias: vec![0.0; 2] } };
        let mut model = engine.load(&mlp.to_onnx()).unwrap();
        assert!(matches!(model.predict(&[1.0, 2.0, 3.0], &[2], 4), Err(EngineError::Ragged { len: 3, width: 2 })));
        let wrong_width = model.predict(&[1.0, 2.0, 3.0], &[3], 4).unwrap_err().to_string();
        assert!(wrong_width.starts_with("ONNX Runtime:"), "{wrong_width}");
        let missing = Engine::new(Some(Path::new("/nonexistent/libonnxruntime.so")), 1).err().unwrap();
        assert!(missing.to_string().starts_with("loading ONNX Runtime from /nonexistent"), "{missing}");
    }
}
