"""A port that another process holds is an error at start, whatever the
number of executors: SO_REUSEPORT only ever joins the listeners of the same
server. The second server exits 1 naming the address and the reason, and
every connection still reaches the first one."""

from echo_harness import Server, check, echo_roundtrip, run, server_log_on_failure, seconds
from weft_app import run_binary


def test(binary):
    for first_exec, second_exec in ((2, 2), (1, 2), (2, 1)):
        first = Server(binary, "--listen", "127.0.0.1:0", "--executors", first_exec)
        with server_log_on_failure(first):
            port = first.port()
            where = "127.0.0.1:%d" % port
            p = run_binary(binary, "--listen", where, "--executors", second_exec, timeout=10)
            check(p.returncode == 1,
                  "a second server (executors %d after %d) on %s exited %d: %s"
                  % (second_exec, first_exec, where, p.returncode, p.stderr))
            check("listening on" not in p.stderr, "the second server said it listens: %s" % p.stderr)
            check(where in p.stderr, "the message does not name %s: %s" % (where, p.stderr))
            check("address already in use" in p.stderr, "no reason given: %s" % p.stderr)
            # The first server still takes every connection.
            for i in range(8):
                s = first.connect()
                check(echo_roundtrip(s, b"hello %d" % i) == b"hello %d" % i, "echo %d" % i)
                s.close()
            st = first.stats()
            check(st["accepted"] == 8, "the first server accepted %d of 8" % st["accepted"])
            check(first.stop() == 0, "first server exit code")


if __name__ == "__main__":
    run(test)
