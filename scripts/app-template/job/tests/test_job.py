"""template_app as a real process on files in a temporary folder: its
options (--help, refused flags, no input, a faulty configuration file), the
report of a run (counts checked against Python's own, a missing file, a
file name that is not UTF-8, chunks smaller than a line), and SIGTERM in
the middle of a slow run (exit 143, the report says what was not done).

Standard library only; the shared helpers are in
apps/common/testing/weft_app.py.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "common", "testing"))

from weft_app import (AppProcess, app_env, check, check_bad_flags,  # noqa: E402
                      check_config_errors, check_help, run, seconds,
                      server_log_on_failure)

PROGRAM = "template_app"
OPTIONS = ["--config", "--input", "--concurrency", "--chunk-bytes",
           "--max-bytes-per-s", "--log-level", "--help"]
BAD_FLAGS = [
    (["--bogus"], "--bogus"),
    (["--concurrency", "0", "--input", "x"], "out of range"),
    (["--chunk-bytes", "lots", "--input", "x"], "--chunk-bytes"),
    ([], "no input"),
    (["stray"], "stray"),
]
BAD_CONFIGS = [
    ('{\n  "concurrency": "many"\n}\n', "2:18", "expected an integer"),
    ('{\n  "inputs": ["a"]\n}\n', "2:3", "unknown key"),
]


def run_job(binary, *args, timeout=30):
    """Runs the job to its end; returns (exit code, stdout bytes, stderr
    text). Bytes, since the log may show a path that is not UTF-8."""
    p = subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, env=app_env("warn"),
                       timeout=seconds(timeout))
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def report_of(out):
    """The report a finished run printed: one line of JSON, which must be
    valid UTF-8 (decoded strictly)."""
    lines = out.decode("utf-8").splitlines()
    check(len(lines) == 1, "expected one report line, got %r" % out)
    return json.loads(lines[0])


def expected(data):
    return {"lines": data.count(b"\n"), "words": len(data.split()), "bytes": len(data)}


def check_report_run(binary, tmp):
    contents = {
        b"poem.txt": b"one two\nthree  four\tfive\n\nsix",
        b"empty.txt": b"",
        b"caf\xe9-latin1.txt": "  d\u00e9j\u00e0 vu\r\nagain\n".encode("utf-8"),
        b"big.txt": b"the quick brown fox\n" * 5000,
    }
    paths = []
    for name, data in contents.items():
        path = os.path.join(os.fsencode(tmp), name)
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)

    # Small chunks: words and lines cross the chunk boundaries.
    args = []
    for path in paths:
        args += ["--input", os.fsdecode(path)]
    code, out, err = run_job(binary, "--concurrency", "2", "--chunk-bytes", "7", *args)
    check(code == 0, "exit %d: %s" % (code, err))
    rep = report_of(out)
    check(rep["done"] == len(paths) and rep["failed"] == 0 and rep["interrupted"] is None,
          "summary: %s" % {k: rep[k] for k in ("done", "failed", "interrupted")})
    total = {"lines": 0, "words": 0, "bytes": 0}
    for entry, (name, data) in zip(rep["files"], contents.items()):
        want = expected(data)
        got = {k: entry.get(k) for k in want}
        check(got == want, "%r: got %s, want %s" % (name, got, want))
        for k in total:
            total[k] += want[k]
    check({k: rep[k] for k in total} == total, "totals %s" % rep)
    # The name that is not UTF-8 is written with U+FFFD for its bad byte.
    check(rep["files"][2]["path"].endswith("caf\ufffd-latin1.txt"),
          "path %r" % rep["files"][2]["path"])

    # A missing file is reported, the others are still counted, exit 1.
    missing = os.path.join(tmp, "missing.txt")
    code, out, err = run_job(binary, "--input", missing, "--input", os.fsdecode(paths[0]))
    check(code == 1, "exit %d with a missing file: %s" % (code, err))
    check("cannot read" in err, "no warning about the missing file: %s" % err)
    rep = report_of(out)
    check(rep["files"][0] == {"path": missing, "error": "no such file or directory"},
          "missing file entry %s" % rep["files"][0])
    check(rep["files"][1]["words"] == expected(contents[b"poem.txt"])["words"],
          "the other file: %s" % rep["files"][1])
    check(rep["done"] == 1 and rep["failed"] == 1, "summary %s" % rep)


def check_interrupted(binary, tmp):
    slow = os.path.join(tmp, "slow.txt")
    with open(slow, "wb") as f:
        f.write(b"x\n" * 100000)
    # 200 kB at 20 kB/s: ten seconds, unless stopped.
    job = AppProcess(binary, "--input", slow, "--chunk-bytes", "1000",
                     "--max-bytes-per-s", "20000")
    with server_log_on_failure(job):
        job.wait_for(lambda: any("msg=started" in l for l in job.err_lines), 10,
                     "the started line")
        time.sleep(0.2)
        began = time.monotonic()
        code = job.stop()
        check(code == 143, "exit %d after SIGTERM, not 143" % code)
        check(time.monotonic() - began < seconds(5), "SIGTERM took too long")
        with job.lock:
            out = [l for l in job.out_lines if l.startswith("{")]
        check(len(out) == 1, "no report after SIGTERM: %r" % job.out_lines)
        rep = json.loads(out[0])
        check(rep["interrupted"] == "SIGTERM", "interrupted: %s" % rep["interrupted"])
        check(rep["files"] == [{"path": slow, "error": "not done"}], "files %s" % rep["files"])
        check(rep["done"] == 0 and rep["failed"] == 0, "summary %s" % rep)


def test(binary):
    check_help(binary, OPTIONS)
    check_bad_flags(binary, BAD_FLAGS, program=PROGRAM)
    with tempfile.TemporaryDirectory() as tmp:
        check_config_errors(binary, BAD_CONFIGS, tmp, extra_args=["--input", "x"])
        check_report_run(binary, tmp)
        check_interrupted(binary, tmp)


if __name__ == "__main__":
    run(test, PROGRAM)
