"""HDF5 compound (record) datasets, as `virtualizer inspect` describes them and as the pipeline
refuses them.

- Packed records (tests/fixtures/make_fixtures.py `compound_files`, both HDF5 generations): the
  chunk table equals h5py's (`get_chunk_info`, `get_offset`); the fields, read as a packed numpy
  dtype, are h5py's dtype; decoding the referenced bytes with the listed codecs gives h5py's
  records; zarr-python reads the fill value as its `struct` JSON and gets h5py's fill value.
  Nested records (a compound member that is a compound, one and two levels deep) too: their
  fields nest in the listing, and the `struct` data type floe writes for them (a `struct` inside
  a `struct`, rebuilt here from the listed fields as floe_formats::zarr_v3 builds it) is
  zarr-python's own for h5py's dtype, which `Struct.from_json` reads back.
- Records Zarr's packed struct cannot describe are refused by name, one reason each; inside a
  nested record the reason names the field's path (`inner.v`).
- `producer local`: zarrs has no struct data type, so a record is left out of its group once,
  by name, with "compound data type" and its fields in the reason (a nested record's in braces);
  the file's other variables are written.
"""
import json
import subprocess

import h5py
import numpy as np
import pytest
from zarr.core.dtype import Struct, get_data_type_from_native_dtype, parse_data_type

from conftest import FIXTURES, binary
from decode import decode_chunk
from test_inspect_oracle import h5py_chunks, records_by_variable as by_variable

COMPOUND = FIXTURES / "compound"
GOOD = sorted(COMPOUND.glob("*_compound.h5")) if COMPOUND.exists() else []
REFUSED = sorted(COMPOUND.glob("*_compound_refused.h5")) if COMPOUND.exists() else []


def packed(rec):
    """The numpy dtype of the listed fields, nested records as nested dtypes."""
    return np.dtype([(f["name"], packed(f) if f.get("fields") else f["dtype"]) for f in rec["fields"]])


SCALARS = {"i": "int", "u": "uint", "f": "float"}


def struct_json(fields):
    """zarr-python's `struct` data type of the listed fields, as floe_formats::zarr_v3 writes it
    (`record_type`): each field's Zarr name, a nested record's a `struct` again."""
    def data_type(f):
        if f.get("fields"):
            return struct_json(f["fields"])
        code, size = f["dtype"][1], int(f["dtype"][2:])
        if code == "b":
            return "bool"
        if code == "S":
            return {"name": "null_terminated_bytes", "configuration": {"length_bytes": size}}
        return f"{SCALARS[code]}{size * 8}"
    return {"name": "struct", "configuration": {"fields": [{"name": f["name"], "data_type": data_type(f)}
                                                           for f in fields]}}


def byte_orders(dtype):
    """The byte orders (`<`, `>`) of a dtype's multi-byte numbers, nested fields included."""
    if dtype.names:
        return set().union(*(byte_orders(dtype.fields[n][0]) for n in dtype.names))
    return {dtype.str[0]} if dtype.itemsize > 1 and dtype.kind != "S" else set()


# floe_formats' own test (crates/formats/tests/compound.rs) asserts array_metadata gives this for
# `nested_big_endian`.
NESTED_BIG_ENDIAN = {"name": "struct", "configuration": {"fields": [
    {"name": "t", "data_type": "int32"},
    {"name": "inner", "data_type": {"name": "struct", "configuration": {"fields": [
        {"name": "x", "data_type": "float32"},
        {"name": "deep", "data_type": {"name": "struct", "configuration": {"fields": [
            {"name": "s", "data_type": {"name": "null_terminated_bytes", "configuration": {"length_bytes": 2}}},
            {"name": "ok", "data_type": "bool"},
            {"name": "d", "data_type": "float64"},
        ]}}},
    ]}}},
]}}


def records_from_refs(path, rec):
    dtype, shape, chunk_shape = packed(rec), tuple(rec["shape"]), tuple(rec["chunk_shape"])
    if "inline_data" in rec:
        return np.frombuffer(bytes.fromhex(rec["inline_data"]), dtype=dtype).reshape(shape)
    out = np.zeros(shape, dtype)
    with open(path, "rb") as f:
        for ref in rec["chunks"]:
            f.seek(ref["offset"])
            chunk = decode_chunk(f.read(ref["length"]), dtype, chunk_shape, rec["codecs"])
            region = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(ref["index"], chunk_shape, shape))
            out[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
    return out


def test_both_generations_are_generated():
    assert len(GOOD) >= 2 and len(REFUSED) >= 2, f"run tests/fixtures/make_fixtures.py into {FIXTURES}"


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
@pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")
def test_nested_records_are_zarr_python_structs_inside_structs(path):
    records = by_variable(path)
    assert {"nested", "nested_big_endian"} <= set(records), sorted(records)
    assert [f["name"] for f in records["nested"]["fields"]] == ["a", "inner"]
    assert records["nested"]["fields"][1] == {"name": "inner", "dtype": "|V8", "fields": [
        {"name": "x", "dtype": "<f4"}, {"name": "y", "dtype": "<f4"}]}
    assert struct_json(records["nested_big_endian"]["fields"]) == NESTED_BIG_ENDIAN
    with h5py.File(path, "r") as f:
        for name, rec in records.items():
            dset = f[name]
            metadata = struct_json(rec["fields"])
            # zarr-python's own JSON for h5py's dtype (its byte order is the bytes codec's) ...
            assert metadata == parse_data_type(dset.dtype, zarr_format=3).to_json(zarr_format=3), name
            # ... read back, with the fill value, and that value is h5py's.
            struct = Struct.from_json(metadata, zarr_format=3)
            fill = np.array(struct.from_json_scalar(rec["fill_value"], zarr_format=3), struct.to_native_dtype())
            expected = np.zeros(1, dset.dtype)
            dset.id.get_create_plist().get_fill_value(expected)
            assert fill.astype(dset.dtype).tobytes() == expected[0].tobytes(), (name, rec["fill_value"])
            orders = byte_orders(dset.dtype)
            assert len(orders) <= 1, (name, orders)
            config = {"endian": {"<": "little", ">": "big"}[orders.pop()]} if orders else {}
            assert rec["codecs"][0] == {"name": "bytes", "configuration": config}, name
    # The explicit fill value, nested two levels: (-9, (inf, (b"zz", True, -0.5))).
    assert records["nested_big_endian"]["fill_value"] == {
        "t": -9, "inner": {"x": "Infinity", "deep": {"s": "eno=", "ok": True, "d": -0.5}}}
    assert records["nested"]["fill_value"] == {"a": 0, "inner": {"x": 0.0, "y": 0.0}}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_packed_records_are_referenced_as_h5py_reads_them(path):
    records = by_variable(path)
    with h5py.File(path, "r") as f:
        assert sorted(records) == sorted(f), records
        for name, rec in records.items():
            dset = f[name]
            assert "error" not in rec, rec
            assert rec["dtype"] == dset.dtype.str == f"|V{dset.dtype.itemsize}", name
            # Packed, in declared order: the fields alone rebuild h5py's dtype exactly.
            assert packed(rec) == dset.dtype, (name, rec["fields"], dset.dtype)
            got = sorted((tuple(c["index"]), c["offset"], c["length"]) for c in rec["chunks"])
            assert got == (h5py_chunks(dset) or []), name  # compact data has no chunk to point at
            np.testing.assert_array_equal(records_from_refs(path, rec), dset[...], err_msg=name)
            struct = get_data_type_from_native_dtype(packed(rec))
            assert struct.to_json(zarr_format=3)["name"] == "struct"
            fill = struct.from_json_scalar(rec["fill_value"], zarr_format=3)
            expected = np.zeros(1, dset.dtype)
            dset.id.get_create_plist().get_fill_value(expected)
            assert fill.tobytes() == expected[0].tobytes() or (
                name == "records" and np.isnan(fill["b"]) and np.isnan(expected[0]["b"])
                and [fill[k] for k in "asu"] == [expected[0][k] for k in "asu"]), (name, rec["fill_value"])


REASONS = {
    "padded": "compound type with padding (fields at offsets [0, 8], record of 16 bytes): Zarr's struct data type is packed",
    "trailing_padding": "compound type with padding",
    "out_of_order": "out of declared order",
    "array_member": 'array-typed field "v"',
    "vlen_member": 'variable-length field "name": variable-length data cannot be referenced as fixed-size chunks',
    "reference_member": 'reference field "r"',
    "mixed_order": 'mixed byte order ("a" little-endian, "b" big-endian)',
    "nested_padded": 'compound type with padding (nested record "inner": fields at offsets [0, 8], record of 16 bytes)',
    "nested_array_member": 'array-typed field "inner.v" (shape [2])',
    "nested_mixed_order": 'mixed byte order ("a" little-endian, "inner.x" big-endian)',
}


@pytest.mark.parametrize("path", REFUSED, ids=lambda p: p.name)
def test_records_zarr_cannot_describe_are_refused_by_name(path):
    records = by_variable(path)
    assert sorted(records) == sorted(REASONS), records
    for name, reason in REASONS.items():
        assert reason in records[name].get("error", ""), (name, records[name])


def test_the_pipeline_leaves_a_record_out_once_by_name_and_writes_the_rest(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    with h5py.File(archive / "stations.nc", "w") as f:
        f["orog"] = np.arange(12, dtype="f4").reshape(3, 4)
        f["stations"] = np.zeros(5, np.dtype([("id", "<i4"), ("height", "<f8"), ("pos", [("x", "<f4"), ("y", "<f4")])]))
    store = tmp_path / "store"
    proc = subprocess.run([binary("producer"), "local", "--profile", "files", "--source", str(archive),
                           "--store", str(store), "--json"], capture_output=True, text=True, timeout=600)
    summary = json.loads(proc.stdout)
    assert summary["written_groups"] == ["stations"], proc.stdout + proc.stderr
    assert summary["partial_groups"] == {"stations": ["stations"]}, summary
    import icechunk
    import zarr
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)))
    group = zarr.open_group(repo.readonly_session("main").store, path="stations", mode="r", zarr_format=3)
    warnings = [w for w in group.attrs["floe_warnings"] if w["variable"] == "stations"]
    assert len(warnings) == 1, group.attrs["floe_warnings"]
    assert warnings[0]["reason"].startswith("compound data type (id <i4, height <f8, pos {x <f4, y <f4})"), warnings
    assert "orog" in group and "stations" not in group
