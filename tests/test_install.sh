#!/usr/bin/env bash
# test_install.sh: installs weft into a temporary prefix and builds a small
# program against the installed copy twice, once with pkg-config and once
# with a CMake project that calls find_package(weft), then runs them all.
#
# ctest passes WEFT_BUILD_DIR (the build tree to install), WEFT_CMAKE,
# WEFT_CC and WEFT_CFLAGS (sanitizer flags, which anything linked against an
# instrumented libweft needs as well). No network is used.
set -euo pipefail

build_dir=${WEFT_BUILD_DIR:?set WEFT_BUILD_DIR to a weft build tree}
cmake=${WEFT_CMAKE:-cmake}
cc=${WEFT_CC:-cc}
read -r -a cflags <<<"${WEFT_CFLAGS:-}"

command -v pkg-config >/dev/null || { echo "pkg-config is missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

echo "== cmake --install into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" >"$work/install.log"

# The libraries land in lib/ or lib/<multiarch>/ depending on the system.
pc=$(find "$prefix" -name weft.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || { echo "weft.pc was not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in "$prefix/include/weft.h" "$prefix/include/weft/scope.h" \
         "$libdir/libweft.a" "$libdir/cmake/weft/weftConfig.cmake"; do
  [ -e "$f" ] || { echo "missing from the install: $f" >&2; exit 1; }
done
shared=$(find "$libdir" -maxdepth 1 \( -name 'libweft.so' -o -name 'libweft.dylib' \) | head -n 1)
[ -n "$shared" ] || { echo "the shared library was not installed" >&2; exit 1; }
if [ -e "$prefix/include/internal.h" ]; then
  echo "a private header was installed" >&2
  exit 1
fi

mkdir -p "$work/src"
cat >"$work/src/hello.c" <<'C'
/* Runs one task under weft and reports the result. */
#include <stdio.h>

#include <weft.h>

static int root(void *arg) {
  (void)arg;
  return weft_sleep(1);
}

int main(void) {
  int err = weft_main(root, NULL);
  if (err != 0) {
    fprintf(stderr, "weft_main: %s\n", weft_strerror(err));
    return 1;
  }
  printf("hello from weft %s\n", WEFT_VERSION_STRING);
  return 0;
}
C

echo "== pkg-config"
export PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
version=$(pkg-config --modversion weft)
echo "weft.pc version $version"
# shellcheck disable=SC2046 # pkg-config output is meant to be split.
"$cc" "${cflags[@]}" -o "$work/hello-pc" "$work/src/hello.c" \
  $(pkg-config --cflags --libs weft)
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
  DYLD_LIBRARY_PATH=$libdir "$work/hello-pc"

echo "== find_package(weft)"
cat >"$work/src/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(weft_consumer C)
find_package(weft REQUIRED)
add_executable(hello_shared hello.c)
target_link_libraries(hello_shared PRIVATE weft::weft)
add_executable(hello_static hello.c)
target_link_libraries(hello_static PRIVATE weft::weft_static)
CM
"$cmake" -S "$work/src" -B "$work/build" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="${WEFT_CFLAGS:-}" \
  -DCMAKE_EXE_LINKER_FLAGS="${WEFT_CFLAGS:-}" >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
"$cmake" --build "$work/build" >"$work/build.log" ||
  { cat "$work/build.log"; exit 1; }
"$work/build/hello_shared"
"$work/build/hello_static"
if command -v ldd >/dev/null && ldd "$work/build/hello_static" | grep -q libweft; then
  echo "hello_static links libweft dynamically" >&2
  exit 1
fi

echo "install test passed"
