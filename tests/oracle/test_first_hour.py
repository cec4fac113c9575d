"""A newcomer's first hour: the README's first command run again and again, no false alarms
on success, loud errors on empty or misnamed input, commands that do no more than they say.

Every test runs the real binaries (debug build) in a temporary directory and checks what a
user sees: exit codes, the words of the message, what exists on disk afterwards, and the
store read back through Python icechunk + xarray against netCDF4 reading the files.
"""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from conftest import binary

SAMPLE_GROUPS = ["AWI_PISM1/ctrl_proj", "AWI_PISM1/exp05", "JPL1_ISSM/exp05", "ULB_fETISh_32km/exp05"]
# A log line of tracing's text format (`2026-12-02T05:18:36.691873Z  WARN target: …`) at these
# levels: a false alarm on a successful run. Colour codes, should any appear, are ignored.
ALARM = re.compile(r"^\S+\s+(ERROR|WARN)\s", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(name, *args, cwd=None, env=None, check_exit=None):
    proc = subprocess.run([binary(name), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)
    if check_exit is not None:
        assert proc.returncode == check_exit, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def assert_no_alarm(proc):
    assert not ALARM.search(ANSI.sub("", proc.stderr)), proc.stderr


def test_the_alarm_pattern_recognizes_a_real_log_line(tmp_path):
    """The check above must be able to fail: the same pattern, with the level at DEBUG, finds
    the lines a real run logs at DEBUG, and the log is plain text when captured."""
    env = {**os.environ, "RUST_LOG": "debug"}
    run("producer", "sample", "--out", tmp_path / "sample", check_exit=0)
    proc = run("producer", "local", "--source", tmp_path / "sample", "--store", tmp_path / "store", env=env,
               check_exit=0)
    assert "\x1b[" not in proc.stderr
    debug = re.compile(ALARM.pattern.replace("ERROR|WARN", "DEBUG"), re.MULTILINE)
    assert debug.search(proc.stderr), proc.stderr[:2000]


def tree(path):
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*")) if Path(path).exists() else []


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The README's first command (`producer local --store floe-demo/store`), three times, in one directory."""
    cwd = tmp_path_factory.mktemp("newcomer")
    runs = [run("producer", "local", "--store", "floe-demo/store", cwd=cwd) for _ in range(3)]
    json_run = run("producer", "local", "--store", "floe-demo/store", "--json", cwd=cwd)
    return {"cwd": cwd, "runs": runs, "json": json_run}


def test_the_first_command_succeeds_every_time_without_alarms(demo):
    for i, proc in enumerate(demo["runs"] + [demo["json"]]):
        assert proc.returncode == 0, f"run {i + 1}: {proc.stdout}\n{proc.stderr}"
        assert_no_alarm(proc)
    first, second, third = demo["runs"]
    assert "4 groups planned" in first.stdout and "written:   4 groups" in first.stdout, first.stdout
    assert "wrote the sample archive" in first.stderr
    for proc in (second, third):
        assert "reused the sample archive" in proc.stderr, proc.stderr
        assert "written:   0 groups" in proc.stdout and "unchanged: 4 groups" in proc.stdout, proc.stdout
    summary = json.loads(demo["json"].stdout)
    assert summary["written"] == 0 and summary["commits"] == 0
    assert sorted(summary["unchanged_groups"]) == SAMPLE_GROUPS


def test_the_summary_counts_every_commit(demo):
    first = demo["runs"][0].stdout
    # "in N commit(s)" of data, "(and one creating the store's parent groups)" on a first run.
    counted = re.search(r"in (\d+) commit\(s\)( \(and one creating the store's parent groups\))?", first)
    commits = int(counted.group(1)) + (1 if counted.group(2) else 0)
    log = run("committer", "log", "--store", demo["cwd"] / "floe-demo/store", "--json", check_exit=0)
    assert_no_alarm(log)
    entries = [json.loads(line) for line in log.stdout.splitlines()]
    made_by_floe = [e for e in entries if e["message"].startswith("floe:")]
    assert commits == len(made_by_floe) == 2, (first, entries)  # parent groups, then the data


def test_the_printed_snippet_runs_as_pasted_and_opens_a_written_group(demo):
    out = demo["runs"][2].stdout
    snippet = textwrap.dedent(out.split("Open it with Python (pip install icechunk xarray zarr):", 1)[1])
    group = re.search(r'group="([^"]+)"', snippet).group(1)
    assert group in SAMPLE_GROUPS
    code = snippet + "\nprint(sorted(ds.data_vars))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("["), proc.stdout


def test_the_readme_snippet_runs_where_the_first_command_ran(demo):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- readme-snippet: tested by tests/oracle/test_first_hour.py -->", 1)[1]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=demo["cwd"], timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "lithk" in proc.stdout and "acabf" in proc.stdout, proc.stdout


def test_the_sample_covers_the_hdf5_reader_chunked_and_contiguous(demo):
    import icechunk
    import xarray as xr
    archive = demo["cwd"] / "floe-demo/sample-archive"
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(demo["cwd"] / "floe-demo/store")),
        authorize_virtual_chunk_access={f"file://{archive}/": icechunk.credentials.LocalFileSystemAccess})
    ds = xr.open_zarr(repo.readonly_session("main").store, group="JPL1_ISSM/exp05", zarr_format=3,
                      consolidated=False, mask_and_scale=False)
    layouts = {}
    for var in ["lithk", "acabf"]:
        path = archive / f"JPL1/ISSM/exp05/{var}_AIS_JPL1_ISSM_exp05.nc"
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89HDF\r\n\x1a\n", path  # NetCDF-4, read by the HDF5 reader
        with netCDF4.Dataset(path) as src:
            src.set_auto_maskandscale(False)
            values = src[var][...]
            layouts[var] = src[var].chunking()
        np.testing.assert_array_equal(ds[var].values[: len(values)], values)
        assert np.isnan(ds[var].values[len(values):]).all()
    assert layouts["lithk"] == [1, 191, 191] and layouts["acabf"] == "contiguous"


def test_sample_is_reused_completed_or_refused_never_overwritten(tmp_path):
    out = tmp_path / "sample"
    first = run("producer", "sample", "--out", out, check_exit=0)
    assert "wrote the sample archive" in first.stdout
    files = tree(out)
    stamp = {f: os.stat(out / f).st_mtime_ns for f in files if (out / f).is_file()}
    second = run("producer", "sample", "--out", out, check_exit=0)
    assert "reused" in second.stdout and tree(out) == files
    assert stamp == {f: os.stat(out / f).st_mtime_ns for f in stamp}  # untouched: batch ids stay current
    victim = out / "AWI/PISM1/exp05/lim_AIS_AWI_PISM1_exp05.nc"
    victim.unlink()
    completed = run("producer", "sample", "--out", out, check_exit=0)
    assert "1 of 9 files written" in completed.stdout and victim.exists()
    victim.write_bytes(victim.read_bytes()[:-4] + b"edit")
    refused = run("producer", "sample", "--out", out)
    assert refused.returncode != 0
    assert "lim_AIS_AWI_PISM1_exp05.nc differs" in refused.stderr and "delete that directory" in refused.stderr
    assert victim.read_bytes().endswith(b"edit")
    victim.unlink()
    run("producer", "sample", "--out", out, check_exit=0)
    (out / "AWI/PISM1/exp05/extra.nc").write_bytes(b"x")
    refused = run("producer", "sample", "--out", out)
    assert refused.returncode != 0 and "extra.nc is not part of the sample" in refused.stderr


def test_a_missing_source_is_an_error_and_creates_nothing(tmp_path):
    proc = run("producer", "local", "--source", tmp_path / "nope", "--store", tmp_path / "store")
    assert proc.returncode == 1 and "does not exist" in proc.stderr and str(tmp_path / "nope") in proc.stderr
    assert not (tmp_path / "store").exists()


def test_a_source_without_netcdf_is_an_error_and_creates_nothing(tmp_path):
    (tmp_path / "src/a/b/c").mkdir(parents=True)
    (tmp_path / "src/a/b/c/readme.txt").write_text("not data")
    proc = run("producer", "local", "--source", tmp_path / "src", "--store", tmp_path / "store")
    assert proc.returncode == 1 and "holds no NetCDF file" in proc.stderr and "1 object(s) listed" in proc.stderr
    assert not (tmp_path / "store").exists()
    proc = run("producer", "local", "--source", tmp_path / "src/a/b/c/readme.txt", "--store", tmp_path / "store")
    assert proc.returncode == 1 and "is a file, not a directory" in proc.stderr


def test_filters_take_both_spellings_and_a_filter_matching_nothing_is_an_error(tmp_path):
    run("producer", "sample", "--out", tmp_path / "sample", check_exit=0)
    for spelling in ["AWI_PISM1/exp05", "AWI/PISM1/exp05"]:
        store = tmp_path / spelling.replace("/", "-")
        proc = run("producer", "local", "--source", tmp_path / "sample", "--store", store, "--filter", spelling,
                   "--json", check_exit=0)
        assert json.loads(proc.stdout)["written_groups"] == ["AWI_PISM1/exp05"], spelling
    proc = run("producer", "local", "--source", tmp_path / "sample", "--store", tmp_path / "none",
               "--filter", "AWI_PISM1/exp99")
    assert proc.returncode == 1
    assert "matches none of the 4 group(s)" in proc.stderr and "AWI_PISM1/exp05" in proc.stderr, proc.stderr
    assert not (tmp_path / "none").exists()


def test_a_store_path_that_is_a_file_says_so(tmp_path):
    run("producer", "sample", "--out", tmp_path / "sample", check_exit=0)
    (tmp_path / "store").write_text("oops")
    for proc in [run("producer", "local", "--source", tmp_path / "sample", "--store", tmp_path / "store"),
                 run("committer", "log", "--store", tmp_path / "store")]:
        assert proc.returncode == 1 and "is not a directory" in proc.stderr, proc.stderr
        assert "File exists" not in proc.stderr


def test_looking_at_a_missing_store_creates_nothing(tmp_path):
    for args in (["log"], ["gc"], ["gc", "--delete"]):
        proc = run("committer", *args, "--store", tmp_path / "store")
        assert proc.returncode == 1 and "no Icechunk repository" in proc.stderr, proc.stderr
        assert not (tmp_path / "store").exists(), args


def test_enqueue_dry_run_creates_nothing(tmp_path):
    run("producer", "sample", "--out", tmp_path / "sample", check_exit=0)
    env = {**os.environ, "FLOE_WORK_QUEUE_URL": "http://127.0.0.1:9/000000000000/never-used",
           "FLOE_FRAGMENTS_URL": str(tmp_path / "fragments")}
    # --skip-checks: the queue here is a placeholder (pre-flight has its own tests).
    proc = run("producer", "enqueue", "--all", "--dry-run", "--skip-checks", "--source", tmp_path / "sample",
               "--store", tmp_path / "store", env=env, check_exit=0)
    assert "would send 4" in proc.stdout, proc.stdout
    assert not (tmp_path / "store").exists() and not (tmp_path / "fragments").exists()


def test_build_group_refuses_files_of_two_groups(tmp_path):
    run("producer", "sample", "--out", tmp_path / "sample", check_exit=0)
    a = tmp_path / "sample/AWI/PISM1/exp05/lithk_AIS_AWI_PISM1_exp05.nc"
    b = tmp_path / "sample/ULB/fETISh_32km/exp05/orog_AIS_ULB_fETISh_32km_exp05.nc"
    proc = run("virtualizer", "build-group", a, b, "--fragment", tmp_path / "g.frag")
    assert proc.returncode == 1
    assert "AWI_PISM1/exp05 (lithk_AIS_AWI_PISM1_exp05.nc)" in proc.stderr, proc.stderr
    assert "ULB_fETISh_32km/exp05 (orog_AIS_ULB_fETISh_32km_exp05.nc)" in proc.stderr
    assert not (tmp_path / "g.frag").exists()


def test_inspect_of_a_directory_says_it_is_one(tmp_path):
    proc = run("virtualizer", "inspect", tmp_path)
    assert proc.returncode == 1 and "is a directory" in proc.stderr and "not found" not in proc.stderr


def test_applying_a_committed_fragment_again_is_quiet(tmp_path):
    run("producer", "sample", "--out", tmp_path / "sample", check_exit=0)
    files = sorted((tmp_path / "sample/JPL1/ISSM/exp05").iterdir())
    run("virtualizer", "build-group", *files, "--fragment", tmp_path / "g.frag", check_exit=0)
    first = run("committer", "apply", tmp_path / "g.frag", "--store", tmp_path / "store", check_exit=0)
    assert "1 written" in first.stdout
    for _ in range(2):
        again = run("committer", "apply", tmp_path / "g.frag", "--store", tmp_path / "store", check_exit=0)
        assert "0 written, 1 skipped" in again.stdout
        assert_no_alarm(again)
