#!/usr/bin/env bash
# test_changelog.sh: the version has one home and CHANGELOG.md follows it.
#
# weft.h's WEFT_VERSION_MAJOR, _MINOR and _PATCH spell WEFT_VERSION_STRING;
# the build took its project version from there (weft.pc's Version line,
# generated from PROJECT_VERSION, is the same); and CHANGELOG.md has a
# "## X.Y.Z" heading for it, so that a release is never cut without its
# entry.
#
# ctest passes WEFT_SOURCE_DIR and WEFT_BUILD_DIR.
set -euo pipefail

src=${WEFT_SOURCE_DIR:?set WEFT_SOURCE_DIR to the weft source tree}
build_dir=${WEFT_BUILD_DIR:?set WEFT_BUILD_DIR to a weft build tree}
header=$src/runtime/include/weft.h

macro() {
  sed -n "s/^#define $1 \\(.*\\)$/\\1/p" "$header" | tr -d '"'
}
string=$(macro WEFT_VERSION_STRING)
parts=$(macro WEFT_VERSION_MAJOR).$(macro WEFT_VERSION_MINOR).$(macro WEFT_VERSION_PATCH)
echo "weft.h: WEFT_VERSION_STRING $string, MAJOR.MINOR.PATCH $parts"
if [ -z "$string" ] || [ "$string" != "$parts" ]; then
  echo "weft.h's version macros disagree" >&2
  exit 1
fi

pc_version=$(sed -n 's/^Version: //p' "$build_dir/runtime/weft.pc")
echo "the build (weft.pc): $pc_version"
if [ "$pc_version" != "$string" ]; then
  echo "the build's project version $pc_version is not weft.h's $string:" \
       "configure again" >&2
  exit 1
fi

if ! grep -Eq "^## \\[?$(printf '%s' "$string" | sed 's/\./\\./g')\\]?([[:space:]]|$)" \
     "$src/CHANGELOG.md"; then
  echo "CHANGELOG.md has no \"## $string\" heading for this version" >&2
  exit 1
fi
echo "CHANGELOG.md has an entry for $string"
