"""--help exits 0 and lists every option with its default; a bad flag exits 2."""

import subprocess

from echo_harness import check, run, seconds

OPTIONS = ["--config", "--listen", "--executors", "--max-connections",
           "--idle-timeout-ms", "--max-buffer-bytes", "--stats-interval-ms",
           "--shutdown-grace-ms", "--backlog", "--log-level", "--help"]


def test(binary):
    p = subprocess.run([binary, "--help"], capture_output=True, text=True,
                       timeout=seconds(10))
    check(p.returncode == 0, "--help exited %d" % p.returncode)
    for opt in OPTIONS:
        check(opt in p.stdout, "--help does not mention %s" % opt)
    check("default: 127.0.0.1:7007" in p.stdout, "--help does not show the listen default")
    check(p.stdout.count("default:") >= len(OPTIONS) - 2, "--help misses some defaults")

    for args, needle in [
        (["--bogus"], "--bogus"),
        (["--max-connections", "lots"], "--max-connections"),
        (["--executors", "-3"], "out of range"),
        (["--listen", "127.0.0.1"], "HOST:PORT"),
        (["--listen", "[::1:80"], "]"),
        (["--log-level", "chatty"], "chatty"),
        (["--idle-timeout-ms"], "needs a value"),
        (["stray"], "stray"),
    ]:
        p = subprocess.run([binary] + args, capture_output=True, text=True,
                           timeout=seconds(10))
        check(p.returncode == 2, "%s exited %d, not 2" % (args, p.returncode))
        check(needle in p.stderr, "%s: message %r does not mention %r" % (args, p.stderr, needle))
        check(p.stderr.startswith("echo_server: "), "message without the program name")


if __name__ == "__main__":
    run(test)
