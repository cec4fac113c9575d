#!/usr/bin/env python3
"""Commit-throughput benchmark: floe's committer core vs Python icechunk doing one commit
per group (what the original pipeline did), on the same fragments, same run, on LocalStack
S3 and on the local filesystem.

    source localstack/env.sh && localstack/start.sh
    .ci/.oracle-venv/bin/python bench/commits.py [--groups 400] [--out BENCHMARKS.md]

Builds the release `floe-commit-bench` and `virtualizer`, makes an archive of GROUPS groups
(hard links of one generated 4-file group: the headers are real, no disk is spent), builds
one fragment per group with `virtualizer build-group`, then times:
- floe: batch sizes 1, 10, 100 with N = 1, 4, 16 committers in parallel (S3; on the local
  filesystem N = 1 only: concurrent commits are not safe there, see DESIGN.md);
- Python icechunk 2.3: the same fragments, one writable session and one commit per group,
  serially.
Parent groups are created before timing on both sides.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import icechunk
import numcodecs
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
warnings.filterwarnings("ignore")


def make_archive(out, groups):
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_archive.py"), str(out)], check=True)
    template = out / "archive" / "UCIJPL" / "ISSM" / "exp13"
    root = out / "bench-archive"
    dirs = []
    for i in range(groups):
        inst, exp = f"INST{i // 20:02d}", f"exp{i % 20:02d}"
        d = root / inst / "MODEL" / exp
        d.mkdir(parents=True)
        for f in template.iterdir():
            os.link(f, d / f.name.replace("UCIJPL_ISSM_exp13", f"{inst}_MODEL_{exp}").replace("exp13", exp))
        dirs.append(d)
    return root, dirs


def build_fragments(dirs, out):
    out.mkdir()
    virtualizer = ROOT / "target/release/virtualizer"

    def one(d):
        path = out / f"{d.parts[-3]}_{d.parts[-1]}.frag"
        subprocess.run([str(virtualizer), "build-group", *sorted(map(str, d.iterdir())), "--fragment", str(path)],
                       check=True, capture_output=True)
        return path

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, dirs))


def s3_storage(bucket, prefix):
    return icechunk.s3_storage(bucket=bucket, prefix=prefix, region="us-east-1", endpoint_url=ENDPOINT,
                               allow_http=True, force_path_style=True, access_key_id="test",
                               secret_access_key="test")


def read_fragment(path):
    raw = path.read_bytes()
    assert raw[:8] == b"FLOEFRAG"
    return json.loads(numcodecs.Zstd().decode(raw[44:]))


def python_one_commit_per_group(storage, container_prefix, fragments):
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(container_prefix, icechunk.local_filesystem_store(container_prefix[7:])))
    repo = icechunk.Repository.create(storage, config,
                                      authorize_virtual_chunk_access={container_prefix: None})
    docs = [read_fragment(p) for p in fragments]
    proto = default_buffer_prototype()

    def put(store, key, doc):
        sync(store.set(key, proto.buffer.from_bytes(json.dumps(doc).encode())))

    session = repo.writable_session("main")
    put(session.store, "zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": {}})
    for parent in sorted({d["group_path"].split("/")[0] for d in docs}):
        put(session.store, f"{parent}/zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": {}})
    session.commit("parents")
    started = time.perf_counter()
    for d in docs:
        session = repo.writable_session("main")
        store, group = session.store, d["group_path"]
        put(store, f"{group}/zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": d["group_attributes"]})
        for a in d["arrays"]:
            put(store, f"{group}/{a['name']}/zarr.json", a["zarr_json"])
            for r in a["refs"]:
                key = f"{group}/{a['name']}/c" + "".join(f"/{i}" for i in r["index"])
                store.set_virtual_ref(key, d["sources"][r["source"]]["url"], offset=r["offset"], length=r["length"])
            for c in a["inline_chunks"]:
                key = f"{group}/{a['name']}/c" + "".join(f"/{i}" for i in c["index"])
                sync(store.set(key, proto.buffer.from_bytes(bytes.fromhex(c["data"]))))
        session.commit(f"group {group}")
    seconds = time.perf_counter() - started
    return {"groups": len(docs), "commits": len(docs), "seconds": seconds, "groups_per_s": len(docs) / seconds,
            "commits_per_s": len(docs) / seconds}


def floe(store, container_prefix, fragments, batch_size, committers):
    proc = subprocess.run([str(ROOT / "target/release/floe-commit-bench"), "--store", store, "--container",
                           container_prefix, "--batch-size", str(batch_size), "--committers", str(committers),
                           *map(str, fragments)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--groups", type=int, default=400)
    p.add_argument("--out", type=Path, help="write the table into this markdown file's '## Commits' section")
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-committer", "--bin", "floe-commit-bench",
                    "-p", "floe-virtualizer", "--bin", "virtualizer"], check=True, cwd=ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="floe-commit-bench-"))
    try:
        archive, dirs = make_archive(tmp, args.groups)
        fragments = build_fragments(dirs, tmp / "fragments")
        container = f"file://{archive}/"
        import boto3
        bucket = f"floe-bench-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket=bucket)
        rows = []
        py_s3 = python_one_commit_per_group(s3_storage(bucket, "python"), container, fragments)
        rows.append(("LocalStack S3", "Python icechunk, 1 commit/group", 1, 1, py_s3))
        py_fs = python_one_commit_per_group(icechunk.local_filesystem_storage(str(tmp / "python-store")),
                                            container, fragments)
        rows.append(("local fs", "Python icechunk, 1 commit/group", 1, 1, py_fs))
        for b in (1, 10, 100):
            for n in (1, 4, 16):
                r = floe(f"s3://{bucket}/floe-b{b}-n{n}", container, fragments, b, n)
                rows.append(("LocalStack S3", "floe", b, n, r))
            r = floe(str(tmp / f"floe-fs-b{b}"), container, fragments, b, 1)
            rows.append(("local fs", "floe", b, 1, r))
        lines = [f"{args.groups} groups (4 arrays, ~30 references each), same fragments for every row, one run "
                 f"({time.strftime('%Y-%m-%d')}), `{' '.join(['bench/commits.py', '--groups', str(args.groups)])}`.",
                 "", "| backend | writer | groups/commit | committers | groups/s | commits/s | attempts | × Python (same backend) |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        base = {"LocalStack S3": py_s3["groups_per_s"], "local fs": py_fs["groups_per_s"]}
        for backend, writer, b, n, r in rows:
            lines.append(f"| {backend} | {writer} | {b} | {n} | {r['groups_per_s']:.1f} | {r['commits_per_s']:.2f} | "
                         f"{r.get('attempts', r['commits'])} | {r['groups_per_s'] / base[backend]:.1f}× |")
        table = "\n".join(lines) + "\n"
        print(table)
        if args.out:
            text = args.out.read_text() if args.out.exists() else ""
            section = "## Commits\n\n" + table
            if "## Commits\n" in text:
                head, rest = text.split("## Commits\n", 1)
                tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
                text = head + section + tail
            else:
                text = text.rstrip() + "\n\n" + section
            args.out.write_text(text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
