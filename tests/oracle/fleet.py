"""A floe fleet on LocalStack for tests: its own bucket and queues (localstack/seed.py),
the generated archive uploaded to S3, a floe.toml, and helpers that run the real
binaries against it with the real AWS SDK over HTTP."""
import json
import os
import subprocess
import sys
import time

import icechunk
import xarray as xr

from conftest import ROOT, binary
from localstack import ENDPOINT, aws_env, client, unique, upload_tree

sys.path.insert(0, str(ROOT / "localstack"))
from seed import seed, to_toml  # noqa: E402

WORKER_FLAGS = ["--poll-wait", "1", "--visibility-timeout", "10"]


class Fleet:
    def __init__(self, tmp, archive_root, max_receive=2, visibility=10, upload=True, events=False,
                 via_sns=False):
        self.name = unique("floe-fleet")
        self.tmp = tmp
        self.archive_root = archive_root
        self.config = seed(self.name, f"s3://{self.name}/archive", max_receive, visibility, events, via_sns)
        if upload:  # False: the source lives elsewhere (a GCS emulator)
            upload_tree(self.name, archive_root, "archive")
        self.toml = tmp / "floe.toml"
        self.toml.write_text(to_toml(self.config))
        self.env = aws_env()
        self.env.update({"FLOE_CONFIG": str(self.toml), "RUST_LOG": "info"})
        self.logs = []

    def run(self, program, *args, timeout=300):
        return subprocess.run([binary(program), *map(str, args)], capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def json(self, program, *args):
        proc = self.run(program, *args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def start(self, program, *args):
        log = self.tmp / f"{program}-{len(self.logs)}.log"
        self.logs.append(log)
        handle = open(log, "w")
        args = [str(a) for a in args]
        defaults = [f for i in range(0, len(WORKER_FLAGS), 2) if WORKER_FLAGS[i] not in args
                    for f in WORKER_FLAGS[i:i + 2]]
        return subprocess.Popen([binary(program), "worker", *defaults, *args],
                                stdout=handle, stderr=handle, env=self.env), log

    def start_command(self, program, *args):
        """Starts `program ARGS…` (not a worker subcommand) with its own log."""
        log = self.tmp / f"{program}-{len(self.logs)}.log"
        self.logs.append(log)
        return subprocess.Popen([binary(program), *map(str, args)], stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, env=self.env), log

    def drain(self, virtualizers=2, committers=2, idle=6, timeout=300, virtualizer_args=()):
        """Runs workers until every one has been idle for `idle` seconds."""
        procs = [self.start("virtualizer", "--exit-when-idle", idle, *virtualizer_args)[0]
                 for _ in range(virtualizers)]
        procs += [self.start("committer", "--exit-when-idle", idle + 2, "--batch-size", 50,
                             "--batching-window", 2)[0] for _ in range(committers)]
        for p in procs:
            p.wait(timeout=timeout)
        failed = [(p.args, p.returncode) for p in procs if p.returncode != 0]
        assert not failed, (failed, [log.read_text()[-3000:] for log in self.logs])

    def status(self):
        return self.json("producer", "status", "--json")

    def dead_letters(self):
        proc = self.run("producer", "dlq", "list", "--json")
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def commits(self):
        proc = self.run("committer", "log", "--store", self.config["store_url"], "-n", "1000", "--json")
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def depth(self, status, name):
        q = next(q for q in status["queues"] if q["name"] == name)
        return q["depth"]["visible"] + q["depth"]["in_flight"] + q["depth"]["delayed"]

    def open_group(self, group):
        storage = icechunk.s3_storage(bucket=self.name, prefix="store", region="us-east-1", endpoint_url=ENDPOINT,
                                      allow_http=True, force_path_style=True, access_key_id="test",
                                      secret_access_key="test")
        creds = icechunk.containers_credentials(
            {f"s3://{self.name}/archive/": icechunk.s3_static_credentials(access_key_id="test",
                                                                          secret_access_key="test")})
        repo = icechunk.Repository.open(storage, authorize_virtual_chunk_access=creds)
        return xr.open_zarr(repo.readonly_session("main").store, group=group, zarr_format=3, consolidated=False,
                            mask_and_scale=False)

    def send_raw(self, queue_key, body):
        return client("sqs").send_message(QueueUrl=self.config[queue_key], MessageBody=body)["MessageId"]

    def wait_for_log(self, log, text, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in log.read_text():
                return True
            time.sleep(0.05)
        return False


def env_without_config():
    env = dict(os.environ)
    env.pop("FLOE_CONFIG", None)
    return env
