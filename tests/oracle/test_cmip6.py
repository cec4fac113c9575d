"""A CMIP6-shaped archive through `producer local --profile cmip6`, read back through Python
icechunk + xarray and compared with `xr.open_mfdataset(files, combine="by_coords")` of the same
files: every value exactly (masked values as NaN in both), and decoded times equal to cftime's.
Also: the files whose scale_factor differs, and the overlapping files, fail their group with a
named error naming both files; nothing is written for them.

The archive (tests/fixtures/make_cmip6.py): 3 models x 2 experiments x 4 variables x 3 files,
monthly in noleap and 360_day; one contiguous model, one with 12-step chunks, one with per-step
chunks whose files use different time units."""
import json
import subprocess
import sys
from pathlib import Path

import icechunk
import numpy as np
import pytest
import xarray as xr

from conftest import binary

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_cmip6  # noqa: E402

CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)


def local(*args):
    return subprocess.run([binary("producer"), "local", "--profile", "cmip6", *map(str, args)], capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def cmip6(tmp_path_factory):
    """The good archive with the two bad groups in it: they fail by name, the rest is written."""
    root = tmp_path_factory.mktemp("cmip6")
    groups = make_cmip6.make(root / "archive")
    bad = make_cmip6.make_bad(root / "archive")
    store = root / "store"
    proc = local("--source", root / "archive", "--store", store, "--json")
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"groups": groups, "bad": bad, "store": store, "summary": json.loads(proc.stdout),
            "prefix": f"file://{root}/archive/"}


def open_group(store, prefix, group, **kwargs):
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(store)),
                                    authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess})
    return xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3, consolidated=False,
                        decode_times=CFTIME, **kwargs)


def test_every_good_group_is_written_once_and_the_bad_ones_fail_alone(cmip6):
    summary = cmip6["summary"]
    written = sorted(summary["written_groups"])
    assert written == sorted(cmip6["groups"]), written
    failed = dict(summary["failed"])
    assert sorted(failed) == ["OVER/ssp585/r1i1p1f1/Amon/gn", "PACKED/ssp585/r1i1p1f1/Amon/gn"], failed
    for kind, words in (("scale_factor", "scale_factor differs between"), ("overlap", "overlap")):
        _, files = cmip6["bad"][kind]
        [reason] = [r for g, r in failed.items() if files[0].name.split("_")[2] in g]
        assert words in reason, reason
        for f in files:
            assert f.name in reason, (f.name, reason)


@pytest.mark.parametrize("model", sorted(make_cmip6.MODELS))
def test_values_and_times_match_open_mfdataset(cmip6, model):
    for group, files in cmip6["groups"].items():
        if not group.startswith(model + "/"):
            continue
        ours = open_group(cmip6["store"], cmip6["prefix"], group)
        ref = xr.open_mfdataset(sorted(files), combine="by_coords", decode_times=CFTIME, data_vars="all",
                                compat="no_conflicts")
        for v in make_cmip6.VARIABLES:
            assert ours[v].dims == ref[v].dims, (group, v)
            np.testing.assert_array_equal(ours[v].values, ref[v].values, err_msg=f"{group} {v}")
            assert np.isnan(ours[v].values[0, 0, 0]), "the masked value reads as NaN"
        assert list(ours["time"].values) == list(ref["time"].values), group
        assert ours["time"].values[0].calendar == make_cmip6.MODELS[model][0]
        assert ours["time"].attrs.get("units", ours["time"].encoding.get("units")) == "days since 1850-01-01"
        for c in ("lat", "lon"):
            np.testing.assert_array_equal(ours[c].values, ref[c].values)
        assert len(ours["time"]) == make_cmip6.FILES * make_cmip6.YEARS_PER_FILE * 12


def test_the_fleet_on_localstack_builds_the_cmip6_archive(tmp_path):
    """enqueue --profile cmip6 → virtualizer and committer workers over LocalStack SQS and S3 →
    the store on S3 equal to open_mfdataset of the files; verify passes with the same profile."""
    from fleet import Fleet
    groups = make_cmip6.make(tmp_path / "archive")
    fleet = Fleet(tmp_path, tmp_path / "archive")
    sent = fleet.json("producer", "enqueue", "--all", "--profile", "cmip6", "--json")
    assert len(sent["enqueued"]) == len(groups)
    fleet.drain(virtualizers=1, committers=1)
    assert fleet.dead_letters() == []
    written = sorted(g for c in fleet.commits() for g in c["groups"])
    assert written == sorted(groups)
    group = "CHUNK12/ssp585/r1i1p1f1/Amon/gn"
    ds = fleet.open_group(group)
    ref = xr.open_mfdataset(sorted(groups[group]), combine="by_coords", decode_times=CFTIME, data_vars="all",
                            compat="no_conflicts", mask_and_scale=False)
    for v in make_cmip6.VARIABLES:
        np.testing.assert_array_equal(ds[v].values, ref[v].values, err_msg=v)
    again = fleet.json("producer", "enqueue", "--all", "--profile", "cmip6", "--dry-run", "--json")
    assert again["enqueued"] == [] and len(again["unchanged"]) == len(groups)
    proc = fleet.run("producer", "verify", "--profile", "cmip6", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert all(g["status"] == "ok" for g in json.loads(proc.stdout)["groups"])


@pytest.mark.parametrize("calendar,hours,units", [
    ("all_leap", 6, "hours since 2000-01-01 00:00:00"),
    ("proleptic_gregorian", 6, "hours since 2000-02-27 12:00:00"),
    ("standard", 24, "days since 1850-01-01"),
    ("julian", 24, "days since 1900-02-27"),
    ("366_day", 24, "days since 2000-01-01"),
    ("365_day", 24, "days since 2000-01-01"),
])
def test_sub_monthly_steps_decode_exactly_in_every_calendar(tmp_path, calendar, hours, units):
    """Two files of 6-hourly or daily steps across a February, chunked per step with zlib: times
    equal cftime's (through xarray) and values equal open_mfdataset's."""
    per_file = 40
    step = hours if units.startswith("hours") else hours / 24
    files = []
    for k in range(2):
        values = (np.arange(per_file) + k * per_file) * step
        table = "6hrPlev" if hours == 6 else "day"
        rel = (f"CMIP6/CMIP/INST/SUB/historical/r1i1p1f1/{table}/tas/gn/v1/"
               f"tas_{table}_SUB_historical_r1i1p1f1_gn_part{k}.nc")
        files.append(make_cmip6.write_steps(tmp_path / "archive" / rel, "tas", calendar, values, units, chunk=1))
    store = tmp_path / "store"
    proc = local("--source", tmp_path / "archive", "--store", store, "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [group] = json.loads(proc.stdout)["written_groups"]
    ours = open_group(store, f"file://{tmp_path}/archive/", group)
    ref = xr.open_mfdataset(sorted(files), combine="by_coords", decode_times=CFTIME, data_vars="all",
                            compat="no_conflicts")
    assert list(ours["time"].values) == list(ref["time"].values)
    assert len(ours["time"]) == 2 * per_file
    np.testing.assert_array_equal(ours["tas"].values, ref["tas"].values)


def test_a_missing_file_reads_as_fill_where_the_chunk_grid_stays_exact(tmp_path):
    """pr lacks its middle file: with 12-step chunks and 24-step files the gap sits on chunk
    boundaries, so it reads as NaN, as open_mfdataset's outer join does. A file whose chunks would
    put padding inside the axis is left out of the group with the file named and why; the variable
    beside it is written."""
    drs, write = make_cmip6.drs, make_cmip6.write
    good = tmp_path / "good"
    files = [write(good / drs("GAP", "ssp585", "tas", y, 2), "tas", "noleap", 12, y, 2, y) for y in (2015, 2017, 2019)]
    files += [write(good / drs("GAP", "ssp585", "pr", y, 2), "pr", "noleap", 12, y, 2, y + 1) for y in (2015, 2019)]
    proc = local("--source", good, "--store", tmp_path / "store", "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ours = open_group(tmp_path / "store", f"file://{good}/", "GAP/ssp585/r1i1p1f1/Amon/gn")
    ref = xr.open_mfdataset(sorted(files), combine="by_coords", decode_times=CFTIME, data_vars="all",
                            compat="no_conflicts", join="outer")
    np.testing.assert_array_equal(ours["pr"].values, ref["pr"].values)
    assert np.isnan(ours["pr"].values[24:48]).all() and not np.isnan(ours["pr"].values[48:]).all()
    bad = tmp_path / "bad"
    for y in (2015, 2017, 2019):
        write(bad / drs("PAD", "ssp585", "tas", y, 2), "tas", "noleap", 12, y, 2, y)
    padded = write(bad / drs("PAD", "ssp585", "pr", 2015, 1), "pr", "noleap", 24, 2015, 1, 9)
    proc = local("--source", bad, "--store", tmp_path / "bad-store", "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["partial_groups"] == {"PAD/ssp585/r1i1p1f1/Amon/gn": ["pr"]}, summary
    [reason] = summary["warnings"]
    assert padded.name in reason and "cannot join one regular chunk grid" in reason and "padding" in reason, reason
    ours = open_group(tmp_path / "bad-store", f"file://{bad}/", "PAD/ssp585/r1i1p1f1/Amon/gn")
    assert "pr" not in ours and len(ours["tas"]) == 72


def test_a_variable_whose_files_disagree_is_left_out_and_its_siblings_are_written(tmp_path):
    """Per-variable isolation: in one CMIP6 group, `pr`'s files disagree on scale_factor; `tas`
    beside it is written and equals open_mfdataset, `pr` is named with both files and the reason,
    `verify` says partial. Once the file is fixed, the next run adds `pr`."""
    archive = tmp_path / "archive"
    tas = [make_cmip6.write(archive / make_cmip6.drs("MIXED", "ssp585", "tas", y, 1), "tas", "noleap", 12, y, 1, y)
           for y in (2015, 2016)]
    pr = [make_cmip6.write(archive / make_cmip6.drs("MIXED", "ssp585", "pr", y, 1), "pr", "noleap", 12, y, 1, y,
                           packed=np.float32(scale)) for y, scale in ((2015, 0.01), (2016, 0.02))]
    group = "MIXED/ssp585/r1i1p1f1/Amon/gn"
    store = tmp_path / "store"
    proc = local("--source", archive, "--store", store, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["written_groups"] == [group]
    assert summary["partial_groups"] == {group: ["pr"]}
    [warning] = summary["warnings"]
    assert "scale_factor differs between" in warning and pr[0].name in warning and pr[1].name in warning, warning
    ds = open_group(store, f"file://{archive}/", group)
    assert "pr" not in ds
    ref = xr.open_mfdataset(sorted(tas), combine="by_coords", decode_times=CFTIME, data_vars="all")
    np.testing.assert_array_equal(ds["tas"].values, ref["tas"].values)
    assert len(ds["time"]) == 24

    def verdict():
        proc = subprocess.run([binary("producer"), "verify", "--profile", "cmip6", "--source", str(archive),
                               "--store", str(store), "--json"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        [g] = json.loads(proc.stdout)["groups"]
        return g

    g = verdict()
    assert g["status"] == "partial", g
    assert any(p.startswith("pr left out") and "scale_factor" in p for p in g["problems"]), g

    # The file fixed: a new batch id, and the group is rebuilt with pr.
    make_cmip6.write(pr[1], "pr", "noleap", 12, 2016, 1, 2016, packed=np.float32(0.01))
    proc = local("--source", archive, "--store", store, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    again = json.loads(proc.stdout)
    assert again["written_groups"] == [group] and again["partial_groups"] == {}
    # Raw packed values: the float32 scale_factor reaches Zarr attributes as a JSON number, which
    # xarray applies in float64 where netCDF4 applies float32 (docs/profiles.md, "Codecs and types").
    ds = open_group(store, f"file://{archive}/", group, mask_and_scale=False)
    ref = xr.open_mfdataset(sorted(pr), combine="by_coords", decode_times=CFTIME, data_vars="all",
                            mask_and_scale=False)
    np.testing.assert_array_equal(ds["pr"].values, ref["pr"].values)
    assert verdict()["status"] == "ok"


def test_the_fleet_names_a_partial_group_in_status_dlq_list_and_verify(tmp_path):
    """On LocalStack: a CMIP6 group whose `pr` files disagree is committed with `tas` only, no
    message is dead-lettered, and `status`, `dlq list` and `verify` name `pr`, the file and why."""
    from fleet import Fleet
    archive = tmp_path / "archive"
    for y in (2015, 2016):
        make_cmip6.write(archive / make_cmip6.drs("MIXED", "ssp585", "tas", y, 1), "tas", "noleap", 12, y, 1, y)
    bad = [make_cmip6.write(archive / make_cmip6.drs("MIXED", "ssp585", "pr", y, 1), "pr", "noleap", 12, y, 1, y,
                            packed=np.float32(scale)) for y, scale in ((2015, 0.01), (2016, 0.02))]
    group = "MIXED/ssp585/r1i1p1f1/Amon/gn"
    fleet = Fleet(tmp_path, archive)
    fleet.json("producer", "enqueue", "--all", "--profile", "cmip6", "--json")
    fleet.drain(virtualizers=1, committers=1)
    assert fleet.dead_letters() == []
    status = fleet.json("producer", "status", "--json")
    assert status["committed"] == 1
    [partial] = status["partial"]
    assert partial["group"] == group and [w["variable"] for w in partial["left_out"]] == ["pr"], partial
    assert bad[1].name in partial["left_out"][0]["file"] and "scale_factor" in partial["left_out"][0]["reason"]
    listed = fleet.run("producer", "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "1 partial group(s)" in listed.stdout and f"{group}: pr left out" in listed.stdout, listed.stdout
    proc = fleet.run("producer", "verify", "--profile", "cmip6", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [g] = json.loads(proc.stdout)["groups"]
    assert g["status"] == "partial", g
    assert "tas" in fleet.open_group(group) and "pr" not in fleet.open_group(group)
