#!/usr/bin/env bash
# run.sh: the crawler benchmark. apps/web_scraper against GNU wget2, Scrapy
# and the ceiling of curl --parallel, in the same run, crawling a generated
# site of 10,000 pages (7-10 KB, 20 links, a title and two fields each)
# that one nginx worker serves on 16 loopback addresses (16 hosts), nginx
# pinned to core 0 and the crawler to core 1; every crawler with 16
# requests in flight and robots.txt obeyed; rounds rotate the order of the
# tools and the medians are reported (see measure.py for what is counted).
# Then the politeness run and the frontier run (about 2,000,000 URLs seen).
#
# Usage: bench/scraper/run.sh [--quick]
#   --quick   1,000 pages, one round, Scrapy limited to 300 pages, smaller
#             extra runs: a smoke test, not a measurement
# Environment:
#   WEFT_BENCH_BUILD=DIR     build directory (default: build-bench)
#   WEFT_BENCH_ROUNDS=N      rounds (default: 3)
#   WEFT_BENCH_PAGES=N       pages of the site (default: 10000)
#   WEFT_BENCH_TOOLS=LIST    default: web_scraper,wget2,curl,scrapy
#   WEFT_BENCH_SCRAPER=PATH  a web_scraper binary to measure instead of
#                            building one
#
# Needs: cmake, a C compiler, the libraries of scripts/setup.sh, nginx,
# wget2, curl, python3-scrapy (Debian's /usr/bin/scrapy), taskset and
# /usr/bin/time. Everything runs on loopback; the site and the crawl
# outputs live in a temporary directory removed at exit. The figures go to
# stdout and to BUILD/results/scraper.json.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${WEFT_BENCH_BUILD:-$root/build-bench}
rounds=${WEFT_BENCH_ROUNDS:-3}
pages=${WEFT_BENCH_PAGES:-10000}
tools=${WEFT_BENCH_TOOLS:-web_scraper,wget2,curl,scrapy}
extra=()
if [[ ${1:-} == --quick ]]; then
  rounds=1
  pages=1000
  extra=(--scrapy-pages 300 --polite-pages 64 --frontier-pages 2000)
elif [[ $# -gt 0 ]]; then
  echo "usage: bench/scraper/run.sh [--quick]" >&2
  exit 2
fi
for tool in python3 nginx wget2 curl taskset /usr/bin/time; do
  command -v $tool >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done
if [[ $tools == *scrapy* ]] && ! [[ -x /usr/bin/scrapy ]]; then
  echo "run.sh: Scrapy is left out: /usr/bin/scrapy (python3-scrapy) is missing" >&2
  tools=${tools//,scrapy/}
fi

scraper=${WEFT_BENCH_SCRAPER:-}
if [[ -z $scraper ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target web_scraper >/dev/null
  scraper=$build/apps/web_scraper/web_scraper
fi
mkdir -p "$build/results"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$root/bench/scraper/measure.py" --scraper "$scraper" --pages "$pages" \
  --rounds "$rounds" --tools "$tools" --json "$build/results/scraper.json" "${extra[@]}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
