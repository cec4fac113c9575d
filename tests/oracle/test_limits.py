"""Limits on outside input are named and configurable (issue 34): every binary reads the same
`FLOE_MAX_*` variables at start, `producer limits` prints them, a value that cannot be used stops
a binary before any work with the variable named, a lowered limit refuses by name (the variable
beside stays exact) and a raised one admits what the default refuses. Each file is written by the
test with h5py.
"""
import json
import os
import subprocess

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
import icechunk

from conftest import binary
from test_hostile import ismip6_file

LIMIT_VARIABLES = [
    "FLOE_MAX_CHUNKS_PER_FILE", "FLOE_MAX_HEADER_BYTES_PER_FILE", "FLOE_MAX_HEADER_BYTES_UNSHARED",
    "FLOE_MAX_ELEMENTS_PER_ARRAY", "FLOE_MAX_REFERENCES_PER_FRAGMENT", "FLOE_MAX_ATTRIBUTE_BYTES",
    "FLOE_MAX_GROUP_METADATA_BYTES", "FLOE_MAX_GROUP_DEPTH", "FLOE_MAX_GROUP_PATH_BYTES",
    "FLOE_MAX_AXIS_POINTS", "FLOE_MAX_SPLIT_STEPS", "FLOE_MAX_INLINE_STRINGS",
    "FLOE_MAX_INLINE_STRING_BYTES", "FLOE_MAX_ERROR_CHARS", "FLOE_MAX_REASON_CHARS",
]


def run(program, *args, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_MAX_")}
    full.update(env or {})
    return subprocess.run([binary(program), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=full)


def inspect(path, env=None):
    proc = run("virtualizer", "inspect", "--json", path, env=env)
    return proc, {line["variable"]: line for line in map(json.loads, proc.stdout.splitlines())}


def many_chunks(path, n=4000):
    """`v`: n chunks of 4 int32 (an index of about n * 40 bytes); `witness`: 3 contiguous int16."""
    with h5py.File(path, "w", libver="earliest") as f:
        f.create_dataset("v", data=np.arange(4 * n, dtype="<i4"), chunks=(4,))
        f.create_dataset("witness", data=np.arange(3, dtype="<i2"))


def test_producer_limits_lists_every_limit_with_its_value_and_origin():
    proc = run("producer", "limits", env={"FLOE_MAX_GROUP_DEPTH": "8", "FLOE_MAX_ATTRIBUTE_BYTES": "2MiB"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    entries = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("FLOE_MAX_")}
    assert sorted(entries) == sorted(LIMIT_VARIABLES), proc.stdout
    assert entries["FLOE_MAX_GROUP_DEPTH"][:3] == ["8", "levels", "set;"], entries["FLOE_MAX_GROUP_DEPTH"]
    assert entries["FLOE_MAX_ATTRIBUTE_BYTES"][0] == str(2 << 20)
    assert entries["FLOE_MAX_CHUNKS_PER_FILE"][:3] == [str(1 << 20), "references", "default"]
    # Each entry says what it bounds, on the line after it.
    for i, line in enumerate(lines):
        if line.startswith("FLOE_MAX_"):
            assert lines[i + 1].startswith("    ") and len(lines[i + 1].strip()) > 20, lines[i:i + 2]


@pytest.mark.parametrize("program, args", [
    ("producer", ["limits"]),
    ("virtualizer", ["inspect", "/nonexistent.nc"]),
    ("committer", ["log", "--store", "/nonexistent-store"]),
])
@pytest.mark.parametrize("value", ["0", "lots", "12 MB"])
def test_an_unusable_limit_stops_every_binary_before_any_work_naming_it(program, args, value):
    proc = run(program, *args, env={"FLOE_MAX_CHUNKS_PER_FILE": value})
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith(f"{program}: FLOE_MAX_CHUNKS_PER_FILE=\"{value}\""), proc.stderr
    assert proc.stdout == ""


def test_a_lowered_chunk_limit_leaves_the_variable_out_by_name_and_keeps_the_one_beside(tmp_path):
    path = tmp_path / "chunks.h5"
    many_chunks(path, n=4000)
    proc, found = inspect(path)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in found["v"] and len(found["v"]["chunks"]) == 4000
    proc, lowered = inspect(path, env={"FLOE_MAX_CHUNKS_PER_FILE": "1000"})
    assert proc.returncode == 0, proc.stderr
    error = lowered["v"]["error"]
    assert "4000 chunks" in error and "more than the 1000" in error and "FLOE_MAX_CHUNKS_PER_FILE" in error, error
    assert lowered["witness"]["chunks"] == found["witness"]["chunks"], lowered["witness"]


def test_a_header_over_its_byte_limit_fails_its_file_by_name(tmp_path):
    path = tmp_path / "index.h5"
    many_chunks(path, n=8000)
    assert path.stat().st_size > 64 * 1024  # read by ranged reads, not whole
    proc, found = inspect(path)
    assert proc.returncode == 0, proc.stderr
    assert found["v"]["bytes_read"] > 128 * 1024, found["v"]["bytes_read"]
    proc, _ = inspect(path, env={"FLOE_MAX_HEADER_BYTES_PER_FILE": "128KiB"})
    assert proc.returncode != 0
    assert str(path) in proc.stderr and "more than the 131072 bytes" in proc.stderr, proc.stderr
    assert "FLOE_MAX_HEADER_BYTES_PER_FILE" in proc.stderr, proc.stderr


def test_an_array_over_the_element_limit_is_left_out_by_name(tmp_path):
    path = tmp_path / "elements.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("big", data=np.zeros((30, 40), dtype="<f4"))
        f.create_dataset("small", data=np.arange(10, dtype="<f4"))
    proc, found = inspect(path, env={"FLOE_MAX_ELEMENTS_PER_ARRAY": "1000"})
    assert proc.returncode == 0, proc.stderr
    assert "1200 elements, more than the 1000" in found["big"]["error"], found["big"]
    assert "FLOE_MAX_ELEMENTS_PER_ARRAY" in found["big"]["error"]
    assert "error" not in found["small"] and found["small"]["shape"] == [10]


def long_attribute_file(path, size):
    with h5py.File(path, "w") as f:
        f.attrs["history"] = "x" * size
        f.create_dataset("v", data=np.arange(6, dtype="<f8"))


def test_an_attribute_refused_at_the_default_is_stored_under_a_raised_limit(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    long_attribute_file(archive / "long.nc", 2 << 20)  # 2 MiB: over the default 1 MiB
    for name, env in (("default", {}), ("raised", {"FLOE_MAX_ATTRIBUTE_BYTES": "4MiB"})):
        store = tmp_path / f"store-{name}"
        proc = run("producer", "local", "--profile", "files", "--source", archive, "--store", store,
                   "--json", env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        repo = icechunk.Repository.open(
            icechunk.local_filesystem_storage(str(store)),
            authorize_virtual_chunk_access={f"file://{archive}/": icechunk.credentials.LocalFileSystemAccess})
        session = repo.readonly_session("main")
        ds = xr.open_zarr(session.store, group="long", consolidated=False, zarr_format=3)
        expected = xr.open_dataset(archive / "long.nc", engine="h5netcdf", phony_dims="sort")
        np.testing.assert_array_equal(ds["v"].values, expected["v"].values)
        warnings = " ".join(map(str, zarr.open_group(session.store, path="long", mode="r").attrs.get(
            "floe_warnings", [])))
        if name == "default":
            assert "history" not in ds.attrs
            assert "attribute history" in warnings and "FLOE_MAX_ATTRIBUTE_BYTES" in warnings, warnings
        else:
            assert ds.attrs["history"] == expected.attrs["history"]
            assert "attribute history" not in warnings, warnings


def test_a_lowered_group_depth_skips_the_deeper_file_by_rule(tmp_path):
    archive = tmp_path / "archive"
    for rel in ("a/b/shallow.nc", "a/b/c/d/deep.nc"):
        (archive / rel).parent.mkdir(parents=True, exist_ok=True)
        long_attribute_file(archive / rel, 10)
    proc = run("producer", "local", "--profile", "files", "--source", archive, "--store", tmp_path / "store",
               "--json", env={"FLOE_MAX_GROUP_DEPTH": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["written_groups"] == ["a/b/shallow"], summary
    skipped = {u.rsplit("/", 1)[-1]: r for u, r in summary["skipped_files"]}
    assert "5 levels, more than 3 (FLOE_MAX_GROUP_DEPTH)" in skipped["deep.nc"], skipped


def test_a_batch_over_the_fragment_reference_limit_fails_by_name_before_it_is_built(tmp_path):
    path = tmp_path / "chunks.nc"  # the files profile takes *.nc
    many_chunks(path, n=4000)
    proc = run("virtualizer", "build-group", "--profile", "files", "--json", path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run("virtualizer", "build-group", "--profile", "files", "--json", path,
               env={"FLOE_MAX_REFERENCES_PER_FRAGMENT": "1000"})
    assert proc.returncode != 0
    assert str(path) in proc.stderr and "4001 chunk references, more than the 1000" in proc.stderr, proc.stderr
    assert "FLOE_MAX_REFERENCES_PER_FRAGMENT" in proc.stderr and proc.stdout == ""


def test_in_lambda_the_fragment_reference_limit_fits_the_functions_memory():
    proc = run("producer", "limits", env={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"})
    assert proc.returncode == 0, proc.stderr
    [entry] = [line.split() for line in proc.stdout.splitlines()
               if line.startswith("FLOE_MAX_REFERENCES_PER_FRAGMENT")]
    assert entry[1] == str((512 << 20) // 4 // 256), entry


def test_files_read_at_once_take_the_large_header_turn_one_after_another(tmp_path):
    """Three files of one ISMIP6 group, each a chunk index of about 160 kB, read at once by one
    build: with FLOE_MAX_HEADER_BYTES_UNSHARED at 16 KiB every file passes it and waits for the
    turn while another holds it. The build ends (no deadlock: the timeout would fail it) and gives
    exactly the group the default gives, where no file waits."""
    exp = tmp_path / "INST" / "MODEL" / "exp05"
    exp.mkdir(parents=True)
    paths = []
    for var in ("lithk", "acabf", "orog"):
        path = exp / f"{var}_AIS_INST_MODEL_exp05.nc"
        ismip6_file(path, var, ny=40, nx=50, chunksizes=(1, 1, 1))
        assert path.stat().st_size > 64 * 1024
        paths.append(path)
    built = {}
    for name, env in (("default", {}), ("turns", {"FLOE_MAX_HEADER_BYTES_UNSHARED": "16KiB"})):
        proc = run("virtualizer", "build-group", "--json", *paths, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        *arrays, summary = [json.loads(line) for line in proc.stdout.splitlines()]
        assert min(summary["bytes_read_per_file"]) > 16 * 1024, summary  # every file waited
        built[name] = (sorted(arrays, key=json.dumps), summary["group"], summary["warnings"])
    assert built["turns"] == built["default"], built
    assert len(built["default"][0]) >= 3 and built["default"][1] == "INST_MODEL/exp05", built["default"]


def test_references_added_by_the_build_are_counted_before_the_fragment_is_written(tmp_path):
    """Contiguous data is split into one reference per step when the group is built: ten steps
    read as one reference, so the count taken while reading passes and the count of the built
    fragment does not. The batch is refused by name, naming the group."""
    path = tmp_path / "INST" / "MODEL" / "exp05" / "lithk_AIS_INST_MODEL_exp05.nc"
    ismip6_file(path, "lithk", steps=10, contiguous=True)
    proc = run("virtualizer", "build-group", "--json", path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built = sum(len(a.get("refs", a.get("chunks", []))) for a in map(json.loads, proc.stdout.splitlines()[:-1]))
    proc = run("virtualizer", "build-group", "--json", path, env={"FLOE_MAX_REFERENCES_PER_FRAGMENT": "8"})
    assert proc.returncode != 0, (built, proc.stdout[-1000:])
    assert "group INST_MODEL/exp05: its fragment holds" in proc.stderr, proc.stderr
    assert "more than the 8 a fragment may (FLOE_MAX_REFERENCES_PER_FRAGMENT)" in proc.stderr, proc.stderr
