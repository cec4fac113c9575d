#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the oracle tests
# (independent Python readers) and the LocalStack end-to-end tests.
# Installs what is missing (.ci/setup.sh) and starts LocalStack if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
bash localstack/start.sh
source localstack/env.sh

echo "== fixtures"
FIX=tests/fixtures/generated
if [ ! -f "$FIX/.stamp" ] || [ tests/fixtures/make_fixtures.py -nt "$FIX/.stamp" ]; then
  rm -rf "$FIX"; mkdir -p "$FIX"
  /usr/bin/python3 tests/fixtures/make_fixtures.py "$FIX"          # Debian: HDF5 1.10, netCDF-C 4.9
  .ci/.oracle-venv/bin/python tests/fixtures/make_fixtures.py "$FIX" # wheels: HDF5 2.x
  touch "$FIX/.stamp"
fi

echo "== cargo fmt --check, clippy -D warnings"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo build"
cargo build --workspace --bins --quiet
echo "== cargo test"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
echo "== oracle and end-to-end tests (pytest)"
FLOE_FIXTURES=$PWD/$FIX .ci/.oracle-venv/bin/python -m pytest -q tests/oracle "$@"
