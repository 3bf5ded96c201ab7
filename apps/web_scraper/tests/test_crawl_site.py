"""A crawl of a small site: robots.txt obeyed, no URL requested twice
(fragments, duplicates, redirects), off-site and non-HTTP links ignored,
XPath fields extracted, a Latin-1 page declared only in <meta> read as
UTF-8, malformed HTML parsed, a gzip-compressed page decoded, a binary file
recorded but not parsed, and
every record a valid UTF-8 JSON line with every field."""

from scraper_harness import Site, check, crawl, html, run

LATIN1 = ('<html><head><meta charset="iso-8859-1"><title>Caf\xe9 cr\xe8me</title>'
          '</head><body><p class="price">12,50 \xa4</p></body></html>').encode("latin-1")

PAGES = {
    "/robots.txt": {"ctype": "text/plain",
                    "body": "User-agent: *\nDisallow: /private\nAllow: /private/open\n"
                            "\nUser-agent: otherbot\nDisallow: /\n"},
    "/": {"body": html("Home", [
        "/a", "/a#top", "a", "/b?x=1", "/b?x=1#frag", "./c", "/private/secret",
        "/private/open", "/moved", "/file.bin", "/latin1", "/broken",
        "mailto:someone@example.com", "javascript:void(0)",
        "http://off-site.invalid/", "http://127.0.0.1:{port}/a",
        "HTTP://127.0.0.1:{port}/%7Ea/../b?x=1", "/gz",
    ], '<span id="price">9.99</span><ul><li class="t">one</li><li class="t">two</li></ul>')},
    "/a": {"body": html("Page A", ["/", "/b?x=1", "/c"], '<span id="price">1.50</span>')},
    "/b?x=1": {"body": html("Page B", ["/a"])},
    "/c": {"body": html("Page C", ["/d"])},
    "/d": {"body": html("Page D", [])},
    "/private/secret": {"body": html("Secret")},
    "/private/open": {"body": html("Open")},
    "/moved": {"status": 301, "headers": [("Location", "/target")], "body": ""},
    "/target": {"body": html("Target", ["/a"])},
    "/file.bin": {"ctype": "application/octet-stream", "body": bytes(range(256)) * 40},
    "/latin1": {"ctype": "text/html", "body": LATIN1},
    "/gz": {"body": html("Compressed " + "x" * 5000), "gzip": True},
    "/broken": {"body": "<html><head><title>Broken</title><body><div><p>unclosed"
                        "<a href='/d'>d<table><tr><td>cell</div></b></i>"
                        "<span id=price>7</span>\xff"},
}


def test(binary):
    with Site([PAGES]) as site:
        c = crawl(binary, site.url("/"), "--extract", "price=//*[@id='price']",
                  "--extract", "items[]=//li[@class='t']",
                  "--extract", "latin=//p[@class='price']")
        check(c.code == 0, "exit code: %r" % c)
        # Never twice, never disallowed, never off-site.
        with site.lock:
            twice = {k: v for k, v in site.hits.items() if v > 1}
        check(not twice, "requested more than once: %r" % twice)
        check(site.hit_count("/private/secret") == 0, "robots.txt not obeyed")
        check(site.hit_count("/private/open") == 1, "Allow: /private/open not fetched")
        check(site.requested()[0] == "/robots.txt", "robots.txt is not the first request")
        u = site.url
        expected = {u("/"), u("/a"), u("/b?x=1"), u("/c"), u("/d"), u("/private/open"),
                    u("/moved"), u("/file.bin"), u("/latin1"), u("/broken"), u("/gz")}
        check(set(c.by_url) == expected, "records: %r" % sorted(c.by_url))
        home = c.by_url[u("/")]
        check(home["status"] == 200 and home["depth"] == 0 and home["referrer"] is None,
              "home: %r" % home)
        check(home["title"] == "Home", "title: %r" % home)
        check(home["fields"] == {"price": "9.99", "items": ["one", "two"], "latin": None},
              "fields: %r" % home["fields"])
        gz = c.by_url[u("/gz")]
        check(gz["title"].startswith("Compressed xxx") and gz["bytes"] > 5000,
              "gzip page: %r" % gz)
        check(site.gzipped == ["/gz"], "not sent compressed: %r" % site.gzipped)
        check(home["links"] == 11, "links found on /: %r" % home["links"])
        check(home["content_type"].startswith("text/html"), "content type: %r" % home)
        check(home["error"] is None and home["bytes"] > 0, "home: %r" % home)
        a = c.by_url[u("/a")]
        check(a["depth"] == 1 and a["referrer"] == u("/"), "depth/referrer: %r" % a)
        check(a["fields"]["price"] == "1.50", "field of /a: %r" % a)
        check(c.by_url[u("/d")]["depth"] == 2, "depth of /d: %r" % c.by_url[u("/d")])
        moved = c.by_url[u("/moved")]
        check(moved["final_url"] == u("/target") and moved["status"] == 200
              and moved["title"] == "Target", "redirect: %r" % moved)
        binary_rec = c.by_url[u("/file.bin")]
        check(binary_rec["content_type"] == "application/octet-stream"
              and binary_rec["bytes"] == 10240 and binary_rec["title"] is None
              and binary_rec["links"] == 0 and binary_rec["fields"] == {},
              "binary: %r" % binary_rec)
        latin = c.by_url[u("/latin1")]
        check(latin["title"] == "Caf\u00e9 cr\u00e8me", "Latin-1 title: %r" % latin["title"])
        # 0xA4 is the currency sign in Latin-1 and windows-1252.
        check(latin["fields"]["latin"] == "12,50 \u00a4", "Latin-1 field: %r" % latin)
        broken = c.by_url[u("/broken")]
        check(broken["title"] == "Broken" and broken["fields"]["price"] == "7"
              and broken["error"] is None, "malformed page: %r" % broken)
        s = c.summary()
        check(int(s["pages"]) == len(expected) and int(s["status_200"]) == len(expected),
              "summary: %r" % s)
        check(int(s["disallowed"]) >= 1, "summary counts no disallowed URL: %r" % s)


if __name__ == "__main__":
    run(test)
