"""Redirects are followed up to --max-redirects; one more fails the request
as too_many_redirects; --no-redirects reports the 3xx itself."""

from client_harness import Fixture, check, client, run


def test(binary):
    with Fixture() as fx:
        r = client(binary, fx.url("/redirect/3"))
        line = r.by_url(fx.url("/redirect/3"))
        check(r.code == 0 and line["status"] == 200 and line["redirects"] == 3 and
              line["bytes"] == 6, "followed: %r" % r)
        for i in range(4):
            check(fx.hits.get("/redirect/%d" % i) == 1, "server saw %s" % fx.hits)

        before = dict(fx.hits)
        r = client(binary, fx.url("/redirect/6"), "--max-redirects", 2)
        line = r.by_url(fx.url("/redirect/6"))
        check(r.code == 1 and line["error"] == "too_many_redirects" and line["status"] == 0,
              "limit: %r" % r)
        # 6 -> 5 -> 4, and the third redirect is refused.
        seen = {k: v - before.get(k, 0) for k, v in fx.hits.items() if v != before.get(k, 0)}
        check(seen == {"/redirect/6": 1, "/redirect/5": 1, "/redirect/4": 1},
              "server saw %s" % seen)

        before = dict(fx.hits)
        r = client(binary, fx.url("/redirect/1"), "--no-redirects")
        line = r.by_url(fx.url("/redirect/1"))
        check(r.code == 0 and line["status"] == 302 and line["redirects"] == 0,
              "not followed: %r" % r)
        check(fx.hits.get("/redirect/0") == before.get("/redirect/0"),
              "followed anyway: %s" % fx.hits)


if __name__ == "__main__":
    run(test)
