"""The protocol over TCP and over WebSocket: hello, join with members and
history, presence, say with ack and seq in order, dm, history since, rooms,
ping, and each error that leaves the connection open (hello_first,
bad_nick, nick_taken, bad_json, bad_request, unknown_type, not_in_room,
no_such_user)."""

from chat_harness import Chat, check, run, server_log_on_failure


def scenario(srv, make, tag):
    a = make()
    # Nothing before hello; then the nick rules.
    a.send({"type": "join", "room": "r"})
    a.error("hello_first")
    a.send({"type": "hello", "nick": "bad nick!"})
    a.error("bad_nick")
    a.send({"type": "hello", "nick": "x" * 33})
    a.error("bad_nick")
    a.send({"type": "hello"})
    a.error("bad_request")
    a.hello("alice" + tag)
    b = make()
    b.send({"type": "hello", "nick": "alice" + tag})
    b.error("nick_taken")
    b.hello("bob" + tag)

    # Malformed requests keep the connection open.
    a.send_raw(b"{not json")
    a.error("bad_json")
    a.send_raw(b"[1, 2]")
    a.error("bad_request")
    a.send({"type": 7})
    a.error("bad_request")
    a.send({"type": "dance"})
    a.error("unknown_type")
    a.send({"type": "say", "room": "r" + tag, "text": "not yet"})
    a.error("not_in_room")
    a.send({"type": "leave", "room": "r" + tag})
    a.error("not_in_room")
    a.send({"type": "history", "room": "r" + tag, "since": 0})
    a.error("not_in_room")
    a.send({"type": "say", "room": "r" + tag})
    a.error("bad_request")
    a.send({"type": "say", "room": "r" + tag, "text": "x", "id": "i" * 65})
    a.error("bad_request")
    a.send({"type": "dm", "to": "nobody", "text": "hi"})
    a.error("no_such_user")
    a.send({"type": "ping"})
    a.expect("pong")

    # Join: members include the joiner; the others hear of it.
    j = a.join("r" + tag)
    check(j["members"] == ["alice" + tag] and j["history"] == [], "first join: %r" % j)
    j = b.join("r" + tag)
    check(sorted(j["members"]) == sorted(["alice" + tag, "bob" + tag]), "second join: %r" % j)
    a.expect("presence", room="r" + tag, nick="bob" + tag, event="join")

    # Say: everyone gets the message, in order, and the sender an ack
    # after its copy, with its id as it came.
    ids = ["m%d" % i for i in range(50)]
    for i, mid in enumerate(ids):
        a.send({"type": "say", "room": "r" + tag, "text": "n°%d ✓" % i, "id": mid})
    seqs = []
    for i, mid in enumerate(ids):
        m = a.expect("message", room="r" + tag, text="n°%d ✓" % i)
        check(m["from"] == "alice" + tag and isinstance(m["ts"], int), "message: %r" % m)
        ack = a.expect("ack", id=mid)
        check(ack["seq"] == m["seq"], "ack seq %r vs %r" % (ack, m))
        seqs.append(m["seq"])
    check(seqs == list(range(1, 51)), "seq is not 1..50 in order: %r" % seqs)
    for i in range(50):
        m = b.expect("message", room="r" + tag, text="n°%d ✓" % i)
        check(m["seq"] == i + 1, "b got seq %r" % m)
    # A say without an id is acked without one.
    b.send({"type": "say", "room": "r" + tag, "text": "plain"})
    m = b.expect("message", seq=51)
    ack = b.expect("ack", seq=51)
    check("id" not in ack, "ack without id: %r" % ack)
    a.expect("message", seq=51, text="plain")

    # History since a seq, and a join's history since.
    b.send({"type": "history", "room": "r" + tag, "since": 48})
    h = b.expect("history", room="r" + tag)
    check([m["seq"] for m in h["messages"]] == [49, 50, 51], "history since 48: %r" % h)
    check(h["messages"][0]["text"] == "n°48 ✓", "history text: %r" % h["messages"][0])
    b.send({"type": "history", "room": "r" + tag, "since": -1})
    b.error("bad_request")

    # Direct messages.
    a.send({"type": "dm", "to": "bob" + tag, "text": "psst \"quoted\"\n"})
    d = b.expect("dm", **{"from": "alice" + tag})
    check(d["text"] == "psst \"quoted\"\n", "dm text: %r" % d)

    # rooms lists member counts.
    a.send({"type": "rooms"})
    rooms = a.expect("rooms")["rooms"]
    check({"room": "r" + tag, "members": 2} in rooms, "rooms: %r" % rooms)

    # Leave: left for the leaver, presence for the others; disconnect too.
    c = make()
    c.hello("carol" + tag)
    c.join("r" + tag, since=50)  # only the history after seq 50
    a.expect("presence", nick="carol" + tag, event="join")
    b.expect("presence", nick="carol" + tag, event="join")
    b.send({"type": "leave", "room": "r" + tag})
    b.expect("left", room="r" + tag)
    a.expect("presence", nick="bob" + tag, event="leave")
    c.expect("presence", nick="bob" + tag, event="leave")
    c.close()
    a.expect("presence", nick="carol" + tag, event="leave")
    # Once the connection is gone, its nick is free again.
    d = make()
    d.hello("carol" + tag)
    d.close()
    a.send({"type": "rooms"})
    rooms = a.expect("rooms")["rooms"]
    check({"room": "r" + tag, "members": 1} in rooms, "rooms after leaves: %r" % rooms)
    a.close()
    b.close()


def test(binary):
    srv = Chat(binary)
    with server_log_on_failure(srv):
        scenario(srv, srv.tcp, "")
        scenario(srv, srv.ws, "_ws")
        # TCP and WebSocket clients share rooms.
        t = srv.tcp("tina")
        w = srv.ws("walt")
        t.join("mixed")
        w.join("mixed")
        t.expect("presence", nick="walt")
        w.send({"type": "say", "room": "mixed", "text": "from the web"})
        t.expect("message", text="from the web", **{"from": "walt"})
        t.send({"type": "say", "room": "mixed", "text": "from tcp"})
        w.expect("message", text="from the web")
        w.expect("ack")
        w.expect("message", text="from tcp", **{"from": "tina"})
        code = srv.stop()
        check(code == 0, "exit code %d" % code)


if __name__ == "__main__":
    run(test)
