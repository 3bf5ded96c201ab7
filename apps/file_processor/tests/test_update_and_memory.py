"""hash --update MANIFEST rehashes only files whose size or mtime changed
(the others keep their digests) and writes the manifest anew; peak
resident memory stays under 64 MiB when hashing, compressing and
decompressing a file far bigger than that (measured with wait4; left out
under sanitizers, whose shadow memory counts as resident)."""

import os
import subprocess
import time

from fp_harness import (TempDir, check, expect, fp, make_tree, run, sanitized,
                        sh, summary, weft_app)

LIMIT_KIB = 64 * 1024


def peak_rss_kib(binary, *args, cwd):
    argv = [os.fsencode(os.path.abspath(binary))] + [
        a if isinstance(a, bytes) else str(a).encode() for a in args]
    p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=weft_app.app_env("warn"))
    _pid, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read()
    check(os.waitstatus_to_exitcode(status) == 0, "%s failed: %r" % (args, err))
    return usage.ru_maxrss


def test(binary):
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"t")
        make_tree(tree, odd=False)
        expect(fp(binary, "hash", "t", "-o", "m", cwd=tmp), 0, "hash")
        with open(os.path.join(tmp, b"m"), "rb") as f:
            before = f.read()
        # The manifest is older than anything changed below.
        old = time.time() - 100
        os.utime(os.path.join(tmp, b"m"), (old, old))
        for dirpath, _dirs, names in os.walk(tree):
            for n in names:
                p = os.path.join(dirpath, n)
                if not os.path.islink(p):
                    os.utime(p, (old - 10, old - 10))
        with open(os.path.join(tree, b"a/x"), "wb") as f:
            f.write(b"changed")
        with open(os.path.join(tree, b"added"), "wb") as f:
            f.write(b"added")
        s = os.path.join(tmp, b"s.json")
        r = fp(binary, "hash", "--update", "m", "t", "--summary-json", s, cwd=tmp)
        expect(r, 0, "--update")
        st = summary(s)
        total = before.count(b"\n") + 1
        check(st["files"] == total, "every file in the new manifest: %s" % st)
        check(st["files_reused"] == total - 2, "only the changed and added are hashed: %s" % st)
        with open(os.path.join(tmp, b"m"), "rb") as f:
            after = f.read()
        fresh = fp(binary, "hash", "t", cwd=tmp)
        check(after == fresh.stdout, "the updated manifest equals a fresh one")
        expect(sh("sha256sum", "-c", "m", cwd=tmp), 0, "sha256sum -c of the update")

    if sanitized():
        print("note: peak memory is not measured under sanitizers")
        return 0
    with TempDir() as tmp:
        big = os.path.join(tmp, b"big")
        with open(big, "wb") as f:  # sparse: reads as zeros, costs no disk
            f.truncate(200 << 20)
        for args in (["hash", "-a", "blake3,xxh128", "--format", "jsonl", "big"],
                     ["compress", "--codec", "zstd", "-l", "1", "-j", "4", "big"],
                     ["decompress", "-j", "4", "-o", "out", "big.zst"],
                     ["compress", "-l", "1", "-j", "4", "--block-size", "8M", "-c", "big"]):
            kib = peak_rss_kib(binary, *args, cwd=tmp)
            print("%s: peak RSS %d KiB" % (" ".join(args), kib))
            check(kib < LIMIT_KIB, "%s: peak RSS %d KiB over 64 MiB" % (args, kib))
        check(os.path.getsize(os.path.join(tmp, b"out/big")) == 200 << 20, "decompressed size")
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
