"""--store FILE: acked messages survive a restart (history, seq going on
from the last one); history and join with a since older than the in-memory
window are read from the store, a page at a time; a store whose directory cannot be written exits 2 with
a clear message; SIGTERM in the middle of a flood from several clients
loses no acked message (each is in the store after the restart, with its
text, and the seqs have no gap)."""

import os
import signal
import stat
import tempfile
import threading
import time

import chat_harness
from chat_harness import SKIP, Chat, check, run, run_binary, seconds, server_log_on_failure


def restart_keeps_history(binary, db):
    srv = Chat(binary, "--store", db, "--rate", "0")
    with server_log_on_failure(srv):
        a = srv.tcp("ann")
        a.join("kept")
        for i in range(30):
            a.send({"type": "say", "room": "kept", "text": "note %d" % i, "id": str(i)})
        for i in range(30):
            a.expect("message", text="note %d" % i, seq=i + 1)
            a.expect("ack", id=str(i), seq=i + 1)
        check(srv.stop() == 0, "exit code")
    srv = Chat(binary, "--store", db, "--history", "20")
    with server_log_on_failure(srv):
        b = srv.ws("bea")
        j = b.join("kept")
        check([m["seq"] for m in j["history"]] == list(range(11, 31)), "history: %r" % j["history"])
        check(j["history"][-1]["text"] == "note 29" and j["history"][-1]["from"] == "ann",
              "last message: %r" % j["history"][-1])
        b.send({"type": "say", "room": "kept", "text": "after the restart", "id": "x"})
        b.expect("message", seq=31)
        b.expect("ack", id="x", seq=31)
        b.send({"type": "history", "room": "kept", "since": 28})
        h = b.expect("history")
        check([m["seq"] for m in h["messages"]] == [29, 30, 31], "since 28: %r" % h)
        # Older than the window of 20: read from the store, before and
        # after the restart alike.
        b.send({"type": "history", "room": "kept", "since": 2})
        h = b.expect("history")
        check([m["seq"] for m in h["messages"]] == list(range(3, 32)), "since 2: %r" % h)
        check(h["messages"][0]["text"] == "note 2" and "more" not in h, "since 2: %r" % h)
        c = srv.tcp("cid")
        j = c.join("kept", since=0)
        check([m["seq"] for m in j["history"]] == list(range(1, 32)), "join since 0: %r" % j)
        check(srv.stop() == 0, "exit code")


def history_pages(binary, db):
    """A history older than the window comes from the store a page (1000
    messages) at a time, with "more" until the last page."""
    srv = Chat(binary, "--store", db, "--rate", "0", "--history", "5", "--max-queue", "5000")
    with server_log_on_failure(srv):
        a = srv.tcp("pat")
        a.join("long")
        n = 1007
        for i in range(n):
            a.send({"type": "say", "room": "long", "text": "line %d" % i, "id": str(i)})
        a.wait_for(lambda m: m["type"] == "ack" and m["id"] == str(n - 1), timeout=seconds(30),
                   what="the last ack")
        a.send({"type": "history", "room": "long", "since": 0})
        h = a.expect("history", timeout=seconds(10))
        check([m["seq"] for m in h["messages"]] == list(range(1, 1001)) and h.get("more") is True,
              "first page: %d messages, more=%r" % (len(h["messages"]), h.get("more")))
        a.send({"type": "history", "room": "long", "since": 1000})
        h = a.expect("history")
        check([m["seq"] for m in h["messages"]] == list(range(1001, n + 1)) and "more" not in h,
              "last page: %r" % h)
        check(h["messages"][-1]["text"] == "line %d" % (n - 1), "last: %r" % h["messages"][-1])
        # Within the window: from memory, as before.
        a.send({"type": "history", "room": "long", "since": n - 2})
        h = a.expect("history")
        check([m["seq"] for m in h["messages"]] == [n - 1, n], "window: %r" % h)
        check(srv.stop() == 0, "exit code")


def unwritable(binary, tmp):
    locked = os.path.join(tmp, "locked")
    os.mkdir(locked)
    os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
    # root writes anywhere: then a directory the system does not let it
    # write, when there is one.
    candidates = [d for d in (locked, "/proc/sys") if not os.access(d, os.W_OK)]
    os.chmod(locked, stat.S_IRWXU)
    if not candidates:
        print("no unwritable directory to try (running as root?)")
    else:
        os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
        path = os.path.join(candidates[0], "chat.db")
        p = run_binary(binary, "--store", path, "--listen", "127.0.0.1:0")
        os.chmod(locked, stat.S_IRWXU)
        check(p.returncode == 2, "exit code %d: %s" % (p.returncode, p.stderr))
        check("--store" in p.stderr and candidates[0] in p.stderr, "message: %r" % p.stderr)
    missing = os.path.join(tmp, "no", "such", "dir", "chat.db")
    p = run_binary(binary, "--store", missing, "--listen", "127.0.0.1:0")
    check(p.returncode == 2 and "--store" in p.stderr, "missing dir: %d %r" % (p.returncode, p.stderr))


def flood_then_sigterm(binary, db):
    srv = Chat(binary, "--store", db, "--rate", "0", "--max-queue", "100000",
               "--shutdown-grace-ms", "2000")
    acked = {}  # seq -> text
    lock = threading.Lock()
    with server_log_on_failure(srv):
        clients = [srv.tcp("f%d" % i) for i in range(4)]
        for c in clients:
            c.join("flood")
        stop = threading.Event()

        def flood(k, c):
            sent = {}
            i = 0
            try:
                while not stop.is_set() or i < 50:
                    batch = []
                    for _ in range(50):
                        text = "c%d m%d" % (k, i)
                        sent[str(i)] = text
                        batch.append({"type": "say", "room": "flood", "text": text, "id": str(i)})
                        i += 1
                    for m in batch:
                        c.send(m)
                    while True:
                        m = c.next(timeout=10)
                        if m["type"] == "ack":
                            with lock:
                                acked[m["seq"]] = sent[m["id"]]
                            if m["id"] == str(i - 1):
                                break
                        elif m["type"] == "bye":
                            return
            except Exception:
                return  # the shutdown ends it mid-batch

        threads = [threading.Thread(target=flood, args=(k, c)) for k, c in enumerate(clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(1.0)
        srv.proc.send_signal(signal.SIGTERM)
        stop.set()
        for t in threads:
            t.join(seconds(20))
        check(srv.wait_exit(20) == 0, "exit code")
        took = time.monotonic() - started
    check(len(acked) > 100, "only %d messages acked before SIGTERM" % len(acked))
    print("%d messages acked in %.2f s before SIGTERM" % (len(acked), took))
    srv = Chat(binary, "--store", db, "--history", "1000000")
    with server_log_on_failure(srv):
        r = srv.tcp("reader")
        j = r.join("flood")
        stored = {m["seq"]: m["text"] for m in j["history"]}
        seqs = sorted(stored)
        check(seqs == list(range(1, len(seqs) + 1)), "the stored seqs have gaps")
        missing = [s for s in acked if stored.get(s) != acked[s]]
        check(not missing, "%d acked messages are not in the store, e.g. seq %s"
              % (len(missing), missing[:5]))
        check(srv.stop() == 0, "exit code")


def test(binary):
    with tempfile.TemporaryDirectory() as tmp:
        # A build without the SQLite module refuses --store at start.
        probe = chat_harness.weft_app.AppProcess(binary, "--store", os.path.join(tmp, "probe.db"),
                                    "--listen", "127.0.0.1:0")
        try:
            probe.wait_for(lambda: probe.proc.poll() is not None or
                           any("listening on" in l for l in probe.err_lines),
                           10, "the probe to start or stop")
        finally:
            probe.kill()
        if "no SQLite module" in probe.log():
            print("this build has no weft_sqlite module")
            return SKIP
        restart_keeps_history(binary, os.path.join(tmp, "chat.db"))
        history_pages(binary, os.path.join(tmp, "pages.db"))
        unwritable(binary, tmp)
        flood_then_sigterm(binary, os.path.join(tmp, "flood.db"))


if __name__ == "__main__":
    run(test)
