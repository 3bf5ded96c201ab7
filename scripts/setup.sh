#!/usr/bin/env bash
# setup.sh: installs what building and testing weft needs, if it is missing.
#
#   scripts/setup.sh           the build and test dependencies
#   scripts/setup.sh --bench   also the peers the benchmarks compare against
#   scripts/setup.sh --soak    also wrk and gnuplot (make soak)
#   scripts/setup.sh --lint    also clang-tidy, cppcheck and clang-format (make lint,
#                              make format-check)
#   scripts/setup.sh --check   only report what is missing (exit 1 if any)
#
# On Debian and Ubuntu it installs the missing packages with apt-get, without
# questions (and with sudo when not run as root). On macOS it prints the
# Homebrew packages to install. Elsewhere it says what weft needs.
set -euo pipefail

# python3 runs the applications' integration tests and the benchmark reports.
# curl is the client of the HTTP servers' integration tests; nginx (with a
# certificate made by openssl) is the HTTP/2 server of http_client's tests.
packages=(build-essential cmake pkg-config libuv1-dev catch2 libcjson-dev valgrind
          python3 node-llhttp libcurl4-openssl-dev zlib1g-dev curl nginx-light openssl)
# State and clusters: SQLite (durable history, crawl frontier) and Redis
# (hiredis on the loop; redis-server is started by the tests). OpenSSL signs
# chat tokens and hashes files.
packages+=(libsqlite3-dev sqlite3 libhiredis-dev redis-server libssl-dev)
# file_processor: xxHash, BLAKE3's C sources, libdeflate and zstd (ISA-L,
# optional, inflates its own .gz faster); the integration tests check its
# output with b3sum, gzip and zstd.
packages+=(libxxhash-dev librust-blake3-dev libdeflate-dev libzstd-dev libisal-dev b3sum zstd gzip)
# web_scraper: libxml2 parses HTML and evaluates XPath.
packages+=(libxml2-dev)
# make docs: the API reference from the public headers.
packages+=(doxygen)
# make coverage: gcovr reads the gcov counters of the test run.
packages+=(gcovr)
# Tests that talk to Redis or WebSocket servers from Python, and the chat web
# client's browser test in headless Chromium.
packages+=(python3-redis python3-websockets chromium)
# The peers: Go, Boost.Context and Concurrency Kit for the runtime; nginx,
# h2o, wrk, hey and ab for the HTTP server and client; the hashers and
# compressors file_processor is measured against; wget2 and Scrapy for the
# crawler; Node's ws and gorilla/websocket for the chat server.
bench_packages=(golang-go libboost-context-dev libck-dev nginx-light h2o wrk hey
                apache2-utils hyperfine time
                pigz hashdeep rhash xxhash libdeflate-tools isal
                wget2 python3-scrapy
                nodejs node-ws golang-github-gorilla-websocket-dev)
# make soak: wrk loads web_framework, gnuplot draws the plot.
soak_packages=(wrk gnuplot-nox)
brew_packages=(libuv cmake pkg-config catch2 cjson)

bench=0
check_only=0
for arg in "$@"; do
  case $arg in
    --bench) bench=1 ;;
    --soak) packages+=("${soak_packages[@]}") ;;
    --lint) packages+=(clang-tidy cppcheck clang-format) ;;
    --check) check_only=1 ;;
    -h | --help)
      sed -n '2,12s/^# \{0,1\}//p' "$0"
      exit 0
      ;;
    *)
      echo "setup.sh: unknown option $arg (try --help)" >&2
      exit 2
      ;;
  esac
done
if [ "$bench" = 1 ]; then
  packages+=("${bench_packages[@]}")
fi

if [ "$(uname -s)" = Darwin ]; then
  echo "On macOS, install the dependencies with Homebrew:"
  echo "  brew install ${brew_packages[*]}"
  [ "$bench" = 1 ] && echo "  brew install go boost concurrencykit   # for make bench"
  exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup.sh: not a Debian or Ubuntu system; make sure these (or your"
  echo "system's equivalents) are installed: a C/C++ toolchain, cmake,"
  echo "pkg-config, libuv, Catch2, cJSON, valgrind, python3."
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup.sh: missing packages: ${missing[*]}"
if [ "$check_only" = 1 ]; then
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup.sh: run as root, or install sudo, to install: ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
     -o DPkg::Lock::Timeout=300)
"${apt[@]}" update </dev/null
"${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null
echo "setup.sh: installed ${missing[*]}"
