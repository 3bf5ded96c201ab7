#!/usr/bin/env bash
# test_install.sh: installs weft into a temporary prefix and builds a small
# program against the installed copy twice, once with pkg-config and once
# with a CMake project that calls find_package(weft), then runs them all;
# with the optional modules that were built (weft::http, weft::curl,
# weft::sqlite, weft::redis), one program each as well; and echo_server
# forked out of the tree (scripts/fork-app, docs/FORK.md), built with
# find_package(weft), some of its tests run, then built with pkg-config.
#
# ctest passes WEFT_SOURCE_DIR, WEFT_BUILD_DIR (the build tree to install),
# WEFT_CMAKE, WEFT_CC and WEFT_CFLAGS (sanitizer flags, which anything linked
# against an instrumented libweft needs as well), and in a cross build
# WEFT_CMAKE_TOOLCHAIN_FILE and WEFT_TEST_EMULATOR (the programs built here
# run under it). No network is used.
set -euo pipefail

build_dir=${WEFT_BUILD_DIR:?set WEFT_BUILD_DIR to a weft build tree}
cmake=${WEFT_CMAKE:-cmake}
cc=${WEFT_CC:-cc}
read -r -a cflags <<<"${WEFT_CFLAGS:-}"
read -r -a emu <<<"${WEFT_TEST_EMULATOR:-}"
toolchain=()
[ -n "${WEFT_CMAKE_TOOLCHAIN_FILE:-}" ] && toolchain=(-DCMAKE_TOOLCHAIN_FILE="$WEFT_CMAKE_TOOLCHAIN_FILE")

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
  DYLD_LIBRARY_PATH=$libdir "${emu[@]}" "$work/hello-pc"

# Configures (with any further arguments) and builds the CMake project in
# $1 against the installed package, in $1-build; shows the log and fails on
# an error.
build_consumer() {
  local dir=$1
  shift
  "$cmake" -S "$dir" -B "$dir-build" \
    -DCMAKE_PREFIX_PATH="$prefix" "${toolchain[@]}" \
    -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="${WEFT_CFLAGS:-}" \
    -DCMAKE_EXE_LINKER_FLAGS="${WEFT_CFLAGS:-}" "$@" >"$dir-configure.log" ||
    { cat "$dir-configure.log"; exit 1; }
  "$cmake" --build "$dir-build" -j2 >"$dir-build.log" 2>&1 ||
    { cat "$dir-build.log"; exit 1; }
}

# Builds $work/<module>/hello_<module>.c into a program that links
# weft::<module> (the package must export it) and runs it with the
# remaining arguments.
run_module_consumer() {
  local module=$1
  shift
  cat >"$work/$module/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(weft_${module}_consumer C)
find_package(weft REQUIRED)
if(NOT TARGET weft::${module})
  message(FATAL_ERROR "the weft package has no weft::${module}")
endif()
add_executable(hello_${module} hello_${module}.c)
target_link_libraries(hello_${module} PRIVATE weft::${module})
CM
  build_consumer "$work/$module"
  # The installed modules link the shared runtime, so that a program that
  # also links weft::weft has one copy of it. (grep reads all of ldd's
  # output: with -q it could stop early, and under pipefail ldd's SIGPIPE
  # would read as a failure.)
  # ldd cannot read a cross-built program: readelf names what it needs.
  if [ ${#emu[@]} -gt 0 ]; then
    if ! readelf -d "$work/$module-build/hello_$module" | grep 'NEEDED.*libweft\.so' >/dev/null; then
      echo "hello_$module does not link the shared libweft" >&2
      exit 1
    fi
  elif command -v ldd >/dev/null &&
     ! LD_LIBRARY_PATH=$libdir ldd "$work/$module-build/hello_$module" | grep 'libweft\.so' >/dev/null; then
    echo "hello_$module does not link the shared libweft" >&2
    exit 1
  fi
  LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    DYLD_LIBRARY_PATH=$libdir "${emu[@]}" "$work/$module-build/hello_$module" "$@"
}

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
build_consumer "$work/src"
"${emu[@]}" "$work/src-build/hello_shared"
"${emu[@]}" "$work/src-build/hello_static"
if [ ${#emu[@]} -eq 0 ] && command -v ldd >/dev/null && ldd "$work/src-build/hello_static" | grep libweft >/dev/null; then
  echo "hello_static links libweft dynamically" >&2
  exit 1
fi

# The HTTP module is installed when it was built (llhttp was found): a
# program that links weft::http answers a request given as bytes.
if [ -e "$prefix/include/weft_http.h" ]; then
  echo "== find_package(weft) with weft::http"
  [ -e "$libdir/libweft_http.a" ] || { echo "libweft_http.a was not installed" >&2; exit 1; }
  mkdir -p "$work/http"
  cat >"$work/http/hello_http.c" <<'C'
/* Serves one request from memory with the installed HTTP module. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>
#include <weft_http.h>

static int hello(const weft_http_request *req, weft_http_response *res,
                 void *ctx) {
  (void)req;
  (void)ctx;
  return weft_http_response_body(res, "hello\n", 6);
}

static int root(void *arg) {
  (void)arg;
  static const char in[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  char *out = NULL;
  size_t len = 0;
  int r = weft_http_serve_memory(in, sizeof in - 1, NULL, hello, NULL, &out, &len);
  if (r == 0 && (strncmp(out, "HTTP/1.1 200 OK\r\n", 17) != 0 ||
                 strstr(out, "\r\n\r\nhello\n") == NULL))
    r = -1;
  if (r == 0) fputs(out, stdout);
  free(out);
  return r;
}

int main(void) {
  int err = weft_main(root, NULL);
  if (err != 0) {
    fprintf(stderr, "hello_http: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
C
  run_module_consumer http
fi

# The libcurl module likewise: a program that links weft::curl performs a
# file:// transfer (no network) on the executor's loop.
if [ -e "$prefix/include/weft_curl.h" ]; then
  echo "== find_package(weft) with weft::curl"
  [ -e "$libdir/libweft_curl.a" ] || { echo "libweft_curl.a was not installed" >&2; exit 1; }
  mkdir -p "$work/curl"
  printf 'hello from a file\n' >"$work/curl/data.txt"
  cat >"$work/curl/hello_curl.c" <<'C'
/* Reads a local file through the installed libcurl module. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <weft.h>
#include <weft_curl.h>

static char got[256];
static size_t got_len;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  (void)ud;
  size_t len = size * n;
  if (got_len + len >= sizeof got) return 0;
  memcpy(got + got_len, p, len);
  got_len += len;
  return len;
}

static int root(void *arg) {
  weft_curl *c = weft_curl_new(NULL);
  CURL *easy = curl_easy_init();
  if (c == NULL || easy == NULL) return UV_ENOMEM;
  curl_easy_setopt(easy, CURLOPT_URL, (const char *)arg);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
  CURLcode code = CURLE_OK;
  int err = weft_curl_perform(c, easy, &code);
  curl_easy_cleanup(easy);
  weft_curl_free(c);
  if (err == 0 && strcmp(got, "hello from a file\n") != 0) err = -1;
  if (err == 0) fputs(got, stdout);
  return err;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int err = weft_main(root, argv[1]);
  if (err != 0) {
    fprintf(stderr, "hello_curl: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
C
  run_module_consumer curl "file://$work/curl/data.txt"
fi

# The SQLite module: a program that links weft::sqlite writes a row with
# group commit and reads it back.
if [ -e "$prefix/include/weft_sqlite.h" ]; then
  echo "== find_package(weft) with weft::sqlite"
  [ -e "$libdir/libweft_sqlite.a" ] || { echo "libweft_sqlite.a was not installed" >&2; exit 1; }
  mkdir -p "$work/sqlite"
  cat >"$work/sqlite/hello_sqlite.c" <<'C'
/* Writes a row and reads it back with the installed SQLite module. */
#include <stdio.h>

#include <weft.h>
#include <weft_sqlite.h>

static int put(sqlite3 *db, void *arg) {
  (void)arg;
  return weft_sqlite_error(sqlite3_exec(db, "INSERT INTO t VALUES('hello')", NULL, NULL, NULL));
}

static int count(sqlite3 *db, void *arg) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM t", -1, &st, NULL);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) *(int *)arg = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return weft_sqlite_error(rc);
}

static int root(void *arg) {
  weft_sqlite *db = NULL;
  int n = 0;
  int err = weft_sqlite_open((const char *)arg, NULL, &db);
  if (err == 0) err = weft_sqlite_exec(db, "CREATE TABLE t(x)");
  if (err == 0) err = weft_sqlite_write(db, put, NULL);
  if (err == 0) err = weft_sqlite_read(db, count, &n);
  weft_sqlite_close(db);
  if (err == 0 && n != 1) err = -1;
  if (err == 0) printf("hello from weft_sqlite: %d row\n", n);
  return err;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int err = weft_main(root, argv[1]);
  if (err != 0) {
    fprintf(stderr, "hello_sqlite: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
C
  run_module_consumer sqlite "$work/sqlite/hello.db"
fi

# The Redis module: with no server to talk to, a program that links
# weft::redis sees its connection to a closed port refused.
if [ -e "$prefix/include/weft_redis.h" ]; then
  echo "== find_package(weft) with weft::redis"
  [ -e "$libdir/libweft_redis.a" ] || { echo "libweft_redis.a was not installed" >&2; exit 1; }
  mkdir -p "$work/redis"
  cat >"$work/redis/hello_redis.c" <<'C'
/* Connects to a closed loopback port with the installed Redis module. */
#include <stdio.h>

#include <weft.h>
#include <weft_redis.h>

static int root(void *arg) {
  (void)arg;
  weft_redis *r = NULL;
  /* Port 1 on loopback: nothing listens there unless run as a service. */
  int err = weft_redis_connect("127.0.0.1", 1, NULL, &r);
  weft_redis_close(r);
  if (err != UV_ECONNREFUSED) return err != 0 ? err : -1;
  printf("hello from weft_redis: %s\n", weft_strerror(err));
  return 0;
}

int main(void) {
  int err = weft_main(root, NULL);
  if (err != 0) {
    fprintf(stderr, "hello_redis: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
C
  run_module_consumer redis
fi

# An application forked out of the tree (docs/FORK.md): scripts/fork-app
# copies echo_server and apps/common into a folder of their own, which is
# built against the installed weft with find_package(weft) and runs some of
# echo_server's own integration tests there, then with pkg-config.
src_dir=${WEFT_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
if [ -d "$src_dir/apps/echo_server" ] && [ -x "$src_dir/scripts/fork-app" ]; then
  echo "== a forked application: echo_server with find_package(weft)"
  "$src_dir/scripts/fork-app" echo_server "$work/fork" >/dev/null
  for f in CMakeLists.txt apps/CMakeLists.txt apps/common/server.c \
           apps/echo_server/main.c cmake/weftTesting.cmake; do
    [ -e "$work/fork/$f" ] || { echo "the fork lacks $f" >&2; exit 1; }
  done
  # Sanitizer builds give their tests longer timeouts.
  fork_args=()
  case " ${WEFT_CFLAGS:-} " in
    *-fsanitize=*) fork_args+=(-DWEFT_SANITIZE=address) ;;
  esac
  build_consumer "$work/fork" "${fork_args[@]}"
  grep -q "weft $version from $prefix" "$work/fork-configure.log" ||
    { echo "the fork did not find the installed weft" >&2; cat "$work/fork-configure.log"; exit 1; }
  "${emu[@]}" "$work/fork-build/apps/echo_server/echo_server" --help >/dev/null
  if [ -x /usr/bin/python3 ]; then
    ctest_bin=$(dirname "$cmake")/ctest
    [ -x "$ctest_bin" ] || ctest_bin=ctest
    (cd "$work/fork-build" &&
       "$ctest_bin" --output-on-failure --no-tests=error \
         -R '^echo_server\.(help|bad_config|payloads|sigterm_drain)$')
  fi

  echo "== the forked application with pkg-config weft"
  rm -rf "$work/fork-build"
  build_consumer "$work/fork" -DWEFT_USE_PKGCONFIG=ON "${fork_args[@]}"
  grep -q "weft $version from pkg-config" "$work/fork-configure.log" ||
    { echo "the fork did not use pkg-config" >&2; cat "$work/fork-configure.log"; exit 1; }
  LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    "${emu[@]}" "$work/fork-build/apps/echo_server/echo_server" --help >/dev/null
fi

echo "install test passed"
