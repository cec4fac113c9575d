//! The Rust half of `FloeParser`: one file's header read by floe's readers through the object
//! store a VirtualiZarr registry resolved, handed to Python as JSON descriptions and
//! grid-shaped numpy arrays of chunk offsets and lengths (no per-chunk Python object).

use std::sync::{Arc, OnceLock};

use floe_formats::{FileManifest, VariableManifest};
use floe_source::{Source, SourceOptions};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn};
use object_store::path::Path;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3_object_store::AnyObjectStore;
use serde_json::json;

/// Why a header could not be turned into arrays.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The object could not be reached.
    #[error("{url}: {reason}")]
    Store {
        /// The file.
        url: String,
        /// The store's error.
        reason: String,
    },
    /// floe's readers refused the file.
    #[error("{url}: {source}")]
    Format {
        /// The file.
        url: String,
        /// The reader's error.
        source: floe_formats::FormatError,
    },
    /// A chunk reference outside the variable's chunk grid.
    #[error("{url}: variable {variable}: chunk {index:?} is outside its grid {grid:?}")]
    Grid {
        /// The file.
        url: String,
        /// The variable.
        variable: String,
        /// The chunk's position.
        index: Vec<u64>,
        /// The grid's shape.
        grid: Vec<u64>,
    },
}

/// One array as Python receives it.
type ArrayOut<'py> = (
    String,
    String,
    Bound<'py, PyArrayDyn<u64>>,
    Bound<'py, PyArrayDyn<u64>>,
    Bound<'py, PyArrayDyn<bool>>,
    Option<Bound<'py, PyBytes>>,
);

/// One array before the GIL is taken back: description, offsets, lengths, presence, inline bytes.
struct Prepared {
    name: String,
    description: String,
    offsets: ArrayD<u64>,
    lengths: ArrayD<u64>,
    present: ArrayD<bool>,
    inline: Option<Vec<u8>>,
}

/// A registry's store, rebuilt in Rust once: rebuilding one from another library's Python
/// object (obstore's) costs a call into Python and a new client each time.
#[pyclass(frozen, module = "floe_icechunk._native")]
pub struct NativeStore(Arc<dyn object_store::ObjectStore>);

#[pymethods]
impl NativeStore {
    #[new]
    fn new(store: AnyObjectStore) -> Self {
        NativeStore(store.into_dyn())
    }
}

fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the async runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Reads one file's header: `(format, global attributes JSON, arrays, problems)`, each array
/// `(name, description JSON, offsets, lengths, present, inline bytes)` with grid-shaped arrays,
/// each problem `(variable, reason)`.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn read_header<'py>(
    py: Python<'py>,
    store: &NativeStore,
    path: &str,
    url: &str,
) -> PyResult<(String, String, Vec<ArrayOut<'py>>, Vec<(String, String)>)> {
    // The limits on outside input (`FLOE_MAX_*`), read from the environment as a binary reads
    // them when it starts (the command lines read them in `floe_runtime::run`).
    floe_wire::limits::install_from_env().map_err(|e| PyValueError::new_err(e.to_string()))?;
    let store = Arc::clone(&store.0);
    let path = Path::parse(path).map_err(|e| PyValueError::new_err(format!("{url}: {e}")))?;
    let rt = runtime()?;
    let (manifest, prepared) = py
        .detach(|| read(rt, store, path, url))
        .map_err(|e| match e {
            ParseError::Store { .. } => PyOSError::new_err(e.to_string()),
            _ => PyValueError::new_err(e.to_string()),
        })?;
    let format = serde_json::to_value(manifest.format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let attributes = serde_json::to_string(&*manifest.attributes)
        .map_err(|e| PyValueError::new_err(format!("{url}: {e}")))?;
    let arrays = prepared
        .into_iter()
        .map(|p| {
            (
                p.name,
                p.description,
                p.offsets.into_pyarray(py),
                p.lengths.into_pyarray(py),
                p.present.into_pyarray(py),
                p.inline.map(|b| PyBytes::new(py, &b)),
            )
        })
        .collect();
    let problems = manifest
        .problems
        .iter()
        .map(|p| (p.variable.clone(), p.error.clone()))
        .collect();
    Ok((format, attributes, arrays, problems))
}

fn read(
    rt: &tokio::runtime::Runtime,
    store: Arc<dyn object_store::ObjectStore>,
    path: Path,
    url: &str,
) -> Result<(FileManifest, Vec<Prepared>), ParseError> {
    let source = Source::from_store(url, store, path);
    let info = rt.block_on(source.info()).map_err(|e| ParseError::Store {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    // The readers block on the runtime for each ranged read: opened inside it, read outside.
    // As a virtualizer opens a header: every answer checked against this size and ETag, and
    // the bytes read bounded by the header limits.
    let opened = {
        let _entered = rt.enter();
        source.open_listed(&floe_source::Listed::from(&info), &SourceOptions::default())
    };
    let manifest =
        floe_formats::read_file(opened.storage).map_err(|source| ParseError::Format {
            url: url.to_string(),
            source,
        })?;
    let mut manifest = manifest;
    // VirtualiZarr's manifests are dense over the chunk grid: the file's grids together are
    // bounded before three arrays of their size are allocated (a header can declare 2^40
    // points in chunks of 5, or a thousand grids of a million unwritten chunks).
    let limit = u128::from(floe_wire::limits().chunks_per_file);
    let mut cells_so_far = 0u128;
    let mut kept = Vec::new();
    for v in std::mem::take(&mut manifest.variables) {
        let cells = grid_cells(&v);
        if cells_so_far.saturating_add(cells) <= limit {
            cells_so_far += cells;
            kept.push(v);
            continue;
        }
        manifest.problems.push(floe_formats::VariableProblem {
            error: format!(
                "a chunk grid of {cells} cells, which would take the file's to {}, more than the {limit} its manifests may hold (FLOE_MAX_CHUNKS_PER_FILE)",
                cells_so_far.saturating_add(cells)
            ),
            variable: v.variable,
        });
    }
    manifest.variables = kept;
    let prepared = manifest
        .variables
        .iter()
        .map(|v| prepare(v, url))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((manifest, prepared))
}

/// Cells of a variable's chunk grid, without overflow, each axis counted at least once: a
/// zero-length axis makes no cell, but the others' product must still fit what `ndarray` can
/// allocate (it refuses a shape whose non-zero axes overflow, with a panic).
fn grid_cells(v: &VariableManifest) -> u128 {
    grid_shape(v)
        .iter()
        .fold(1u128, |n, g| n.saturating_mul(u128::from((*g).max(1))))
}

/// The chunk grid's shape: chunks along each axis (a zero-length axis has none).
fn grid_shape(v: &VariableManifest) -> Vec<u64> {
    v.shape
        .iter()
        .zip(&v.chunk_shape)
        .map(|(s, c)| if *c == 0 { 0 } else { s.div_ceil(*c) })
        .collect()
}

fn prepare(v: &VariableManifest, url: &str) -> Result<Prepared, ParseError> {
    let grid = grid_shape(v);
    let dims: Vec<usize> = grid.iter().map(|g| *g as usize).collect();
    let mut offsets = ArrayD::<u64>::zeros(IxDyn(&dims));
    let mut lengths = ArrayD::<u64>::zeros(IxDyn(&dims));
    let mut present = ArrayD::<bool>::from_elem(IxDyn(&dims), false);
    for chunk in &v.chunks {
        let outside = || ParseError::Grid {
            url: url.to_string(),
            variable: v.variable.clone(),
            index: chunk.index.clone(),
            grid: grid.clone(),
        };
        if chunk.index.len() != grid.len() || chunk.index.iter().zip(&grid).any(|(i, g)| i >= g) {
            return Err(outside());
        }
        let at: Vec<usize> = chunk.index.iter().map(|i| *i as usize).collect();
        let at = IxDyn(&at);
        offsets[&at] = chunk.offset;
        lengths[&at] = chunk.length;
        present[&at] = true;
    }
    let description = json!({
        "dtype": v.dtype,
        "shape": v.shape,
        "chunk_shape": v.chunk_shape,
        "dimensions": v.dimensions,
        "fill_value": v.fill_value,
        "codecs": *v.codecs,
        "attributes": *v.attributes,
        "layout": v.layout,
    })
    .to_string();
    Ok(Prepared {
        name: v.variable.clone(),
        description,
        offsets,
        lengths,
        present,
        inline: v.inline_data.clone(),
    })
}
