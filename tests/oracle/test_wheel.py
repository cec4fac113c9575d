"""The `floe-icechunk` wheel: built by maturin from python/, installed into a fresh venv with
only what it declares, and run with no cargo or rustc on PATH. Its `producer`, `virtualizer`
and `committer` must behave as the binaries do: the same help, the same exit codes and
messages, Ctrl-C ending the process, and the README's first command writing a store that reads
back equal to the one the binary writes.

The wheel is built with the dev profile into the workspace's target directory, so it reuses
the debug artifacts `cargo build --workspace --bins` left (only the PyO3 crates and the module
itself compile); users build it with `maturin build --release` (docs/python.md). The build is
conftest.py's `wheel` fixture, shared with test_parser.py.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import binary

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_GROUPS = ["AWI_PISM1/ctrl_proj", "AWI_PISM1/exp05", "JPL1_ISSM/exp05", "ULB_fETISh_32km/exp05"]


def path_without_rust():
    """PATH less every directory holding cargo or rustc."""
    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not any(Path(d, tool).exists() for tool in ("cargo", "rustc"))]
    return os.pathsep.join(kept)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv with the wheel and its declared dependencies, installed offline (none is
    declared for the command lines: an undeclared need shows as a failed import or run)."""
    root = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUSTUP", "PYTHON"))}
    env["PATH"] = os.pathsep.join([str(root / "bin"), path_without_rust()])
    assert shutil.which("cargo", path=env["PATH"]) is None and shutil.which("rustc", path=env["PATH"]) is None
    proc = subprocess.run([str(root / "bin/python"), "-m", "pip", "install", "--no-index", "-q", str(wheel)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return {"root": root, "env": env}


def script(venv, name, *args, cwd=None, **kwargs):
    return subprocess.run([str(venv["root"] / "bin" / name), *map(str, args)], cwd=cwd, env=venv["env"],
                          capture_output=True, text=True, timeout=600, **kwargs)


def native(name, *args, cwd=None):
    return subprocess.run([binary(name), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_wheel_is_abi3_and_declares_no_dependency_but_the_parser_extra(wheel):
    assert "-cp310-abi3-" in wheel.name, wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and all("extra == 'virtualizarr'" in r or 'extra == "virtualizarr"' in r for r in requires), requires
    for name in ("producer", "virtualizer", "committer"):
        assert f"{name}=floe_icechunk._cli:{name}" in entry_points.replace(" ", ""), entry_points
    assert any(n.startswith("floe_icechunk/_native") and n.endswith(".so") for n in names), names


@pytest.mark.parametrize("name", ["producer", "virtualizer", "committer"])
def test_help_and_version_are_the_binaries(venv, name):
    for args in (["--help"], ["--version"], ["help", "help"]):
        ours, theirs = script(venv, name, *args), native(name, *args)
        assert ours.returncode == theirs.returncode == 0, (args, ours.stderr)
        assert ours.stdout == theirs.stdout and ours.stdout.strip(), args
    assert name in script(venv, name, "--version").stdout


def test_a_bad_flag_exits_2_with_clap_s_message(venv):
    ours = script(venv, "producer", "local", "--no-such-flag")
    theirs = native("producer", "local", "--no-such-flag")
    assert ours.returncode == theirs.returncode == 2
    assert "unexpected argument '--no-such-flag'" in ours.stderr and ours.stderr == theirs.stderr
    assert ours.stdout == ""
    missing = script(venv, "virtualizer")  # a subcommand is required
    assert missing.returncode == 2 and "Usage: virtualizer <COMMAND>" in missing.stderr, missing.stderr


def test_a_failing_command_exits_1_with_its_error_on_stderr(venv, tmp_path):
    store = tmp_path / "no-store"
    ours, theirs = script(venv, "committer", "log", "--store", store), native("committer", "log", "--store", store)
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.startswith("committer: ") and str(store) in ours.stderr, ours.stderr
    assert ours.stderr == theirs.stderr and ours.stdout == ""
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = script(venv, "producer", "local", "--source", empty, "--store", tmp_path / "s")
    assert proc.returncode == 1 and proc.stderr.startswith("producer: ") and str(empty) in proc.stderr, proc.stderr
    assert not (tmp_path / "s").exists()


def open_group(store, archive, group):
    import icechunk
    import xarray as xr
    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage(str(store)),
        authorize_virtual_chunk_access={f"file://{archive}/": icechunk.credentials.LocalFileSystemAccess})
    return xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3, consolidated=False)


def stable(attrs, varying, root):
    return json.loads(json.dumps({k: v for k, v in attrs.items() if k not in varying}).replace(str(root), "ROOT"))


def test_the_readme_first_command_writes_the_binary_s_store(venv, tmp_path):
    ours_dir, theirs_dir = tmp_path / "wheel", tmp_path / "binary"
    ours_dir.mkdir()
    theirs_dir.mkdir()
    ours = script(venv, "producer", "local", "--store", "floe-demo/store", cwd=ours_dir)
    theirs = native("producer", "local", "--store", "floe-demo/store", cwd=theirs_dir)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert "4 groups planned" in ours.stdout and "written:   4 groups" in ours.stdout, ours.stdout
    assert "wrote the sample archive" in ours.stderr
    again = script(venv, "producer", "local", "--store", "floe-demo/store", cwd=ours_dir)
    assert again.returncode == 0 and "unchanged: 4 groups" in again.stdout, again.stdout
    for group in SAMPLE_GROUPS:
        a = open_group(ours_dir / "floe-demo/store", ours_dir / "floe-demo/sample-archive", group)
        b = open_group(theirs_dir / "floe-demo/store", theirs_dir / "floe-demo/sample-archive", group)
        assert sorted(a.variables) == sorted(b.variables) and a.data_vars, group
        for name in a.variables:
            assert a[name].dims == b[name].dims and a[name].dtype == b[name].dtype, (group, name)
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{group}/{name}")
            assert a[name].attrs == b[name].attrs, (group, name)
        # The batch id hashes each input's modification time, which differs between the two
        # sample archives; every other attribute is the same but for the archive's directory
        # in the messages that name a file.
        varying = {"floe_batch_id", "floe_inputs_modified"}
        assert varying <= set(a.attrs) and a.attrs["floe_inputs_modified"] != b.attrs["floe_inputs_modified"]
        assert stable(a.attrs, varying, ours_dir) == stable(b.attrs, varying, theirs_dir), group


def interrupted(argv, env=None):
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not end the command")
    return proc.returncode


def test_ctrl_c_ends_a_command_blocked_in_rust_as_it_ends_the_binary(venv, tmp_path):
    # Reading a named pipe no one writes to blocks in Rust until the process is ended.
    fifo = tmp_path / "blocked.nc"
    os.mkfifo(fifo)
    theirs = interrupted([binary("virtualizer"), "inspect", str(fifo)])
    ours = interrupted([str(venv["root"] / "bin/virtualizer"), "inspect", str(fifo)], env=venv["env"])
    assert ours == theirs == -signal.SIGINT
