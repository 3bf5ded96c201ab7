"""Crash safety: SIGINT and SIGTERM stop a compress with exit 130 and 143
and remove its temporary files; SIGKILL mid-compress leaves no truncated
file under a final name, and --resume removes the temporary files the
crash left, skips the items the journal shows done and finishes the rest;
a SIGUSR1 prints a status line and the run goes on."""

import os
import signal
import subprocess
import time

from fp_harness import (TempDir, check, expect, fp, need, run, seconds, sh,
                        summary, temp_files, wait_until, weft_app)


def make_inputs(tree, n=24, size=1 << 20):
    os.makedirs(tree)
    for i in range(n):
        with open(os.path.join(tree, b"f%02d" % i), "wb") as f:
            f.write(os.urandom(size))


def start(binary, *args, cwd):
    argv = [os.fsencode(os.path.abspath(binary))] + [
        a if isinstance(a, bytes) else str(a).encode() for a in args]
    return subprocess.Popen(argv, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=weft_app.app_env("warn"))


def done_records(journal):
    try:
        with open(journal, "rb") as f:
            return sum(1 for line in f if line.startswith(b"D\t"))
    except FileNotFoundError:
        return 0


def outputs(tree):
    return sorted(n for n in os.listdir(tree) if n.endswith(b".gz"))


def test(binary):
    skip = need("gzip")
    if skip:
        return skip
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        with TempDir() as tmp:
            tree = os.path.join(tmp, b"t")
            make_inputs(tree)
            journal = os.path.join(tmp, b"j")
            p = start(binary, "compress", "-l", "12", "-j", "2", "--journal", journal, "t",
                      cwd=tmp)
            try:
                wait_until(lambda: done_records(journal) >= 1 or p.poll() is not None, 30,
                           "a first finished file")
                if sig == signal.SIGTERM:
                    p.send_signal(signal.SIGUSR1)
                    time.sleep(0.05)
                p.send_signal(sig)
                _out, err = p.communicate(timeout=seconds(30))
            finally:
                if p.poll() is None:
                    p.kill()
            if p.returncode == 0:
                print("note: the run ended before the signal; nothing to check")
                continue
            check(p.returncode == code, "%s: exit %d, wanted %d; %r" % (sig, p.returncode, code, err))
            if sig == signal.SIGTERM:
                check(b"status:" in err, "SIGUSR1 printed a status line: %r" % err)
            check(temp_files(tmp) == [], "%s left %r" % (sig, temp_files(tmp)))
            done = outputs(tree)
            check(0 < len(done) < 24, "stopped part-way: %d outputs" % len(done))
            if done:
                expect(sh("gzip", "-t", *[os.path.join(tree, n) for n in done]), 0,
                       "every finished output is whole")

    with TempDir() as tmp:
        tree = os.path.join(tmp, b"t")
        make_inputs(tree)
        journal = os.path.join(tmp, b"j")
        p = start(binary, "compress", "-l", "12", "-j", "2", "--journal", journal, "t", cwd=tmp)
        try:
            wait_until(lambda: done_records(journal) >= 3 or p.poll() is not None, 30,
                       "three finished files")
            p.kill()
            p.communicate(timeout=seconds(10))
        finally:
            if p.poll() is None:
                p.kill()
        finished = outputs(tree)
        check(len(finished) < 24, "SIGKILL came before the end")
        if finished:
            expect(sh("gzip", "-t", *[os.path.join(tree, n) for n in finished]), 0,
                   "no truncated file under a final name after SIGKILL")
        s = os.path.join(tmp, b"s.json")
        r = fp(binary, "compress", "-l", "12", "-j", "2", "--journal", journal, "--resume",
               "--summary-json", s, "t", cwd=tmp, timeout=60)
        expect(r, 0, "--resume")
        st = summary(s)
        check(st["files_reused"] >= 3, "finished items skipped: %s" % st)
        check(temp_files(tmp) == [], "--resume removed the crash's temporary files: %r"
              % temp_files(tmp))
        all_out = outputs(tree)
        check(len(all_out) == 24, "every file compressed after --resume: %d" % len(all_out))
        expect(sh("gzip", "-t", *[os.path.join(tree, n) for n in all_out]), 0, "gzip -t")
        for n in all_out:
            with open(os.path.join(tree, n[:-3]), "rb") as f:
                check(sh("gzip", "-dc", os.path.join(tree, n)).stdout == f.read(),
                      "round trip of %r" % n)
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
