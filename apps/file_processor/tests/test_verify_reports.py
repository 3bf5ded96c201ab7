"""verify reports changed, missing and (with PATHs) new files, exits 1 when
any, 0 when all match, 2 when nothing was checked or the manifest is bad;
--ignore-missing; manifests written by sha256sum and b3sum are read, with
the algorithm from -a or from the digest length."""

import os

from fp_harness import TempDir, check, expect, fp, make_tree, need, run, sh


def lines(result):
    return sorted(result.stdout.split(b"\n")[:-1])


def test(binary):
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"tree")
        make_tree(tree)
        expect(fp(binary, "hash", "tree", "-o", "m", cwd=tmp), 0, "hash")
        ok = fp(binary, "verify", "-m", "m", cwd=tmp)
        expect(ok, 0, "verify of an untouched tree")
        check(ok.stdout == b"", "nothing reported: %r" % ok.stdout)
        expect(fp(binary, "verify", "-m", "m", "tree", "-j", "3", cwd=tmp), 0,
               "verify with PATHs")

        with open(os.path.join(tree, b"a/x"), "ab") as f:
            f.write(b"more")
        os.unlink(os.path.join(tree, b"odd/new\nline"))
        with open(os.path.join(tree, b"a/new file"), "wb") as f:
            f.write(b"new")

        bad = fp(binary, "verify", "-m", "m", "tree", cwd=tmp)
        expect(bad, 1, "verify after changes")
        check(lines(bad) == sorted([b"tree/a/x: changed", b"tree/odd/new\\nline: missing",
                                    b"tree/a/new file: new"]), "reports: %r" % bad.stdout)
        check(b"1 changed, 1 missing, 1 new" in bad.stderr, "summary: %r" % bad.stderr)

        # Without PATHs new files are not looked for.
        nopaths = fp(binary, "verify", "-m", "m", cwd=tmp)
        expect(nopaths, 1, "verify without PATHs")
        check(lines(nopaths) == sorted([b"tree/a/x: changed", b"tree/odd/new\\nline: missing"]),
              "reports without PATHs: %r" % nopaths.stdout)

        # --ignore-missing: only the change counts.
        im = fp(binary, "verify", "-m", "m", "--ignore-missing", cwd=tmp)
        expect(im, 1, "--ignore-missing")
        check(lines(im) == [b"tree/a/x: changed"], "--ignore-missing: %r" % im.stdout)

        # Nothing checked, a malformed line, a missing manifest: exit 2.
        open(os.path.join(tmp, b"empty"), "wb").close()
        expect(fp(binary, "verify", "-m", "empty", cwd=tmp), 2, "empty manifest")
        with open(os.path.join(tmp, b"junk"), "wb") as f:
            f.write(b"not a manifest line\n")
        junk = fp(binary, "verify", "-m", "junk", cwd=tmp)
        expect(junk, 2, "malformed manifest")
        check(b"junk:1:" in junk.stderr, "names the line: %r" % junk.stderr)
        expect(fp(binary, "verify", "-m", "nope", cwd=tmp), 2, "no manifest")

        # Unsorted manifest with PATHs is refused; without PATHs it is fine.
        with open(os.path.join(tmp, b"m"), "rb") as f:
            content = f.read().split(b"\n")[:-1]
        with open(os.path.join(tmp, b"rev"), "wb") as f:
            f.write(b"\n".join(reversed(content)) + b"\n")
        expect(fp(binary, "verify", "-m", "rev", "tree", cwd=tmp), 2, "unsorted with PATHs")
        expect(fp(binary, "verify", "-m", "rev", cwd=tmp), 1, "unsorted without PATHs")

    skip = need("b3sum", "md5sum")
    if skip:
        return skip
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"tree")
        files = sorted(os.path.relpath(f, tmp) for f in make_tree(tree, odd=False))
        with open(os.path.join(tmp, b"m.b3"), "wb") as f:
            f.write(sh("b3sum", "--", *files, cwd=tmp).stdout)
        with open(os.path.join(tmp, b"m.md5"), "wb") as f:
            f.write(sh("md5sum", "--", *files, cwd=tmp).stdout)
        expect(fp(binary, "verify", "-a", "blake3", "-m", "m.b3", "tree", cwd=tmp), 0,
               "b3sum's manifest")
        expect(fp(binary, "verify", "-m", "m.md5", cwd=tmp), 0, "md5sum's manifest (32 hex)")
        with open(os.path.join(tree, b"empty"), "wb") as f:
            f.write(b"now full")
        expect(fp(binary, "verify", "-a", "blake3", "-m", "m.b3", cwd=tmp), 1,
               "b3sum's manifest after a change")
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
