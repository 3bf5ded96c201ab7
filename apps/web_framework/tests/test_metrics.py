"""/metrics answers Prometheus text whose request counters grow with the
requests served, per route (unmatched ones apart) and per status class,
next to the runtime's own metrics; /healthz is ok; SIGUSR1 prints the
connection stats as JSON."""

import re

from web_harness import Server, check, run, server_log_on_failure

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def samples(text):
    """[(name, labels text, value)] of every sample line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, "not a Prometheus sample line: %r" % line)
        out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out


def value(text, name, label_part):
    """The sum of the samples of metric name whose labels hold label_part."""
    return sum(v for n, labels, v in samples(text) if n == name and label_part in labels)


def test(binary):
    server = Server(binary)
    with server_log_on_failure(server):
        server.wait_listening()
        r = server.get("/metrics")
        check(r.status == 200, "metrics: %r" % r)
        check((r.header("Content-Type") or "").startswith("text/plain"), "type: %r" % r)
        before = r.body.decode()
        samples(before)

        for _ in range(7):
            check(server.get("/plaintext").status == 200, "plaintext")
        for _ in range(3):
            check(server.get("/nope").status == 404, "404")
        check(server.json_request("POST", "/api/items", {"name": "m", "price": 1}).status == 201,
              "create")

        after = server.get("/metrics").body.decode()
        requests = "wf_http_requests_total"

        def grew(label_part):
            return value(after, requests, label_part) - value(before, requests, label_part)
        check(grew('route="GET /plaintext"') == 7, "plaintext not counted 7 times:\n%s" % after)
        check(grew('route="POST /api/items"') == 1, "create not counted:\n%s" % after)
        check(grew('route="unmatched"') == 3, "404s not counted:\n%s" % after)
        responses = "wf_http_responses_total"
        check(value(after, responses, '"4xx"') - value(before, responses, '"4xx"') == 3,
              "4xx answers not counted:\n%s" % after)
        check(value(after, responses, '"2xx"') >= 9, "2xx answers not counted:\n%s" % after)
        check(any(name.startswith("wf_http_request_duration") for name, _, _ in samples(after)),
              "no latency summaries:\n%s" % after[:2000])
        check(any(name.startswith("weft_") for name, _, _ in samples(after)),
              "no runtime metrics:\n%s" % after[:2000])

        r = server.get("/healthz")
        check(r.status == 200 and r.json() == {"status": "ok"}, "healthz: %r" % r)

        # SIGUSR1 prints the stats JSON, which names the application.
        st = server.stats(5)
        check(st.get("app") == "web_framework" and st.get("accepted", 0) >= 12,
              "stats: %r" % st)
        check(server.stop() == 0, "exit code")


if __name__ == "__main__":
    run(test)
