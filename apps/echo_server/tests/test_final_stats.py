"""The stats at exit agree with each other: the last log line and the JSON
line printed after it give the same rates, over the same interval (the
JSON used to say 0 where the log line had just said 6.3)."""

import re
import time

from echo_harness import Server, check, echo_roundtrip, run, seconds, server_log_on_failure


def test(binary):
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "1")
    with server_log_on_failure(server):
        server.wait_listening()
        s = server.connect()
        for i in range(50):
            check(echo_roundtrip(s, b"m%d" % i) == b"m%d" % i, "echo %d" % i)
        s.close()
        # The JSON is printed a moment before the log line, each dividing by
        # its own interval: a longer interval keeps that moment small next
        # to it (it was 15 % of 0.2 s under qemu on a loaded machine).
        time.sleep(seconds(0.3))
        check(server.stop() == 0, "exit code")
        st = server.final_stats()
        lines = [l for l in server.err_lines if "msg=stats" in l]
        check(lines, "no stats line at exit")
        logged = float(re.search(r"messages_per_s=([0-9.]+)", lines[-1]).group(1))
        check(st["messages"] == 50, "final %s" % st)
        check(logged > 0 and st["messages_per_s"] > 0,
              "rates at exit: log %s, JSON %s" % (logged, st["messages_per_s"]))
        check(abs(logged - st["messages_per_s"]) <= 0.1 * max(logged, st["messages_per_s"]) + 0.1,
              "rates at exit differ: log %s, JSON %s" % (logged, st["messages_per_s"]))


if __name__ == "__main__":
    run(test)
