"""--auth-secret-file: hello needs an HS256 JWT whose sub is the nick and
whose exp has not passed; a missing, malformed, expired, wrongly signed or
alg none/HS512 token, or one for another nick, gets auth_failed and the
connection closes (after the error is read); the rooms claim limits the
rooms; a secret file that cannot be read exits 2."""

import os
import tempfile
import time

from chat_harness import (Chat, check, check_bad_flags, make_token, run,
                          server_log_on_failure)

SECRET = b"correct horse battery staple 0123456789"


def refused(srv, make, hello, why):
    c = make()
    c.send(hello)
    m = c.error("auth_failed")
    check(c.closed(), "open after auth_failed (%s)" % why)
    if hasattr(c, "close_code") and c.close_code is not None:
        check(c.close_code == 1008, "close code %r (%s)" % (c.close_code, why))
    return m


def test(binary):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "secret")
        with open(path, "wb") as f:
            f.write(SECRET + b"\n")
        check_bad_flags(binary, [
            (["--auth-secret-file", os.path.join(tmp, "missing"), "--listen", "127.0.0.1:0"],
             "--auth-secret-file"),
        ], program="chat_server")
        short = os.path.join(tmp, "short")
        with open(short, "wb") as f:
            f.write(b"tiny")
        check_bad_flags(binary, [(["--auth-secret-file", short], "16 bytes")])

        srv = Chat(binary, "--auth-secret-file", path)
        with server_log_on_failure(srv):
            now = int(time.time())
            good = make_token(SECRET, {"sub": "ann", "exp": now + 60})
            for make in (srv.tcp, srv.ws):
                c = make()
                c.hello("ann", good)
                c.join("anywhere")
                c.close()
                time.sleep(0.05)
                cases = [
                    ({"type": "hello", "nick": "ann"}, "no token"),
                    ({"type": "hello", "nick": "ann", "token": 5}, "not a string"),
                    ({"type": "hello", "nick": "ann", "token": "abc"}, "not a JWT"),
                    ({"type": "hello", "nick": "ann", "token": "a.b.c"}, "garbage"),
                    ({"type": "hello", "nick": "bob", "token": good}, "another nick"),
                    ({"type": "hello", "nick": "ann",
                      "token": make_token(SECRET, {"sub": "ann", "exp": now - 1})}, "expired"),
                    ({"type": "hello", "nick": "ann",
                      "token": make_token(SECRET, {"sub": "ann"})}, "no exp"),
                    ({"type": "hello", "nick": "ann",
                      "token": make_token(b"x" * 32, {"sub": "ann", "exp": now + 60})}, "wrong key"),
                    ({"type": "hello", "nick": "ann",
                      "token": make_token(SECRET, {"sub": "ann", "exp": now + 60}, alg="none",
                                          sign=False)}, "alg none"),
                    ({"type": "hello", "nick": "ann",
                      "token": make_token(SECRET, {"sub": "ann", "exp": now + 60}, alg="HS512")},
                     "alg HS512"),
                    ({"type": "hello", "nick": "ann",
                      "token": good[:-2] + ("AA" if not good.endswith("AA") else "BB")},
                     "tampered signature"),
                ]
                for hello, why in cases:
                    refused(srv, make, hello, why)
            # The rooms claim.
            limited = make_token(SECRET, {"sub": "lim", "exp": now + 60, "rooms": ["ok"]})
            c = srv.tcp()
            c.hello("lim", limited)
            c.join("ok")
            c.send({"type": "join", "room": "other"})
            c.error("auth_failed")
            check(c.closed(), "open after a join the token forbids")
            check(srv.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
