"""The fault-injecting proxy (tests/faults/faults.py, a mitmproxy addon) in front of LocalStack or
fake-gcs-server: floe's processes are pointed at it (AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST),
the tests' own checks talk to the emulators directly."""
import json
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MITMDUMP = ROOT / ".ci" / ".tools-venv" / "bin" / "mitmdump"
ADDON = ROOT / "tests" / "faults" / "faults.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FaultProxy:
    def __init__(self, tmp, upstream="http://127.0.0.1:4566", rate=0.0, services="s3,sqs",
                 kinds="slowdown,internal,drop,lost", first=0, match="", seed=0, keep_host=True):
        if not MITMDUMP.exists():
            raise RuntimeError(f"{MITMDUMP} is missing: run .ci/setup.sh")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.log_path = Path(tmp) / f"faults-{self.port}.jsonl"
        self.out = open(Path(tmp) / f"mitmdump-{self.port}.log", "w")
        # keep_host=False: the upstream sees its own host:port (fake-gcs-server's -public-host).
        options = {"keep_host_header": str(keep_host).lower(), "fault_rate": rate, "fault_services": services,
                   "fault_kinds": kinds, "fault_first": first, "fault_match": match, "fault_seed": seed,
                   "fault_log": self.log_path, "connection_strategy": "lazy"}
        sets = [a for k, v in options.items() for a in ("--set", f"{k}={v}")]
        self.proc = subprocess.Popen(
            [str(MITMDUMP), "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1", "--listen-port",
             str(self.port), "-s", str(ADDON), "-q", *sets], stdout=self.out, stderr=self.out)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.3)  # an addon that fails to load makes it exit just after listening
                if self.proc.poll() is None:
                    return
                break
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"mitmdump did not start: {Path(self.out.name).read_text()}")

    def entries(self):
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def faults(self):
        return [e for e in self.entries() if e["fault"]]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.out.close()
