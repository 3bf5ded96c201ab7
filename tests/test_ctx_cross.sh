#!/usr/bin/env bash
# Builds the AArch64 context switch with a cross compiler and runs a switch
# test under qemu user-mode emulation. Skipped (exit 77) when the tools are
# missing; install them with: apt-get install gcc-aarch64-linux-gnu qemu-user
set -euo pipefail
src=${WEFT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
cc=aarch64-linux-gnu-gcc
if ! command -v "$cc" >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  echo "skipped: $cc or qemu-aarch64 not installed"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Only libuv's headers are needed, and they are the same on every target.
uv_inc=$(pkg-config --variable=includedir libuv 2>/dev/null || echo /usr/include)
uv_h=$uv_inc/uv.h
mkdir -p "$tmp/inc"
cp -r "$uv_h" "$(dirname "$uv_h")/uv" "$tmp/inc/"
"$cc" -std=gnu11 -O2 -Wall -Wextra -static -I"$tmp/inc" \
  -I"$src/runtime/include" -I"$src/runtime/src" \
  "$src/tests/arch/ctx_harness.c" "$src/runtime/src/ctx.c" \
  "$src/runtime/src/arch/ctx_aarch64.S" -o "$tmp/ctx_harness"
timeout 60 qemu-aarch64 "$tmp/ctx_harness"
