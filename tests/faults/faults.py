"""mitmproxy addon: a fault-injecting reverse proxy for floe's drills.

    mitmdump --mode reverse:http://127.0.0.1:4566 --listen-port 0 -s tests/faults/faults.py \
        --set keep_host_header=true --set fault_rate=0.2 [--set fault_services=s3,sqs] ...

Why mitmproxy rather than a fault mode of floe-latency-proxy: to answer a request with an error,
a proxy must know where each HTTP request ends (Content-Length, chunked and aws-chunked bodies,
keep-alive). mitmproxy is a complete HTTP/1.1 and HTTP/2 implementation; the latency proxy only
delays bytes and would need a second HTTP parser of our own to do this.

A share (`fault_rate`) of the requests to the chosen services is answered with one of, drawn
evenly from `fault_kinds`:
- `slowdown`: 503 with the service's throttling error (S3 `SlowDown`, SQS `RequestThrottled`);
- `internal`: 500 with the service's internal error (S3 `InternalError`, SQS `InternalFailure`);
- `drop`: the connection closed before the request reaches the server;
- `lost`: the request reaches the server and its effect happens, but the answer is lost and the
  connection closed (the case that tests idempotency).
`fault_first` fails the first N matching requests whatever the rate (deterministic drills), and
`fault_match` narrows matching requests to those whose "METHOD path target" line contains it (an
SQS target is its `X-Amz-Target`, e.g. `AmazonSQS.GetQueueAttributes`). Every request is logged
to `fault_log` as a JSON line (time, service, method, path, target, fault, authorization scheme
and the JWT header of a bearer token), so a test can count what was injected and what was sent.
"""
import base64
import json
import random
import threading
import time

from mitmproxy import ctx, http

S3_ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
}
SQS_ERRORS = {
    "slowdown": (503, "RequestThrottled", "Rate exceeded"),
    "internal": (500, "InternalFailure", "The request processing has failed because of an unknown error."),
}


def service_of(flow):
    req = flow.request
    target = req.headers.get("x-amz-target", "")
    if target.startswith("AmazonSQS") or "Action=" in (req.get_text(strict=False) or "")[:200]:
        return "sqs"
    if req.path.startswith(("/storage/v1", "/upload/storage", "/download/storage")):
        return "gcs"
    return "s3"


def jwt_header(authorization):
    parts = authorization.split(" ", 1)
    if len(parts) != 2 or parts[0].lower() != "bearer" or parts[1].count(".") != 2:
        return None
    head = parts[1].split(".", 1)[0]
    try:
        return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:
        return None


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.matched = 0
        self.rng = random.Random(0)
        self.rate = 0.0
        self.log = None

    def load(self, loader):
        # A string: mitmproxy's options take no floats.
        loader.add_option("fault_rate", str, "0", "share of matching requests answered with a fault (0 to 1)")
        loader.add_option("fault_kinds", str, "slowdown,internal,drop,lost", "faults to draw from")
        loader.add_option("fault_services", str, "s3,sqs", "services whose requests may fail: s3, sqs, gcs")
        loader.add_option("fault_first", int, 0, "fail the first N matching requests")
        loader.add_option("fault_match", str, "", "only requests whose 'METHOD path target' contains this")
        loader.add_option("fault_seed", int, 0, "random seed")
        loader.add_option("fault_log", str, "", "JSON lines file of every request")

    def configure(self, updated):
        if "fault_rate" in updated:
            self.rate = float(ctx.options.fault_rate)
        if "fault_seed" in updated:
            self.rng = random.Random(ctx.options.fault_seed)
        if "fault_log" in updated and ctx.options.fault_log:
            self.log = open(ctx.options.fault_log, "a", buffering=1)

    def decide(self, flow):
        service = service_of(flow)
        target = flow.request.headers.get("x-amz-target", "")
        line = f"{flow.request.method} {flow.request.path} {target}"
        services = {s.strip() for s in ctx.options.fault_services.split(",")}
        kinds = [k.strip() for k in ctx.options.fault_kinds.split(",") if k.strip()]
        matches = service in services and ctx.options.fault_match in line and kinds
        with self.lock:
            fault = None
            if matches:
                self.matched += 1
                if self.matched <= ctx.options.fault_first or self.rng.random() < self.rate:
                    fault = self.rng.choice(kinds)
        return service, target, fault

    def record(self, flow, service, target, fault):
        if self.log is None:
            return
        auth = flow.request.headers.get("authorization", "")
        entry = {"t": time.time(), "service": service, "method": flow.request.method, "path": flow.request.path,
                 "target": target, "fault": fault, "auth": auth.split(" ", 1)[0] if auth else None,
                 "jwt": jwt_header(auth) if auth else None}
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")

    def request(self, flow):
        service, target, fault = self.decide(flow)
        self.record(flow, service, target, fault)
        if fault in ("slowdown", "internal"):
            if service == "sqs":
                status, code, message = SQS_ERRORS[fault]
                body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message})
                headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Receiver"}
            else:
                status, code, message = S3_ERRORS[fault]
                body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                        f"<Message>{message}</Message><RequestId>floe-fault</RequestId></Error>")
                headers = {"Content-Type": "application/xml"}
            flow.response = http.Response.make(status, body, headers)
        elif fault == "drop":
            flow.kill()
        elif fault == "lost":
            flow.metadata["floe_lose_response"] = True

    def response(self, flow):
        if flow.metadata.get("floe_lose_response"):
            flow.kill()


addons = [Faults()]
