"""--on-error skip (the default): an unreadable file, a path that does not
exist (a file that vanished between the listing and the read) and a
dangling link under -L are each named on stderr, the rest is processed,
the exit code is 2; --on-error stop stops at the first and leaves no
manifest behind."""

import os

from fp_harness import TempDir, check, expect, fp, make_tree, run


def unreadable(tree):
    """Makes a file the process cannot read: mode 000 for a user, and for
    root (who reads anything) a link to /proc/self/mem, whose first page
    fails to read with EIO. Returns (name, needs -L)."""
    if os.geteuid() != 0:
        path = os.path.join(tree, b"secret")
        with open(path, "wb") as f:
            f.write(b"secret")
        os.chmod(path, 0)
        return b"t/secret", False
    os.symlink(b"/proc/self/mem", os.path.join(tree, b"secret"))
    return b"t/secret", True


def test(binary):
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"t")
        make_tree(tree, odd=False)
        os.unlink(os.path.join(tree, b"link"))
        name, follow = unreadable(tree)
        extra = ["-L"] if follow else []
        r = fp(binary, "hash", "t", *extra, cwd=tmp)
        expect(r, 2, "an unreadable file")
        check(name in r.stderr, "the path is named: %r" % r.stderr)
        check(b"  t/big\n" in r.stdout and b"  t/empty\n" in r.stdout, "the rest is hashed")
        check(name not in r.stdout, "no line for the unreadable file")

        # A vanished file: listed, gone before it is read.
        with open(os.path.join(tmp, b"list"), "wb") as f:
            f.write(b"t/big\nt/gone\nt/empty\n")
        v = fp(binary, "hash", "--files-from", "list", cwd=tmp)
        expect(v, 2, "a vanished file")
        check(b"t/gone" in v.stderr and b"no such file" in v.stderr.lower(),
              "named with the reason: %r" % v.stderr)
        check(v.stdout.count(b"\n") == 2, "the other two are hashed")

        # A dangling link under -L.
        os.symlink(b"nowhere", os.path.join(tree, b"dangling"))
        d = fp(binary, "hash", "-L", "t", "--exclude", "secret", cwd=tmp)
        expect(d, 2, "a dangling link under -L")
        check(b"t/dangling" in d.stderr, "named: %r" % d.stderr)

        # --on-error stop: exit 2, and -o leaves no partial manifest.
        s = fp(binary, "hash", "t", *extra, "--on-error", "stop", "-o", "m", cwd=tmp)
        expect(s, 2, "--on-error stop")
        check(not os.path.exists(os.path.join(tmp, b"m")), "no manifest after a stop")
        check(not any(b"fp-tmp" in n for n in os.listdir(tmp)), "no temporary file left")
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
