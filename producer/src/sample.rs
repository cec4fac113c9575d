//! A small ISMIP6-like sample archive, generated so that the embedded run
//! works on a fresh machine with no data and no network.
//!
//! Written with the `netcdf3` crate (pure Rust NetCDF-3): 64-bit-offset files
//! with `time` as the record dimension, a 32 km grid (191 × 191), state
//! variables at Jan 1, flux variables at Jul 1, a scalar time series, and a
//! few of the archive's quirks (`unit` for `units`, a missing calendar, missing
//! x/y, variables of different lengths in one experiment).

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

/// Writes the sample archive under `root` (`{INST}/{MODEL}/{EXP}/{var}_AIS_…nc`)
/// and returns the files written.
pub fn write_archive(root: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for f in FILES {
        let dir = root.join(f.institution).join(f.model).join(f.experiment);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!(
            "{}_AIS_{}_{}_{}.nc",
            f.variable, f.institution, f.model, f.experiment
        ));
        write_file(&path, f).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
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
