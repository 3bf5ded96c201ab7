#!/usr/bin/env bash
# setup-windows.sh: what `make test-windows` needs, installed when missing
# (quick when everything is there):
#
#   - mingw-w64's C and C++ cross compilers and Wine (Debian 12: wine64, whose
#     launcher is /usr/lib/wine/wine64, off PATH);
#   - zlib built for mingw-w64 (libz-mingw-w64-dev), which weft_http and
#     web_framework link;
#   - a deb-src line for the system's own suites, so that
#     scripts/build-mingw-deps.sh can take libuv and cJSON from Debian's
#     source packages (dpkg-dev for apt-get source).
#
#   scripts/setup-windows.sh [--check]
set -euo pipefail

packages=(gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 wine64 dpkg-dev libz-mingw-w64-dev)
check_only=0
[ "${1:-}" = --check ] && check_only=1

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-windows.sh: not a Debian or Ubuntu system; install mingw-w64 (C and C++),"
  echo "Wine, and build libuv and cJSON for mingw-w64 into build-windows/deps."
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
# Source packages: is there a deb-src entry (one-line or deb822 format)?
have_src=0
if grep -rqsE '^(deb-src |Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  have_src=1
fi

if [ ${#missing[@]} -eq 0 ] && [ "$have_src" = 1 ]; then
  exit 0
fi
if [ "$check_only" = 1 ]; then
  [ ${#missing[@]} -gt 0 ] && echo "setup-windows.sh: missing packages: ${missing[*]}"
  [ "$have_src" = 0 ] && echo "setup-windows.sh: no deb-src line in /etc/apt/sources.list*"
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 ||
    { echo "setup-windows.sh: run as root, or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi

if [ "$have_src" = 0 ]; then
  # The same URIs, suites and components as the binary entries, as deb-src.
  # shellcheck source=/dev/null
  . /etc/os-release
  src=/etc/apt/sources.list.d/weft-deb-src.sources
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -n '/^Types: deb$/,/^$/p' /etc/apt/sources.list.d/debian.sources |
      sed 's/^Types: deb$/Types: deb-src/' | "${sudo[@]}" tee "$src" >/dev/null
  else
    grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | sed 's/^deb /deb-src /' |
      "${sudo[@]}" tee /etc/apt/sources.list.d/weft-deb-src.list >/dev/null
  fi
  echo "setup-windows.sh: added deb-src entries for ${VERSION_CODENAME:-this system}"
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
     -o DPkg::Lock::Timeout=300)
"${apt[@]}" update </dev/null >/dev/null
if [ ${#missing[@]} -gt 0 ]; then
  "${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null
  echo "setup-windows.sh: installed ${missing[*]}"
fi
