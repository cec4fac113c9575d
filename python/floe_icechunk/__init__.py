"""floe as a Python package: the `producer`, `virtualizer` and `committer` command lines
(console scripts running the same Rust code as the binaries) and `FloeParser`, a
VirtualiZarr parser built on floe's NetCDF-3 and NetCDF-4/HDF5 header readers."""

__all__ = ["FloeParser"]


def __getattr__(name):
    # Imported on first use: the command lines need neither numpy nor virtualizarr.
    if name == "FloeParser":
        from floe_icechunk.parser import FloeParser

        return FloeParser
    raise AttributeError(f"module 'floe_icechunk' has no attribute {name!r}")
