"""A Lambda Runtime API emulator: the HTTP interface through which AWS Lambda hands
invocations to a custom runtime (provided.al2023) and takes back their results.

    GET  /2018-06-01/runtime/invocation/next              → next event + Lambda-Runtime-* headers
    POST /2018-06-01/runtime/invocation/{id}/response     ← the function's result
    POST /2018-06-01/runtime/invocation/{id}/error        ← the function's error
    POST /2018-06-01/runtime/init/error                   ← an initialization error

Why not cargo-lambda: `cargo lambda watch/invoke` works here but takes ~12 minutes to
install from crates.io on two cores, a quarter of CI's budget. The floe binaries run
unmodified against this emulator, exactly as under Lambda (AWS_LAMBDA_RUNTIME_API), with
the real `lambda_runtime` client; what is emulated is only the service side of the API
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
"""
import json
import os
import queue
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    def __init__(self, function_name="floe-test"):
        self.function_name = function_name
        self.events = queue.Queue()
        self.results = {}
        self.done = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, code, body=b"", headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                request_id, payload = api.events.get()
                self._reply(200, json.dumps(payload).encode(), {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 300_000),
                    "Lambda-Runtime-Invoked-Function-Arn":
                        f"arn:aws:lambda:us-east-1:000000000000:function:{api.function_name}",
                    "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
                })

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts[:1] == ["invocation"] and len(parts) == 3 and parts[2] in ("response", "error"):
                    with api.done:
                        api.results[parts[1]] = (parts[2], body.decode())
                        api.done.notify_all()
                    return self._reply(202, b"{}")
                if parts == ["init", "error"]:
                    with api.done:
                        api.results["init"] = ("error", body.decode())
                        api.done.notify_all()
                    return self._reply(202, b"{}")
                return self._reply(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def start_function(self, command, env):
        """Starts a binary as the Lambda service would: no arguments, AWS_LAMBDA_* set."""
        env = dict(env)
        env.update({
            "AWS_LAMBDA_RUNTIME_API": self.address,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "test",
        })
        return subprocess.Popen([command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def invoke(self, payload, timeout=120, process=None):
        """Queues one invocation and waits for its outcome: ("response"|"error", body)."""
        request_id = str(uuid.uuid4())
        self.events.put((request_id, payload))
        deadline = time.time() + timeout
        with self.done:
            while request_id not in self.results and "init" not in self.results:
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"function exited with {process.returncode}: {process.stderr.read()}")
                if time.time() > deadline:
                    raise TimeoutError("no response from the function")
                self.done.wait(0.5)
            if "init" in self.results:
                raise RuntimeError(f"init error: {self.results['init'][1]}")
            return self.results.pop(request_id)

    def close(self):
        self.server.shutdown()


def sqs_event(messages, queue_arn):
    """An SqsEvent as Lambda's SQS event source mapping builds it."""
    now = str(int(time.time() * 1000))
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": {
            "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
            "SentTimestamp": now, "SenderId": "000000000000", "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
    } for m in messages]}
