"""`producer verify` on stores written by `producer local`: a good store passes; a store missing
a group, a store whose source file was overwritten after the run, and a store whose codec
description is wrong (right bytes, wrong values), fail, naming the group and the chunk. The checks are floe's, the store is read through the real icechunk crate, and
the sources through ranged reads."""
import json
import shutil
import subprocess
import sys
import time

import netCDF4
import pytest

from conftest import ROOT, binary

GOOD = ["AWI_PISM1/exp05", "UCIJPL_ISSM/exp13", "CPOM_BISICLES/exp05"]


def producer(*args):
    return subprocess.run([binary("producer"), *map(str, args)], capture_output=True, text=True, timeout=600)


def verify(source, store, *args):
    filters = [a for g in GOOD for a in ("--filter", g)]
    return producer("verify", "--source", source, "--store", store, *filters, *args)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify")
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(out)], check=True)
    return out / "archive"


@pytest.fixture
def built(archive, tmp_path):
    """A private copy of the archive and a store of its GOOD groups."""
    root = tmp_path / "archive"
    shutil.copytree(archive, root)
    store = tmp_path / "store"
    filters = [a for g in GOOD for a in ("--filter", g)]
    proc = producer("local", "--source", root, "--store", store, *filters)
    assert proc.returncode == 0, proc.stderr
    return root, store


def test_a_good_store_passes_with_sampled_and_with_all_chunks(built):
    root, store = built
    proc = verify(root, store, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert [g["group"] for g in report["groups"]] == sorted(GOOD)
    assert all(g["status"] == "ok" and g["references"] > 0 and g["chunks_read"] == 2 == g["chunks_decoded"]
               for g in report["groups"]), report
    every = json.loads(verify(root, store, "--json", "--all").stdout)
    assert all(g["status"] == "ok" and g["chunks_read"] == g["references"] for g in every["groups"]), every


def test_local_verify_checks_what_it_wrote(archive, tmp_path):
    proc = producer("local", "--source", archive, "--store", tmp_path / "store", "--filter", "AWI_PISM1/exp05",
                    "--verify", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["verify"]
    assert [(g["group"], g["status"]) for g in report["groups"]] == [("AWI_PISM1/exp05", "ok")]


def test_a_missing_group_fails_and_is_named(built):
    root, store = built
    proc = producer("verify", "--source", root, "--store", store, "--filter", "AWI_PISM1/exp05", "--filter",
                    "LSCE_GRISLI2/exp05")
    assert proc.returncode == 1
    assert "MISSING LSCE_GRISLI2/exp05" in proc.stdout and "1 ok, 0 partial, 1 missing" in proc.stdout, proc.stdout


def test_an_overwritten_source_fails_naming_the_group_and_the_chunk(built):
    root, store = built
    time.sleep(1.1)  # a modification time in a later second than the one the store recorded
    path = root / "AWI/PISM1/exp05/lithk_AIS_AWI_PISM1_exp05.nc"
    with netCDF4.Dataset(path, "r+") as ds:
        ds["lithk"][0] = ds["lithk"][0] + 1.0
    proc = verify(root, store, "--all")
    assert proc.returncode == 1
    out = proc.stdout
    # One line for the group, however many of its chunks differ; --verbose lists them.
    lines = [line for line in out.splitlines()[1:] if line.strip()]
    assert len(lines) == 1 and lines[0].lstrip().startswith("STALE AWI_PISM1/exp05"), out
    assert "UCIJPL_ISSM/exp13" not in out.split("\n", 1)[1]  # the other groups are fine
    verbose = verify(root, store, "--all", "--verbose").stdout
    assert "AWI_PISM1/exp05/lithk: chunk [0, 0, 0]" in verbose, verbose


def rewrite_codecs(store, archive, array):
    """Commits a new codec description for one array, keeping its chunk references: the store
    then points at the right bytes but describes them wrongly (a bug no byte comparison sees).
    Shuffle is dropped where there is one, else the byte order is flipped. Returns what changed."""
    import asyncio

    import icechunk
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.buffer.cpu import Buffer

    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(store)),
        authorize_virtual_chunk_access={f"file://{archive}/": icechunk.credentials.LocalFileSystemAccess})
    session = repo.writable_session("main")
    key = f"{array}/zarr.json"

    async def rewrite():
        meta = json.loads((await session.store.get(key, default_buffer_prototype())).to_bytes())
        names = [c["name"] for c in meta["codecs"]]
        if "numcodecs.shuffle" in names:
            meta["codecs"] = [c for c in meta["codecs"] if c["name"] != "numcodecs.shuffle"]
            change = "dropped numcodecs.shuffle"
        else:
            codec = next(c for c in meta["codecs"] if c["name"] == "bytes")
            endian = codec.setdefault("configuration", {}).get("endian", "little")
            codec["configuration"]["endian"] = "big" if endian == "little" else "little"
            change = f"byte order {endian} -> {codec['configuration']['endian']}"
        await session.store.set(key, Buffer.from_bytes(json.dumps(meta).encode()))
        return change

    change = asyncio.run(rewrite())
    session.commit(f"test: {change} on {array}")
    return change


def test_a_wrong_codec_description_passes_the_bytes_and_fails_the_values(built):
    root, store = built
    change = rewrite_codecs(store, root, "AWI_PISM1/exp05/lithk")
    proc = verify(root, store, "--all", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    groups = {g["group"]: g for g in json.loads(proc.stdout)["groups"]}
    bad = groups["AWI_PISM1/exp05"]
    assert bad["status"] == "wrong", (change, bad)
    # Every reference and every byte still agree: only the decoded values tell.
    assert not any("bytes icechunk serves differ" in p or "the store points at" in p for p in bad["problems"])
    assert any(p.startswith("AWI_PISM1/exp05/lithk: chunk [0, 0, 0]") and "decoded value(s) differ" in p
               for p in bad["problems"]), (change, bad["problems"])
    assert all(g["status"] == "ok" and g["chunks_decoded"] == g["chunks_read"] > 0
               for name, g in groups.items() if name != "AWI_PISM1/exp05"), groups
