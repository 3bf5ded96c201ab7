"""--resume holds the journal's finished items in bounded memory: up to
--journal-memory bytes in a sorted array, a longer journal sorted into runs
in an unlinked temporary file and merged against the walk. The results are
the same either way: in memory, with a run per record (--journal-memory 1),
with several runs a path appears in (a file changed and redone after a
resume), with --order any, and with --files-from in reverse order (the
cursors rewind), and an empty journal resumes as a fresh run. A journal of 300,000 records resumes in far less memory
than it would take as a table (measured with wait4; not under sanitizers)."""

import os
import random

from fp_harness import (TempDir, check, expect, fp, make_tree, run, sanitized,
                        summary, temp_files, weft_app)
from test_update_and_memory import peak_rss_kib

RECORDS = 300000
LIMIT_KIB = 40 * 1024  # as a table (over 100 B an item) it took tens of MiB more


def test(binary):
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"t")
        files = make_tree(tree)
        os.makedirs(os.path.join(tree, b"many"))
        for i in range(40):
            path = os.path.join(tree, b"many", b"f%03d" % i)
            with open(path, "wb") as f:
                f.write(b"file %d\n" % i)
            files.append(path)
        fresh = fp(binary, "hash", "-a", "sha256,md5", "--format", "bsd", "t", cwd=tmp)
        expect(fresh, 0, "hash")
        journal = os.path.join(tmp, b"j")
        expect(fp(binary, "hash", "-a", "sha256,md5", "--format", "bsd", "t", "--journal", journal, cwd=tmp),
               0, "hash --journal")

        # Two files change: the next resume redoes them and records them
        # again, so their paths are in two runs of the journal.
        for name in (b"a/x", b"many/f007"):
            with open(os.path.join(tree, name), "ab") as f:
                f.write(b"changed")
        changed = fp(binary, "hash", "-a", "sha256,md5", "--format", "bsd", "t", cwd=tmp).stdout

        def resume(*extra, want_reused):
            s = os.path.join(tmp, b"s.json")
            r = fp(binary, "hash", "-a", "sha256,md5", "--format", "bsd", "t", "--journal", journal, "--resume",
                   "--summary-json", s, *extra, cwd=tmp)
            expect(r, 0, "--resume %r" % (extra,))
            st = summary(s)
            check(st["files_reused"] == want_reused,
                  "--resume %r reused %s, wanted %d" % (extra, st["files_reused"], want_reused))
            return r.stdout

        # A journal with no finished items (empty: the earlier run died
        # before its first) resumes as a fresh run; its empty table is not
        # sorted.
        empty = os.path.join(tmp, b"empty")
        open(empty, "wb").close()
        s = os.path.join(tmp, b"s.json")
        r = fp(binary, "hash", "-a", "sha256,md5", "--format", "bsd", "t", "--journal", empty, "--resume",
               "--summary-json", s, cwd=tmp)
        expect(r, 0, "--resume of an empty journal")
        check(summary(s)["files_reused"] == 0, "an empty journal reuses nothing: %s" % summary(s))
        check(r.stdout == changed, "--resume of an empty journal equals a fresh hash")

        n = len(files)
        out = resume(want_reused=n - 2)
        check(out == changed, "--resume (in memory) equals a fresh hash")
        # Now every path is done with its current size and mtime.
        for extra in ([], ["--journal-memory", "1"], ["--journal-memory", "300"],
                      ["--journal-memory", "1", "--order", "any", "-j", "3"]):
            out = resume(*extra, want_reused=n)
            if "any" not in extra:
                check(out == changed, "--resume %r equals a fresh hash" % (extra,))
            else:
                check(sorted(out.split(b"\n")) == sorted(changed.split(b"\n")),
                      "--resume --order any: the same lines")

        # --files-from in reverse order: lookups go backwards.
        listing = os.path.join(tmp, b"list")
        with open(listing, "wb") as f:
            f.write(b"\0".join(sorted((os.path.relpath(p, tmp) for p in files), reverse=True)))
        s = os.path.join(tmp, b"s.json")
        r = fp(binary, "hash", "-a", "sha256,md5", "--format", "bsd", "--files-from", listing, "-0",
               "--journal", journal, "--resume", "--journal-memory", "1",
               "--summary-json", s, cwd=tmp)
        expect(r, 0, "--files-from in reverse with runs")
        check(summary(s)["files_reused"] == len(files),
              "reverse --files-from reused every file: %s" % summary(s))
        check(temp_files(tmp) == [], "the runs' file is not left behind")

    if sanitized():
        print("note: peak memory is not measured under sanitizers")
        return 0
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"t")
        make_tree(tree, odd=False)
        journal = os.path.join(tmp, b"j")
        expect(fp(binary, "hash", "t", "--journal", journal, cwd=tmp), 0, "hash --journal")
        with open(journal, "rb") as f:
            real = [line for line in f.read().split(b"\n") if line.startswith(b"D\t")]
        # Written as it is made: a list of the lines in this process would
        # count in the child's peak (ru_maxrss includes the time before exec).
        rng = random.Random(7)
        at = {rng.randrange(RECORDS): line for line in real}
        with open(journal, "wb") as f:
            for i in range(RECORDS):
                if i in at:
                    f.write(at[i] + b"\n")
                f.write(b"D\t%d\t%d\t%064x\tother/dir%03d/file-%07d\n" %
                        (rng.randrange(1 << 20), rng.randrange(1 << 60), rng.getrandbits(256),
                         i % 997, i))
        lines = RECORDS + len(at)
        kib = peak_rss_kib(binary, "hash", "t", "--journal", journal, "--resume",
                           "--summary-json", "s.json", cwd=tmp)
        print("--resume with %d records: peak RSS %d KiB" % (lines, kib))
        check(kib < LIMIT_KIB, "--resume of %d records: peak RSS %d KiB" % (lines, kib))
        st = summary(os.path.join(tmp, b"s.json"))
        check(st["files_reused"] == len(at), "every real file reused: %s" % st)
        check(temp_files(tmp) == [], "the runs' file is not left behind")
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
