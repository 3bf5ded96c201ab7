"""--help exits 0 and lists every option with its default; a bad flag exits 2
with a message that names it."""

from web_harness import check, check_bad_flags, check_help, run
from weft_app import check_version

OPTIONS = ["--config", "--listen", "--executors", "--static-dir", "--max-connections",
           "--max-header-bytes", "--max-headers", "--max-body-bytes", "--header-timeout-ms",
           "--body-timeout-ms", "--idle-timeout-ms", "--write-timeout-ms",
           "--request-timeout-ms", "--max-requests-per-connection", "--cors-origins",
           "--gzip", "--gzip-min-bytes", "--access-log", "--max-items", "--shutdown-grace-ms",
           "--stats-interval-ms", "--backlog", "--log-level", "--help"]

# Refused flags, and what the message must mention.
BAD_FLAGS = [
    (["--bogus"], "--bogus"),
    (["--max-body-bytes", "lots"], "--max-body-bytes"),
    (["--max-headers", "0"], "out of range"),
    (["--listen", "127.0.0.1"], "HOST:PORT"),
    (["--log-level", "chatty"], "chatty"),
    (["--gzip=maybe"], "--gzip"),
    (["--header-timeout-ms"], "needs a value"),
    (["stray"], "stray"),
]


def test(binary):
    check_help(binary, OPTIONS, shown=["default: 127.0.0.1:8080"])
    check_bad_flags(binary, BAD_FLAGS, program="web_framework")
    check_version(binary, "web_framework")
    # The --listen help is the server's own, not another application's.
    p = check_help(binary, ["--listen"])
    check("7007" not in p.stdout, "--help shows echo_server's port")


if __name__ == "__main__":
    run(test)
