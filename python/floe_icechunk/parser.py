"""`FloeParser`: a VirtualiZarr parser on floe's header readers.

Reads NetCDF-3 (CDF-1, CDF-2, CDF-5) and NetCDF-4/HDF5 (a user block included), chosen by the
file's signature, through the object store the registry resolves. The header is parsed in Rust
(`_native.read_header`), which hands back each array's description and grid-shaped numpy
arrays of chunk offsets and lengths: the manifests are built without a per-chunk Python loop.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable

import numpy as np
from virtualizarr.manifests import ChunkManifest, ManifestArray, ManifestGroup, ManifestStore
from virtualizarr.manifests.manifest import INLINED_CHUNK_PATH
from virtualizarr.manifests.utils import create_v3_array_metadata
from virtualizarr.parsers.utils import encode_cf_fill_value

from floe_icechunk import _native

__all__ = ["FloeParser"]

# What HDFParser leaves out of attributes: HDF5 and netCDF-4 bookkeeping.
_HIDDEN_ATTRS = {"REFERENCE_LIST", "CLASS", "DIMENSION_LIST", "NAME", "_Netcdf4Dimid",
                 "_Netcdf4Coordinates", "_nc3_strict", "_NCProperties"}


_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _number(value):
    """floe writes non-finite floats as the strings JSON lacks; an attribute whose text is one
    of them reads back as the float too (floe's JSON cannot tell them apart)."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, list):
        return [_number(v) for v in value]
    return value


def _trimmed(d):
    """The chunk shape to report and, when trimmed, each chunk's length in bytes.

    An HDF5 chunk longer than its dataset along an unlimited dimension (512 steps holding 4) is
    trimmed to the array, as HDFParser trims it, where the in-bounds region stays one byte range:
    unfiltered data, trimmed along the first axis only. Otherwise it is kept (zarr crops it).
    """
    stored = tuple(d["chunk_shape"])
    shape = tuple(d["shape"])
    chunks = tuple(min(c, max(s, 1)) for c, s in zip(stored, shape))
    unfiltered = all(c["name"] == "bytes" for c in d["codecs"])
    if chunks == stored or not unfiltered or chunks[1:] != stored[1:] or d["layout"] != "chunked":
        return tuple(max(c, 1) for c in stored), None
    return chunks, int(np.prod(chunks)) * np.dtype(d["dtype"]).itemsize


@functools.lru_cache(maxsize=4096)
def _metadata(description: str):
    """An array's Zarr v3 metadata, built once per distinct description (building one costs
    about 0.1 ms; the variables of a series' files mostly share theirs)."""
    d = json.loads(description)
    dtype = np.dtype(d["dtype"])
    codecs = [c for c in d["codecs"] if c["name"] != "bytes"]
    attributes = {k: _number(v) for k, v in d["attributes"].items() if k not in _HIDDEN_ATTRS}
    fill_value = _number(d["fill_value"])
    if d["layout"] == "strings":
        # Variable-length strings, inlined and encoded by vlen-utf8, which the pipeline adds.
        dtype, codecs = np.dtypes.StringDType(), []
    elif "_FillValue" in attributes and dtype.kind not in ("S", "U", "O", "T"):
        attributes["_FillValue"] = encode_cf_fill_value(_number(attributes["_FillValue"]), dtype)
    if dtype.kind == "S" and fill_value == 0:
        fill_value = b""
    return create_v3_array_metadata(
        shape=tuple(d["shape"]),
        data_type=dtype,
        chunk_shape=_trimmed(d)[0],
        fill_value=fill_value,
        codecs=codecs,
        attributes=attributes,
        dimension_names=tuple(d["dimensions"]),
    )


@functools.lru_cache(maxsize=4096)
def _trimmed_length(description: str):
    return _trimmed(json.loads(description))[1]


def _manifest(url, offsets, lengths, present, inline, trimmed_length):
    if inline is not None:
        grid = (1,) * offsets.ndim
        return ChunkManifest.from_arrays(
            paths=np.full(grid, INLINED_CHUNK_PATH, dtype=np.dtypes.StringDType()),
            offsets=np.zeros(grid, dtype=np.uint64),
            lengths=np.full(grid, len(inline), dtype=np.uint64),
            inlined={(0,) * offsets.ndim: inline},
        )
    if not present.any():
        return ChunkManifest(entries={}, shape=offsets.shape)
    if trimmed_length is not None:
        lengths = np.where(present, np.uint64(trimmed_length), lengths)
    paths = np.where(present, url, "").astype(np.dtypes.StringDType())
    return ChunkManifest.from_arrays(paths=paths, offsets=offsets, lengths=lengths, validate_paths=False)


# The registry's stores as rebuilt in Rust, by identity; each entry keeps its store alive so
# that its id is not reused. A registry holds a few stores.
_NATIVE_STORES: dict[int, tuple[object, object]] = {}


def _native_store(store):
    entry = _NATIVE_STORES.get(id(store))
    if entry is None:
        if len(_NATIVE_STORES) >= 64:
            _NATIVE_STORES.clear()
        entry = _NATIVE_STORES[id(store)] = (store, _native.NativeStore(store))
    return entry[1]


class FloeParser:
    """Create a ManifestStore from a NetCDF-3 or NetCDF-4/HDF5 file with floe's readers.

    Parameters
    ----------
    group
        The group of the file to use as the store's root group (NetCDF-4 only).
    drop_variables
        Variables of the file to leave out.
    """

    def __init__(self, group: str | None = None, drop_variables: Iterable[str] | None = None):
        self.group = (group or "").strip("/")
        self.drop_variables = set(drop_variables or ())

    def __call__(self, url: str, registry) -> ManifestStore:
        store, path = registry.resolve(url)
        _, attributes, arrays, problems = _native.read_header(_native_store(store), path, url)
        prefix = f"{self.group}/" if self.group else ""
        for variable, reason in problems:
            if variable.startswith(prefix) and variable[len(prefix):] not in self.drop_variables:
                raise NotImplementedError(f"{url}: variable {variable!r}: {reason}")
        # floe's readers give the file's global attributes, not a sub-group's (docs/status.md).
        root = {"arrays": {}, "groups": {}, "attributes": {} if self.group else json.loads(attributes)}
        for name, description, offsets, lengths, present, inline in arrays:
            if not name.startswith(prefix) or name[len(prefix):] in self.drop_variables:
                continue
            *parents, leaf = name[len(prefix):].split("/")
            node = root
            for part in parents:
                node = node["groups"].setdefault(part, {"arrays": {}, "groups": {}, "attributes": {}})
            node["arrays"][leaf] = ManifestArray(
                metadata=_metadata(description),
                chunkmanifest=_manifest(url, offsets, lengths, present, inline, _trimmed_length(description)))
        if self.group and not root["arrays"] and not root["groups"]:
            raise ValueError(f"{url}: no group {self.group!r}")
        return ManifestStore(group=_group(root), registry=registry)


def _group(node) -> ManifestGroup:
    attributes = {k: _number(v) for k, v in node["attributes"].items() if k not in _HIDDEN_ATTRS}
    return ManifestGroup(arrays=node["arrays"], groups={k: _group(v) for k, v in node["groups"].items()},
                         attributes=attributes)
