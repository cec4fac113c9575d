"""Archive profiles through the real producer binary: what `producer plan --profile` makes of
a CMIP6-shaped archive (groups, variables with their files, files it did not match), a profile
file, bad profiles named, and a profile the pipeline cannot run refused by name before anything
is written. Files are real NetCDF files written by netCDF4 (plan only lists them; the CMIP6 store
itself is checked in test_cmip6.py)."""
import json
import re
import subprocess
from pathlib import Path

import netCDF4
import numpy as np

from conftest import binary

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["CESM2", "MIROC6", "IPSL-CM6A-LR"]
EXPERIMENTS = ["historical", "ssp585"]
VARIABLES = ["tas", "pr", "psl", "huss"]
RANGES = ["201501-203412", "203501-205412", "205501-207412"]


def write_nc(path, variable, calendar):
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", None)
        ds.createDimension("lat", 2)
        t = ds.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 1850-01-01", calendar
        t[:] = np.arange(3) * 30.0
        v = ds.createVariable(variable, "f4", ("time", "lat"))
        v[:] = np.ones((3, 2), "f4")


def cmip6_tree(root):
    files = []
    for m in MODELS:
        calendar = "360_day" if m == "IPSL-CM6A-LR" else "noleap"
        for e in EXPERIMENTS:
            for v in VARIABLES:
                for r in RANGES:
                    rel = (f"CMIP6/ScenarioMIP/INST/{m}/{e}/r1i1p1f1/Amon/{v}/gn/v20200101/"
                           f"{v}_Amon_{m}_{e}_r1i1p1f1_gn_{r}.nc")
                    write_nc(root / rel, v, calendar)
                    files.append(rel)
    # The directory says tas, the file name says pr: not matched, and said so.
    odd = root / "CMIP6/ScenarioMIP/INST/CESM2/ssp585/r1i1p1f1/Amon/tas/gn/v20200101/pr_Amon_CESM2_ssp585_r1i1p1f1_gn_207501-209412.nc"
    write_nc(odd, "pr", "noleap")
    (root / "CMIP6/README.txt").write_text("not data")
    return files, odd


def plan(*args):
    return subprocess.run([binary("producer"), "plan", "--skip-checks", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_plan_with_the_cmip6_profile_shows_groups_variables_and_unmatched_files(tmp_path):
    files, odd = cmip6_tree(tmp_path / "archive")
    proc = plan("--source", tmp_path / "archive", "--profile", "cmip6", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["profile"] == "cmip6@2"
    groups = {g["group_path"]: g["variables"] for g in report["survey"]["groups"]}
    assert sorted(groups) == sorted(f"{m}/{e}/r1i1p1f1/Amon/gn" for m in MODELS for e in EXPERIMENTS)
    for variables in groups.values():
        assert variables == {v: len(RANGES) for v in VARIABLES}
    assert report["total"]["files"] == len(files)
    assert report["not_netcdf"] == 1
    unmatched = dict(report["skipped"])
    assert list(unmatched) == [f"file://{odd}"], unmatched
    assert "cmip6" in unmatched[f"file://{odd}"]
    assert "not_runnable" not in report["survey"]
    # The readable form lists a group with its files per variable and the unmatched file.
    text = plan("--source", tmp_path / "archive", "--profile", "cmip6").stdout
    assert "CESM2/ssp585/r1i1p1f1/Amon/gn: huss ×3, pr ×3, psl ×3, tas ×3" in text, text
    assert odd.name in text and "not runnable" not in text
    # A filter on the group path narrows the survey.
    narrowed = json.loads(plan("--source", tmp_path / "archive", "--profile", "cmip6", "--filter", "MIROC6",
                               "--json").stdout)
    assert sorted(g["group_path"] for g in narrowed["survey"]["groups"]) == [
        f"MIROC6/{e}/r1i1p1f1/Amon/gn" for e in EXPERIMENTS]


def test_local_refuses_a_profile_it_cannot_run_by_name_and_writes_nothing(tmp_path):
    cmip6_tree(tmp_path / "archive")
    binned = tmp_path / "binned.toml"
    binned.write_text((ROOT / "crates/group/data/profiles/cmip6.toml").read_text()
                      .replace('id = "cmip6"', 'id = "binned"').replace('time = "cf-exact"', 'time = "ismip6-years"'))
    store = tmp_path / "store"
    proc = subprocess.run([binary("producer"), "local", "--source", tmp_path / "archive", "--store", store,
                           "--profile", binned], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    version = re.search(r"^version = (\d+)$", binned.read_text(), re.M).group(1)
    assert f"profile binned@{version} concatenates files along time with time = \"ismip6-years\"" in proc.stderr, \
        proc.stderr
    assert not store.exists()
    report = json.loads(plan("--source", tmp_path / "archive", "--profile", binned, "--json").stdout)
    assert "cf-exact" in report["survey"]["not_runnable"]
    assert len(report["survey"]["groups"]) == len(MODELS) * len(EXPERIMENTS)


def test_a_profile_file_plans_and_bad_profiles_are_named(tmp_path):
    root = tmp_path / "archive"
    for year in (2015, 2016):
        write_nc(root / f"CESM2/ssp585/tas_CESM2_ssp585_{year}.nc", "tas", "noleap")
    write_nc(root / "CESM2/ssp370/tas_CESM2_ssp370_2015.nc", "tas", "noleap")
    report = json.loads(plan("--source", root, "--profile", ROOT / "profiles/example.toml", "--json").stdout)
    assert report["profile"] == "example-yearly@1"
    assert [(g["group_path"], g["variables"]) for g in report["survey"]["groups"]] == [("CESM2/ssp585", {"tas": 2})]
    [(url, reason)] = report["skipped"]
    assert url.endswith("tas_CESM2_ssp370_2015.nc") and "ssp370" in reason and "not one of" in reason
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "bad"\nversion = 1\npattern = "{a}/{v}.nc"\ngroup_path = "{b}"\nvariable = "v"\n'
                   'time = "cf-exact"\n')
    proc = plan("--source", root, "--profile", bad)
    assert proc.returncode != 0 and "group_path uses field {b}" in proc.stderr, proc.stderr
    proc = plan("--source", root, "--profile", "cmip7")
    assert proc.returncode != 0 and "no profile \"cmip7\"" in proc.stderr and "ismip6, cmip6" in proc.stderr


def test_the_default_profile_is_ismip6_and_names_itself(tmp_path):
    sample = tmp_path / "sample"
    subprocess.run([binary("producer"), "sample", "--out", sample], check=True, capture_output=True, timeout=300)
    report = json.loads(plan("--source", sample, "--json").stdout)
    assert report["profile"] == "ismip6@1"
    assert "survey" not in report and report["total"]["batches"] > 0
