#!/usr/bin/env bash
# setup-aarch64.sh: installs what the AArch64 cross build and its tests under
# qemu need, if it is missing (make test-aarch64 and make test-aarch64-core
# call it; it returns at once when everything is there).
#
#   scripts/setup-aarch64.sh          the core: cross compilers, qemu-user,
#                                     libuv for arm64
#   scripts/setup-aarch64.sh --all    also the arm64 libraries of the
#                                     runtime's modules and the applications
#
# Debian multiarch: the arm64 architecture is added to dpkg, and the arm64
# packages of the libraries install beside the machine's own, in
# /usr/lib/aarch64-linux-gnu (cmake/aarch64-linux-gnu.cmake finds them
# there). Catch2 and the sources weft compiles from where Debian puts them
# (llhttp, BLAKE3) are the same for every architecture and come from
# scripts/setup.sh, as do the tools the tests drive the programs with.
set -euo pipefail

all=0
for arg in "$@"; do
  case $arg in
    --all) all=1 ;;
    -h | --help)
      sed -n '2,10s/^# \{0,1\}//p' "$0"
      exit 0
      ;;
    *)
      echo "setup-aarch64.sh: unknown option $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

# libstdc++6:arm64: the Catch2 tests are C++, and qemu loads their
# libstdc++ from the machine's root (-L /), not from the cross
# toolchain's /usr/aarch64-linux-gnu.
packages=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user binutils
          libc6:arm64 libstdc++6:arm64 libuv1-dev:arm64)
if [ "$all" = 1 ]; then
  packages+=(libcjson-dev:arm64 libcurl4-openssl-dev:arm64 zlib1g-dev:arm64
             libsqlite3-dev:arm64 libhiredis-dev:arm64 libssl-dev:arm64
             libxxhash-dev:arm64 libdeflate-dev:arm64 libzstd-dev:arm64
             libxml2-dev:arm64)
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-aarch64.sh: needs Debian or Ubuntu (dpkg multiarch and apt-get)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup-aarch64.sh: missing packages: ${missing[*]}"

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup-aarch64.sh: run as root, or install sudo, to install: ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  "${sudo[@]}" dpkg --add-architecture arm64
fi
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
     -o DPkg::Lock::Timeout=600)
"${apt[@]}" update </dev/null
"${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null
echo "setup-aarch64.sh: installed ${missing[*]}"
