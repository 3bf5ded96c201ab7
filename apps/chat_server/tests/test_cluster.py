"""--redis: two nodes on one redis-server (started here on a free port)
share rooms, seq, members, presence, history, direct messages and nicks;
a node's nicks and members go when it dies; Redis killed and restarted
under traffic: no crash, local delivery goes on (and /healthz says redis
is down), and the cluster heals; with --store too, each node commits
every message to its own store before delivering it, and answers older
history from there. Skipped without redis-server or a build with the
Redis module."""

import json
import os
import shutil
import sqlite3
import tempfile
import time

from chat_harness import (SKIP, Chat, TestFailure, check, run, seconds,
                          server_log_on_failure)
from weft_app import free_port, start_redis

REDIS = shutil.which("redis-server")


def node(binary, port, *extra):
    n = Chat(binary, "--redis", "127.0.0.1:%d" % port, "--redis-key-ttl", "2", "--rate", "0",
             *extra)
    try:
        n.wait_for(lambda: n.proc.poll() is not None or "connected to redis" in n.log(), 10,
                   "the node to reach redis")
    except TestFailure:
        n.kill()
        raise
    return n


def healthz(n):
    return json.loads(n.http_get("/healthz")[2])


def shared(a, b):
    # Nicks are unique across the cluster.
    a1 = a.tcp("alice")
    b1 = b.tcp()
    b1.send({"type": "hello", "nick": "alice"})
    b1.error("nick_taken")
    b1.hello("bob")
    # Members and presence across nodes.
    a1.join("hall")
    j = b1.join("hall")
    check(sorted(j["members"]) == ["alice", "bob"], "members seen from B: %r" % j["members"])
    a1.expect("presence", nick="bob", event="join", timeout=5)
    # One order and one seq for both nodes' messages.
    for i in range(10):
        (a1 if i % 2 == 0 else b1).send({"type": "say", "room": "hall", "text": "m%d" % i,
                                         "id": str(i)})
    seen = {}
    for c, name in ((a1, "a"), (b1, "b")):
        msgs = []
        while len(msgs) < 10:
            m = c.next(timeout=10)
            if m["type"] == "message":
                msgs.append((m["seq"], m["text"]))
        seen[name] = msgs
    check(seen["a"] == seen["b"], "the nodes disagree on the order: %r" % seen)
    check([s for s, _ in seen["a"]] == list(range(1, 11)), "seqs %r" % seen["a"])
    # History on either node, and a third node's view of it.
    b1.send({"type": "history", "room": "hall", "since": 7})
    h = b1.wait_for(lambda m: m["type"] == "history", timeout=5)
    check([m["seq"] for m in h["messages"]] == [8, 9, 10], "history %r" % h)
    # Direct messages across nodes.
    a1.send({"type": "dm", "to": "bob", "text": "across"})
    d = b1.wait_for(lambda m: m["type"] == "dm", timeout=5)
    check(d["from"] == "alice" and d["text"] == "across", "dm %r" % d)
    # Rooms are counted over the cluster.
    a1.send({"type": "rooms"})
    r = a1.wait_for(lambda m: m["type"] == "rooms", timeout=5)
    check({"room": "hall", "members": 2} in r["rooms"], "rooms %r" % r)
    return a1, b1


def store_and_cluster(binary, tmp):
    """--store with --redis: each node commits every message of its rooms
    to its own SQLite file before its members (and the sender its ack) get
    it, and answers history older than its window from there."""
    port = free_port()
    redis = start_redis(port, tmp)
    try:
        dbs = [os.path.join(tmp, "node%d.db" % k) for k in range(2)]
        a = node(binary, port, "--store", dbs[0], "--history", "5")
        b = node(binary, port, "--store", dbs[1], "--history", "5")
        with server_log_on_failure(a), server_log_on_failure(b):
            a1 = a.tcp("sam")
            b1 = b.tcp("sue")
            a1.join("arch")
            b1.join("arch")
            for i in range(30):
                a1.send({"type": "say", "room": "arch", "text": "kept %d" % i, "id": str(i)})
            for c in (a1, b1):
                seqs = []
                while len(seqs) < 30:
                    m = c.next(timeout=10)
                    if m["type"] == "message":
                        seqs.append(m["seq"])
                    if m["type"] == "ack":
                        check(m["seq"] == int(m["id"]) + 1, "ack %r" % m)
                check(seqs == list(range(1, 31)), "seqs %r" % seqs)
            a1.wait_for(lambda m: m["type"] == "ack" and m["id"] == "29", timeout=5,
                        what="the last ack")
            for c in (a1, b1):
                c.send({"type": "history", "room": "arch", "since": 0})
                h = c.wait_for(lambda m: m["type"] == "history", timeout=5)
                check([m["seq"] for m in h["messages"]] == list(range(1, 31)),
                      "history since 0: %r" % [m["seq"] for m in h["messages"]])
            check(a.stop() == 0, "node A exit code")
            check(b.stop() == 0, "node B exit code")
        for db in dbs:
            con = sqlite3.connect(db)
            rows = con.execute("SELECT seq FROM messages WHERE room = 'arch' ORDER BY seq").fetchall()
            con.close()
            check([r[0] for r in rows] == list(range(1, 31)), "%s holds %r" % (db, rows))
    finally:
        redis.kill()
        redis.wait()


def test(binary):
    if REDIS is None:
        print("redis-server is not installed")
        return SKIP
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(port, tmp)
        try:
            a = Chat(binary, "--redis", "127.0.0.1:%d" % port, "--redis-key-ttl", "2",
                     "--rate", "0")
            a.wait_for(lambda: a.proc.poll() is not None or "connected to redis" in a.log()
                       or "no Redis module" in a.log(), 10, "the node to reach redis")
            if "no Redis module" in a.log():
                a.kill()
                print("this build has no weft_redis module")
                return SKIP
            b = node(binary, port)
            with server_log_on_failure(a), server_log_on_failure(b):
                a1, b1 = shared(a, b)

                # A node that dies takes its nicks and members with it.
                b.kill()
                deadline = time.monotonic() + seconds(10)
                while True:
                    c = a.tcp()
                    c.send({"type": "hello", "nick": "bob"})
                    m = c.next(timeout=5)
                    c.close()
                    if m["type"] == "welcome":
                        break
                    check(time.monotonic() < deadline, "bob is still taken after node B died")
                    time.sleep(0.3)
                b = node(binary, port)
                b2 = b.tcp("bea")
                b2.join("hall")

                # Redis goes away under traffic: local delivery goes on.
                redis.kill()
                redis.wait()
                a.wait_for(lambda: "lost redis" in a.log(), 10, "node A to notice")
                check(healthz(a)["redis"] == "down", "healthz: %r" % healthz(a))
                a2 = a.tcp("ann")
                a2.join("hall")
                for i in range(20):
                    a1.send({"type": "say", "room": "hall", "text": "alone %d" % i})
                got = []
                while len(got) < 20:
                    m = a2.next(timeout=10)
                    if m["type"] == "message":
                        got.append(m["text"])
                check(got == ["alone %d" % i for i in range(20)], "local delivery: %r" % got)

                # Redis is back: the cluster heals.
                redis = start_redis(port, tmp)
                for n in (a, b):
                    n.wait_for(lambda: "redis is back" in n.log(), 15, "a node to reconnect")
                check(healthz(a)["redis"] == "up", "healthz after: %r" % healthz(a))
                deadline = time.monotonic() + seconds(10)
                healed = False
                while not healed:
                    a1.send({"type": "say", "room": "hall", "text": "healed?"})
                    try:
                        b2.wait_for(lambda m: m["type"] == "message" and m["text"] == "healed?",
                                    timeout=1)
                        healed = True
                    except TestFailure:
                        check(time.monotonic() < deadline, "B never hears A again")
                check(a.stop() == 0, "node A exit code")
                check(b.stop() == 0, "node B exit code")
        finally:
            redis.kill()
            redis.wait()
        store_and_cluster(binary, tmp)


if __name__ == "__main__":
    run(test)
