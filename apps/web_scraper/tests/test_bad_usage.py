"""Bad usage exits 2 with a message naming the fault: malformed seeds (on
the command line and in --input files, with the line), bad flags and
values, bad XPath and regular expressions, faulty configuration and rules
files (file:line:column); --help and --version exit 0; the shipped
config.json loads."""

import os
import tempfile

from scraper_harness import (Site, check, check_bad_flags, check_config_errors, check_help,
                             crawl, html, run, run_binary)

HERE = os.path.dirname(os.path.abspath(__file__))

SEED = "http://127.0.0.1:1/"

FLAGS = [
    ([], "no seed URLs"),
    (["not a url"], "malformed seed URL \"not a url\""),
    (["ftp://example.com/"], "malformed seed URL"),
    (["http://"], "malformed seed URL"),
    (["http://example.com:70000/"], "malformed seed URL"),
    (["mailto:a@example.com"], "malformed seed URL"),
    (["--concurrency", "0", SEED], "--concurrency"),
    (["--per-host", "x", SEED], "--per-host"),
    (["--delay", "soon", SEED], "duration"),
    (["--rate", "fast", SEED], "rate"),
    (["--max-depth", "-2", SEED], "range"),
    (["--bogus", SEED], "unknown option --bogus"),
    (["--extract", "noequals", SEED], "NAME=XPATH"),
    (["--extract", "x=//a[", SEED], "--extract"),
    (["--allow", "(", SEED], "--allow: bad regular expression"),
    (["--deny", "a{1", SEED], "--deny: bad regular expression"),
    (["--input", "/nonexistent/seeds.txt"], "/nonexistent/seeds.txt"),
    (["--rules", "/nonexistent/rules.json", SEED], "/nonexistent/rules.json"),
    (["--timeout"], "needs a value"),
]

CONFIG = [
    ('{\n  "concurrency": 16,,\n}\n', "2:21", "invalid"),
    ('{\n  "concurency": 16\n}\n', "2:3", "concurency"),
    ('{\n  "per_host": "two"\n}\n', "2:15", "integer"),
    ('{\n  "timeout": "forever"\n}\n', "2:14", "duration"),
    ('{\n  "max_depth": -5\n}\n', "2:16", "range"),
]


def test(binary):
    check_bad_flags(binary, FLAGS, program="web_scraper", quiet_stdout=True, log_level="warn")
    with tempfile.TemporaryDirectory() as tmp:
        check_config_errors(binary, CONFIG, tmp, extra_args=[SEED], log_level="warn")
        seeds = os.path.join(tmp, "seeds.txt")
        with open(seeds, "w") as f:
            f.write("http://127.0.0.1:1/\n\n# a comment\nhttp//broken\n")
        p = crawl(binary, "--input", seeds)
        check(p.code == 2 and "seeds.txt:4: malformed seed URL" in p.stderr, "input: %r" % p)
        rules = os.path.join(tmp, "rules.json")
        for text, needle in [('{"rules": [{"pattern": "(", "fields": {}}]}', "rule 1: bad pattern"),
                             ('{"rules": [{"fields": {}}]}', "needs a \"pattern\""),
                             ('{"rules": [{"pattern": "x", "fields": {"a": "//["}}]}',
                              "field \"a\""),
                             ('{"rules": [{"pattern": "x", "follw": true}]}', "unknown key"),
                             ('{"rules": [\n  {"pattern": "x"},,\n]}', "rules.json:2:")]:
            with open(rules, "w") as f:
                f.write(text)
            p = crawl(binary, "--rules", rules, SEED)
            check(p.code == 2 and needle in p.stderr, "rules %r: %r" % (text, p))
    p = run_binary(binary, "--redis", "127.0.0.1:1", "--job", "j", "--claim-timeout", "500ms",
                   SEED, log_level="warn")
    check(p.returncode == 2 and ("--claim-timeout: at least 1s" in p.stderr or
                                 "no Redis" in p.stderr), "--claim-timeout 500ms: %r" % p)
    v = run_binary(binary, "--version", log_level="warn")
    check(v.returncode == 0 and v.stdout.startswith("web_scraper "), "--version: %r" % v)
    check_help(binary, ["--max-depth", "--per-host", "--extract", "--rules", "--state",
                        "--user-agent", "--ignore-robots"], log_level="warn")

    # The shipped file loads; flags override it.
    pages = {"/robots.txt": {"ctype": "text/plain", "body": ""},
             "/": {"body": html("shipped")}}
    with Site([pages]) as site:
        c = crawl(binary, "--config", os.path.join(HERE, "..", "config.json"),
                  "--concurrency", "4", site.url("/"))
        check(c.code == 0 and c.records[0]["title"] == "shipped", "shipped config: %r" % c)


if __name__ == "__main__":
    run(test)
