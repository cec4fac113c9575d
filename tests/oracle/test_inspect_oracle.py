"""Oracle tests for `virtualizer inspect`: every fixture's chunk table, dtype,
shape, fill value and filters equal what h5py reports, and decoding the
referenced bytes with the listed codecs gives the values netCDF4/h5py read."""
import h5py
import netCDF4
import numpy as np
import pytest

from conftest import fixture_files, run_inspect
from decode import read_variable_from_refs

HDF5_FILES = [p for p in fixture_files(".nc", ".h5") if h5py.is_hdf5(p)]
NC3_FILES = [p for p in fixture_files(".nc") if not h5py.is_hdf5(p)]


def records_by_variable(path):
    records, proc = run_inspect(path)
    assert proc.returncode == 0, proc.stderr
    return {r["variable"]: r for r in records}


def h5py_chunks(dset):
    """(index, offset, length) of every allocated chunk, as h5py sees them."""
    dsid = dset.id
    layout = dsid.get_create_plist().get_layout()
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dsid.get_offset()
        if offset is None or dset.size == 0:
            return []
        return [((0,) * dset.ndim, offset, dsid.get_storage_size())]
    if layout == h5py.h5d.COMPACT:
        return None
    out = []
    for i in range(dsid.get_num_chunks()):
        info = dsid.get_chunk_info(i)
        index = tuple(o // c for o, c in zip(info.chunk_offset, dset.chunks))
        out.append((index, info.byte_offset, info.size))
    return sorted(out)


def test_fixture_set_is_complete():
    names = {p.name for p in HDF5_FILES + NC3_FILES}
    kinds = ["btree_v1", "fixed_array", "extensible_array", "btree_v2", "single_chunk", "implicit",
             "compact", "userblock", "classic_records", "offset64_single_record", "cdf5", "ismip6_contiguous"]
    for kind in kinds:
        assert any(kind in n for n in names), f"no fixture for {kind}"
    # at least two HDF5 library generations
    assert len({n.split("_")[1] + n.split("_")[2] for n in names if n.startswith("h5_")}) >= 2


@pytest.mark.parametrize("path", HDF5_FILES, ids=lambda p: p.name)
def test_hdf5_chunk_tables_match_h5py(path):
    records = records_by_variable(path)
    with h5py.File(path, "r") as f:
        datasets = {}

        def collect(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets[name] = obj

        f.visititems(collect)
        for name, rec in records.items():
            if "error" in rec:
                continue
            dset = datasets[name]
            assert rec["dtype"] == dset.dtype.str, name
            assert tuple(rec["shape"]) == dset.shape, name
            assert tuple(rec["chunk_shape"]) == (dset.chunks or dset.shape), name
            got = sorted((tuple(c["index"]), c["offset"], c["length"]) for c in rec["chunks"])
            if rec["layout"] == "strings":
                # Variable-length strings have no byte range to point at: floe reads them and
                # keeps them inline, vlen-utf8 encoded; they must be h5py's strings.
                assert got == [] and h5py.check_string_dtype(dset.dtype), name
                assert read_variable_from_refs(path, rec).ravel().tolist() == [
                    v.decode() if isinstance(v, bytes) else v for v in dset[...].ravel().tolist()], name
                continue
            expected = h5py_chunks(dset)
            if expected is None:
                assert "inline_data" in rec and got == [], name
            else:
                assert got == expected, name
            fill = dset.fillvalue
            if dset.dtype.kind == "f" and np.isnan(fill):
                assert rec["fill_value"] == "NaN"
            elif dset.dtype.kind in "iuf":
                assert rec["fill_value"] == pytest.approx(float(fill)), name
            filters = dset.id.get_create_plist()
            ids = [filters.get_filter(i)[0] for i in range(filters.get_nfilters())]
            names = [c["name"] for c in rec["codecs"][1:]]
            mapping = {1: "numcodecs.zlib", 2: "numcodecs.shuffle", 3: "numcodecs.fletcher32"}
            assert names == [mapping[i] for i in ids], name


@pytest.mark.parametrize("path", HDF5_FILES + NC3_FILES, ids=lambda p: p.name)
def test_referenced_bytes_decode_to_source_values(path):
    records = records_by_variable(path)
    assert records, "no variables listed"
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            for name, rec in records.items():
                if "error" in rec:
                    continue
                expected = f[name].asstr()[()] if rec["layout"] == "strings" else f[name][()]
                got = read_variable_from_refs(path, rec)
                np.testing.assert_array_equal(got, expected, err_msg=name)
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        ds.set_auto_chartostring(False)
        listed = set(records)
        assert listed == set(ds.variables), "inspect must list exactly the NetCDF variables"
        for name, var in ds.variables.items():
            rec = records[name]
            if "error" in rec:
                assert var.dtype is str or "filter" in rec["error"], f"{name}: refused for {rec['error']}"
                continue
            assert rec["dimensions"] == list(var.dimensions), name
            got = read_variable_from_refs(path, rec)
            np.testing.assert_array_equal(got, np.asarray(var[...]), err_msg=name)
            for key in var.ncattrs():
                if key.startswith("_") and key != "_FillValue":
                    continue
                value = var.getncattr(key)
                if isinstance(value, (str, bytes)):
                    assert rec["attributes"][key] == value, (name, key)
                elif np.all(np.isnan(np.atleast_1d(value).astype("f8"))):
                    assert rec["attributes"][key] == "NaN"
                else:
                    np.testing.assert_allclose(np.asarray(rec["attributes"][key], dtype="f8"), np.asarray(value, dtype="f8"))


@pytest.mark.parametrize("path", NC3_FILES, ids=lambda p: p.name)
def test_netcdf3_record_variables_have_one_reference_per_record(path):
    records = records_by_variable(path)
    with netCDF4.Dataset(path) as ds:
        for name, var in ds.variables.items():
            rec = records[name]
            assert rec["dtype"].startswith(">") or rec["dtype"].startswith("|"), "NetCDF3 is big-endian"
            if var.dimensions and ds.dimensions[var.dimensions[0]].isunlimited():
                assert rec["chunk_shape"][0] == 1
                assert len(rec["chunks"]) == len(ds.dimensions[var.dimensions[0]])
                assert rec["layout"] == "record"
            else:
                assert rec["chunk_shape"] == rec["shape"]
                assert len(rec["chunks"]) == (1 if var.size else 0)


def test_unallocated_chunks_are_absent():
    for path in [p for p in HDF5_FILES if "unallocated" in p.name]:
        rec = records_by_variable(path)["topg"]
        assert sorted(c["index"][0] for c in rec["chunks"]) == [1, 4]
        assert rec["fill_value"] == -9999.0


def test_unsupported_filter_is_reported_per_variable():
    for path in [p for p in HDF5_FILES if "lzf_filter" in p.name]:
        records, proc = run_inspect(path)
        assert proc.returncode == 0
        assert "lzf" in records[0]["error"] and records[0]["variable"] == "data"
        assert "lzf" in proc.stderr and "data" in proc.stderr


def test_vlen_string_variable_is_kept_inline_and_others_listed():
    for path in [p for p in HDF5_FILES if "attributes_strings" in p.name]:
        records = records_by_variable(path)
        assert records["names"]["layout"] == "strings" and records["names"]["dtype"] == "|O", records["names"]
        assert [c["name"] for c in records["names"]["codecs"]] == ["vlen-utf8"]
        with h5py.File(path) as f:
            assert read_variable_from_refs(path, records["names"]).tolist() == f["names"].asstr()[()].tolist()
        assert records["values"]["attributes"]["a_string"] == "vlen string attribute"
        assert records["label"]["dtype"] == "|S1"


@pytest.mark.parametrize("path", fixture_files(".nc", ".h5", bad=True), ids=lambda p: p.name)
def test_bad_files_fail_with_file_and_reason(path):
    records, proc = run_inspect(path)
    assert proc.returncode != 0
    assert records == []
    assert path.name in proc.stderr
    reason = proc.stderr.lower()
    assert any(word in reason for word in ("empty", "not a netcdf", "truncated", "past the end")), proc.stderr
    assert "panick" not in reason


def test_one_bad_file_does_not_hide_good_ones():
    good = HDF5_FILES[0]
    bad = fixture_files(".nc", bad=True)[0]
    records, proc = run_inspect(bad, good)
    assert proc.returncode != 0
    assert records and all(r["file"].endswith(good.name) for r in records)


def test_typical_ismip6_file_costs_few_requests():
    for path in [p for p in HDF5_FILES if "ismip6_contiguous" in p.name]:
        records = records_by_variable(path)
        any_rec = next(iter(records.values()))
        assert 1 <= any_rec["requests"] <= 4
        assert any_rec["bytes_read"] <= path.stat().st_size
