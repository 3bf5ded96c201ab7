"""Every JSON line http_client writes is valid UTF-8, whatever bytes the
URLs it was given hold: bytes that are not UTF-8 are written as U+FFFD
(the request itself goes out, or not, as libcurl's URL parser says)."""

import json
import os
import subprocess
import tempfile

from client_harness import Fixture, app_env, check, run, seconds

BAD = [b"\xff\xfe", b"http://127.0.0.1:1/caf\xe9", b"http://127.0.0.1:1/\xed\xa0\x80",
       b"http://127.0.0.1:1/\xc0\xaf", b"http://127.0.0.1:1/\xf4\x90\x80\x80"]


def test(binary):
    with Fixture() as fx, tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "u.txt")
        good = fx.url("/ok/\u00e9t\u00e9").encode("utf-8")
        with open(path, "wb") as f:
            f.write(b"\n".join(BAD + [good]) + b"\n")
        p = subprocess.run([binary, "-i", path, "--retries", "0"], stdin=subprocess.DEVNULL,
                           capture_output=True, env=app_env("warn"), timeout=seconds(20))
        check(p.returncode == 1, "exit code %d: %r" % (p.returncode, p.stderr))
        lines = p.stdout.splitlines()
        check(len(lines) == len(BAD) + 2, "lines: %r" % p.stdout)
        docs = []
        for raw in lines:
            try:
                docs.append(json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, ValueError) as e:
                raise AssertionError("not valid UTF-8 JSON (%s): %r" % (e, raw))
        urls = [d["url"] for d in docs if "url" in d]
        check("\ufffd\ufffd" in urls, "the bytes ff fe are not U+FFFD twice: %r" % urls)
        check("http://127.0.0.1:1/caf\ufffd" in urls, "urls %r" % urls)
        check(good.decode("utf-8") in urls, "a valid URL was changed: %r" % urls)
        check(all(not d["ok"] for d in docs if "url" in d and "\ufffd" in d["url"]),
              "a URL with bad bytes was fetched: %r" % docs)


if __name__ == "__main__":
    run(test)
