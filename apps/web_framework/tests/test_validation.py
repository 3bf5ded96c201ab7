"""Bad input to the items resource: malformed JSON is 400 with the fault's
position, well-formed JSON that breaks a rule is 422 naming every field at
fault, bad list parameters are 400, a too-deep document is refused, and
none of it changes the store."""

from web_harness import Server, check, run, server_log_on_failure

# (body, status, fields the 422 must name)
CASES = [
    (b"", 400, None),
    (b"{", 400, None),
    (b'{"name": "tea", "price": 3,}', 400, None),
    (b"not json", 400, None),
    (b"[" * 500 + b"]" * 500, 400, None),
    (b"[]", 422, ["body"]),
    (b'"tea"', 422, ["body"]),
    (b"{}", 422, ["name", "price"]),
    (b'{"name": "tea"}', 422, ["price"]),
    (b'{"price": 1}', 422, ["name"]),
    (b'{"name": "", "price": 1}', 422, ["name"]),
    (b'{"name": 7, "price": 1}', 422, ["name"]),
    (b'{"name": null, "price": 1}', 422, ["name"]),
    (b'{"name": "' + b"x" * 101 + b'", "price": 1}', 422, ["name"]),
    (b'{"name": "tea", "price": -0.01}', 422, ["price"]),
    (b'{"name": "tea", "price": "3"}', 422, ["price"]),
    (b'{"name": "tea", "price": 1e999}', 422, ["price"]),
    (b'{"name": "tea", "price": 1, "colour": "green"}', 422, ["colour"]),
    (b'{"name": "tea", "price": 1, "id": 5}', 422, ["id"]),
    (b'{"name": "", "price": -1}', 422, ["name", "price"]),
    (b'{"name": "a", "name": "b", "price": 1}', 422, ["name"]),
    # cJSON would cut the string at the NUL and store "x".
    (b'{"name": "x\\u0000y", "price": 1}', 422, ["name"]),
    (b'{"name\\u0000": "x", "price": 1}', 422, ["name"]),
]


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        for body, status, fields in CASES:
            r = server.request("POST", "/api/items", [("Content-Type", "application/json")], body)
            check(r.status == status, "%r: %r" % (body[:60], r))
            doc = r.json()
            check(isinstance(doc.get("error"), str) and doc["error"], "%r: %r" % (body[:60], doc))
            check(doc.get("request_id") == r.header("X-Request-Id"),
                  "%r: request ids differ: %r" % (body[:60], r))
            if fields is not None:
                check(sorted(doc.get("fields", {})) == sorted(fields),
                      "%r: fields %r, expected %r" % (body[:60], doc.get("fields"), fields))

        r = server.request("POST", "/api/items", body=b'{"name": "x\\u0000y", "price": 1}')
        check("NUL" in r.json()["fields"]["name"], "the NUL is not named: %r" % r)

        # Malformed JSON names where the fault is.
        r = server.request("POST", "/api/items", body=b'{\n  "name": "tea",\n  "price": }')
        check(r.status == 400 and "line 3" in r.json()["error"], "position: %r" % r)

        # 100 characters is the limit, counted as characters, not bytes.
        name = "é" * 100
        r = server.json_request("POST", "/api/items", {"name": name, "price": 0})
        check(r.status == 201 and r.json()["name"] == name, "100 characters: %r" % r)

        # The same rules on PUT (all fields) and PATCH (what is given).
        item = r.json()
        path = "/api/items/%d" % item["id"]
        r = server.json_request("PUT", path, {"name": "only a name"})
        check(r.status == 422 and list(r.json()["fields"]) == ["price"], "put: %r" % r)
        r = server.json_request("PATCH", path, {"price": -5})
        check(r.status == 422 and list(r.json()["fields"]) == ["price"], "patch: %r" % r)
        r = server.request("PATCH", path, body=b"{oops")
        check(r.status == 400, "patch bad JSON: %r" % r)
        r = server.get(path)
        check(r.json() == item, "a refused change changed the item: %r" % r)

        for query in ["limit=0", "limit=101", "limit=abc", "limit=", "offset=-1",
                      "offset=1x", "limit=99999999999999999999999"]:
            r = server.get("/api/items?" + query)
            check(r.status == 400 and "error" in r.json(), "%s: %r" % (query, r))

        check(server.get("/api/items").json()["total"] == 1, "refused creates were stored")
        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
