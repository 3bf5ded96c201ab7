"""A bad configuration file exits 2 with a message naming the file and the
line:column of the fault; the shipped config.json loads and serves; a
missing static folder is logged and the API still served."""

import os
import tempfile

from web_harness import (CONFIG_FILE, Server, check, check_config_errors, run,
                         server_log_on_failure)

# (file contents, the line:column expected, a word the message must have)
CASES = [
    ('{\n  "listen": "127.0.0.1:0",\n  "max_body_bytes": 10,,\n}\n', "3:24", "invalid"),
    ('{\n  "listen": "127.0.0.1:0",\n  "max_bdy_bytes": 10\n}\n', "3:3", "max_bdy_bytes"),
    ('{\n  "gzip": "yes"\n}\n', "2:11", "gzip"),
    ('{\n  "max_headers": 0\n}\n', "2:18", "range"),
    ('{\n  "cors_origins": ["http://a", 5]\n}\n', "2:19", "strings"),
    ('{\n  "static_dir": 5\n}\n', "2:17", "string"),
    ('{\n  "listen": "nowhere"\n}\n', "2:13", "HOST:PORT"),
    ('["not", "an", "object"]\n', "1:1", "object"),
    ('{"listen": "127.0.0.1:0"', "1:25", "end of input"),
]


def test(binary):
    with tempfile.TemporaryDirectory() as tmp:
        check_config_errors(binary, CASES, tmp)

        # The shipped file loads; flags given after it win.
        server = Server(binary, "--config", CONFIG_FILE, "--listen", "127.0.0.1:0",
                        "--executors", "1")
        with server_log_on_failure(server):
            server.wait_listening()
            check(server.get("/static/style.css").status == 200, "static with config.json")
            check(server.stop() == 0, "exit code")

        # A folder that is not there: warned about, and the rest works.
        server = Server(binary, "--static-dir", os.path.join(tmp, "no-such-dir"))
        with server_log_on_failure(server):
            server.wait_listening()
            check(any("static files disabled" in l and "No such file" in l
                      for l in server.err_lines),
                  "no warning about the static folder, with its reason")
            check(server.get("/static/index.html").status == 404, "a file without a folder")
            check(server.get("/plaintext").status == 200, "the API without a folder")
            # / is not a redirect to a page that is not there.
            r = server.get("/")
            check(r.status == 200 and b"/plaintext" in r.body, "/ without a folder: %r" % r)
            check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
