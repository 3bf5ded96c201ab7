"""--store FILE: acked messages survive a restart (history, seq going on
from the last one); a store whose directory cannot be written exits 2 with
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
        unwritable(binary, tmp)
        flood_then_sigterm(binary, os.path.join(tmp, "flood.db"))


if __name__ == "__main__":
    run(test)
