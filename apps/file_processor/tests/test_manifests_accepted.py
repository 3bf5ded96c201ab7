"""hash writes what sha256sum, md5sum and b3sum write, byte for byte, odd
names included, sorted by path whatever -j; their -c modes accept it; bsd
lines are accepted by sha256sum -c too; jsonl is valid UTF-8 JSON with
undecodable name bytes as \\udcXX; symlinks are skipped unless -L."""

import json
import os

from fp_harness import (TempDir, check, expect, fp, make_tree, need, run, sh,
                        summary)


def sorted_files(files, cwd):
    return sorted(os.path.relpath(f, cwd) for f in files)


def test(binary):
    skip = need("sha256sum", "md5sum", "b3sum")
    if skip:
        return skip
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"tree")
        files = make_tree(tree)
        rel = sorted_files(files, tmp)

        # sum format: identical to sha256sum over the same sorted list.
        want = sh("sha256sum", "--", *rel, cwd=tmp).stdout
        for jobs in ("1", "4"):
            got = fp(binary, "hash", "-j", jobs, "tree", cwd=tmp)
            expect(got, 0, "hash -j" + jobs)
            check(got.stdout == want, "hash -j%s differs from sha256sum:\n%r\n%r"
                  % (jobs, got.stdout, want))
        got = fp(binary, "hash", "--order", "any", "-j", "4", "tree", cwd=tmp)
        check(sorted(got.stdout.split(b"\n")) == sorted(want.split(b"\n")),
              "--order any: not the same lines")

        # -o MANIFEST, then sha256sum -c in the same folder.
        s = os.path.join(tmp, b"summary.json")
        expect(fp(binary, "hash", "tree", "-o", "m.sha256", "--summary-json", s,
                  cwd=tmp), 0, "hash -o")
        st = summary(s)
        check(st["files"] == len(files), "summary files %d, made %d" % (st["files"], len(files)))
        check(st["skipped_links"] == 1, "the symlink is counted as skipped: %s" % st)
        expect(sh("sha256sum", "--strict", "-c", "m.sha256", cwd=tmp), 0, "sha256sum -c")

        # md5 and bsd (--tag) lines.
        m = fp(binary, "hash", "-a", "md5", "tree", cwd=tmp)
        check(m.stdout == sh("md5sum", "--", *rel, cwd=tmp).stdout, "md5 differs from md5sum")
        expect(sh("md5sum", "--strict", "-c", cwd=tmp, input=m.stdout), 0, "md5sum -c")
        bsd = fp(binary, "hash", "--format", "bsd", "tree", cwd=tmp)
        check(bsd.stdout == sh("sha256sum", "--tag", "--", *rel, cwd=tmp).stdout,
              "bsd differs from sha256sum --tag")
        expect(sh("sha256sum", "--strict", "-c", cwd=tmp, input=bsd.stdout), 0,
               "sha256sum -c of bsd lines")

        # Standard input, as sha256sum - reads it.
        data = os.urandom(100000)
        check(fp(binary, "hash", "-", input=data).stdout ==
              sh("sha256sum", "-", input=data).stdout, "hash - equals sha256sum -")

        # -L: the symlink's target is hashed under the link's name.
        withlink = fp(binary, "hash", "-L", "tree", cwd=tmp)
        check(b"  tree/link\n" in withlink.stdout, "-L hashes the link")

        # jsonl: valid UTF-8, one key per algorithm, names recoverable.
        j = fp(binary, "hash", "--format", "jsonl", "-a", "sha256,blake3,xxh128",
               "tree", cwd=tmp)
        expect(j, 0, "jsonl")
        lines = j.stdout.decode("utf-8").splitlines()  # raises if not UTF-8
        check(len(lines) == len(files), "one jsonl line per file")
        paths = []
        for line in lines:
            obj = json.loads(line)
            check(set(obj) == {"path", "size", "sha256", "blake3", "xxh128"}, "keys: %s" % obj)
            paths.append(os.fsencode(obj["path"]))
            check(obj["size"] == os.path.getsize(os.path.join(tmp, paths[-1])), "size")
        check(paths == rel, "jsonl paths (surrogate-escaped) come back as the names")

    # b3sum cannot check names that are not UTF-8: a tree without them.
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"tree")
        files = make_tree(tree, utf8_only=True)
        rel = sorted_files(files, tmp)
        b3 = fp(binary, "hash", "-a", "blake3", "-j", "3", "tree", cwd=tmp)
        check(b3.stdout == sh("b3sum", "--", *rel, cwd=tmp).stdout, "blake3 differs from b3sum")
        expect(sh("b3sum", "-c", cwd=tmp, input=b3.stdout), 0, "b3sum -c")
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
