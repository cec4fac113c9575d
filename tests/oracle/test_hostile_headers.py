"""Headers that do not hold, each crafted by the test from a file h5py wrote, with one field
patched: floe checks what a header declares before it builds a reference on it. Each variable whose
header does not hold is left out by name with the reason (`virtualizer inspect --json`), and the
untouched variable beside it in the same file is still referenced exactly as before the patch.

- a chunk index whose second entry points at the first chunk's bytes (two grid cells sharing
  bytes: both would read the same values);
- a chunk index listing one chunk twice (B-tree v1 key patched);
- a dimension above its declared maximum (libhdf5 refuses to open that dataset);
- contiguous data shorter than its shape;
- compact (in-header) data shorter than its shape;
- a NetCDF-3 variable whose `begin` points into the header (CDF-1 and CDF-2), whose bytes would
  read as data;
- dense attributes behind a broken B-tree v2 or fractal heap: the file fails by name (libhdf5
  refuses those attributes too), never listed without them.
"""
import json
import struct
import subprocess

import h5py
import netCDF4
import numpy as np
import pytest

from conftest import binary


def inspect(path):
    proc = subprocess.run([binary("virtualizer"), "inspect", "--json", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line["variable"]: line for line in map(json.loads, proc.stdout.splitlines())}


def patch(path, old, new):
    data = path.read_bytes()
    assert data.count(old) == 1, f"{old.hex()} found {data.count(old)} times"
    path.write_bytes(data.replace(old, new))


def with_witness(f):
    """The variable that stays intact beside the patched one."""
    f.create_dataset("witness", data=np.arange(3, dtype="<i2"))


def chunked(path):
    with h5py.File(path, "w", libver="earliest") as f:
        f.create_dataset("v", data=np.arange(4, dtype="<f4"), chunks=(2,))
        with_witness(f)
        return [f["v"].id.get_chunk_info(i).byte_offset for i in range(2)]


def shared_bytes(path):
    first, second = chunked(path)
    patch(path, struct.pack("<Q", second), struct.pack("<Q", first))


def listed_twice(path):
    chunked(path)
    # B-tree v1 raw-data key: chunk size, filter mask, then the element offsets (and one more 0).
    patch(path, struct.pack("<IIQQ", 8, 0, 2, 0), struct.pack("<IIQQ", 8, 0, 0, 0))


def above_maximum(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("v", shape=(7,), maxshape=(9,), chunks=(7,), dtype="<f4")
        with_witness(f)
    patch(path, struct.pack("<QQ", 7, 9), struct.pack("<QQ", 7, 5))


def short_contiguous(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=np.arange(6, dtype="<f8"))
        with_witness(f)
        address = f["v"].id.get_offset()
    # Layout message version 3, class 1 (contiguous): address, size.
    patch(path, struct.pack("<BBQQ", 3, 1, address, 48), struct.pack("<BBQQ", 3, 1, address, 40))


def short_compact(path):
    with h5py.File(path, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        values = np.array([11, 22, 33, 44], dtype="<i4")
        dataset = h5py.h5d.create(f.id, b"v", h5py.h5t.STD_I32LE, h5py.h5s.create_simple((4,)), dcpl=dcpl)
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, values)
        with_witness(f)
    # Layout message version 3, class 0 (compact): size, then the data.
    patch(path, struct.pack("<BBH", 3, 0, 16) + values.tobytes(), struct.pack("<BBH", 3, 0, 12) + values.tobytes())


CASES = {
    "shared_bytes": (shared_bytes, "overlap in the file"),
    "listed_twice": (listed_twice, "lists chunk [0] twice"),
    "above_maximum": (above_maximum, "dimension 0 has 7 elements, above its declared maximum 5"),
    "short_contiguous": (short_contiguous, "contiguous data of 40 bytes, where shape [6] of 8-byte elements needs 48"),
    "short_compact": (short_compact, "compact data of 12 bytes, where shape [4] of 4-byte elements needs 16"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_header_that_does_not_hold_leaves_its_variable_out_by_name(tmp_path, case):
    craft, reason = CASES[case]
    intact = tmp_path / "intact.h5"
    with h5py.File(intact, "w") as f:
        with_witness(f)
    path = tmp_path / f"{case}.h5"
    craft(path)
    found = inspect(path)
    assert "error" in found["v"] and reason in found["v"]["error"], found["v"]
    assert "error" not in found["witness"], found["witness"]
    with h5py.File(path) as f:
        start = f["witness"].id.get_offset()
        np.testing.assert_array_equal(f["witness"][:], np.arange(3, dtype="<i2"))
    assert found["witness"]["chunks"] == [{"index": [0], "offset": start, "length": 6}], found["witness"]


def test_libhdf5_refuses_the_dimension_above_its_maximum_too(tmp_path):
    path = tmp_path / "above.h5"
    above_maximum(path)
    with h5py.File(path) as f, pytest.raises(Exception):
        f["v"][:]


@pytest.mark.parametrize("fmt,width", [("NETCDF3_CLASSIC", ">I"), ("NETCDF3_64BIT_OFFSET", ">Q")])
def test_a_netcdf3_begin_inside_the_header_leaves_its_variable_out_by_name(tmp_path, fmt, width):
    path = tmp_path / "classic.nc"
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.title = "a classic file"
        ds.createDimension("x", 3)
        ds.createVariable("v", "f4", ("x",))[:] = [1.5, 2.5, 3.5]
        ds.createVariable("witness", "i2", ("x",))[:] = [0, 1, 2]
    before = inspect(path)
    begin = before["v"]["chunks"][0]["offset"]
    patch(path, struct.pack(width, begin), struct.pack(width, 8))
    found = inspect(path)
    assert "inside the header" in found["v"].get("error", ""), found["v"]
    assert "begin at byte 8" in found["v"]["error"], found["v"]
    assert found["witness"]["chunks"] == before["witness"]["chunks"], found["witness"]


@pytest.mark.parametrize("signature", [b"BTHD", b"BTLF", b"FRHP"])
def test_attributes_behind_a_broken_index_fail_the_file_by_name_never_vanish(tmp_path, signature):
    """Twenty attributes on a variable are stored densely (a fractal heap indexed by a B-tree v2).
    With one byte of that index or heap flipped, libhdf5 refuses the attributes; floe fails the file
    naming it, the variable and the structure, instead of listing the variable without them."""
    path = tmp_path / "dense.h5"
    with h5py.File(path, "w", libver="latest") as f:
        v = f.create_dataset("v", data=np.arange(4, dtype="<f4"))
        for i in range(20):
            v.attrs[f"a{i:02d}"] = f"value {i}"
        with_witness(f)
    data = bytearray(path.read_bytes())
    at = data.index(signature)
    data[at + 6] ^= 0xFF
    path.write_bytes(bytes(data))
    with h5py.File(path) as f, pytest.raises(Exception):
        dict(f["v"].attrs)
    proc = subprocess.run([binary("virtualizer"), "inspect", "--json", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and proc.stdout == "", proc.stdout[-2000:]
    assert str(path) in proc.stderr and "'v'" in proc.stderr, proc.stderr


def test_a_dataset_that_is_not_a_netcdf_variable_is_named_never_vanishes(tmp_path):
    """A dataset of object references (the NetCDF view does not list it) and one in a sub-group:
    each is named with its kind; the variable beside them is kept."""
    path = tmp_path / "refs.h5"
    with h5py.File(path, "w") as f:
        with_witness(f)
        f.create_dataset("refs", (1,), dtype=h5py.ref_dtype)[0] = f["witness"].ref
        f.create_group("g").create_dataset("refs", (1,), dtype=h5py.ref_dtype)[0] = f["witness"].ref
    found = inspect(path)
    for name in ("refs", "g/refs"):
        assert "not a NetCDF variable (object or region reference data)" in found[name]["error"], found[name]
    assert "error" not in found["witness"]
