"""--help exits 0 and lists every option with its default; a bad flag exits 2."""

from echo_harness import check_bad_flags, check_help, run
from weft_app import check_version

OPTIONS = ["--config", "--listen", "--executors", "--max-connections",
           "--idle-timeout-ms", "--max-buffer-bytes", "--stats-interval-ms",
           "--shutdown-grace-ms", "--backlog", "--log-level", "--help"]

# Refused flags, and what the message must mention.
BAD_FLAGS = [
    (["--bogus"], "--bogus"),
    (["--max-connections", "lots"], "--max-connections"),
    (["--executors", "-3"], "out of range"),
    (["--listen", "127.0.0.1"], "HOST:PORT"),
    (["--listen", "[::1:80"], "]"),
    (["--log-level", "chatty"], "chatty"),
    (["--idle-timeout-ms"], "needs a value"),
    (["stray"], "stray"),
]


def test(binary):
    # Every option but --config and --help shows its default.
    check_help(binary, OPTIONS, shown=["default: 127.0.0.1:7007"],
               min_defaults=len(OPTIONS) - 2)
    check_bad_flags(binary, BAD_FLAGS, program="echo_server")
    check_version(binary, "echo_server")


if __name__ == "__main__":
    run(test)
