#!/usr/bin/env bash
# Starts LocalStack (S3, SQS, SNS, CloudFormation, IAM, STS) on the host, without Docker.
# Python >= 3.13 venv with pinned packages (see .ci/setup.sh, which creates it).
# Usage: localstack/start.sh   (idempotent: returns at once when it already answers)
set -euo pipefail
cd "$(dirname "$0")/.."
LS_VENV=${LS_VENV:-$PWD/.ci/.localstack-venv}
LS_PORT=${LS_PORT:-4566}
LS_ROOT=${LS_ROOT:-$PWD/.ci/.localstack-fs}
LS_LOG=${LS_LOG:-$PWD/.ci/localstack.log}

health() { curl -fsS "http://127.0.0.1:$LS_PORT/_localstack/health" 2>/dev/null; }
if health | grep -q '"sqs": "\(running\|available\)"'; then
  echo "LocalStack already running on :$LS_PORT"; exit 0
fi
[ -x "$LS_VENV/bin/python" ] || bash .ci/setup.sh
if (exec 3<>/dev/tcp/127.0.0.1/$LS_PORT) 2>/dev/null; then
  echo "port $LS_PORT is in use by something that is not LocalStack" >&2; exit 1
fi
mkdir -p "$LS_ROOT"
env SERVICES=${LS_SERVICES:-sqs,s3,sns,cloudformation,iam,sts} SQS_ENDPOINT_STRATEGY=path \
    GATEWAY_LISTEN=127.0.0.1:$LS_PORT LOCALSTACK_HOST=127.0.0.1:$LS_PORT \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$LS_ROOT" DNS_ADDRESS=0 \
    DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 EAGER_SERVICE_LOADING=1 \
    nohup "$LS_VENV/bin/python" -m localstack.runtime.main >"$LS_LOG" 2>&1 &
echo $! > "$LS_ROOT/pid"
for _ in $(seq 1 600); do
  if health | grep -q '"s3": "running".*"sqs": "running"\|"sqs": "running".*"s3": "running"'; then
    echo "LocalStack ready on :$LS_PORT (pid $(cat "$LS_ROOT/pid"))"; exit 0
  fi
  kill -0 "$(cat "$LS_ROOT/pid")" 2>/dev/null || { echo "LocalStack died:"; tail -50 "$LS_LOG"; exit 1; }
  sleep 0.2
done
echo "LocalStack did not become ready:"; tail -50 "$LS_LOG"; exit 1
