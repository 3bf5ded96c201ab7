"""A jsonl manifest carries any byte name: hash --format jsonl writes a byte
that is not UTF-8 as the lone surrogate \\udcXX, and verify (with and without
PATHs), hash --update and the other readers take it back as that byte. Names
with a newline, a backslash, a carriage return, Latin-1 bytes and an
astral-plane character; also a manifest written by Python's json module
with surrogateescape and \\u-escaped pairs, and lines that are malformed."""

import json
import os

from fp_harness import TempDir, check, expect, fp, make_tree, run

NAMES = [b"caf\xe9", b"\xff\xfe\xfd", b"mixed \xc3\xa9 and \xe9", b"\xf0\x9f\x98\x80 emoji",
         b"nl\nand\xff", b"back\\\xfe", b"cr\r\x80"]


def test(binary):
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"tree")
        files = make_tree(tree)
        os.makedirs(os.path.join(tree, b"bytes"))
        for i, name in enumerate(NAMES):
            with open(os.path.join(tree, b"bytes", name), "wb") as f:
                f.write(b"payload %d\n" % i)
        m = os.path.join(tmp, b"m.jsonl")
        h = fp(binary, "hash", "--format", "jsonl", "-a", "sha256,blake3", "tree",
               "-o", m, cwd=tmp)
        expect(h, 0, "hash --format jsonl")
        with open(m, "rb") as f:
            raw = f.read()
        raw.decode("utf-8")  # the manifest itself is valid UTF-8
        paths = [os.fsencode(json.loads(line)["path"]) for line in raw.splitlines()]
        check(len(paths) == len(files) + len(NAMES), "one line per file")
        for name in NAMES:
            check(b"tree/bytes/" + name in paths, "%r in the manifest" % name)

        # verify without PATHs, with PATHs (the sorted merge), per algorithm.
        for args in (["-m", m], ["-m", m, "tree"], ["-m", m, "-a", "blake3", "tree"],
                     ["-m", m, "-j", "1", "tree/bytes"]):
            v = fp(binary, "verify", *args, cwd=tmp)
            expect(v, 0, "verify %r" % args)
            check(v.stdout == b"", "verify %r reports nothing: %r" % (args, v.stdout))

        # A changed and a missing byte name are reported under their names.
        with open(os.path.join(tree, b"bytes", NAMES[1]), "ab") as f:
            f.write(b"changed")
        os.unlink(os.path.join(tree, b"bytes", NAMES[0]))
        v = fp(binary, "verify", "-m", m, "tree", cwd=tmp)
        expect(v, 1, "verify after a change")
        check(sorted(v.stdout.split(b"\n")[:-1]) ==
              sorted([b"tree/bytes/" + NAMES[0] + b": missing",
                      b"tree/bytes/" + NAMES[1] + b": changed"]), "reports: %r" % v.stdout)

        # --update rewrites the jsonl manifest and keeps the byte names.
        u = fp(binary, "hash", "--format", "jsonl", "-a", "sha256", "tree",
               "--update", m, cwd=tmp)
        expect(u, 0, "hash --update of a jsonl manifest")
        expect(fp(binary, "verify", "-m", m, "tree", cwd=tmp), 0, "verify after --update")

        # A manifest from another writer: Python's json with surrogateescape
        # names and \\u escapes everywhere (ensure_ascii), keys in any order,
        # extra keys and a nested value skipped.
        other = os.path.join(tmp, b"py.jsonl")
        sums = {}
        for line in fp(binary, "hash", "--format", "jsonl", "tree/bytes", cwd=tmp).stdout.splitlines():
            obj = json.loads(line)
            sums[obj["path"]] = obj["sha256"]
        with open(other, "w", encoding="ascii") as f:
            for path in sorted(sums, key=os.fsencode):
                f.write(json.dumps({"sha256": sums[path].upper(), "note": {"a": [1, "}"]},
                                   "path": path}, ensure_ascii=True) + "\n")
        v = fp(binary, "verify", "-m", other, "tree/bytes", cwd=tmp)
        expect(v, 0, "verify of a Python-written manifest")

        # Malformed lines are refused with the line number; a lone surrogate
        # that is not a byte escape (\\udc41, \\ud800) is malformed too.
        for bad in (b'{"path":"tree/x","sha256":"00"', b'{"path":"a\\udc41","sha256":"00"}',
                    b'{"path":"a\\ud800","sha256":"00"}', b'{"path":"a\\u0000","sha256":"00"}'):
            with open(os.path.join(tmp, b"bad.jsonl"), "wb") as f:
                f.write(bad + b"\n")
            r = fp(binary, "verify", "-m", "bad.jsonl", cwd=tmp)
            expect(r, 2, "malformed %r" % bad)
            check(b"bad.jsonl:1:" in r.stderr, "names the line: %r" % r.stderr)
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
