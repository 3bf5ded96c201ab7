"""--sitemap with gzip-compressed sitemaps: robots.txt names a
sitemap.xml.gz and a sitemap index that is itself gzip-compressed and lists
a gzip sitemap (two gzip members back to back), a plain one and a corrupt
.gz. The .gz files are served as files (application/gzip, no
Content-Encoding), so libcurl leaves them compressed and the crawler
inflates them. Every URL they list is fetched once; the corrupt one gets a
record with an error and the crawl goes on."""

import gzip

from scraper_harness import Site, check, crawl, html, run


def urlset(port, paths):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/'
            'schemas/sitemap/0.9">' +
            "".join("<url><loc>http://127.0.0.1:%d%s</loc></url>" % (port, p) for p in paths) +
            "</urlset>\n")


def test(binary):
    pages = {
        "/robots.txt": {"ctype": "text/plain",
                        "body": "User-agent: *\nDisallow: /g5\n"
                                "Sitemap: http://127.0.0.1:{port}/sitemap.xml.gz\n"
                                "Sitemap: http://127.0.0.1:{port}/index.xml.gz\n"},
        "/": {"body": html("root", ["/a"])},
        "/a": {"body": html("a")},
        "/plain.xml": {"ctype": "application/xml", "body": urlset(0, [])},  # set below
        "/bad.xml.gz": {"ctype": "application/gzip", "body": b"\x1f\x8b\x08\x00garbage"},
    }
    for i in range(1, 7):
        pages["/g%d" % i] = {"body": html("g%d" % i)}
    with Site([pages]) as site:
        port = site.ports[0]
        pages["/sitemap.xml.gz"] = {"ctype": "application/gzip",
                                    "body": gzip.compress(urlset(port, ["/g1", "/g2", "/a"])
                                                          .encode())}
        index = ('<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
                 'sitemap/0.9">' +
                 "".join("<sitemap><loc>http://127.0.0.1:%d%s</loc></sitemap>" % (port, p)
                         for p in ("/sub.xml.gz", "/plain.xml", "/bad.xml.gz")) +
                 "</sitemapindex>")
        pages["/index.xml.gz"] = {"ctype": "application/x-gzip",
                                  "body": gzip.compress(index.encode())}
        sub = urlset(port, ["/g3", "/g5", "/g6"]).encode()
        half = len(sub) // 2
        pages["/sub.xml.gz"] = {"ctype": "application/gzip",
                                "body": gzip.compress(sub[:half]) + gzip.compress(sub[half:])}
        pages["/plain.xml"]["body"] = urlset(port, ["/g4"])

        c = crawl(binary, site.url("/"), "--sitemap")
        check(c.code == 0, "exit: %r" % c)
        for i in (1, 2, 3, 4, 6):
            check(site.hit_count("/g%d" % i) == 1, "/g%d not fetched once: %r" % (i, site.hits))
        check(site.hit_count("/g5") == 0, "robots.txt: %r" % site.hits)
        check(site.hit_count("/a") == 1, "/a: %r" % site.hits)
        u = site.url
        check(c.by_url[u("/sitemap.xml.gz")]["links"] == 3 and
              c.by_url[u("/sitemap.xml.gz")]["error"] is None,
              "gzip sitemap record: %r" % c.by_url.get(u("/sitemap.xml.gz")))
        check(c.by_url[u("/index.xml.gz")]["links"] == 3, "gzip index: %r" % c.records)
        check(c.by_url[u("/sub.xml.gz")]["links"] == 3, "two-member gzip: %r" % c.records)
        check(c.by_url[u("/g3")]["referrer"] == u("/sub.xml.gz"), "referrer of /g3")
        check(c.by_url[u("/g1")]["referrer"] == u("/sitemap.xml.gz"), "referrer of /g1")
        bad = c.by_url[u("/bad.xml.gz")]
        check(bad["error"] is not None and "sitemap" in bad["error"], "corrupt .gz: %r" % bad)


if __name__ == "__main__":
    run(test)
