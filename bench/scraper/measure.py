"""measure.py: the crawler benchmark, every tool in the same run.

Serves the generated site (gen_site.py) with one nginx worker listening on
127.0.0.1..127.0.0.N (N hosts to the crawlers), pinned to one core, and
crawls all of it with each tool pinned to the other core, with the same
concurrency (16), robots.txt on and, for the crawlers that extract, the
title and the same two fields:

  web_scraper  --concurrency 16 --per-host 16, two --extract, JSON lines
  wget2        -r -l inf --max-threads=16 -H --domains=<the hosts>
  scrapy       a spider (scrapy_spider.py) writing JSON lines, AutoThrottle
               off, CONCURRENT_REQUESTS and _PER_DOMAIN 16
  curl         the ceiling: the URL list fetched with --parallel
               --parallel-max 16, no parsing, no robots.txt

Each tool runs ROUNDS times from a cold start (a fresh process, the
previous run's files removed), taking turns; the median is reported. Per
run: wall seconds, pages per second (page requests with 200 in nginx's log
over the wall time), CPU seconds (user + system, from wait4), peak resident
memory, and from nginx's access log: unique 200s, duplicate requests, and
requests for disallowed URLs (/private/).

Then, unless --no-extra: the politeness run (web_scraper --per-host 1
--delay 100ms over PAGES_POLITE pages; the wall time must be at least
pages x delay / hosts) and the frontier run (each page links to 100 new
URLs; web_scraper crawls 20,000 pages, so about 2,000,000 URLs are seen;
its peak resident memory over the URLs seen and queued).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Nginx:
    def __init__(self, root, port, hosts, core, tmp, conf_extra=""):
        self.tmp = tmp
        self.log = os.path.join(tmp, "access.log")
        listens = "".join("    listen 127.0.0.%d:%d;\n" % (h, port) for h in range(1, hosts + 1))
        conf = """
worker_processes 1;
daemon off;
master_process off;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/error.log warn;
events { worker_connections 4096; }
http {
  log_format bench '$host:$server_port $request_uri $status';
  access_log %(log)s bench buffer=256k flush=1s;
  types { text/html html; text/plain txt; }
  default_type text/html;
  keepalive_requests 100000;
  server {
%(listens)s
    root %(root)s;
    %(extra)s
  }
}
""" % {"tmp": tmp, "log": self.log, "listens": listens, "root": root, "extra": conf_extra}
        path = os.path.join(tmp, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["taskset", "-c", str(core), "nginx", "-c", path,
                                      "-p", tmp], stderr=subprocess.PIPE)
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise SystemExit("nginx did not start: %s" % self.proc.stderr.read().decode())

    def rotate(self):
        """Starts a fresh access log (reopened with SIGUSR1)."""
        if os.path.exists(self.log):
            os.remove(self.log)
        os.kill(self.proc.pid, 10)
        time.sleep(0.2)

    def counts(self):
        """(unique 200s of pages, duplicate requests, disallowed requests)."""
        os.kill(self.proc.pid, 10)  # flush the buffer by reopening
        time.sleep(1.2)
        seen, dups, private, ok = set(), 0, 0, 0
        with open(self.log) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 3:
                    continue
                hostport, uri, status = parts
                key = (hostport, uri)
                if key in seen and uri != "/robots.txt":
                    dups += 1
                seen.add(key)
                if uri.startswith("/private/"):
                    private += 1
                if status == "200" and uri.startswith("/p"):
                    ok += 1
        return ok, dups, private

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def run_tool(cmd, core, cwd=None, env=None, timeout=3600):
    """Runs cmd pinned to core under /usr/bin/time (a small parent, so the
    peak resident memory is the tool's own, not inherited from a fork of
    this Python process); returns (wall s, cpu s, peak RSS KiB, stderr)."""
    fd, tfile = tempfile.mkstemp(prefix="ws-time-")
    os.close(fd)
    start = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tfile, "taskset", "-c",
                        str(core)] + cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout)
    wall = time.monotonic() - start
    err = p.stderr.decode(errors="replace")
    with open(tfile) as f:
        last = f.read().strip().splitlines()[-1].split()
    os.remove(tfile)
    if p.returncode not in (0, 8):  # wget2 exits 8 for the 404s of /private/ and such
        log("  %s exited %d: %s" % (cmd[0], p.returncode, err[-800:]))
    return wall, float(last[0]) + float(last[1]), int(last[2]), err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scraper", required=True)
    ap.add_argument("--pages", type=int, default=10000)
    ap.add_argument("--hosts", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tools", default="web_scraper,wget2,curl,scrapy")
    ap.add_argument("--scrapy-pages", type=int, default=0,
                    help="crawl this many pages with Scrapy (0: all; it is slow)")
    ap.add_argument("--no-extra", action="store_true")
    ap.add_argument("--polite-pages", type=int, default=320)
    ap.add_argument("--frontier-pages", type=int, default=20000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    args.scraper = os.path.abspath(args.scraper)
    port = 18000 + os.getpid() % 1000
    tmp = tempfile.mkdtemp(prefix="ws-bench-")
    site = os.path.join(tmp, "site")
    subprocess.check_call([sys.executable, os.path.join(os.path.dirname(__file__), "gen_site.py"),
                           site, str(port), str(args.pages), str(args.hosts)])
    seed = "http://127.0.0.1:%d/p/0.html" % port
    hosts = ",".join("127.0.0.%d" % h for h in range(1, args.hosts + 1))
    work = os.path.join(tmp, "work")
    ng = Nginx(site, port, args.hosts, 0, tmp)
    results = {t: [] for t in args.tools.split(",")}
    curl_cfg = os.path.join(tmp, "curl.cfg")
    with open(os.path.join(site, "urls.txt")) as f, open(curl_cfg, "w") as c:
        for u in f:
            c.write('url = "%s"\noutput = "/dev/null"\n' % u.strip())
    try:
        for rnd in range(args.rounds):
            tools = list(results)
            tools = tools[rnd % len(tools):] + tools[:rnd % len(tools)]
            for tool in tools:
                shutil.rmtree(work, ignore_errors=True)
                os.makedirs(work)
                env = dict(os.environ)
                if tool == "web_scraper":
                    cmd = [args.scraper, seed, "--concurrency", "16", "--per-host", "16",
                           "--extract", "price=//*[@id='price']",
                           "--extract", "sku=//span[@class='sku']",
                           "--allow-domain", "127.0.0.1"] + \
                        sum([["--allow-domain", "127.0.0.%d" % h]
                             for h in range(2, args.hosts + 1)], []) + \
                        ["--output", os.path.join(work, "out.jsonl"), "--log-level", "warn",
                         "--no-progress"]
                elif tool == "wget2":
                    cmd = ["wget2", "-r", "-l", "inf", "--max-threads=16", "-H",
                           "--domains=" + hosts, "-P", work, "-q", "--no-verbose", seed]
                elif tool == "curl":
                    cmd = ["curl", "-s", "--parallel", "--parallel-max", "16", "-K", curl_cfg]
                elif tool == "scrapy":
                    env["SEED"] = seed
                    cmd = ["/usr/bin/python3", "/usr/bin/scrapy", "runspider",
                           os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "scrapy_spider.py"),
                           "-o", os.path.join(work, "out.jsonl"), "-s", "LOG_LEVEL=WARNING",
                           "-s", "CONCURRENT_REQUESTS=16", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=16",
                           "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "ROBOTSTXT_OBEY=True",
                           "-s", "DOWNLOAD_DELAY=0", "-s", "TELNETCONSOLE_ENABLED=False"]
                    if args.scrapy_pages:
                        cmd += ["-s", "CLOSESPIDER_PAGECOUNT=%d" % args.scrapy_pages]
                else:
                    raise SystemExit("unknown tool " + tool)
                ng.rotate()
                wall, cpu, rss, err = run_tool(cmd, 1, cwd=work, env=env)
                ok, dups, private = ng.counts()
                r = {"wall_s": round(wall, 3), "pages": ok, "pages_per_s": round(ok / wall, 1),
                     "cpu_s": round(cpu, 3), "rss_mib": round(rss / 1024, 1),
                     "duplicates": dups, "disallowed_fetched": private}
                results[tool].append(r)
                log("round %d %-12s %s" % (rnd + 1, tool, json.dumps(r)))
        summary = {}
        for tool, runs in results.items():
            if not runs:
                continue
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            summary[tool] = med
        base = summary.get("web_scraper", {}).get("pages_per_s")
        print("\n%-12s %10s %8s %9s %9s %8s %6s %10s %8s" % (
            "tool", "pages/s", "pages", "wall s", "CPU s", "RSS MiB", "dups",
            "disallowed", "ratio"))
        for tool, m in summary.items():
            ratio = base / m["pages_per_s"] if base and m["pages_per_s"] else 0
            print("%-12s %10.1f %8d %9.2f %9.2f %8.1f %6d %10d %8s" % (
                tool, m["pages_per_s"], m["pages"], m["wall_s"], m["cpu_s"], m["rss_mib"],
                m["duplicates"], m["disallowed_fetched"],
                "-" if tool == "web_scraper" else "%.2fx" % ratio))
        extra = {}
        if not args.no_extra:
            extra = extras(args, tmp, ng, port, site)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"runs": results, "median": summary, "extra": extra}, f, indent=1)
    finally:
        ng.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def extras(args, tmp, ng, port, site):
    out = {}
    work = os.path.join(tmp, "work")
    # Politeness: one request per host at a time, 100 ms between requests.
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    seed = "http://127.0.0.1:%d/p/0.html" % port
    ng.rotate()
    cmd = [args.scraper, seed, "--per-host", "1", "--delay", "100ms", "--max-pages",
           str(args.polite_pages), "--output", os.path.join(work, "polite.jsonl"),
           "--log-level", "warn", "--no-progress"] + \
        sum([["--allow-domain", "127.0.0.%d" % h] for h in range(1, args.hosts + 1)], [])
    wall, cpu, rss, _ = run_tool(cmd, 1)
    ok, dups, private = ng.counts()
    floor = ok * 0.1 / args.hosts
    out["politeness"] = {"pages": ok, "wall_s": round(wall, 2), "floor_s": round(floor, 2),
                         "kept": wall >= floor}
    log("politeness: %s" % out["politeness"])
    print("\npoliteness: %d pages, --per-host 1 --delay 100ms over %d hosts: %.2f s "
          "(at least %.2f s: %s)" % (ok, args.hosts, wall, floor, "kept" if wall >= floor else
                                      "NOT KEPT"))
    # The frontier: every page links to 100 new URLs.
    fr = os.path.join(tmp, "frontier")
    os.makedirs(fr)
    with open(os.path.join(fr, "t.html"), "w") as f:
        f.write("<html><head><title>t</title></head><body>%s</body></html>" %
                "".join('<a href="%d/">%d</a>\n' % (k, k) for k in range(100)))
    ng.stop()
    ng2 = Nginx(fr, port, 1, 0, tmp, "location / { try_files /t.html =404; }")
    try:
        ng2.rotate()
        cmd = [args.scraper, "http://127.0.0.1:%d/f/" % port, "--ignore-robots",
               "--max-pages", str(args.frontier_pages), "--concurrency", "16",
               "--per-host", "16", "--output", "/dev/null", "--log-level", "warn",
               "--no-progress"]
        wall, cpu, rss, err = run_tool(cmd, 1)
        seen = args.frontier_pages * 100
        out["frontier"] = {"pages": args.frontier_pages, "urls_seen": seen,
                           "wall_s": round(wall, 2), "rss_mib": round(rss / 1024, 1),
                           "bytes_per_url": round(rss * 1024 / seen, 1)}
        print("frontier: %d pages, about %d URLs seen (nearly all queued): peak %.1f MiB, "
              "%.0f bytes per URL seen and queued, %.2f s"
              % (args.frontier_pages, seen, rss / 1024, rss * 1024 / seen, wall))
    finally:
        ng2.stop()
    ng.proc = subprocess.Popen(["true"])  # already stopped
    return out


if __name__ == "__main__":
    main()
