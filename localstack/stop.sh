#!/usr/bin/env bash
# Stops the LocalStack started by localstack/start.sh.
cd "$(dirname "$0")/.."
pidfile=${LS_ROOT:-$PWD/.ci/.localstack-fs}/pid
[ -f "$pidfile" ] || { echo "no LocalStack pid file"; exit 0; }
pid=$(cat "$pidfile")
kill "$pid" 2>/dev/null || true
for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
kill -9 "$pid" 2>/dev/null || true
rm -f "$pidfile"
echo "LocalStack stopped"
