"""End to end through the real client: `producer local` writes merged groups into a
local Icechunk repository; Python icechunk + xarray read them back, and every data
variable equals its source file (read with netCDF4) at the matching year."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import icechunk
import netCDF4
import numpy as np
import pytest
import xarray as xr

from checks import assert_group_equals_sources
from conftest import ROOT, binary

warnings.filterwarnings("ignore", category=DeprecationWarning)


def run_local(*args):
    return subprocess.run([binary("producer"), "local", *map(str, args)], capture_output=True, text=True, timeout=600)


def open_group(store, prefix, group):
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(store)),
        authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess},
    )
    return xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3,
                        consolidated=False, mask_and_scale=False)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    out = tmp_path_factory.mktemp("archive")
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(out)], check=True)
    store = out / "store"
    proc = run_local("--source", out / "archive", "--store", store, "--json")
    return {
        "root": out / "archive", "store": store, "proc": proc,
        "summary": json.loads(proc.stdout) if proc.stdout.strip() else None,
        "expected": json.loads((out / "expected.json").read_text()),
        "prefix": f"file://{out / 'archive'}/",
    }


def test_run_commits_every_group_and_names_the_unreadable_file(archive):
    proc, summary = archive["proc"], archive["summary"]
    assert proc.returncode == 0, proc.stderr  # a left-out variable makes a partial group, not a failure
    assert summary["failed"] == []
    assert summary["written"] == 7 and summary["commits"] == 2  # parent groups, then the data
    # The 0-byte xvelbase file leaves out its variable only; lithk beside it is written.
    assert summary["partial_groups"]["ULB_fETISh_32km/expA6"] == ["xvelbase"], summary["partial_groups"]
    [warning] = [w for w in summary["warnings"] if w.startswith("ULB_fETISh_32km/expA6")]
    assert "xvelbase" in warning and "file cannot be read" in warning and "empty" in warning, warning
    assert any("expD12" in url for url, _ in summary["skipped_files"])


@pytest.mark.parametrize("group", ["AWI_PISM1/exp05", "ILTS_PIK_SICOPOLIS1/hist_std", "UCIJPL_ISSM/exp13", "LSCE_GRISLI2/exp05",
                                   "VUB_AISMPALEO/exp05", "CPOM_BISICLES/exp05", "ULB_fETISh_32km/expA6"])
def test_every_variable_equals_its_source_at_the_matching_year(archive, group):
    ds = open_group(archive["store"], archive["prefix"], group)
    assert_group_equals_sources(ds, archive["root"], group, archive["expected"][group])


def test_time_decodes_to_dates(archive):
    ds = xr.open_zarr(
        icechunk.Repository.open(icechunk.local_filesystem_storage(str(archive["store"])),
                                 authorize_virtual_chunk_access={archive["prefix"]: icechunk.credentials.LocalFileSystemAccess})
        .readonly_session("main").store, group="UCIJPL_ISSM/exp13", zarr_format=3, consolidated=False)
    assert str(ds.time.dtype).startswith("datetime64")
    assert [str(t)[:10] for t in ds.time.values] == [f"{y}-01-01" for y in range(2015, 2021)]


def test_left_out_variables_are_recorded_with_reasons(archive):
    for group, spec in archive["expected"].items():
        if not isinstance(spec, dict) or not spec.get("left_out"):
            continue
        ds = open_group(archive["store"], archive["prefix"], group)
        warnings_attr = ds.attrs["floe_warnings"]
        for var, word in spec["left_out"].items():
            assert var not in ds
            assert any(w["variable"] == var and word in w["reason"] for w in warnings_attr), warnings_attr


def test_multi_step_chunks_share_the_time_axis_where_exact(archive):
    """Per-step, aligned multi-step and misaligned multi-step variables in one group: the first
    two kinds share `time` (checked value by value above); each misaligned one keeps its own
    axis, and floe_warnings says why, naming the numbers."""
    ds = open_group(archive["store"], archive["prefix"], "CPOM_BISICLES/exp05")
    assert {v: ds[v].dims[0] for v in ["lithk", "orog", "topg", "acabf", "sftgif"]} == {
        "lithk": "time", "orog": "time", "topg": "time", "acabf": "time_acabf", "sftgif": "time_sftgif"}
    assert ds.orog.encoding["chunks"][0] == 5 and ds.topg.encoding["chunks"][0] == 3
    reasons = {w["variable"]: w["reason"] for w in ds.attrs["floe_warnings"]}
    assert set(reasons) == {"acabf", "sftgif"}, reasons
    assert "index 1" in reasons["acabf"] and "chunk length 3" in reasons["acabf"]
    assert "padding" in reasons["sftgif"] and "4 more step(s)" in reasons["sftgif"]
    aligned = open_group(archive["store"], archive["prefix"], "AWI_PISM1/exp05")
    assert aligned.topg.dims[0] == "time" and "floe_warnings" in aligned.attrs
    assert not aligned.attrs["floe_warnings"]


def test_provenance_attributes(archive):
    ds = open_group(archive["store"], archive["prefix"], "UCIJPL_ISSM/exp13")
    notes = " ".join(ds.attrs["floe_normalizations"])
    for word in ["garbage", "without epoch", "packed", "impossible month"]:
        assert word in notes, notes
    assert len(ds.attrs["floe_batch_id"]) == 32
    # The input list is an array of its own beside the group, not a per-file attribute.
    assert "floe_source_files" not in ds.attrs and "_floe" not in ds.variables
    import zarr
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(archive["store"])))
    inputs = zarr.open_array(repo.readonly_session("main").store, path="UCIJPL_ISSM/exp13/_floe/inputs", mode="r")
    # One JSON object a line, each with the identity an append compares, read back by zarr
    # through the record's own chunks and codecs.
    files = [json.loads(line) for line in bytes(inputs[:]).decode().splitlines()]
    urls = [f["url"] for f in files]
    assert len(urls) == 4 and all(u.startswith("file://") and u.endswith(".nc") for u in urls), urls
    assert all(f["size"] > 0 and f["last_modified"] for f in files), files


def test_skipped_groups_are_absent(archive):
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(archive["store"])))
    import zarr
    root = zarr.open_group(repo.readonly_session("main").store, mode="r", zarr_format=3)
    assert "NCAR_CISM" not in root
    assert "expA6" in root["ULB_fETISh_32km"]


def test_second_run_is_a_no_op(archive):
    proc = run_local("--source", archive["root"], "--store", archive["store"], "--json")
    summary = json.loads(proc.stdout)
    assert summary["written"] == 0 and summary["unchanged"] == 7 and summary["commits"] == 0


def test_readme_demo_on_the_generated_sample(tmp_path):
    store = tmp_path / "demo" / "store"
    proc = run_local("--store", store)
    assert proc.returncode == 0, proc.stderr
    assert "4 groups" in proc.stdout and "import icechunk" in proc.stdout
    prefix = f"file://{tmp_path / 'demo' / 'sample-archive'}/"
    ds = open_group(store, prefix, "AWI_PISM1/exp05")
    with netCDF4.Dataset(tmp_path / "demo/sample-archive/AWI/PISM1/exp05/acabf_AIS_AWI_PISM1_exp05.nc") as src:
        src.set_auto_maskandscale(False)
        np.testing.assert_array_equal(ds.acabf.values[:5], src["acabf"][...])
    assert np.isnan(ds.acabf.values[5]).all()
