#!/usr/bin/env bash
# test_new_app.sh: scripts/new-app makes an application that builds and
# passes its own test at once, for each kind (server, job), and refuses bad
# names and folders that exist.
#
# The source tree is copied (the files git knows, or the tree without its
# build folders when it is not a git checkout) to a scratch folder; the
# script runs there, then only the new applications and what they link are
# configured and built, and their ctest tests run. The copy is configured
# like the build tree that runs this test (build type, compiler, sanitizers),
# read from its CMakeCache.txt.
#
# ctest passes WEFT_SOURCE_DIR, WEFT_BUILD_DIR and WEFT_CMAKE.
set -euo pipefail

src=${WEFT_SOURCE_DIR:?set WEFT_SOURCE_DIR to the weft source tree}
build_dir=${WEFT_BUILD_DIR:?set WEFT_BUILD_DIR to a weft build tree}
cmake=${WEFT_CMAKE:-cmake}
ctest=$(dirname "$cmake")/ctest
[ -x "$ctest" ] || ctest=ctest
command -v python3 >/dev/null || { echo "python3 is missing: skipped"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-new-app.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/tree

echo "== copying $src"
mkdir -p "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and new files, without what .gitignore leaves out (build trees).
  (cd "$src" && git ls-files -z -co --exclude-standard |
     tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$tree"
else
  tar -C "$src" --exclude='./build' --exclude='./build-*' --exclude='./.git' \
      -cf - . | tar -xf - -C "$tree"
fi

# $1: expected exit code; the rest: the command. Shows its output.
expect_exit() {
  local want=$1
  shift
  local got=0
  "$@" >"$work/out.log" 2>&1 || got=$?
  cat "$work/out.log"
  if [ "$got" -ne "$want" ]; then
    echo "FAILED: '$*' exited $got, not $want" >&2
    exit 1
  fi
}

echo "== refusals"
expect_exit 2 "$tree/scripts/new-app" "Bad-Name"
grep -q 'not a valid name' "$work/out.log"
expect_exit 2 "$tree/scripts/new-app" echo_server
grep -q 'apps/echo_server already exists' "$work/out.log"
expect_exit 2 "$tree/scripts/new-app" --kind daemon fresh_app
grep -q 'unknown kind' "$work/out.log"
expect_exit 2 "$tree/scripts/new-app"
[ ! -e "$tree/apps/fresh_app" ] || { echo "a refused run left a folder" >&2; exit 1; }

echo "== scripts/new-app"
expect_exit 0 "$tree/scripts/new-app" made_server
expect_exit 0 "$tree/scripts/new-app" --kind job made_job
for app in made_server made_job; do
  for f in CMakeLists.txt README.md config.json main.c; do
    [ -s "$tree/apps/$app/$f" ] || { echo "apps/$app/$f is missing" >&2; exit 1; }
  done
  ls "$tree/apps/$app"/tests/test_*.py >/dev/null
  if grep -rqi 'template_app' "$tree/apps/$app"; then
    echo "apps/$app still names the template's placeholder" >&2
    exit 1
  fi
done
# The name is taken now.
expect_exit 2 "$tree/scripts/new-app" made_server

# The settings of the build tree that runs this test.
cache_value() {
  sed -n "s/^$1:[A-Z]*=//p" "$build_dir/CMakeCache.txt" | head -n 1
}
build_type=$(cache_value CMAKE_BUILD_TYPE)
sanitize=$(cache_value WEFT_SANITIZE)
cc=$(cache_value CMAKE_C_COMPILER)
cxx=$(cache_value CMAKE_CXX_COMPILER)

echo "== configure and build made_server and made_job (${build_type:-default}${sanitize:+, $sanitize})"
"$cmake" -S "$tree" -B "$tree/build" \
  -DCMAKE_BUILD_TYPE="${build_type:-RelWithDebInfo}" \
  ${cc:+-DCMAKE_C_COMPILER="$cc"} ${cxx:+-DCMAKE_CXX_COMPILER="$cxx"} \
  ${WEFT_CMAKE_TOOLCHAIN_FILE:+-DCMAKE_TOOLCHAIN_FILE="$WEFT_CMAKE_TOOLCHAIN_FILE"} \
  -DWEFT_SANITIZE="$sanitize" \
  -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
"$cmake" --build "$tree/build" -j2 --target made_server made_job \
  >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
# The template compiles without a warning.
if grep -E 'apps/made_(server|job)/.*warning:' "$work/build.log"; then
  echo "the new applications compile with warnings" >&2
  exit 1
fi

echo "== their tests"
(cd "$tree/build" && "$ctest" --output-on-failure --no-tests=error \
   -R '^made_(server|job)\.')
echo "new-app test passed"
