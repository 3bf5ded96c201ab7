"""Generates the benchmark site: PAGES linked pages spread over HOSTS hosts.

Page i lives at http://127.0.0.H:PORT/p/i.html with H = i % HOSTS + 1.
Each page is about 7-10 KB: a title, two fields to extract (a price in
<span id="price"> and a code in <span class="sku">), 20 links (the next
page, so that every page is reachable from page 0, and 19 others chosen
at random, on any host) and paragraphs of filler. One link in ten points
into /private/, which robots.txt disallows, so that the logs show whether
a crawler fetched what it must not. Deterministic (a fixed seed).

  python3 gen_site.py DIR PORT [PAGES] [HOSTS]
"""

import os
import random
import sys

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
         "tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam "
         "quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo").split()


def main():
    out, port = sys.argv[1], int(sys.argv[2])
    pages = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    hosts = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    rnd = random.Random(15)
    os.makedirs(os.path.join(out, "p"), exist_ok=True)
    os.makedirs(os.path.join(out, "private"), exist_ok=True)
    with open(os.path.join(out, "robots.txt"), "w") as f:
        f.write("User-agent: *\nDisallow: /private/\n")

    def url(i):
        return "http://127.0.0.%d:%d/p/%d.html" % (i % hosts + 1, port, i)

    for i in range(pages):
        links = [url((i + 1) % pages)]
        for _ in range(19):
            if rnd.random() < 0.1:
                links.append("/private/%d.html" % rnd.randrange(pages))
            else:
                links.append(url(rnd.randrange(pages)))
        body = []
        size = rnd.randrange(6000, 9000)
        n = 0
        while n < size:
            para = " ".join(rnd.choice(WORDS) for _ in range(60))
            body.append("<p>%s</p>\n" % para)
            n += len(para) + 8
        anchors = "".join('<li><a href="%s">link %d</a></li>\n' % (l, k)
                          for k, l in enumerate(links))
        html = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                "<title>Page %d</title></head>\n<body>\n<h1>Page %d</h1>\n"
                "<span id=\"price\">%d.%02d</span> <span class=\"sku\">SKU-%06d</span>\n"
                "<ul>\n%s</ul>\n%s</body></html>\n"
                % (i, i, rnd.randrange(1, 500), rnd.randrange(100), i, anchors, "".join(body)))
        with open(os.path.join(out, "p", "%d.html" % i), "w") as f:
            f.write(html)
    with open(os.path.join(out, "urls.txt"), "w") as f:
        for i in range(pages):
            f.write(url(i) + "\n")


if __name__ == "__main__":
    main()
