//! `virtualizer inspect`: the raw, per-file view of one or more files.

use std::collections::BTreeMap;

use floe_formats::{FileManifest, FormatError};
use floe_source::{ObjectInfo, Source, SourceError, SourceOptions};
use serde_json::{json, Value};

/// Why a file could not be inspected, with the file named.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The object could not be reached.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The object is not a readable NetCDF file.
    #[error("{url}: {source}")]
    Format {
        /// The file.
        url: String,
        /// What is wrong with it.
        #[source]
        source: FormatError,
    },
    /// The blocking reader task failed.
    #[error("{url}: reader task failed: {reason}")]
    Task {
        /// The file.
        url: String,
        /// Why.
        reason: String,
    },
}

impl InspectError {
    /// Whether another attempt may succeed (network, not a bad file).
    pub fn is_retryable(&self) -> bool {
        match self {
            InspectError::Source(SourceError::NotFound { .. }) => false,
            InspectError::Source(SourceError::IsDirectory { .. }) => false,
            InspectError::Source(SourceError::BadUrl { .. }) => false,
            // Replaced since it was listed: the batch is stale, not the network.
            InspectError::Source(SourceError::Changed { .. }) => false,
            InspectError::Source(_) => true,
            InspectError::Format { source, .. } => source.is_retryable(),
            InspectError::Task { .. } => true,
        }
    }
}

/// One inspected file.
#[derive(Debug, Clone)]
pub struct InspectedFile {
    /// Identity of the object.
    pub info: ObjectInfo,
    /// Its variables.
    pub manifest: FileManifest,
    /// Ranged GETs that reached the backend (the HEAD is not counted).
    pub requests: u64,
    /// Bytes those GETs returned.
    pub bytes_read: u64,
}

/// Reads one file's headers. `known` skips the HEAD when a listing already
/// gave the object's identity.
pub async fn inspect(
    url: &str,
    options: &SourceOptions,
    known: Option<ObjectInfo>,
) -> Result<InspectedFile, InspectError> {
    let source = Source::resolve(url, options)?;
    let info = match known {
        Some(info) => info,
        None => source.info().await?,
    };
    let (file, _) = read(source, info, options, false).await?;
    Ok(file)
}

/// The manifest and, when asked (a group's scan), the coordinate values of one file, its
/// records then set aside as problems ([`floe_group::zarr::set_aside_records`]).
fn parse(
    storage: floe_formats::DynStorage,
    with_coordinates: bool,
) -> Result<(FileManifest, BTreeMap<String, Vec<f64>>), FormatError> {
    let mut manifest = floe_formats::read_file(storage.clone())?;
    let coords = if with_coordinates {
        // A group's scan (`inspect` keeps every variable the reader describes): records are
        // set aside as problems before anything reads them as coordinates or builds arrays.
        floe_group::zarr::set_aside_records(&mut manifest);
        let coordinates = manifest
            .variables
            .iter()
            .filter(|v| v.dimensions.len() == 1 && v.dimensions[0] == v.variable);
        // A coordinate's cell bounds (`time_bnds`) too: time bounds are decoded and stored
        // in the group's time units, like time itself.
        let bounds = coordinates.clone().filter_map(|v| {
            let name = v.attributes.get("bounds")?.as_str()?;
            manifest
                .variables
                .iter()
                .find(|b| b.variable == name && b.dimensions.len() == 2)
                .map(|b| b.variable.as_str())
        });
        let names: Vec<&str> = coordinates
            .map(|v| v.variable.as_str())
            .chain(bounds)
            .collect();
        floe_formats::read_coordinate_values(storage, &names)?
    } else {
        BTreeMap::new()
    };
    Ok((manifest, coords))
}

/// Reads one file's headers and, when `with_coordinates`, the values of its
/// coordinate variables (1-D variables named like their dimension) and of their
/// bounds (2-D, named by a coordinate's `bounds`, flattened row by row), through
/// the same block cache.
pub(crate) async fn read(
    source: Source,
    info: ObjectInfo,
    options: &SourceOptions,
    with_coordinates: bool,
) -> Result<(InspectedFile, BTreeMap<String, Vec<f64>>), InspectError> {
    let url = info.url.clone();
    let format_error = |source| InspectError::Format {
        url: url.clone(),
        source,
    };
    let block = options
        .block_size
        .unwrap_or(floe_source::DEFAULT_BLOCK_SIZE);
    // Every answer is checked against what the listing (or the message) says the
    // object is: a file replaced since is named, never read under its old identity.
    let listed = floe_source::Listed::from(&info);
    // Never above the header bytes a file reads on its own: a large FLOE_BLOCK_SIZE does not
    // lift the header limits.
    if info.size <= (block as u64).min(floe_wire::limits().header_bytes_unshared) {
        // A file that fits in one block costs one GET either way. Read whole, every later
        // read is in memory, so it is parsed right here without the blocking hand-offs the
        // ranged path needs (ISMIP6's scalar time series are files of a few kB).
        // Exactly the object `info` describes, as the ranged path reads it: a file that grew
        // since it was listed reads as truncated, fails, and is looked up afresh by the
        // caller instead of being built under its stale identity (nor downloaded whole).
        let bytes = source.read_listed(&listed).await?;
        let bytes_read = bytes.len() as u64;
        let requests = u64::from(info.size > 0);
        let storage: floe_formats::DynStorage =
            std::sync::Arc::new(floe_formats::BytesStorage::new(bytes.to_vec()));
        let (manifest, coords) = parse(storage, with_coordinates).map_err(format_error)?;
        let file = InspectedFile {
            requests,
            bytes_read,
            info,
            manifest,
        };
        return Ok((file, coords));
    }
    let opened = source.open_listed(&listed, options);
    let storage = opened.storage.clone();
    let (manifest, coords) = tokio::task::spawn_blocking(move || parse(storage, with_coordinates))
        .await
        .map_err(|e| InspectError::Task {
            url: url.clone(),
            reason: e.to_string(),
        })?
        .map_err(format_error)?;
    let file = InspectedFile {
        requests: opened.counters.requests(),
        bytes_read: opened.counters.bytes(),
        info,
        manifest,
    };
    Ok((file, coords))
}

/// The JSON lines of `inspect --json`: one per variable, then one per problem.
pub fn json_lines(file: &InspectedFile) -> Vec<Value> {
    let mut lines = Vec::new();
    for v in &file.manifest.variables {
        let mut line = json!({
            "file": file.info.url,
            "variable": v.variable,
            "dtype": v.dtype,
            "shape": v.shape,
            "chunk_shape": v.chunk_shape,
            "dimensions": v.dimensions,
            "fill_value": v.fill_value,
            "codecs": v.codecs,
            "attributes": v.attributes,
            "layout": v.layout,
            "chunks": v.chunks,
            "requests": file.requests,
            "bytes_read": file.bytes_read,
        });
        if let Some(obj) = line.as_object_mut() {
            if !v.fields.is_empty() {
                obj.insert("fields".into(), json!(v.fields));
            }
            if let Some(data) = &v.inline_data {
                obj.insert("inline_data".into(), Value::from(hex::encode(data)));
            }
        }
        lines.push(line);
    }
    for p in &file.manifest.problems {
        lines.push(json!({"file": file.info.url, "variable": p.variable, "error": p.error}));
    }
    lines
}

/// A short, readable summary of one file.
pub fn summary(file: &InspectedFile) -> String {
    use std::fmt::Write;
    let m = &file.manifest;
    let mut s = String::new();
    let unlimited = if m.unlimited.is_empty() {
        String::new()
    } else {
        format!("; unlimited: {}", m.unlimited.join(", "))
    };
    let _ = writeln!(
        s,
        "{} ({:?}, {} bytes; {} requests, {} bytes read{unlimited})",
        file.info.url, m.format, m.file_size, file.requests, file.bytes_read
    );
    for v in &m.variables {
        let codecs: Vec<&str> = v.codecs.iter().map(|c| c.name.as_str()).collect();
        // A record's type is its fields: `|V16 {a <i4, b <f8, s |S3, u |u1}`.
        let dtype = if v.fields.is_empty() {
            v.dtype.clone()
        } else {
            let fields: Vec<String> = v
                .fields
                .iter()
                .map(|f| format!("{} {}", f.name, f.dtype))
                .collect();
            format!("{} {{{}}}", v.dtype, fields.join(", "))
        };
        let _ = writeln!(
            s,
            "  {:<16} {:<5} shape {:?} chunks {:?} dims {:?} {} refs [{}] {}",
            v.variable,
            dtype,
            v.shape,
            v.chunk_shape,
            v.dimensions,
            v.chunks.len(),
            codecs.join(","),
            if v.inline_data.is_some() {
                "inline"
            } else {
                &v.layout
            }
        );
    }
    for p in &m.problems {
        let _ = writeln!(s, "  {:<16} NOT VIRTUALIZED: {}", p.variable, p.error);
    }
    s
}
