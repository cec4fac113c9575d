"""Where cargo puts the binaries: asked of cargo itself, so CARGO_TARGET_DIR, a
.cargo/config.toml `build.target-dir` and the default `./target` all work.

Tests and benchmarks import this; FLOE_BIN_DIR still overrides it for the tests.
"""
import functools
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def target_directory():
    try:
        out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
                             cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
        return Path(json.loads(out.stdout)["target_directory"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        configured = os.environ.get("CARGO_TARGET_DIR")
        return (ROOT / configured) if configured else ROOT / "target"


def binary(name, profile="debug"):
    """Path of a built binary of the workspace (`profile`: debug, release, dist)."""
    return target_directory() / profile / name
