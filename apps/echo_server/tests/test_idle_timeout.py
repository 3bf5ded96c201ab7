"""A connection that sends nothing for idle_timeout_ms is closed and counted
as timed out; one that keeps talking stays open well past the timeout."""

import threading
import time

from echo_harness import Server, check, recv_exactly, run, seconds, server_log_on_failure

IDLE_MS = 400


def test(binary):
    idle_ms = int(IDLE_MS * (seconds(1)))
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "1",
                    "--idle-timeout-ms", str(idle_ms))
    with server_log_on_failure(server):
        server.wait_listening()
        quiet = server.connect()
        busy = server.connect()
        started = time.monotonic()

        # The busy client talks every tenth of the timeout for three timeouts.
        busy_ok = []

        def talk():
            end = started + 3 * idle_ms / 1000
            n = 0
            while time.monotonic() < end:
                msg = b"tick %d" % n
                busy.sendall(msg)
                if recv_exactly(busy, len(msg)) != msg:
                    return
                n += 1
                time.sleep(idle_ms / 10000)
            busy_ok.append(n)
        t = threading.Thread(target=talk)
        t.start()

        quiet.settimeout(seconds(10))
        check(quiet.recv(1) == b"", "the quiet connection got data")
        elapsed = time.monotonic() - started
        check(elapsed >= idle_ms / 1000 * 0.9,
              "closed after %.3f s, before the %d ms timeout" % (elapsed, idle_ms))
        check(elapsed <= idle_ms / 1000 + seconds(2), "closed only after %.3f s" % elapsed)

        t.join(seconds(20))
        check(busy_ok and busy_ok[0] > 10, "the busy connection was cut: %s" % busy_ok)
        busy.sendall(b"last")
        check(recv_exactly(busy, 4) == b"last", "busy connection broken")

        st = server.stats()
        check(st["timed_out"] == 1, "timed_out=%d" % st["timed_out"])
        check(st["active"] == 1, "active=%d" % st["active"])

        # Left alone, the busy one times out too.
        busy.settimeout(seconds(10))
        check(busy.recv(1) == b"", "the busy connection never timed out")
        server.wait_stats(lambda st: st["timed_out"] == 2 and st["active"] == 0, 5,
                          "timed_out=2")
        quiet.close()
        busy.close()
        code = server.stop()
        check(code == 0, "exit code %d" % code)


if __name__ == "__main__":
    run(test)
