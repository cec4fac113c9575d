"""`FloeParser`: a VirtualiZarr parser on floe's header readers.

Reads NetCDF-3 (CDF-1, CDF-2, CDF-5) and NetCDF-4/HDF5 (a user block included), chosen by the
file's signature, through the object store the registry resolves. The header is parsed in Rust
(`_native.read_header`), which hands back each array's Zarr v3 metadata as JSON (the document
VirtualiZarr's own parser would give, see `floe_formats::zarr_v3`) and grid-shaped numpy arrays
of chunk offsets and lengths: the manifests are built without a per-chunk Python loop, and the
metadata once per distinct JSON text.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable

import numpy as np
from virtualizarr.manifests import ChunkManifest, ManifestArray, ManifestGroup, ManifestStore
from virtualizarr.manifests.manifest import INLINED_CHUNK_PATH
from zarr.core.metadata import ArrayV3Metadata

from floe_icechunk import _native

__all__ = ["FloeParser"]

_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _number(value):
    """floe writes non-finite floats as the strings JSON lacks; an attribute whose text is one
    of them reads back as the float too (floe's JSON cannot tell them apart)."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, list):
        return [_number(v) for v in value]
    return value


def _attributes(text: str) -> dict:
    attributes = json.loads(text)
    if '"NaN"' in text or 'Infinity"' in text:
        attributes = {k: _number(v) for k, v in attributes.items()}
    return attributes


@functools.lru_cache(maxsize=4096)
def _metadata(text: str) -> ArrayV3Metadata:
    """An array's Zarr v3 metadata from the JSON floe's Rust half wrote, built once per distinct
    text (building one costs about 0.1 ms; the variables of a series' files mostly share
    theirs). The metadata is shared between arrays, as VirtualiZarr's own parsers never
    change it in place."""
    document = json.loads(text)
    if '"NaN"' in text or 'Infinity"' in text:
        document["attributes"] = {k: _number(v) for k, v in document["attributes"].items()}
    return ArrayV3Metadata.from_dict(document)


def _manifest(url, offsets, lengths, present, chunks, inline):
    if inline is not None:
        grid = (1,) * offsets.ndim
        return ChunkManifest.from_arrays(
            paths=np.full(grid, INLINED_CHUNK_PATH, dtype=np.dtypes.StringDType()),
            offsets=np.zeros(grid, dtype=np.uint64),
            lengths=np.full(grid, len(inline), dtype=np.uint64),
            inlined={(0,) * offsets.ndim: inline},
        )
    if chunks == 0:
        return ChunkManifest(entries={}, shape=offsets.shape)
    if chunks == present.size:
        paths = np.full(present.shape, url, dtype=np.dtypes.StringDType())
    else:
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
        header = _native.read_header(_native_store(store), path, url, self.group or None, sorted(self.drop_variables))
        return _manifest_store(url, registry, header)


def _manifest_store(url: str, registry, header) -> ManifestStore:
    """VirtualiZarr's objects for what `read_header` gave (bench/parser.py times this part
    alone: the floor any parser returning a ManifestStore pays)."""
    attributes, groups, arrays, problems = header
    for variable, reason in problems:
        raise NotImplementedError(f"{url}: variable {variable!r}: {reason}")
    nodes = {"": _node(attributes)}
    for group_path, group_attributes in groups:
        _at(nodes, group_path)["attributes"] = group_attributes
    for name, metadata, offsets, lengths, present, chunks, inline in arrays:
        parent, _, leaf = name.rpartition("/")
        _at(nodes, parent)["arrays"][leaf] = ManifestArray(
            metadata=_metadata(metadata), chunkmanifest=_manifest(url, offsets, lengths, present, chunks, inline))
    return ManifestStore(group=_group(nodes[""]), registry=registry)


def _at(nodes: dict, path: str) -> dict:
    """The node of a group path, made with its parents when new."""
    node = nodes.get(path)
    if node is None:
        parent, _, leaf = path.rpartition("/")
        node = nodes[path] = _at(nodes, parent)["groups"][leaf] = _node("{}")
    return node


def _node(attributes: str) -> dict:
    return {"arrays": {}, "groups": {}, "attributes": attributes}


def _group(node) -> ManifestGroup:
    return ManifestGroup(arrays=node["arrays"], groups={k: _group(v) for k, v in node["groups"].items()},
                         attributes=_attributes(node["attributes"]))
