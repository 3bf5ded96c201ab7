"""The items resource: JSON round trips of create, read, list with limit and
offset, replace, patch and delete; 404 for unknown ids; and a store shared
by two executors that many clients write at once without losing or
doubling an item."""

import threading

from web_harness import Server, TestFailure, check, run, seconds, server_log_on_failure


def create(server, name, price):
    r = server.json_request("POST", "/api/items", {"name": name, "price": price})
    check(r.status == 201, "create %s: %r" % (name, r))
    item = r.json()
    check(item["name"] == name and item["price"] == price, "created %r" % item)
    check(r.header("Location") == "/api/items/%d" % item["id"], "Location: %r" % r)
    return item


def round_trips(server):
    r = server.get("/api/items")
    check(r.status == 200, "empty list: %r" % r)
    check(r.json() == {"items": [], "total": 0, "limit": 20, "offset": 0}, "empty: %r" % r)

    tea = create(server, "tea", 3.5)
    cake = create(server, "cake 🍰 \"quoted\"", 0)
    check(cake["id"] > tea["id"], "ids do not grow")

    r = server.get("/api/items/%d" % cake["id"])
    check(r.status == 200 and r.json() == cake, "get: %r" % r)

    # PUT replaces every field; the id may be sent back as it was read.
    r = server.json_request("PUT", "/api/items/%d" % tea["id"],
                            {"id": tea["id"], "name": "green tea", "price": 4.25})
    check(r.status == 200 and r.json() == {"id": tea["id"], "name": "green tea", "price": 4.25},
          "put: %r" % r)
    # PATCH changes only what it names.
    r = server.json_request("PATCH", "/api/items/%d" % tea["id"], {"price": 5})
    check(r.status == 200 and r.json() == {"id": tea["id"], "name": "green tea", "price": 5},
          "patch: %r" % r)
    r = server.json_request("PATCH", "/api/items/%d" % tea["id"], {})
    check(r.status == 200 and r.json()["price"] == 5, "empty patch: %r" % r)
    r = server.get("/api/items/%d" % tea["id"])
    check(r.json() == {"id": tea["id"], "name": "green tea", "price": 5}, "after patch: %r" % r)

    for i in range(25):
        create(server, "thing %d" % i, i)
    r = server.get("/api/items")
    doc = r.json()
    check(doc["total"] == 27 and len(doc["items"]) == 20, "default page: %r" % doc)
    r = server.get("/api/items?limit=5&offset=20")
    doc = r.json()
    check(doc["total"] == 27 and doc["limit"] == 5 and doc["offset"] == 20, "page: %r" % doc)
    check([it["name"] for it in doc["items"]] == ["thing %d" % i for i in range(18, 23)],
          "page contents: %r" % doc)
    r = server.get("/api/items?offset=100")
    check(r.status == 200 and r.json()["items"] == [], "past the end: %r" % r)

    # DELETE: 204 without a body, then the item is gone.
    r = server.request("DELETE", "/api/items/%d" % cake["id"])
    check(r.status == 204 and r.body == b"", "delete: %r" % r)
    for method in ["GET", "DELETE", "PATCH", "PUT"]:
        body = b'{"name": "x", "price": 1}' if method in ("PATCH", "PUT") else None
        r = server.request(method, "/api/items/%d" % cake["id"], body=body)
        check(r.status == 404 and "error" in r.json(), "%s after delete: %r" % (method, r))
    check(server.get("/api/items").json()["total"] == 26, "total after delete")

    # Ids that are not ids.
    for bad in ["0", "-1", "abc", "1.5", "99999999999999999999"]:
        r = server.get("/api/items/" + bad)
        check(r.status in (404, 400), "id %r: %r" % (bad, r))
    r = server.get("/api/items/123456")
    check(r.status == 404 and "123456" in r.json()["error"], "unknown id: %r" % r)


def concurrent_writers(server):
    """Eight clients create 25 items each on their own connections; with two
    executors they run at the same time. Every create gets its own id."""
    before = server.get("/api/items").json()["total"]
    ids = []
    errors = []
    lock = threading.Lock()

    def writer(n):
        try:
            for i in range(25):
                r = server.json_request("POST", "/api/items",
                                        {"name": "w%d-%d" % (n, i), "price": i})
                if r.status != 201:
                    raise TestFailure("create: %r" % r)
                with lock:
                    ids.append(r.json()["id"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds(60))
    check(not errors, "writers failed: %s" % errors[:3])
    check(len(ids) == 200 and len(set(ids)) == 200, "ids are not unique: %d" % len(set(ids)))
    total = server.get("/api/items").json()["total"]
    check(total == before + 200, "total %d, expected %d" % (total, before + 200))
    # Every item reads back.
    seen = 0
    offset = 0
    while True:
        page = server.get("/api/items?limit=100&offset=%d" % offset).json()["items"]
        if not page:
            break
        seen += sum(1 for it in page if it["id"] in set(ids))
        offset += len(page)
    check(seen == 200, "listed %d of 200" % seen)


def store_limit(binary):
    server = Server(binary, "--max-items", "2")
    with server_log_on_failure(server):
        server.wait_listening()
        create(server, "a", 1)
        create(server, "b", 2)
        r = server.json_request("POST", "/api/items", {"name": "c", "price": 3})
        check(r.status == 507 and "error" in r.json(), "full store: %r" % r)
        check(server.stop() == 0, "exit code")


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        round_trips(server)
        concurrent_writers(server)
        check(server.stop() == 0, "exit code")
    store_limit(binary)


if __name__ == "__main__":
    run(test)
