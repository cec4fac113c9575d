"""`FloeParser` (the wheel's VirtualiZarr parser) against VirtualiZarr's own HDFParser and
NetCDF3Parser: the same ManifestStore (group and array attributes, dimension names, dtypes,
fill values, codecs, chunk paths, offsets and lengths) for every fixture and every ESMValTool
sample file, and the values written with `.vz.to_icechunk` reading back equal to netCDF4's.

Where the two differ, each difference is one VirtualiZarr gets wrong, and the test checks
floe's answer against netCDF4 reading the file:
- a plain HDF5 file's phony dimensions: HDFParser numbers them per axis (`phony_dim_0` for the
  first axis of every dataset, whatever its length); netCDF-C, and floe, number them per file;
- compact-layout data (`*_compact.h5`): HDFParser gives it no chunk, so it reads as the fill
  value; floe inlines its bytes;
- a NetCDF-3 variable without `_FillValue`: NetCDF3Parser's Zarr fill value is 0; floe's is the
  netCDF default fill for the type, what netCDF-C reads where nothing was written;
- a dimension of a parent group used in a nested group: HDFParser names it by its path;
- records (HDF5 compounds) not packed in declared order: HDFParser builds arrays that read
  back wrong or not at all; floe refuses them by name.
"""
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from conftest import FIXTURES, fixture_files

esmvaltool_sample_data = pytest.importorskip("esmvaltool_sample_data")
SAMPLE = Path(esmvaltool_sample_data.__file__).parent / "data" / "timeseries" / "CMIP6"


@pytest.fixture(scope="module")
def floe_parser(wheel, tmp_path_factory):
    """FloeParser from the built wheel, installed beside the oracle venv's virtualizarr."""
    target = tmp_path_factory.mktemp("floe_icechunk")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    sys.path.insert(0, str(target))
    from floe_icechunk import FloeParser
    return FloeParser


def registry():
    from obstore.store import LocalStore
    from virtualizarr.registry import ObjectStoreRegistry
    return ObjectStoreRegistry({"file://": LocalStore()})


def theirs_parser(path):
    from virtualizarr.parsers import HDFParser, NetCDF3Parser
    return NetCDF3Parser() if path.read_bytes()[:3] == b"CDF" else HDFParser()


def same(a, b):
    """Equality with NaN equal to itself (fill values and attributes hold NaN)."""
    def norm(v):
        return json.dumps(v, sort_keys=True, default=repr, allow_nan=True)
    return norm(a) == norm(b)


def tree(store):
    """Every node of a ManifestStore: attributes, and each array's metadata and manifest."""
    out = {}

    def walk(group, prefix):
        out[prefix + "@attributes"] = dict(group.metadata.attributes)
        for name, array in group.arrays.items():
            metadata = array.metadata.to_dict()
            manifest = {k: {f: (bytes(v).hex() if isinstance(v, (bytes, bytearray, memoryview)) else v) for f, v in e.items()}
                        for k, e in array.manifest.dict().items()}
            out[prefix + name] = {**metadata, "manifest": manifest}
        for name, sub in group.groups.items():
            walk(sub, prefix + name + "/")
    walk(store._group, "")
    return out


def differences(ours, theirs):
    diffs = []
    for node in sorted(set(ours) | set(theirs)):
        a, b = ours.get(node), theirs.get(node)
        if a is None or b is None:
            diffs.append((node, "node", a, b))
            continue
        diffs += [(node, key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if not same(a.get(key), b.get(key))]
    return diffs


def explained(path, diff):
    """Whether a difference is one where VirtualiZarr is wrong and floe right, checked with netCDF4."""
    node, key, ours, theirs = diff
    if key == "dimension_names":
        with netCDF4.Dataset(path) as ds:
            return tuple(ours) == ds[node].dimensions and tuple(theirs) != ds[node].dimensions
    if key == "manifest" and path.name.endswith("_compact.h5"):
        # No chunk in theirs (the array reads as its fill value); the data inlined in ours.
        return theirs == {} and all(e["path"] == "__inlined__" for e in ours.values())
    if key == "fill_value" and path.read_bytes()[:3] == b"CDF":
        with netCDF4.Dataset(path) as ds:
            var = ds[node]
            default = np.array(netCDF4.default_fillvals[var.dtype.str[1:]], dtype=var.dtype).item()
            return "_FillValue" not in var.ncattrs() and theirs in (0, 0.0) and same(ours, default)
    return False


def compare(FloeParser, path):
    warnings.simplefilter("ignore")
    url = f"file://{path}"
    ours = tree(FloeParser()(url, registry()))
    theirs = tree(theirs_parser(path)(url, registry()))
    unexplained = [d for d in differences(ours, theirs) if not explained(path, d)]
    assert not unexplained, (path.name, unexplained[:5])
    return ours


READABLE = [p for p in fixture_files(".nc", ".h5") if "lzf" not in p.name]


@pytest.mark.parametrize("path", READABLE, ids=lambda p: p.name)
def test_fixtures_give_virtualizarr_s_tree(floe_parser, path):
    ours = compare(floe_parser, path)
    assert any("manifest" in node for node in ours.values()), ours.keys()


def test_real_cmip6_files_give_virtualizarr_s_tree(floe_parser):
    files = sorted(SAMPLE.rglob("*.nc"))
    assert len(files) > 300, SAMPLE
    for path in files:
        compare(floe_parser, path)


def test_the_differences_are_found(floe_parser):
    """The explanations above are not vacuous: these files differ, each as explained."""
    warnings.simplefilter("ignore")
    for name, key in [("h5_2_0_0_compact.h5", "manifest"), ("h5_2_0_0_userblock.h5", "dimension_names"),
                      ("h5_2_0_0_classic_records.nc", "fill_value")]:
        path = FIXTURES / name
        url = f"file://{path}"
        diffs = differences(tree(floe_parser()(url, registry())), tree(theirs_parser(path)(url, registry())))
        assert any(d[1] == key for d in diffs) and all(explained(path, d) for d in diffs), (name, diffs)


@pytest.mark.parametrize("path", [p for p in fixture_files(".nc", ".h5") if "lzf" in p.name], ids=lambda p: p.name)
def test_a_filter_without_a_zarr_codec_is_refused_naming_the_file_and_variable(floe_parser, path):
    url = f"file://{path}"
    with pytest.raises(NotImplementedError) as refused:
        floe_parser()(url, registry())
    assert url in str(refused.value) and "'data'" in str(refused.value) and "lzf" in str(refused.value)
    # Dropping the variable leaves the rest of the file readable.
    store = floe_parser(drop_variables=["data"])(url, registry())
    assert "data" not in store._group.arrays


def written_and_read_back(FloeParser, path, tmp_path):
    import icechunk
    import xarray as xr
    url = f"file://{path}"
    vds = FloeParser()(url, registry()).to_virtual_dataset()
    # zarr writes a NaN attribute as bare NaN, which icechunk refuses as JSON (HDFParser's
    # dataset of the same file holds the same attribute): values are the point here.
    for var in vds.variables.values():
        var.attrs = {k: v for k, v in var.attrs.items() if not (isinstance(v, float) and math.isnan(v))}
    prefix = f"file://{path.parent}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(path.parent))))
    credentials = {prefix: icechunk.credentials.LocalFileSystemAccess}
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "store")), config,
                                      authorize_virtual_chunk_access=credentials)
    session = repo.writable_session("main")
    vds.vz.to_icechunk(session.store)
    session.commit("FloeParser")
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(tmp_path / "store")),
                                    authorize_virtual_chunk_access=credentials)
    return xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False,
                        mask_and_scale=False, decode_times=False, concat_characters=False)


@pytest.mark.parametrize("path", READABLE, ids=lambda p: p.name)
def test_values_written_to_icechunk_read_back_as_netcdf4_reads_them(floe_parser, path, tmp_path):
    warnings.simplefilter("ignore")
    ds = written_and_read_back(floe_parser, path, tmp_path)
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        nc.set_auto_chartostring(False)
        names = [n for n in nc.variables if n in ds.variables]
        assert names, (list(nc.variables), list(ds.variables))
        for name in names:
            expected = nc[name][...]
            got = ds[name].values
            if expected.dtype.kind == "O":
                got = got.astype(object)
            assert got.shape == expected.shape, name
            np.testing.assert_array_equal(got, np.asarray(expected), err_msg=f"{path.name}: {name}")


def test_groups_as_hdfparser_gives_them_with_their_attributes(floe_parser, tmp_path):
    """A NetCDF-4 file with sub-groups (one nested, one empty, each with attributes of its
    own): the same tree as HDFParser's, whole file or from a sub-group; a group the file lacks
    is a ValueError naming the file and the group. One difference, HDFParser's mistake: a
    dimension of a parent group, used in `sub/inner`, is named by HDFParser by its path
    (`sub/y`); floe names it `y`, as netCDF4 (and xarray) do."""
    warnings.simplefilter("ignore")
    from virtualizarr.parsers import HDFParser
    path = tmp_path / "nested.nc"
    with netCDF4.Dataset(path, "w") as ds:
        ds.title = "root"
        ds.createDimension("x", 4)
        ds.createVariable("a", "f4", ("x",))[:] = np.arange(4)
        sub = ds.createGroup("sub")
        sub.note = "in sub"
        sub.missing = np.float32("nan")
        sub.createDimension("y", 3)
        b = sub.createVariable("b", "i2", ("y",), zlib=True)
        b[:] = [1, 2, 3]
        b.units = "m"
        sub.createVariable("c", "f8", ("x",))[:] = 1.5
        inner = sub.createGroup("inner")
        inner.level = np.int32(2)
        inner.createVariable("d", "u1", ("y",))[:] = [7, 8, 9]
        ds.createGroup("empty").purpose = "none yet"
    url = f"file://{path}"
    for group in (None, "sub", "/sub/inner", "empty"):
        ours = tree(floe_parser(group=group)(url, registry()))
        theirs = tree(HDFParser(group=group)(url, registry()))
        assert sorted(ours) == sorted(theirs), group
        prefix = (group or "").strip("/") + "/" if group else ""
        with netCDF4.Dataset(path) as nc:
            for node, key, a, b in differences(ours, theirs):
                assert key == "dimension_names" and (prefix + node).startswith("sub/inner/"), (group, node, key, a, b)
                assert tuple(a) == nc[prefix + node].dimensions == ("y",) and tuple(b) == ("sub/y",)
    whole = tree(floe_parser()(url, registry()))
    assert whole["sub/@attributes"]["note"] == "in sub" and math.isnan(whole["sub/@attributes"]["missing"])
    assert whole["sub/inner/@attributes"] == {"level": 2} and "sub/inner/d" in whole
    assert whole["empty/@attributes"] == {"purpose": "none yet"}
    sub = tree(floe_parser(group="sub", drop_variables=["b"])(url, registry()))
    assert sorted(sub) == ["@attributes", "c", "inner/@attributes", "inner/d"], sorted(sub)
    with pytest.raises(ValueError, match=f"{url}: no group .nowhere."):
        floe_parser(group="nowhere")(url, registry())


REFUSED = {
    "vlen_int": "variable-length data cannot be referenced",
    "external": "external raw files",
    "refs": "an HDF5 dataset that is not a NetCDF variable (object or region reference data)",
}


def test_what_cannot_be_referenced_is_refused_naming_the_file_and_variable(floe_parser, tmp_path):
    """Each refusal names the URL, the variable and why; dropping the variable reads the rest.
    One gap, stated here so that a change shows (docs/status.md): a virtual dataset fails the
    whole file, named as one (the HDF5 reader under floe cannot parse its object header)."""
    import h5py
    path = tmp_path / "refused.h5"
    (tmp_path / "ext.bin").write_bytes(np.arange(4, dtype="<i4").tobytes())
    with h5py.File(path, "w") as f:
        f["ok"] = np.arange(3.0)
        f["compound"] = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])
        f.create_dataset("vlen_int", (2,), dtype=h5py.vlen_dtype(np.int32))[0] = [1, 2]
        f.create_dataset("refs", (1,), dtype=h5py.ref_dtype)[0] = f["ok"].ref
        f.create_dataset("external", (4,), dtype="<i4", external=[(str(tmp_path / "ext.bin"), 0, 16)])
    url = f"file://{path}"
    for name, reason in REFUSED.items():
        with pytest.raises(NotImplementedError) as refused:
            floe_parser(drop_variables=[n for n in REFUSED if n != name])(url, registry())
        assert str(refused.value).startswith(f"{url}: variable '{name}': ") and reason in str(refused.value)
    store = floe_parser(drop_variables=list(REFUSED))(url, registry())
    assert sorted(store._group.arrays) == ["compound", "ok"]

    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as f:
        f["x"] = np.arange(10, dtype="<i4")
    virtual = tmp_path / "virtual.h5"
    with h5py.File(virtual, "w") as f:
        layout = h5py.VirtualLayout(shape=(10,), dtype="<i4")
        layout[:] = h5py.VirtualSource(str(source), "x", shape=(10,))
        f.create_virtual_dataset("v", layout)
    with pytest.raises(ValueError) as refused:
        floe_parser()(f"file://{virtual}", registry())
    message = str(refused.value)
    assert message.startswith(f"file://{virtual}: ") and "child 'v'" in message, message
    assert "is an HDF5 virtual dataset" in message and "the whole file is refused" in message, message


def read_back(store_of, path, tmp_path):
    """Every array of a ManifestStore written to Icechunk with `.vz.to_icechunk` and read back
    by zarr (records as numpy structured arrays), by name."""
    import icechunk
    import zarr
    vds = store_of(f"file://{path}").to_virtual_dataset()
    prefix = f"file://{path.parent}/"
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(path.parent))))
    credentials = {prefix: icechunk.credentials.LocalFileSystemAccess}
    storage = icechunk.local_filesystem_storage(str(tmp_path / f"store-{len(list(tmp_path.iterdir()))}"))
    repo = icechunk.Repository.create(storage, config, authorize_virtual_chunk_access=credentials)
    session = repo.writable_session("main")
    vds.vz.to_icechunk(session.store)
    session.commit("records")
    group = zarr.open_group(repo.readonly_session("main").store, mode="r", zarr_format=3)
    return {name: group[name][...] for name in group.array_keys()}


def same_records(got, expected):
    """Records equal field by field (NaN equal to itself), nested records included."""
    if expected.dtype.names is None:
        return got.shape == expected.shape and np.array_equal(got, expected, equal_nan=expected.dtype.kind == "f")
    return got.dtype.names == expected.dtype.names and all(same_records(got[k], expected[k]) for k in expected.dtype.names)


COMPOUND = sorted((FIXTURES / "compound").glob("*_compound.h5"))


@pytest.mark.parametrize("path", COMPOUND, ids=lambda p: p.name)
def test_compound_records_give_hdfparser_s_tree_and_read_back_as_h5py_reads_them(floe_parser, path, tmp_path):
    """Files of HDF5 compound datasets (chunked with filters, 2-D contiguous, big-endian, bool
    and enum fields, compact): HDFParser's tree, but for the differences where it is wrong
    (phony dimensions numbered per axis; compact data given no chunk); and every record,
    field by field, read back through Icechunk as h5py reads it."""
    import h5py
    from virtualizarr.parsers import HDFParser
    warnings.simplefilter("ignore")
    url = f"file://{path}"
    ours = tree(floe_parser()(url, registry()))
    theirs = tree(HDFParser()(url, registry()))
    assert sorted(ours) == sorted(theirs)
    for node, key, a, b in differences(ours, theirs):
        if key == "manifest":
            assert node == "compact" and b == {} and all(e["path"] == "__inlined__" for e in a.values()), node
        else:
            assert key == "dimension_names" and all(d.startswith("phony_dim_") for d in a), (node, key, a, b)
    records = [n for n in ours if n != "@attributes" and ours[n]["data_type"]["name"] == "struct"]
    assert len(records) >= 5, sorted(ours)
    got = read_back(lambda u: floe_parser()(u, registry()), path, tmp_path)
    with h5py.File(path) as f:
        for name in records:
            assert same_records(got[name], f[name][...]), name


def test_records_floe_refuses_are_ones_hdfparser_reads_wrong_or_inlines(floe_parser, tmp_path):
    """Records whose bytes are not packed in declared order (padding inside or at the end,
    fields stored out of order): Zarr's struct type is packed, so floe refuses each by name.
    HDFParser builds them anyway and they read back wrong or not at all. A record with a
    variable-length field: HDFParser reads its values into the store (inlined); floe refuses it
    as variable-length data, as it does every variable-length type but strings."""
    import h5py
    from virtualizarr.parsers import HDFParser
    warnings.simplefilter("ignore")
    path = tmp_path / "records.h5"
    n = 6
    layouts = {
        "padded": np.dtype([("a", "i1"), ("b", "<f8")], align=True),
        "trailing_padding": np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i2"], "offsets": [0, 4], "itemsize": 8}),
        "out_of_order": np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": [4, 0], "itemsize": 8}),
    }
    with h5py.File(path, "w") as f:
        for name, dtype in layouts.items():
            data = np.zeros(n, dtype)
            data["a"], data["b"] = np.arange(n) + 1, np.arange(n) * 10 + 5
            f[name] = data
        vlen = f.create_dataset("vlen_member", (2,), dtype=np.dtype([("a", "<i4"), ("name", h5py.string_dtype())]))
        vlen[0], vlen[1] = (1, "one"), (2, "two")
    url = f"file://{path}"
    names = [*layouts, "vlen_member"]
    outcomes = {}
    for name in names:
        others = [m for m in names if m != name]
        with pytest.raises(NotImplementedError) as refused:
            floe_parser(drop_variables=others)(url, registry())
        message = str(refused.value)
        assert message.startswith(f"{url}: variable '{name}': compound type "), message
        expected = "a variable-length field" if name == "vlen_member" else (
            "stored out of declared order" if name == "out_of_order" else "padding")
        assert expected in message, message
        with h5py.File(path) as f:
            original = f[name][...]
        if name == "vlen_member":
            inlined = read_back(lambda u: HDFParser(drop_variables=others)(u, registry()), path, tmp_path)[name]
            assert inlined["a"].tolist() == [1, 2] and inlined["name"].tolist() == ["one", "two"]
            continue
        try:
            theirs = read_back(lambda u: HDFParser(drop_variables=others)(u, registry()), path, tmp_path)[name]
        except ValueError:
            outcomes[name] = "unreadable"
            continue
        assert not same_records(theirs, original), name
        outcomes[name] = "wrong"
    # What VirtualiZarr 2.8 + zarr 3.4 do today: fields out of order read swapped, silently.
    assert outcomes == {"padded": "unreadable", "trailing_padding": "unreadable", "out_of_order": "wrong"}, outcomes


def test_fill_values_floe_cannot_carry_are_refused_not_zeroed(floe_parser, tmp_path):
    """A byte string's fill value is carried in 8 bytes: one of 16 bytes that is not all zeros
    is refused by name (it was read as "" before, silently); all zeros, it reads as
    HDFParser's. A record of a byte string and a byte gets zarr-python's little-endian bytes
    codec, as HDFParser's does (without one, zarr warns on every read)."""
    import h5py
    from virtualizarr.parsers import HDFParser
    warnings.simplefilter("ignore")
    path = tmp_path / "fills.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("labelled", (4,), dtype="S16", fillvalue=b"N/A")
        f.create_dataset("blank", data=np.array([b"a", b"bc"], dtype="S16"))
        f["tags"] = np.array([(b"abc", 1), (b"de", 2)], dtype=[("s", "S3"), ("u", "u1")])
    url = f"file://{path}"
    with pytest.raises(NotImplementedError) as refused:
        floe_parser(drop_variables=["blank", "tags"])(url, registry())
    message = str(refused.value)
    assert message.startswith(f"{url}: variable 'labelled': a fill value of 16 bytes") and "N/A" in message, message
    ours = tree(floe_parser(drop_variables=["labelled"])(url, registry()))
    theirs = tree(HDFParser(drop_variables=["labelled"])(url, registry()))
    diffs = differences(ours, theirs)
    assert all(key == "dimension_names" for _, key, _, _ in diffs), diffs
    assert ours["tags"]["codecs"][0] == {"name": "bytes", "configuration": {"endian": "little"}}, ours["tags"]
    got = read_back(lambda u: floe_parser(drop_variables=["labelled"])(u, registry()), path, tmp_path)
    with h5py.File(path) as f:
        assert same_records(got["tags"], f["tags"][...]) and got["blank"].tolist() == [b"a", b"bc"]


def test_a_hostile_chunk_grid_is_refused_by_name_before_its_manifest_is_allocated(floe_parser, tmp_path):
    """A dataspace of 2^40 points in chunks of 5 (nothing written): VirtualiZarr's manifests are
    dense over the grid, 2^38 cells. The variable is refused, naming FLOE_MAX_CHUNKS_PER_FILE,
    instead of three arrays of 2 TiB each; the variable beside it is read."""
    import h5py
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("huge", shape=(2 ** 40,), chunks=(5,), dtype="<f4")
        f["ok"] = np.arange(3.0)
    url = f"file://{path}"
    with pytest.raises(NotImplementedError) as refused:
        floe_parser()(url, registry())
    message = str(refused.value)
    assert message.startswith(f"{url}: variable 'huge': ") and "FLOE_MAX_CHUNKS_PER_FILE" in message, message
    assert f"{2 ** 40 // 5 + 1} cells" in message or f"{-(-2 ** 40 // 5)} cells" in message, message
    store = floe_parser(drop_variables=["huge"])(url, registry())
    assert sorted(store._group.arrays) == ["ok"]


def test_the_limits_come_from_the_environment_as_in_the_binaries(wheel, tmp_path):
    """In a process of its own (limits are read once per process): FLOE_MAX_CHUNKS_PER_FILE
    lowered refuses a variable of 4,000 chunks by name; unusable, it is a ValueError naming it."""
    import h5py
    path = tmp_path / "chunks.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=np.arange(16000, dtype="<i4"), chunks=(4,))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    script = (f"import sys; sys.path.insert(0, {str(target)!r})\n"
              "from obstore.store import LocalStore\n"
              "from virtualizarr.registry import ObjectStoreRegistry\n"
              "from floe_icechunk import FloeParser\n"
              "try:\n"
              f"    FloeParser()('file://{path}', ObjectStoreRegistry({{'file://': LocalStore()}}))\n"
              "    print('read')\n"
              "except (NotImplementedError, ValueError) as e:\n"
              "    print(type(e).__name__, e)\n")
    def run(value):
        env = dict(os.environ, FLOE_MAX_CHUNKS_PER_FILE=value)
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                              timeout=120).stdout.strip()
    assert run("1MiB") == "read"
    lowered = run("1000")
    assert lowered.startswith("NotImplementedError") and "4000 chunks" in lowered, lowered
    assert "FLOE_MAX_CHUNKS_PER_FILE" in lowered
    unusable = run("lots")
    assert unusable.startswith('ValueError FLOE_MAX_CHUNKS_PER_FILE="lots"'), unusable


def test_grids_are_bounded_together_and_a_zero_length_axis_does_not_hide_one(floe_parser, tmp_path):
    """Chunk grids of unwritten chunks cost no index read but a dense manifest each: three grids
    of 600,000 cells pass the 1,048,576 of FLOE_MAX_CHUNKS_PER_FILE together, so the second is
    refused by name. A grid of (0, 2^32, 2^31) cells is empty, but its other axes still count
    (no panic allocating it)."""
    import h5py
    path = tmp_path / "grids.h5"
    with h5py.File(path, "w") as f:
        for i in range(3):
            f.create_dataset(f"v{i}", shape=(600_000,), chunks=(1,), dtype="i1")
        f.create_dataset("flat", shape=(0, 2 ** 32, 2 ** 31), maxshape=(None, 2 ** 32, 2 ** 31),
                         chunks=(1, 1, 1), dtype="i1")
    url = f"file://{path}"
    with pytest.raises(NotImplementedError) as refused:
        floe_parser(drop_variables=["flat"])(url, registry())
    assert str(refused.value).startswith(f"{url}: variable 'v1': "), refused.value
    assert "600000 cells, which would take the file's to 1200000" in str(refused.value), refused.value
    with pytest.raises(NotImplementedError) as refused:
        floe_parser(drop_variables=["v0", "v1", "v2"])(url, registry())
    assert str(refused.value).startswith(f"{url}: variable 'flat': ") and "FLOE_MAX_CHUNKS_PER_FILE" in str(
        refused.value), refused.value
    store = floe_parser(drop_variables=["v1", "v2", "flat"])(url, registry())
    assert sorted(store._group.arrays) == ["v0"]
