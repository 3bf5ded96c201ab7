"""The command line: --help and --version exit 0; a missing or unknown
command, an unknown flag, a bad value or a bad combination exits 2 naming
it; a faulty --config file exits 2 naming the file and line:column; the
shipped config.json loads and flags override it; short flags combine."""

import os

from fp_harness import TempDir, check, expect, fp, run

HERE = os.path.dirname(os.path.abspath(__file__))

BAD = [
    ([], b"a command comes first"),
    (["frobnicate", "x"], b"unknown command \"frobnicate\""),
    (["hash", "--bogus", "x"], b"--bogus"),
    (["hash", "-Q", "x"], b"-Q"),
    (["hash", "-a", "sha3", "x"], b"sha3"),
    (["hash", "-a", "sha256,md5", "x"], b"--format sum"),
    (["hash", "--format", "xml", "x"], b"xml"),
    (["hash", "-j", "9999", "x"], b"range"),
    (["hash", "--min-size", "lots", "x"], b"lots"),
    (["hash"], b"no PATH"),
    (["verify", "x"], b"-m MANIFEST"),
    (["compress", "--codec", "lzma", "x"], b"lzma"),
    (["compress", "-c", "-o", "d", "x"], b"exclude each other"),
    (["compress", "--resume", "x"], b"--journal"),
    (["compress", "--block-size", "9M", "x"], b"--block-size"),
]

CONFIGS = [
    (b'{\n  "jobs": 2,,\n}\n', b"2:13", b"invalid"),
    (b'{\n  "algoritms": "md5"\n}\n', b"2:3", b"algoritms"),
    (b'{\n  "jobs": "many"\n}\n', b"2:11", b"integer"),
    (b'{\n  "block_size": "huge"\n}\n', b"2:17", b"huge"),
]


def test(binary):
    h = fp(binary, "--help")
    expect(h, 0, "--help")
    for word in (b"hash", b"verify", b"compress", b"decompress", b"scan", b"--algorithms",
                 b"--journal", b"--resume", b"--update", b"--summary-json", b"-j N"):
        check(word in h.stdout, "--help mentions %r" % word)
    v = fp(binary, "--version")
    expect(v, 0, "--version")
    check(v.stdout.startswith(b"file_processor "), "--version: %r" % v.stdout)

    for args, needle in BAD:
        r = fp(binary, *args)
        expect(r, 2, " ".join(args))
        check(needle in r.stderr, "%s: %r does not mention %r" % (args, r.stderr, needle))
        check(r.stderr.startswith(b"file_processor: "), "message names the program")

    with TempDir() as tmp:
        for i, (text, where, word) in enumerate(CONFIGS):
            path = os.path.join(tmp, b"bad%d.json" % i)
            with open(path, "wb") as f:
                f.write(text)
            r = fp(binary, "hash", "--config", path, "x")
            expect(r, 2, "config case %d" % i)
            check(path + b":" + where + b":" in r.stderr, "names %s:%s: %r" % (path, where, r.stderr))
            check(word in r.stderr, "mentions %r: %r" % (word, r.stderr))
        missing = os.path.join(tmp, b"missing.json")
        r = fp(binary, "hash", "--config", missing, "x")
        expect(r, 2, "a missing config")
        check(missing in r.stderr, "names the missing file")

        # The shipped file loads; a flag overrides it; -Lj2 combines.
        with open(os.path.join(tmp, b"f"), "wb") as f:
            f.write(b"abc")
        shipped = os.path.join(HERE, "..", "config.json")
        r = fp(binary, "hash", "--config", shipped, "-a", "md5", "f", cwd=tmp)
        expect(r, 0, "the shipped config")
        check(r.stdout == b"900150983cd24fb0d6963f7d28e17f72  f\n", "md5 of abc: %r" % r.stdout)
        r = fp(binary, "hash", "-Lj2", "-amd5", "--", "f", cwd=tmp)
        expect(r, 0, "combined short flags")
        check(r.stdout == b"900150983cd24fb0d6963f7d28e17f72  f\n", "combined: %r" % r.stdout)
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
