#!/usr/bin/env bash
# Builds the Lambda artifacts: one zip per function with the binary as `bootstrap`, for the
# provided.al2023 runtime. Usage: infra/build-artifacts.sh [arm64|x86_64] (default arm64).
# Output: {target dir}/lambda/{arch}/{virtualizer,committer,producer}.zip (producer: the planner behind the events queue) (target/ unless CARGO_TARGET_DIR
# says otherwise), and their sizes on stdout.
#
# arm64 cross-compiles with rustup's aarch64 standard library and Debian's
# gcc-aarch64-linux-gnu as linker and C compiler (installed when missing). The binaries
# link glibc dynamically; provided.al2023 has glibc 2.34, so the script fails if a binary
# needs a newer symbol version.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-arm64}
case "$ARCH" in
  arm64) TARGET=aarch64-unknown-linux-gnu ;;
  x86_64) TARGET=x86_64-unknown-linux-gnu ;;
  *) echo "usage: $0 [arm64|x86_64]" >&2; exit 2 ;;
esac
if [ "$ARCH" = arm64 ]; then
  rustup target list --installed | grep -q "^$TARGET$" || rustup target add "$TARGET"
  if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null
  fi
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  OBJDUMP=aarch64-linux-gnu-objdump
else
  OBJDUMP=objdump
fi
# The dist profile: release plus thin LTO and stripped symbols (smaller zips, slower build;
# the default release profile stays quick to build for the README's first command).
cargo build --profile dist --locked --target "$TARGET" -p floe-virtualizer --bin virtualizer -p floe-committer --bin committer -p floe-producer --bin producer
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps --offline | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OUT=$TARGET_DIR/lambda/$ARCH
mkdir -p "$OUT"
for bin in virtualizer committer producer; do
  path=$TARGET_DIR/$TARGET/dist/$bin
  newest=$($OBJDUMP -T "$path" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -u | tail -1)
  if [ "$(printf '%s\n2.34\n' "$newest" | sort -t. -k1,1n -k2,2n | tail -1)" != 2.34 ]; then
    echo "$bin needs glibc $newest, newer than provided.al2023's 2.34" >&2; exit 1
  fi
  rm -rf "$OUT/$bin" && mkdir -p "$OUT/$bin"
  cp "$path" "$OUT/$bin/bootstrap"
  (cd "$OUT/$bin" && rm -f "../$bin.zip" && python3 -c "
import zipfile, os
with zipfile.ZipFile('../$bin.zip', 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    info = zipfile.ZipInfo('bootstrap'); info.external_attr = 0o100755 << 16; info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, open('bootstrap', 'rb').read())
")
  printf '%-12s %-7s binary %6.1f MB  zip %5.1f MB  (glibc >= %s)\n' "$bin" "$ARCH" \
    "$(echo "$(stat -c %s "$OUT/$bin/bootstrap") / 1000000" | bc -l)" \
    "$(echo "$(stat -c %s "$OUT/$bin.zip") / 1000000" | bc -l)" "$newest"
done
