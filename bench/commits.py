#!/usr/bin/env python3
"""Commit-throughput benchmark: floe's committer core vs Python icechunk doing one commit
per group (what the original pipeline did), on the same fragments, same run, on LocalStack
S3, on LocalStack S3 behind a proxy that adds a fixed delay per request (S3's round trip;
LocalStack itself answers in about a millisecond and is bound by its own CPU), and on the
local filesystem.

    source localstack/env.sh && localstack/start.sh
    .ci/.oracle-venv/bin/python bench/commits.py [--groups 440] [--variables 23] [--latency-ms 20] [--out BENCHMARKS.md]

Builds the release `floe-commit-bench`, `floe-latency-proxy` and `virtualizer`, makes an
archive of GROUPS groups of VARIABLES files each (hard links of one generated group: the
headers are real, no disk is spent), builds one fragment per group with `virtualizer
build-group`, then times:
- floe: batch sizes 1, 10, 100 with N = 1, 4, 16 committers in parallel (S3; on the local
  filesystem N = 1 only: concurrent commits are not safe there, see DESIGN.md; behind the
  latency proxy batch 10 and 100 with N = 1, 4);
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
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
from cargo_target import binary as cargo_binary  # noqa: E402  (wherever cargo builds: CARGO_TARGET_DIR)
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
warnings.filterwarnings("ignore")


sys.path.insert(0, str(ROOT / "tests/fixtures"))
from make_archive import SCALAR_VARS, STATE_VARS  # noqa: E402  (ISMIP6's 23 variables of a group)


def make_archive(out, groups, variables):
    """GROUPS groups shaped like ISMIP6's (about 10,000 files in 440 groups: 23 variables each,
    (time, y, x) and scalar series, x/y/time coordinates). One template group is written with
    netCDF4; the others are hard links of it, so the headers are real and no disk is spent."""
    sys.path.insert(0, str(ROOT / "tests/fixtures"))
    import make_archive as gen
    template = out / "template"
    archive = gen.Archive(str(template), seed=7)
    years = list(range(2015, 2021))
    spatial = STATE_VARS[:max(0, variables - len(SCALAR_VARS))]
    scalar = SCALAR_VARS[:variables - len(spatial)]
    for var in spatial + scalar:
        archive.write("T", "MODEL", "exp", var, years=years, spatial=var in spatial, expect=False)
    files = sorted((template / "T" / "MODEL" / "exp").iterdir())
    root = out / "bench-archive"
    dirs = []
    for i in range(groups):
        inst, exp = f"INST{i // 20:02d}", f"exp{i % 20:02d}"
        d = root / inst / "MODEL" / exp
        d.mkdir(parents=True)
        for f in files:
            os.link(f, d / f.name.replace("T_MODEL_exp", f"{inst}_MODEL_{exp}"))
        dirs.append(d)
    return root, dirs


class LatencyProxy:
    """`floe-latency-proxy` in front of LocalStack: every request pays DELAY_MS more, as on S3."""

    def __init__(self, delay_ms):
        self.proc = subprocess.Popen([str(cargo_binary("floe-latency-proxy", "release")), "--delay-ms", str(delay_ms),
                                      "--upstream", ENDPOINT.split("://", 1)[1]],
                                     stdout=subprocess.PIPE, text=True)
        self.endpoint = "http://" + self.proc.stdout.readline().split()[-1]

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def build_fragments(dirs, out):
    out.mkdir()
    virtualizer = cargo_binary("virtualizer", "release")

    def one(d):
        path = out / f"{d.parts[-3]}_{d.parts[-1]}.frag"
        subprocess.run([str(virtualizer), "build-group", *sorted(map(str, d.iterdir())), "--fragment", str(path)],
                       check=True, capture_output=True)
        return path

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, dirs))


def s3_storage(bucket, prefix, endpoint=ENDPOINT):
    return icechunk.s3_storage(bucket=bucket, prefix=prefix, region="us-east-1", endpoint_url=endpoint,
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
                                      authorize_virtual_chunk_access={container_prefix: icechunk.credentials.LocalFileSystemAccess})
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


def floe(store, container_prefix, fragments, batch_size, committers, endpoint=ENDPOINT):
    proc = subprocess.run([str(cargo_binary("floe-commit-bench", "release")), "--store", store, "--container",
                           container_prefix, "--batch-size", str(batch_size), "--committers", str(committers),
                           *map(str, fragments)], capture_output=True, text=True,
                          env={**os.environ, "AWS_ENDPOINT_URL": endpoint})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--groups", type=int, default=440, help="groups in the archive (ISMIP6: about 440)")
    p.add_argument("--variables", type=int, default=23, help="variables per group (ISMIP6: about 23)")
    p.add_argument("--latency-ms", type=int, default=20,
                   help="request delay of the S3-like backend (LocalStack behind floe-latency-proxy); 0 skips it")
    p.add_argument("--out", type=Path, help="write the table into this markdown file's '## Commits' section")
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "floe-committer", "--bin", "floe-commit-bench",
                    "--bin", "floe-latency-proxy", "-p", "floe-virtualizer", "--bin", "virtualizer"],
                   check=True, cwd=ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="floe-commit-bench-"))
    proxy = None
    try:
        archive, dirs = make_archive(tmp, args.groups, args.variables)
        fragments = build_fragments(dirs, tmp / "fragments")
        docs = [read_fragment(f) for f in fragments[:10]]
        arrays = sum(len(d["arrays"]) for d in docs) / len(docs)
        refs = sum(len(a["refs"]) + len(a["inline_chunks"]) for d in docs for a in d["arrays"]) / len(docs)
        container = f"file://{archive}/"
        import boto3
        bucket = f"floe-bench-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket=bucket)
        s3, slow, fs = "LocalStack S3", f"LocalStack S3 + {args.latency_ms} ms/request", "local fs"
        rows, base = [], {}

        def python(backend, storage):
            r = python_one_commit_per_group(storage, container, fragments)
            base[backend] = r["groups_per_s"]
            rows.append((backend, "Python icechunk, 1 commit/group", 1, 1, r))
            print(backend, "python", round(r["groups_per_s"], 1), flush=True)

        def ours(backend, store, b, n, endpoint=ENDPOINT):
            r = floe(store, container, fragments, b, n, endpoint)
            rows.append((backend, "floe", b, n, r))
            print(backend, "floe", b, n, round(r["groups_per_s"], 1), flush=True)

        python(s3, s3_storage(bucket, "python"))
        python(fs, icechunk.local_filesystem_storage(str(tmp / "python-store")))
        for b in (1, 10, 100):
            for n in (1, 4, 16):
                ours(s3, f"s3://{bucket}/floe-b{b}-n{n}", b, n)
            ours(fs, str(tmp / f"floe-fs-b{b}"), b, 1)
        if args.latency_ms > 0:
            proxy = LatencyProxy(args.latency_ms)
            python(slow, s3_storage(bucket, "python-slow", proxy.endpoint))
            for b in (10, 100):
                for n in (1, 4):
                    ours(slow, f"s3://{bucket}/floe-slow-b{b}-n{n}", b, n, proxy.endpoint)
        command = ["bench/commits.py", "--groups", str(args.groups), "--variables", str(args.variables),
                   "--latency-ms", str(args.latency_ms)]
        lines = [f"{args.groups} groups shaped like ISMIP6's ({args.variables} variables: {arrays:.0f} arrays and "
                 f"{refs:.0f} chunk references per group), the same fragments for every row, one run "
                 f"({time.strftime('%Y-%m-%d')}), `{' '.join(command)}`.",
                 "", "| backend | writer | groups/commit | committers | groups/s | commits/s | attempts | seconds "
                 "| × Python (same backend) |",
                 "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for backend, writer, b, n, r in rows:
            lines.append(f"| {backend} | {writer} | {b} | {n} | {r['groups_per_s']:.1f} | {r['commits_per_s']:.2f} | "
                         f"{r.get('attempts', r['commits'])} | {r['seconds']:.1f} | "
                         f"{r['groups_per_s'] / base[backend]:.1f}× |")
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
        if proxy:
            proxy.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
