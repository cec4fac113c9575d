//! The Rust half of `FloeParser`: one file's header read by floe's readers through the object
//! store a VirtualiZarr registry resolved, handed to Python as JSON descriptions and
//! grid-shaped numpy arrays of chunk offsets and lengths (no per-chunk Python object).

use std::sync::{Arc, OnceLock};

use floe_formats::zarr_v3::{array_metadata, visible_attributes, ZarrArray};
use floe_formats::{FileManifest, VariableManifest};
use floe_source::{Source, SourceOptions};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn};
use object_store::path::Path;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3_object_store::AnyObjectStore;

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
    /// The group asked for is not in the file.
    #[error("{url}: no group {group:?}")]
    NoGroup {
        /// The file.
        url: String,
        /// The group.
        group: String,
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

/// One array as Python receives it: name (relative to the group read), Zarr v3 metadata JSON,
/// grid-shaped offsets, lengths and presence, how many chunks are present (so that Python
/// need not count them), and the inlined bytes of data with no byte range.
type ArrayOut<'py> = (
    String,
    String,
    Bound<'py, PyArrayDyn<u64>>,
    Bound<'py, PyArrayDyn<u64>>,
    Bound<'py, PyArrayDyn<bool>>,
    usize,
    Option<Bound<'py, PyBytes>>,
);

/// What `read_header` hands Python: the group's attributes (JSON), each sub-group below it
/// `(path, attributes JSON)`, its arrays, and the problems of the variables asked for
/// `(variable, reason)`.
type HeaderOut<'py> = (
    String,
    Vec<(String, String)>,
    Vec<ArrayOut<'py>>,
    Vec<(String, String)>,
);

/// One array before the GIL is taken back.
struct Prepared {
    name: String,
    metadata: String,
    offsets: ArrayD<u64>,
    lengths: ArrayD<u64>,
    present: ArrayD<bool>,
    chunks: usize,
    inline: Option<Vec<u8>>,
}

/// The part of a file asked for: a group (`""` for the root) without some of its variables.
struct Selection {
    prefix: String,
    drop: std::collections::HashSet<String>,
}

impl Selection {
    fn new(group: Option<&str>, drop: Vec<String>) -> Selection {
        let group = group.unwrap_or("").trim_matches('/');
        Selection {
            prefix: if group.is_empty() {
                String::new()
            } else {
                format!("{group}/")
            },
            drop: drop.into_iter().collect(),
        }
    }

    /// A variable's name relative to the group, when it is asked for.
    fn relative<'a>(&self, variable: &'a str) -> Option<&'a str> {
        variable
            .strip_prefix(&self.prefix)
            .filter(|name| !self.drop.contains(*name))
    }
}

/// What the header gave for the part asked: attributes, sub-groups, arrays, problems.
struct Header {
    attributes: String,
    groups: Vec<(String, String)>,
    arrays: Vec<Prepared>,
    problems: Vec<(String, String)>,
}

/// A registry's store, rebuilt in Rust once: rebuilding one from another library's Python
/// object (obstore's) costs a call into Python and a new client each time.
#[pyclass(frozen, module = "floe_icechunk._native")]
pub struct NativeStore {
    store: Arc<dyn object_store::ObjectStore>,
    /// obstore's `LocalStore`: a local file system, which reads on the calling thread when no
    /// runtime is current. Its first read skips the two thread hand-offs of a read through the
    /// runtime (about a third of a small file's call).
    local: bool,
}

#[pymethods]
impl NativeStore {
    #[new]
    fn new(store: &Bound<'_, PyAny>) -> PyResult<Self> {
        let local = store.get_type().name()?.to_str()? == "LocalStore";
        Ok(NativeStore {
            store: store.extract::<AnyObjectStore>()?.into_dyn(),
            local,
        })
    }
}

/// The limits on outside input (`FLOE_MAX_*`), read from the environment once per process, as
/// a binary reads them when it starts (the command lines read them in `floe_runtime::run`); an
/// unusable value fails every call, naming the variable.
fn limits_from_env() -> PyResult<()> {
    static READ: OnceLock<Result<(), String>> = OnceLock::new();
    READ.get_or_init(|| {
        floe_wire::limits::install_from_env()
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(PyValueError::new_err)
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

/// Reads one file's header, or the part of it under `group`, without `drop_variables` (names
/// relative to the group): see [`HeaderOut`].
#[pyfunction]
#[pyo3(signature = (store, path, url, group=None, drop_variables=Vec::new()))]
pub fn read_header<'py>(
    py: Python<'py>,
    store: &NativeStore,
    path: &str,
    url: &str,
    group: Option<&str>,
    drop_variables: Vec<String>,
) -> PyResult<HeaderOut<'py>> {
    limits_from_env()?;
    let local = store.local;
    let store = Arc::clone(&store.store);
    let path = Path::parse(path).map_err(|e| PyValueError::new_err(format!("{url}: {e}")))?;
    let selection = Selection::new(group, drop_variables);
    let rt = runtime()?;
    let header = py
        .detach(|| read(rt, store, local, path, url, &selection))
        .map_err(|e| match e {
            ParseError::Store { .. } => PyOSError::new_err(e.to_string()),
            _ => PyValueError::new_err(e.to_string()),
        })?;
    let arrays = header
        .arrays
        .into_iter()
        .map(|p| {
            (
                p.name,
                p.metadata,
                p.offsets.into_pyarray(py),
                p.lengths.into_pyarray(py),
                p.present.into_pyarray(py),
                p.chunks,
                p.inline.map(|b| PyBytes::new(py, &b)),
            )
        })
        .collect();
    Ok((header.attributes, header.groups, arrays, header.problems))
}

fn read(
    rt: &tokio::runtime::Runtime,
    store: Arc<dyn object_store::ObjectStore>,
    local: bool,
    path: Path,
    url: &str,
    selection: &Selection,
) -> Result<Header, ParseError> {
    let source = Source::from_store(url, store, path);
    // One GET for a file that fits in a block (its size and ETag come with it); a larger one
    // is read by ranges, every answer checked against that identity and the bytes read
    // bounded by the header limits, as a virtualizer reads a header.
    let options = SourceOptions::default();
    let first = if local {
        futures::executor::block_on(source.first_block(&options))
    } else {
        rt.block_on(source.first_block(&options))
    }
    .map_err(|e| ParseError::Store {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    let opened = {
        let _entered = rt.enter();
        source.header_from(first, &options)
    };
    // The ranged reads block on the runtime: they run here, outside it.
    let mut manifest =
        floe_formats::read_file(opened.storage).map_err(|source| ParseError::Format {
            url: url.to_string(),
            source,
        })?;
    let group = selection.prefix.trim_end_matches('/');
    let attributes = if group.is_empty() {
        manifest.attributes.clone()
    } else {
        manifest
            .groups
            .get(group)
            .cloned()
            .ok_or_else(|| ParseError::NoGroup {
                url: url.to_string(),
                group: group.to_string(),
            })?
    };
    let groups = manifest
        .groups
        .iter()
        .filter_map(|(path, attributes)| {
            let relative = path.strip_prefix(&selection.prefix)?;
            Some((
                relative.to_string(),
                json_text(&visible_attributes(attributes)),
            ))
        })
        .collect();
    manifest
        .variables
        .retain(|v| selection.relative(&v.variable).is_some());
    bound_grids(&mut manifest);
    let mut problems: Vec<(String, String)> = manifest
        .problems
        .iter()
        .filter_map(|p| {
            Some((
                selection.relative(&p.variable)?.to_string(),
                p.error.clone(),
            ))
        })
        .collect();
    let mut arrays = Vec::with_capacity(manifest.variables.len());
    for v in &manifest.variables {
        let name = selection.relative(&v.variable).unwrap_or(&v.variable);
        match array_metadata(v) {
            Ok(zarr) => arrays.push(prepare(v, name, zarr, url)?),
            // No Zarr data type for it: that variable is refused by name, not the file.
            Err(reason) => problems.push((name.to_string(), reason)),
        }
    }
    Ok(Header {
        attributes: json_text(&visible_attributes(&attributes)),
        groups,
        arrays,
        problems,
    })
}

fn json_text(attributes: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::Value::Object(attributes.clone()).to_string()
}

/// VirtualiZarr's manifests are dense over the chunk grid: the grids of the variables asked
/// for are bounded together before three arrays of their size are allocated (a header can
/// declare 2^40 points in chunks of 5, or a thousand grids of a million unwritten chunks).
fn bound_grids(manifest: &mut FileManifest) {
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

fn prepare(
    v: &VariableManifest,
    name: &str,
    zarr: ZarrArray,
    url: &str,
) -> Result<Prepared, ParseError> {
    let grid = grid_shape(v);
    let dims: Vec<usize> = grid.iter().map(|g| *g as usize).collect();
    let mut offsets = ArrayD::<u64>::zeros(IxDyn(&dims));
    let mut lengths = ArrayD::<u64>::zeros(IxDyn(&dims));
    let mut present = ArrayD::<bool>::from_elem(IxDyn(&dims), false);
    let mut chunks = 0;
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
        // A chunk trimmed to its array (unfiltered, along the first axis) is a shorter range.
        lengths[&at] = zarr.trimmed_chunk_bytes.unwrap_or(chunk.length);
        if !present[&at] {
            present[&at] = true;
            chunks += 1;
        }
    }
    Ok(Prepared {
        name: name.to_string(),
        metadata: zarr.metadata.to_string(),
        offsets,
        lengths,
        present,
        chunks,
        inline: v.inline_data.clone(),
    })
}
