//! A small ISMIP6-like sample archive, generated so that the embedded run
//! works on a fresh machine with no data and no network.
//!
//! Two readers, two kinds of file:
//! - NetCDF-3, written here with the `netcdf3` crate (pure Rust): 64-bit-offset
//!   files with `time` as the record dimension, a 32 km grid (191 × 191), state
//!   variables at Jan 1, flux variables at Jul 1, a scalar time series, and a
//!   few of the archive's quirks (`unit` for `units`, a missing calendar,
//!   missing x/y, variables of different lengths in one experiment);
//! - NetCDF-4/HDF5, one chunked (zlib + shuffle) and one contiguous variable of
//!   `JPL1_ISSM/exp05`, written once by netCDF-C (`data/sample/make_sample_nc4.py`)
//!   and embedded: no pure-Rust HDF5 writer produces files netCDF readers accept.
//!
//! Writing is idempotent: a sample that already holds exactly these bytes is
//! reused untouched (so its batch ids, and the store built from it, stay
//! current); a missing file is written; a file that differs, or a file the
//! sample does not have, is refused with the way out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use netcdf3::{DataSet, FileWriter, Version};

/// Grid points per side (32 km ISMIP6 grid).
pub const N: usize = 191;

/// One sample file.
struct SampleFile {
    institution: &'static str,
    model: &'static str,
    experiment: &'static str,
    variable: &'static str,
    steps: usize,
    flux: bool,
    spatial: bool,
    quirk: Quirk,
}

#[derive(Clone, Copy, PartialEq)]
enum Quirk {
    None,
    UnitAttribute,
    NoCalendar,
    NoGridCoordinates,
}

const FILES: &[SampleFile] = &[
    SampleFile {
        institution: "AWI",
        model: "PISM1",
        experiment: "exp05",
        variable: "lithk",
        steps: 6,
        flux: false,
        spatial: true,
        quirk: Quirk::None,
    },
    SampleFile {
        institution: "AWI",
        model: "PISM1",
        experiment: "exp05",
        variable: "acabf",
        steps: 5,
        flux: true,
        spatial: true,
        quirk: Quirk::None,
    },
    SampleFile {
        institution: "AWI",
        model: "PISM1",
        experiment: "exp05",
        variable: "lim",
        steps: 6,
        flux: false,
        spatial: false,
        quirk: Quirk::None,
    },
    SampleFile {
        institution: "AWI",
        model: "PISM1",
        experiment: "ctrl_proj",
        variable: "lithk",
        steps: 4,
        flux: false,
        spatial: true,
        quirk: Quirk::NoCalendar,
    },
    SampleFile {
        institution: "AWI",
        model: "PISM1",
        experiment: "ctrl_proj",
        variable: "tendacabf",
        steps: 4,
        flux: true,
        spatial: false,
        quirk: Quirk::None,
    },
    SampleFile {
        institution: "ULB",
        model: "fETISh_32km",
        experiment: "exp05",
        variable: "orog",
        steps: 3,
        flux: false,
        spatial: true,
        quirk: Quirk::UnitAttribute,
    },
    SampleFile {
        institution: "ULB",
        model: "fETISh_32km",
        experiment: "exp05",
        variable: "acabf",
        steps: 3,
        flux: true,
        spatial: true,
        quirk: Quirk::NoGridCoordinates,
    },
];

/// The value of a sample variable at one step and cell: deterministic, so
/// tests can recompute it.
pub fn value(variable: &str, step: usize, cell: usize) -> f32 {
    let seed = variable.bytes().map(f32::from).sum::<f32>();
    ((cell as f32 / 97.0 + seed).sin() * 100.0) + step as f32 * 10.0
}

/// The embedded NetCDF-4/HDF5 files, by path under the sample's root.
const NETCDF4_FILES: &[(&str, &[u8])] = &[
    (
        "JPL1/ISSM/exp05/lithk_AIS_JPL1_ISSM_exp05.nc",
        include_bytes!("../data/sample/lithk_AIS_JPL1_ISSM_exp05.nc"),
    ),
    (
        "JPL1/ISSM/exp05/acabf_AIS_JPL1_ISSM_exp05.nc",
        include_bytes!("../data/sample/acabf_AIS_JPL1_ISSM_exp05.nc"),
    ),
];

/// Groups in the sample, as group paths.
pub const GROUPS: &[&str] = &[
    "AWI_PISM1/ctrl_proj",
    "AWI_PISM1/exp05",
    "JPL1_ISSM/exp05",
    "ULB_fETISh_32km/exp05",
];

/// What [`write_archive`] found and did.
#[derive(Debug, Clone)]
pub struct SampleArchive {
    /// Every file of the sample.
    pub files: Vec<PathBuf>,
    /// Files written now (the rest were already there, identical).
    pub written: usize,
}

impl SampleArchive {
    /// Files that were already there, identical, and left untouched.
    pub fn reused(&self) -> usize {
        self.files.len() - self.written
    }

    /// One line for the user.
    pub fn describe(&self, root: &Path) -> String {
        if self.written == 0 {
            format!(
                "reused the sample archive in {} ({} files, unchanged)",
                root.display(),
                self.files.len()
            )
        } else {
            format!(
                "wrote the sample archive in {} ({} of {} files written)",
                root.display(),
                self.written,
                self.files.len()
            )
        }
    }
}

/// Writes the sample archive under `root` (`{INST}/{MODEL}/{EXP}/{var}_AIS_…nc`),
/// reusing an identical one (see the module doc).
pub fn write_archive(root: &Path) -> Result<SampleArchive> {
    if root.exists() && !root.is_dir() {
        anyhow::bail!(
            "{} is not a directory; the sample archive is written to a directory",
            root.display()
        );
    }
    let expected = expected_files(root)?;
    let present = existing_files(root)?;
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for (relative, bytes) in &expected {
        let path = root.join(relative);
        match std::fs::read(&path) {
            Ok(current) if &current == bytes => {}
            Ok(_) => problems.push(format!("{relative} differs")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(relative),
            Err(e) => problems.push(format!("{relative}: {e}")),
        }
    }
    for relative in &present {
        if !expected.iter().any(|(r, _)| r == relative) {
            problems.push(format!("{relative} is not part of the sample"));
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "{} holds a sample archive that differs from the one this floe generates ({}{}); \
             floe does not overwrite it. To regenerate it, delete that directory and run again; \
             to use your own archive, pass --source DIR",
            root.display(),
            problems
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if problems.len() > 3 {
                format!("; and {} more", problems.len() - 3)
            } else {
                String::new()
            }
        );
    }
    for relative in &missing {
        let bytes = expected
            .iter()
            .find(|(r, _)| r == *relative)
            .map(|(_, b)| b.as_slice())
            .unwrap_or_default();
        write_atomically(&root.join(relative), bytes)?;
    }
    Ok(SampleArchive {
        files: expected.iter().map(|(r, _)| root.join(r)).collect(),
        written: missing.len(),
    })
}

/// Every file of the sample, as (path relative to the root, bytes), sorted.
fn expected_files(root: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    // The NetCDF-3 writer writes to a path: stage beside the root (same filesystem).
    let parent = root
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".floe-sample-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
    let mut files = Vec::new();
    for (i, f) in FILES.iter().enumerate() {
        let relative = format!(
            "{}/{}/{}/{}_AIS_{}_{}_{}.nc",
            f.institution, f.model, f.experiment, f.variable, f.institution, f.model, f.experiment
        );
        let staged = staging.path().join(format!("{i}.nc"));
        write_file(&staged, f).with_context(|| format!("generating {relative}"))?;
        let bytes =
            std::fs::read(&staged).with_context(|| format!("reading {}", staged.display()))?;
        files.push((relative, bytes));
    }
    files.extend(
        NETCDF4_FILES
            .iter()
            .map(|(r, b)| (r.to_string(), b.to_vec())),
    );
    files.sort();
    Ok(files)
}

/// Every file under `root`, relative to it (none when it does not exist).
fn existing_files(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes through a temporary file and a rename, so an interrupted run leaves a
/// file either whole or absent (and the next run completes the sample).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut temp, bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    temp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn write_file(path: &Path, f: &SampleFile) -> Result<()> {
    let mut ds = DataSet::new();
    let e = |e: netcdf3::error::InvalidDataSet| anyhow::anyhow!("{e:?}");
    ds.set_unlimited_dim("time", f.steps).map_err(e)?;
    ds.add_var_f64("time", &["time"]).map_err(e)?;
    let units_name = if f.quirk == Quirk::UnitAttribute {
        "unit"
    } else {
        "units"
    };
    ds.add_var_attr_string("time", units_name, "days since 2015-01-01")
        .map_err(e)?;
    if f.quirk != Quirk::NoCalendar {
        ds.add_var_attr_string("time", "calendar", "365_day")
            .map_err(e)?;
    }
    ds.add_global_attr_string(
        "title",
        format!(
            "floe sample: {} {} {} {}",
            f.institution, f.model, f.experiment, f.variable
        ),
    )
    .map_err(e)?;
    if f.spatial {
        ds.add_fixed_dim("y", N).map_err(e)?;
        ds.add_fixed_dim("x", N).map_err(e)?;
        if f.quirk != Quirk::NoGridCoordinates {
            for axis in ["x", "y"] {
                ds.add_var_f64(axis, &[axis]).map_err(e)?;
                ds.add_var_attr_string(axis, "units", "m").map_err(e)?;
            }
        }
        ds.add_var_f32(f.variable, &["time", "y", "x"]).map_err(e)?;
    } else {
        ds.add_var_f32(f.variable, &["time"]).map_err(e)?;
    }
    ds.add_var_attr_f32(f.variable, "_FillValue", vec![9.969_21e36])
        .map_err(e)?;
    ds.add_var_attr_string(f.variable, "units", if f.flux { "kg m-2 s-1" } else { "m" })
        .map_err(e)?;

    let mut w = FileWriter::create_new(path).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    w.set_def(&ds, Version::Offset64Bit, 0)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let offset_days = if f.flux { 181.0 } else { 0.0 };
    let times: Vec<f64> = (0..f.steps)
        .map(|t| t as f64 * 365.0 + offset_days)
        .collect();
    w.write_var_f64("time", &times)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let cells = if f.spatial { N * N } else { 1 };
    if f.spatial && f.quirk != Quirk::NoGridCoordinates {
        let axis: Vec<f64> = (0..N).map(|i| -3_040_000.0 + 32_000.0 * i as f64).collect();
        w.write_var_f64("x", &axis)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        w.write_var_f64("y", &axis)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let data: Vec<f32> = (0..f.steps)
        .flat_map(|t| (0..cells).map(move |c| value(f.variable, t, c)))
        .collect();
    w.write_var_f32(f.variable, &data)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    w.close().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}
