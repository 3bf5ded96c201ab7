"""A bad configuration file exits 2 with a message naming the file and the
line:column of the fault; the shipped config.json loads."""

import os
import tempfile

from echo_harness import Server, check, check_config_errors, run, server_log_on_failure
from weft_app import run_binary

HERE = os.path.dirname(os.path.abspath(__file__))

# (file contents, the line:column expected, a word the message must have)
CASES = [
    ('{\n  "listen": "127.0.0.1:0",\n  "max_connections": 10,,\n}\n', "3:25", "invalid"),
    # A trailing comma is named where it is, not at the end of the file.
    ('{\n  "listen": "127.0.0.1:0",\n}\n', "2:26", "comma"),
    ('{"listen": ["127.0.0.1:0",]}', "1:26", "comma"),
    ('{\n  "listen": "127.0.0.1:0",\n  "max_conections": 10\n}\n', "3:3", "max_conections"),
    ('{\n  "idle_timeout_ms": "soon"\n}\n', "2:22", "integer"),
    ('{\n  "executors": 2.5\n}\n', "2:16", "integer"),
    ('{\n  "executors": 99999\n}\n', "2:16", "range"),
    ('{\n  "listen": ["127.0.0.1:0", 7]\n}\n', "2:13", "strings"),
    ('{\n  "listen": "nowhere"\n}\n', "2:13", "HOST:PORT"),
    ('{\n  "listen": []\n}\n', "2:13", "at least one address"),
    ('{\n  "log_level": "loud"\n}\n', "2:16", "loud"),
    ('{\n  "backlog": 10,\n  "backlog": 20\n}\n', "3:3", "twice"),
    ('["not", "an", "object"]\n', "1:1", "object"),
    ('{"listen": "127.0.0.1:0"', "1:25", "end of input"),
    ('{"listen": "127.0.0.1:0"} }', "1:27", "after"),
    # Deeper than 64 levels is refused before cJSON recurses into it.
    ('{"deep": ' + "[" * 200 + "]" * 200 + "}", "1:73", "nesting"),
]


def test(binary):
    with tempfile.TemporaryDirectory() as tmp:
        check_config_errors(binary, CASES, tmp)
        # A folder given as the file: the message says why.
        p = run_binary(binary, "--config", tmp)
        check(p.returncode == 2 and tmp in p.stderr and "directory" in p.stderr.lower(),
              "--config DIR: %r" % p.stderr)

    # The defaults file of the application loads; flags override it.
    shipped = os.path.join(HERE, "..", "config.json")
    server = Server(binary, "--config", shipped, "--listen", "127.0.0.1:0",
                    "--executors", "1")
    with server_log_on_failure(server):
        server.wait_listening()
        st = server.stats()
        check(st["accepted"] == 0, "fresh server with accepted=%s" % st["accepted"])
        code = server.stop()
        check(code == 0, "exit code %d" % code)


if __name__ == "__main__":
    run(test)
