#!/usr/bin/env bash
# Assembles the context switches for the systems no machine here runs
# (macOS on Apple silicon and Intel, FreeBSD) as well as Linux, with clang's
# integrated assembler, and checks their symbols: on Mach-O a leading
# underscore and private extern, on ELF hidden functions. This keeps macOS
# and the BSDs one build away (docs/PORTING.md). Skipped (exit 77) without
# clang and llvm-nm / llvm-readelf (Debian clang, llvm).
set -euo pipefail
src=${WEFT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
for tool in clang llvm-nm llvm-readelf; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0
check() {
  local target=$1 file=$2 obj
  obj=$tmp/$target.o
  if ! clang -target "$target" -c "$src/runtime/src/arch/$file" -o "$obj"; then
    echo "FAIL $target: $file does not assemble"
    failed=1
    return
  fi
  for sym in weft__ctx_switch weft__ctx_trampoline; do
    case $target in
      *apple*)
        if ! llvm-nm -m "$obj" | grep "(__TEXT,__text) private external _$sym\$" >/dev/null; then
          echo "FAIL $target: _$sym is not a private external in __TEXT,__text"
          llvm-nm -m "$obj"
          failed=1
        fi
        ;;
      *)
        if ! llvm-readelf -s "$obj" | grep -E "FUNC +GLOBAL +HIDDEN +[0-9]+ $sym\$" >/dev/null; then
          echo "FAIL $target: $sym is not a hidden global function"
          llvm-readelf -s "$obj"
          failed=1
        fi
        ;;
    esac
  done
  echo "ok   $target ($file)"
}

check arm64-apple-macos11 ctx_aarch64.S
check aarch64-unknown-freebsd13 ctx_aarch64.S
check aarch64-linux-gnu ctx_aarch64.S
check x86_64-apple-macos10.15 ctx_x86_64_sysv.S
check x86_64-unknown-freebsd13 ctx_x86_64_sysv.S
check x86_64-linux-gnu ctx_x86_64_sysv.S
exit $failed
