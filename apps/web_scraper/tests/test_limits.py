"""Scope and limits: --max-depth on a deep chain (breadth first, so every
page's depth is its shortest distance from the seed), --max-pages,
--allow/--deny patterns, --allow-domain for a second host, --rules with
per-pattern fields and follow, seeds from --input and standard input,
--sitemap reading the sitemaps (and sitemap indexes) robots.txt names, and
the progress line drawn when standard error is a terminal."""

import os
import pty
import subprocess
import tempfile

from scraper_harness import Site, app_env, check, crawl, html, run, seconds


def chain_site():
    pages = {"/robots.txt": {"ctype": "text/plain", "body": "User-agent: *\nAllow: /\n"}}
    # / links to /d1 (a chain /d1 -> /d2 -> ... -> /d9) and to /d3 directly,
    # so /d3 is at depth 1 though the chain reaches it at depth 3.
    pages["/"] = {"body": html("root", ["/d1", "/d3", "/skip/x", "/keep/y",
                                        "http://127.0.0.2:{port:1}/other"])}
    for i in range(1, 10):
        pages["/d%d" % i] = {"body": html("d%d" % i, ["/d%d" % (i + 1)]), "delay": 0.01 * (i == 1)}
    pages["/skip/x"] = {"body": html("skip")}
    pages["/keep/y"] = {"body": html("keep", ["/keep/z"],
                                     '<b class="sku">K-1</b><b class="sku">K-2</b>')}
    pages["/keep/z"] = {"body": html("never followed")}
    other = {"/robots.txt": {"ctype": "text/plain", "body": ""},
             "/other": {"body": html("other host")}}
    return [pages, other]


def test(binary):
    with Site(chain_site()) as site:
        u = site.url
        c = crawl(binary, u("/"), "--max-depth", "2")
        check(c.code == 0, "exit: %r" % c)
        depths = {r["url"]: r["depth"] for r in c.records}
        check(depths.get(u("/d3")) == 1, "depth of /d3: %r" % depths)
        check(depths.get(u("/d4")) == 2 and u("/d5") not in depths and
              site.hit_count("/d5") == 0, "--max-depth 2: %r" % depths)
        check(max(depths.values()) == 2, "deeper than 2: %r" % depths)
        check(site.hit_count("/other", 1) == 0, "another host crawled without --allow-domain")

    with Site(chain_site()) as site:
        u = site.url
        c = crawl(binary, u("/"), "--max-pages", "4")
        check(c.code == 0 and len(c.records) == 4, "--max-pages 4: %r" % c)
        with site.lock:
            pages = sum(v for (h, p), v in site.hits.items() if p != "/robots.txt")
        check(pages == 4, "--max-pages 4 fetched %d" % pages)

    with Site(chain_site()) as site, tempfile.TemporaryDirectory() as tmp:
        u = site.url
        rules = os.path.join(tmp, "rules.json")
        with open(rules, "w") as f:
            f.write('{"rules": [{"pattern": "/keep/", "fields": {"sku[]": "//b[@class=\'sku\']"},'
                    ' "follow": false}]}')
        seeds = os.path.join(tmp, "seeds.txt")
        with open(seeds, "w") as f:
            f.write("# seeds\n\n%s\n" % u("/"))
        c = crawl(binary, "--input", seeds, "--deny", "/skip/", "--deny", "/d[2-9]$",
                  "--allow-domain", "127.0.0.1", "--allow-domain", "127.0.0.2",
                  "--rules", rules, "--max-depth", "1")
        check(c.code == 0, "exit: %r" % c)
        check(site.hit_count("/skip/x") == 0 and site.hit_count("/d3") == 0, "--deny ignored")
        check(site.hit_count("/other", 1) == 1, "--allow-domain 127.0.0.2 not crawled")
        keep = c.by_url[u("/keep/y")]
        check(keep["fields"] == {"sku": ["K-1", "K-2"]}, "rules fields: %r" % keep)
        check(keep["links"] == 0 and site.hit_count("/keep/z") == 0, "follow false: %r" % keep)
        check(c.by_url[u("/")]["fields"] == {}, "a rule applied where it does not match")

        # Seeds on standard input; a seed out of scope gets a record saying so.
        c = crawl(binary, "-", "--deny", "/d1$", "--max-depth", "0",
                  input=("%s\n%s\n" % (u("/"), u("/d1"))).encode())
        check(c.code == 0 and len(c.records) == 2, "stdin seeds: %r" % c)
        check("out of scope" in (c.by_url[u("/d1")]["error"] or ""),
              "out-of-scope seed: %r" % c.by_url[u("/d1")])

    sm = {
        "/robots.txt": {"ctype": "text/plain",
                        "body": "User-agent: *\nDisallow: /s2\n"
                                "Sitemap: http://127.0.0.1:{port}/index.xml\n"},
        "/": {"body": html("root", ["/a"])},
        "/a": {"body": html("a")},
        "/index.xml": {"ctype": "application/xml", "body":
                       '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/'
                       'schemas/sitemap/0.9"><sitemap><loc>http://127.0.0.1:{port}/sm.xml</loc>'
                       '</sitemap></sitemapindex>'},
        "/sm.xml": {"ctype": "application/xml", "body":
                    '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                    'sitemap/0.9"><url><loc>http://127.0.0.1:{port}/s1</loc></url>'
                    '<url><loc>http://127.0.0.1:{port}/s2</loc></url>'
                    '<url><loc>http://127.0.0.1:{port}/a</loc></url></urlset>'},
        "/s1": {"body": html("only in the sitemap")},
        "/s2": {"body": html("disallowed")},
    }
    with Site([sm]) as site:
        c = crawl(binary, site.url("/"))
        check(site.hit_count("/index.xml") == 0 and site.hit_count("/s1") == 0,
              "sitemaps read without --sitemap")
        c = crawl(binary, site.url("/"), "--sitemap")
        check(c.code == 0, "exit: %r" % c)
        check(site.hit_count("/s1") == 1 and site.hit_count("/s2") == 0
              and site.hit_count("/a") == 2, "--sitemap: %r" % site.hits)
        check(c.by_url[site.url("/sm.xml")]["links"] == 3, "sitemap record: %r" % c.records)
        check(c.by_url[site.url("/s1")]["referrer"] == site.url("/sm.xml"), "referrer")


    # The progress line on a terminal (a pseudo-terminal here).
    slow = {"/robots.txt": {"ctype": "text/plain", "body": ""},
            "/": {"body": html("root", ["/s%d" % i for i in range(6)])}}
    for i in range(6):
        slow["/s%d" % i] = {"body": html("s"), "delay": 0.2}
    with Site([slow]) as site:
        master, slave = pty.openpty()
        p = subprocess.Popen([binary, site.url("/"), "--per-host", "1"],
                             stdout=subprocess.DEVNULL, stderr=slave, env=app_env("warn"))
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        p.wait(seconds(20))
        os.close(master)
        check(b"\rpages " in seen.replace(b"\r\x1b[K", b"\r") and b"in flight" in seen,
              "no progress line: %r" % seen)
        check(b"summary pages=7" in seen, "no summary: %r" % seen)


if __name__ == "__main__":
    run(test)
