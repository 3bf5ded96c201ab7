"""Bad configuration files and flags exit 2 with a message naming the file
and the line:column of the fault (or the flag); --help exits 0; the shipped
config.json loads."""

import os
import tempfile

from client_harness import (Fixture, check, check_bad_flags, check_config_errors, check_help,
                            client, run)
from weft_app import check_version  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# (file contents, the line:column expected, a word the message must have)
CASES = [
    ('{\n  "concurrency": 10,,\n}\n', "2:21", "invalid"),
    ('{\n  "concurency": 10\n}\n', "2:3", "concurency"),
    ('{\n  "concurrency": "many"\n}\n', "2:18", "integer"),
    ('{\n  "concurrency": 0\n}\n', "2:18", "range"),
    ('{\n  "timeout": "soon"\n}\n', "2:14", "duration"),
    ('{\n  "rate": "fast"\n}\n', "2:11", "number"),
    ('{\n  "mode": "stress"\n}\n', "2:11", "fetch"),
    ('{\n  "http_version": "3"\n}\n', "2:19", "1.1"),
    ('{\n  "header": ["X-A: 1", 2]\n}\n', "2:13", "strings"),
]

# Flags that are refused, and a word the message must have.
FLAGS = [
    (["-c", "0", "http://127.0.0.1:1/"], "range"),
    (["--rate", "abc", "http://127.0.0.1:1/"], "rate"),
    (["-z", "10 parsecs", "http://127.0.0.1:1/"], "duration"),
    (["--bogus", "http://127.0.0.1:1/"], "unknown"),
    (["-Y", "http://127.0.0.1:1/"], "unknown"),
    ([], "no URLs"),
    (["--mode", "fetch", "-n", "5", "http://127.0.0.1:1/"], "load mode"),
    (["-d", "x", "-D", "/nonexistent", "http://127.0.0.1:1/"], "exclude"),
    (["-D", "/nonexistent/body", "http://127.0.0.1:1/"], "/nonexistent/body"),
    (["-H", "no colon here", "http://127.0.0.1:1/"], "Name: value"),
    (["-i", "/nonexistent/urls.txt"], "/nonexistent/urls.txt"),
    (["-c"], "needs a value"),
]


def test(binary):
    # The URL after the file keeps the client from refusing for want of one.
    with tempfile.TemporaryDirectory() as tmp:
        check_config_errors(binary, CASES, tmp, extra_args=["http://127.0.0.1:1/"],
                            missing=False, log_level="warn")
    check_bad_flags(binary, FLAGS, quiet_stdout=True, log_level="warn")

    p = check_help(binary, ["--concurrency", "-z DURATION"], log_level="warn")
    check("[URL ...]" in p.stdout.splitlines()[0], "the usage line: %r" % p.stdout[:100])
    check_version(binary, "http_client")

    # The shipped file loads; flags and arguments override it.
    with Fixture() as fx:
        shipped = os.path.join(HERE, "..", "config.json")
        r = client(binary, "--config", shipped, "--executors", "1", fx.url("/ok"))
        check(r.code == 0 and r.summary["requests"] == 1, "shipped config: %r" % r)
        check(fx.requests[0][2].get("Accept") == "*/*", "header from the file")


if __name__ == "__main__":
    run(test)
