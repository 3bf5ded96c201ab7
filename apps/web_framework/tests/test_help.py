"""--help exits 0 and lists every option with its default; a bad flag exits 2
with a message that names it."""

import subprocess

from web_harness import check, run, seconds

OPTIONS = ["--config", "--listen", "--executors", "--static-dir", "--max-connections",
           "--max-header-bytes", "--max-headers", "--max-body-bytes", "--header-timeout-ms",
           "--body-timeout-ms", "--idle-timeout-ms", "--write-timeout-ms",
           "--request-timeout-ms", "--max-requests-per-connection", "--cors-origins",
           "--gzip", "--gzip-min-bytes", "--access-log", "--max-items", "--shutdown-grace-ms",
           "--stats-interval-ms", "--backlog", "--log-level", "--help"]


def test(binary):
    p = subprocess.run([binary, "--help"], capture_output=True, text=True,
                       timeout=seconds(10))
    check(p.returncode == 0, "--help exited %d" % p.returncode)
    for opt in OPTIONS:
        check(opt in p.stdout, "--help does not mention %s" % opt)
    check("default: 127.0.0.1:8080" in p.stdout, "--help does not show the listen default")

    for args, needle in [
        (["--bogus"], "--bogus"),
        (["--max-body-bytes", "lots"], "--max-body-bytes"),
        (["--max-headers", "0"], "out of range"),
        (["--listen", "127.0.0.1"], "HOST:PORT"),
        (["--log-level", "chatty"], "chatty"),
        (["--gzip=maybe"], "--gzip"),
        (["--header-timeout-ms"], "needs a value"),
        (["stray"], "stray"),
    ]:
        p = subprocess.run([binary] + args, capture_output=True, text=True,
                           timeout=seconds(10))
        check(p.returncode == 2, "%s exited %d, not 2" % (args, p.returncode))
        check(needle in p.stderr, "%s: message %r does not mention %r" % (args, p.stderr, needle))
        check(p.stderr.startswith("web_framework: "), "message without the program name")


if __name__ == "__main__":
    run(test)
