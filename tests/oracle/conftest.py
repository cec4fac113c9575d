"""Shared helpers of the oracle tests: where the binaries and fixtures are."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cargo_target import target_directory

ROOT = Path(__file__).resolve().parents[2]
# The debug binaries wherever cargo builds them (CARGO_TARGET_DIR respected); FLOE_BIN_DIR overrides.
BIN_DIR = Path(os.environ.get("FLOE_BIN_DIR") or target_directory() / "debug")
MATURIN = Path(os.environ.get("FLOE_MATURIN") or ROOT / ".ci/.maturin-venv/bin/maturin")
FIXTURES = Path(os.environ.get("FLOE_FIXTURES", ROOT / "tests" / "fixtures" / "generated"))


def binary(name):
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build the workspace first (cargo build --workspace --bins)")
    return str(path)


def run_inspect(*urls, env=None):
    """Runs `virtualizer inspect --json` and returns (records, completed process)."""
    proc = subprocess.run(
        [binary("virtualizer"), "inspect", "--json", *map(str, urls)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return records, proc


def fixture_files(*suffixes, bad=False):
    files = sorted(p for p in FIXTURES.iterdir() if p.suffix in suffixes)
    return [p for p in files if p.name.startswith("bad_") == bad]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """The floe-icechunk wheel, built once a session by maturin with the dev profile into the
    workspace's target directory (warm after `cargo build --workspace --bins`)."""
    if not MATURIN.exists():
        pytest.fail(f"{MATURIN} is missing: bash .ci/setup.sh installs it")
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "CARGO_TARGET_DIR": str(target_directory())}
    started = time.monotonic()
    # Stored, not deflated: the dev library is ~100 MB, and compressing it cost more CPU than
    # the build on a warm target.
    proc = subprocess.run([str(MATURIN), "build", "--compression-method", "stored", "--out", str(out),
                           "--interpreter", sys.executable],
                          cwd=ROOT / "python", env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    wheels = list(out.glob("floe_icechunk-*.whl"))
    assert len(wheels) == 1, wheels
    print(f"maturin build (dev profile): {time.monotonic() - started:.1f} s", file=sys.stderr)
    return wheels[0]
