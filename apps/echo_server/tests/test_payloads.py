"""Random payloads from 1 byte to several MB come back byte for byte, over
IPv4 and IPv6, one at a time, on one connection, and on several connections
at once; a client that closes its sending side gets all of its echo first."""

import random
import socket
import threading

from echo_harness import (Server, check, echo_roundtrip, recv_exactly, run, seconds,
                          server_log_on_failure)


def has_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test(binary):
    rng = random.Random(20261126)
    ipv6 = has_ipv6_loopback()
    args = ["--listen", "127.0.0.1:0", "--executors", "2", "--max-buffer-bytes", "65536"]
    if ipv6:
        args += ["--listen", "[::1]:0"]
    server = Server(binary, *args)
    with server_log_on_failure(server):
        server.wait_listening(2 if ipv6 else 1)
        total = 0

        # One connection, growing payloads, each a round trip of its own.
        s = server.connect()
        for size in [1, 2, 100, 1023, 1024, 1025, 4096, 65535, 65536, 65537,
                     300000, 1 << 20, 3 * (1 << 20) + 7]:
            payload = rng.randbytes(size)
            check(echo_roundtrip(s, payload) == payload, "payload of %d bytes differs" % size)
            total += size
        s.close()

        if ipv6:
            s = server.connect("::1")
            payload = rng.randbytes(2 << 20)
            check(echo_roundtrip(s, payload) == payload, "IPv6 payload differs")
            total += len(payload)
            s.close()

        # Several connections at once, spread over both executors.
        results = {}

        def client(i):
            try:
                c = server.connect()
                payload = rng_local[i].randbytes(rng_local[i].randrange(1, 3 << 20))
                results[i] = echo_roundtrip(c, payload) == payload, len(payload)
                c.close()
            except Exception as e:  # reported below
                results[i] = (False, repr(e))
        rng_local = [random.Random(i) for i in range(8)]
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds(30))
        for i in range(8):
            check(i in results and results[i][0], "concurrent client %d: %s" % (i, results.get(i)))
            total += results[i][1]

        # Half-close: everything sent before shutdown(SHUT_WR) still comes
        # back, then the server closes too.
        s = server.connect()
        payload = rng.randbytes(500000)

        def send_and_shut():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send_and_shut)
        t.start()
        data = recv_exactly(s, len(payload))
        t.join(seconds(10))
        check(data == payload, "half-closed payload differs")
        check(s.recv(1) == b"", "server did not close after the client's EOF")
        s.close()
        total += len(payload)

        st = server.wait_stats(lambda st: st["active"] == 0, 5, "active=0")
        check(st["bytes_in"] == total and st["bytes_out"] == total,
              "bytes_in=%d bytes_out=%d, sent %d" % (st["bytes_in"], st["bytes_out"], total))
        code = server.stop()
        check(code == 0, "exit code %d" % code)


if __name__ == "__main__":
    run(test)
