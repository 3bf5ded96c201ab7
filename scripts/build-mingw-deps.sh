#!/usr/bin/env bash
# build-mingw-deps.sh: builds what weft links for Windows with mingw-w64,
# from Debian's source packages, into PREFIX (default build-windows/deps):
#
#   PREFIX/lib/libuv_a.a, PREFIX/include/uv.h ...   libuv (apt-get source libuv1)
#   PREFIX/lib/libcjson.a, PREFIX/include/cjson/    cJSON (apt-get source cjson)
#   PREFIX/lib/pkgconfig/{libuv,libcjson}.pc        static linking for both
#   PREFIX/lib/cmake/Catch2/                        Catch2 v2's package, pointing
#                                                   at its header-only include
#
#   scripts/build-mingw-deps.sh [PREFIX]
#
# Debian's source packages need a deb-src line (scripts/setup-windows.sh adds
# it). A second run finds PREFIX/.stamp-VERSION and does nothing.
set -euo pipefail

prefix=$(realpath -m "${1:-build-windows/deps}")
root=$(cd "$(dirname "$0")/.." && pwd)
cc=x86_64-w64-mingw32-gcc-posix
ar=x86_64-w64-mingw32-ar
# Bump to rebuild when this script changes what it installs.
stamp=$prefix/.stamp-3
if [ -e "$stamp" ]; then
  exit 0
fi

src=$prefix/src
rm -rf "$src"
mkdir -p "$src" "$prefix/lib/pkgconfig" "$prefix/include/cjson" "$prefix/lib/cmake/Catch2"
cd "$src"
apt-get source --download-only libuv1 cjson >/dev/null 2>&1 ||
  { echo "build-mingw-deps.sh: apt-get source failed (is there a deb-src line? run scripts/setup-windows.sh)" >&2; exit 1; }
# Unpack the upstream sources; Debian's patches only touch the build for Linux.
tar xzf libuv1_*.orig.tar.gz
tar xzf cjson_*.orig.tar.gz
uvsrc=$(echo "$src"/libuv1-*/ | head -n1)
uvsrc=${uvsrc%/}
[ -d "$uvsrc" ] || uvsrc=$(ls -d "$src"/libuv-* | head -n1)
cjsrc=$(ls -d "$src"/cJSON-* | head -n1)

# write_pc NAME VERSION LIBS: the pkg-config file of a static library built
# into $prefix.
write_pc() {
  cat >"$prefix/lib/pkgconfig/$1.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: $1
Version: $2
Description: $1 built statically for Windows with mingw-w64
Libs: -L\${libdir} $3
Cflags: -I\${includedir}
PC
}

# ---- libuv: the static library only, with libuv's own CMake build ----------
cmake -S "$uvsrc" -B "$src/uv-build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64-x86_64.cmake" \
  -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF >"$prefix/libuv-build.log" 2>&1
cmake --build "$src/uv-build" --target uv_a -j"${JOBS:-2}" >>"$prefix/libuv-build.log" 2>&1
cp "$src/uv-build/libuv_a.a" "$prefix/lib/"
cp -r "$uvsrc/include/." "$prefix/include/"
uv_version=$(sed -n 's/^#define UV_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' \
               "$uvsrc/include/uv/version.h" | paste -sd.)
write_pc libuv "$uv_version" \
  "-luv_a -lpsapi -luser32 -ladvapi32 -liphlpapi -luserenv -lws2_32 -ldbghelp -lole32 -lshell32"

# ---- cJSON: its two files, cJSON.c and cJSON.h ------------------------------
$cc -O2 -std=c89 -c "$cjsrc/cJSON.c" -o "$src/cJSON.o"
$ar rcs "$prefix/lib/libcjson.a" "$src/cJSON.o"
cp "$cjsrc/cJSON.h" "$prefix/include/cjson/"
cj_version=$(sed -n 's/^#define CJSON_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\)/\2/p' \
               "$cjsrc/cJSON.h" | paste -sd.)
write_pc libcjson "$cj_version" "-lcjson"

# ---- Catch2 v2 is header-only: its package, with the include directory here
mkdir -p "$prefix/include"
ln -sfn /usr/include/catch2 "$prefix/include/catch2"
cp /usr/lib/cmake/Catch2/Catch.cmake /usr/lib/cmake/Catch2/CatchAddTests.cmake \
  /usr/lib/cmake/Catch2/Catch2ConfigVersion.cmake "$prefix/lib/cmake/Catch2/"
cat >"$prefix/lib/cmake/Catch2/Catch2Config.cmake" <<'CFG'
# Catch2 v2 for the mingw-w64 build: header-only, from the host's catch2.
if(NOT TARGET Catch2::Catch2)
  add_library(Catch2::Catch2 INTERFACE IMPORTED)
  set_target_properties(Catch2::Catch2 PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_LIST_DIR}/../../../include")
endif()
CFG

rm -rf "$src"
touch "$stamp"
echo "build-mingw-deps.sh: libuv $uv_version and cJSON $cj_version for mingw-w64 in $prefix"
