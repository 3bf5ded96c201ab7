"""Options: --help lists every option with its default; bad flags and
faulty configuration files exit 2 naming the flag or the file and the
line:column; the shipped config.json loads (flags override it)."""

import os
import tempfile

from chat_harness import (Chat, check, check_bad_flags, check_config_errors,
                          check_help, run, server_log_on_failure)

HERE = os.path.dirname(os.path.abspath(__file__))

OPTIONS = ["--listen", "--http-listen", "--executors", "--history", "--max-line",
           "--rate", "--burst", "--max-queue", "--max-connections", "--idle-timeout",
           "--store", "--redis", "--auth-secret-file", "--log-level", "--config"]

CONFIG_CASES = [
    ('{\n  "history": 10,,\n}\n', "2:17", "invalid"),
    ('{\n  "histroy": 10\n}\n', "2:3", "histroy"),
    ('{\n  "max_queue": "lots"\n}\n', "2:16", "integer"),
    ('{\n  "rate": -1\n}\n', "2:11", "range"),
    ('{\n  "idle_timeout": "soon"\n}\n', "2:19", "duration"),
    ('{\n  "http_listen": "nowhere"\n}\n', "2:18", "HOST:PORT"),
    ('{\n  "max_line": 1\n}\n', "2:15", "range"),
]


def test(binary):
    check_help(binary, OPTIONS, min_defaults=10)
    check_bad_flags(binary, [
        (["--max-queue", "0"], "--max-queue"),
        (["--idle-timeout", "forever"], "--idle-timeout"),
        (["--listen", "nowhere"], "--listen"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--history"], "--history"),
    ], program="chat_server")
    with tempfile.TemporaryDirectory() as tmp:
        check_config_errors(binary, CONFIG_CASES, tmp)
    shipped = os.path.join(HERE, "..", "config.json")
    srv = Chat(binary, "--config", shipped)  # our --listen flags override it
    with server_log_on_failure(srv):
        c = srv.tcp("cfg")
        c.send({"type": "ping"})
        c.expect("pong")
        check("idle_timeout=120s" in srv.log(), "the configuration line: %s" % srv.log())
        check(srv.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
