"""A client that writes without reading holds the server back, not up: the
server stops reading that client, its memory (VmRSS) stays flat while the
client pushes, other clients are still served, and once the client reads,
every byte comes back in order."""

import errno
import random
import socket
import time

from echo_harness import (SCALE, Server, check, echo_roundtrip, recv_exactly, run, seconds,
                          server_log_on_failure)

PUSH_SECONDS = 2.5
LIMIT = 64 << 20        # a server that buffered everything would take this much
BLOCK = 1 << 20


def test(binary):
    server = Server(binary, "--listen", "127.0.0.1:0", "--executors", "1",
                    "--max-buffer-bytes", "65536", "--idle-timeout-ms", "0")
    with server_log_on_failure(server):
        server.wait_listening()
        stream = random.Random(7).randbytes(BLOCK)

        # Warm up: let the server reach its working size first.
        w = server.connect()
        check(echo_roundtrip(w, stream) == stream, "warm-up echo differs")
        w.close()
        server.wait_stats(lambda st: st["active"] == 0, 5, "warm-up done")
        base = server.rss_kib()

        pusher = server.connect()
        pusher.setblocking(False)
        other = server.connect()
        written = 0
        peak = base
        samples = 0
        last_progress = time.monotonic()
        end = time.monotonic() + PUSH_SECONDS
        while time.monotonic() < end and written < LIMIT:
            try:
                off = written % BLOCK
                n = pusher.send(stream[off:off + 65536] if off + 65536 <= BLOCK else stream[off:])
                written += n
                last_progress = time.monotonic()
                continue
            except BlockingIOError:
                pass
            peak = max(peak, server.rss_kib())
            samples += 1
            # The server still serves everyone else.
            if samples % 20 == 0:
                check(echo_roundtrip(other, b"hello") == b"hello", "other client not served")
            time.sleep(0.01)
        stalled_for = time.monotonic() - last_progress
        peak = max(peak, server.rss_kib())
        growth_mib = (peak - base) / 1024
        print("pushed %.1f MiB without reading; the client was held back for the last "
              "%.2f s; server VmRSS %d KiB -> peak %d KiB (+%.2f MiB)"
              % (written / 2**20, stalled_for, base, peak, growth_mib))
        check(written < LIMIT, "the server took %d bytes without being read" % written)
        check(stalled_for > 0.5, "the client was never held back")
        # Allowance for allocator and sanitizer noise; buffering the pushed
        # bytes would show as tens of MiB.
        allowed = 8 if SCALE <= 1 else 24
        check(growth_mib < allowed, "server VmRSS grew by %.1f MiB" % growth_mib)

        # Now read: everything comes back, in order.
        pusher.setblocking(True)
        pusher.settimeout(seconds(20))
        got = 0
        while got < written:
            chunk = pusher.recv(min(written - got, 1 << 20))
            check(chunk, "connection closed after %d of %d bytes" % (got, written))
            for i in range(0, len(chunk), BLOCK):
                part = chunk[i:i + BLOCK]
                off = (got + i) % BLOCK
                first = stream[off:off + len(part)]
                expect = first + stream[:len(part) - len(first)]
                check(part == expect, "echo differs near byte %d" % (got + i))
            got += len(chunk)
        pusher.close()
        other.close()
        code = server.stop()
        check(code == 0, "exit code %d" % code)


if __name__ == "__main__":
    run(test)
