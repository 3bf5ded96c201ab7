"""The walk's rules: --include/--exclude globs (name or path), --max-depth,
--no-recursive, --min-size/--max-size, --files-from with newlines or NUL
(-0), -L with a symlink loop (named, skipped, the walk goes on), several
PATHs sorted together, hidden files included."""

import os

from fp_harness import TempDir, check, expect, fp, make_tree, run, summary


def paths(result):
    return [line.split(b"  ", 1)[1] for line in result.stdout.split(b"\n")[:-1]]


def test(binary):
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"t")
        make_tree(tree, odd=False)
        h = lambda *a: fp(binary, "hash", "-j", "2", *a, cwd=tmp)  # noqa: E731

        every = paths(h("t"))
        check(b"t/.hidden" in every and b"t/a.b/.dot" in every, "hidden files are included")
        check(every == sorted(every), "sorted")

        # scan: the same files, with their sizes.
        scan = fp(binary, "scan", "t", cwd=tmp)
        expect(scan, 0, "scan")
        rows = [line.split(b"\t", 1) for line in scan.stdout.split(b"\n")[:-1]]
        check([p for _s, p in rows] == every, "scan lists what hash hashes")
        check(all(int(s) == os.path.getsize(os.path.join(tmp, p)) for s, p in rows),
              "scan's sizes")

        check(paths(h("t", "--include", "x")) == [b"t/a/x"], "--include by name")
        check(paths(h("t", "--include", "t/a/*")) == [b"t/a/b/c/deep", b"t/a/x"],
              "--include by path (fnmatch: * crosses /)")
        got = paths(h("t", "--exclude", "a", "--exclude", ".*"))
        check(got == [b"t/a-b", b"t/big", b"t/empty"], "--exclude prunes a folder: %r" % got)
        check(paths(h("t", "--max-depth", "1")) ==
              [b"t/.hidden", b"t/a-b", b"t/big", b"t/empty"], "--max-depth 1")
        check(paths(h("t", "--no-recursive")) == paths(h("t", "--max-depth", "1")),
              "--no-recursive is depth 1")
        check(paths(h("t", "--max-depth", "2")) == [b"t/.hidden", b"t/a-b", b"t/a.b/.dot",
                                                    b"t/a/x", b"t/big", b"t/empty"], "--max-depth 2")
        check(paths(h("t", "--min-size", "1K")) == [b"t/a/b/c/deep", b"t/big"], "--min-size 1K")
        check(paths(h("t", "--max-size", "3")) == [b"t/.dot" if False else b"t/a.b/.dot", b"t/empty"],
              "--max-size 3")

        # Several PATHs, given out of order, come out as one sorted list.
        got = paths(h("t/big", "t/a", "t/a-b"))
        check(got == [b"t/a-b", b"t/a/b/c/deep", b"t/a/x", b"t/big"], "PATHs sorted: %r" % got)

        # --files-from, newline and NUL separated, in the order given.
        with open(os.path.join(tmp, b"list"), "wb") as f:
            f.write(b"t/big\nt/a/x\n")
        check(paths(h("--files-from", "list")) == [b"t/big", b"t/a/x"], "--files-from")
        with open(os.path.join(tmp, b"list0"), "wb") as f:
            f.write(b"t/empty\0t/a-b\0")
        check(paths(h("--files-from", "list0", "-0")) == [b"t/empty", b"t/a-b"], "-0")
        check(paths(fp(binary, "hash", "--files-from", "-", cwd=tmp, input=b"t/big\n")) ==
              [b"t/big"], "--files-from -")

        # -L with a loop: named, skipped, everything else hashed.
        os.symlink(b"..", os.path.join(tree, b"a/up"))
        s = os.path.join(tmp, b"s.json")
        loop = fp(binary, "hash", "-L", "t", "--summary-json", s, cwd=tmp)
        expect(loop, 0, "-L with a loop")
        check(b"loop" in loop.stderr, "the loop is named: %r" % loop.stderr)
        check(summary(s)["files"] == len(every) + 1, "-L: every file and the link's target")
        nol = fp(binary, "hash", "t", "--summary-json", s, cwd=tmp)
        check(summary(s)["skipped_links"] == 2, "without -L both links are skipped")
        expect(nol, 0, "links skipped")
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
