"""The "listening on" line shows the address the listener is bound to, not
what was typed: localhost shows as the address it resolved to (with
given=localhost), 0 as 0.0.0.0; a connection to the address shown is
served."""

import re
import socket

from echo_harness import Server, check, echo_roundtrip, run, seconds, server_log_on_failure


def test(binary):
    for typed, shown, given in (("localhost", r"(127\.0\.0\.1|\[::1\])", "given=localhost"),
                                ("0", r"0\.0\.0\.0", "given=0"),
                                ("127.0.0.1", r"127\.0\.0\.1", None)):
        server = Server(binary, "--listen", "%s:0" % typed, "--executors", "1")
        with server_log_on_failure(server):
            server.wait_listening()
            line = [l for l in server.err_lines if "listening on" in l][0]
            m = re.search(r'listening on (\S+):(\d+)"', line)
            check(m is not None and re.fullmatch(shown, m.group(1)), "%s: %s" % (typed, line))
            check((given is None and "given=" not in line) or (given is not None and given in line),
                  "%s: %s" % (typed, line))
            host = m.group(1).strip("[]")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(seconds(5))
            s.connect(("127.0.0.1" if host == "0.0.0.0" else host, int(m.group(2))))
            check(echo_roundtrip(s, b"hi") == b"hi", "%s: not served" % typed)
            s.close()
            check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
