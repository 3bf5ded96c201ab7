"""compress and decompress: gzip and zstd outputs that gzip -t and zstd -t
accept, files bigger than --block-size as several members or frames (which
gzip -d and zstd -d read whole), byte-for-byte round trips through our own
decompress and the Debian tools, -o DIR at the same relative paths, -c,
--rm, -l, files compressed by pigz and zstd, and no temporary file left."""

import os

from fp_harness import (TempDir, check, expect, fp, make_tree, need, run, sh,
                        temp_files)


def originals(root):
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root)] = f.read()
    return out


def test(binary):
    skip = need("gzip", "zstd")
    if skip:
        return skip
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"t")
        make_tree(tree)
        text = b"".join(b'{"n":%d,"msg":"line %d of a log"}\n' % (i, i % 97)
                        for i in range(20000))
        with open(os.path.join(tree, b"log.jsonl"), "wb") as f:
            f.write(text)
        want = originals(tree)

        for codec, suffix, tester in (("gzip", b".gz", "gzip"), ("zstd", b".zst", "zstd")):
            out = os.path.join(tmp, b"out-" + codec.encode())
            r = fp(binary, "compress", "--codec", codec, "--block-size", "64K", "-j", "3",
                   "-o", out, "t", cwd=tmp)
            expect(r, 0, "compress " + codec)
            produced = []
            for rel in want:
                path = os.path.join(out, b"t", rel + suffix)
                check(os.path.exists(path), "%s: no %r" % (codec, path))
                produced.append(path)
            expect(sh(tester, "-t", "-q", *produced), 0, tester + " -t")
            for rel, data in want.items():
                dec = sh(tester, "-dc", os.path.join(out, b"t", rel + suffix))
                check(dec.stdout == data, "%s -dc of %r differs" % (tester, rel))
            # Several blocks: the big file is more than one member/frame.
            with open(os.path.join(out, b"t/big" + suffix), "rb") as f:
                blob = f.read()
            magic = b"\x1f\x8b\x08" if codec == "gzip" else b"\x28\xb5\x2f\xfd"
            check(blob.count(magic) >= 4, "%s: big is cut into blocks" % codec)

            back = os.path.join(tmp, b"back-" + codec.encode())
            expect(fp(binary, "decompress", "-o", back, "-j", "2", b"out-" + codec.encode(),
                      cwd=tmp), 0, "decompress " + codec)
            got = originals(os.path.join(back, b"out-" + codec.encode(), b"t"))
            check(got == want, "%s round trip differs" % codec)
            check(temp_files(tmp) == [], "temporary files left: %r" % temp_files(tmp))

        # -c to standard output, in order, and -l.
        c = fp(binary, "compress", "-c", "-l", "9", "t/log.jsonl", "t/big", cwd=tmp)
        expect(c, 0, "compress -c")
        check(sh("gzip", "-dc", input=c.stdout).stdout == want[b"big"] + text,
          "-c: both files in path order")
        g1 = fp(binary, "compress", "-l", "1", "-c", "t/log.jsonl", cwd=tmp)
        g12 = fp(binary, "compress", "-l", "12", "-c", "t/log.jsonl", cwd=tmp)
        check(len(g12.stdout) < len(g1.stdout), "gzip -l 12 compresses more than -l 1")
        z19 = fp(binary, "compress", "--codec", "zstd", "-l", "19", "-c", "t/log.jsonl", cwd=tmp)
        check(sh("zstd", "-dc", input=z19.stdout).stdout == text, "zstd -l 19")

        # Standard input: compressed as a stream of blocks, decompressed as
        # one stream, both to standard output.
        zin = fp(binary, "compress", "--codec", "zstd", "--block-size", "16K", "-", input=text)
        expect(zin, 0, "compress -")
        check(zin.stdout.count(b"\x28\xb5\x2f\xfd") > 1, "standard input in several frames")
        back = fp(binary, "decompress", "-", input=zin.stdout)
        check(back.stdout == text, "decompress - round trip")

        # Corrupt and truncated inputs: named, exit 2, nothing left behind.
        with open(os.path.join(tmp, b"out-gzip/t/big.gz"), "rb") as f:
            whole = f.read()
        bad_dir = os.path.join(tmp, b"bad")
        os.makedirs(bad_dir)
        with open(os.path.join(bad_dir, b"cut.gz"), "wb") as f:
            f.write(whole[:len(whole) // 2])
        with open(os.path.join(bad_dir, b"junk.zst"), "wb") as f:
            f.write(b"this is not zstd at all")
        # Whole members, one with a byte of its deflate data changed (past
        # the 24-byte header): the inflate or the CRC must refuse it.
        flipped = bytearray(whole)
        flipped[len(whole) // 2] ^= 0x55
        with open(os.path.join(bad_dir, b"flip.gz"), "wb") as f:
            f.write(flipped)
        # A small --block-size sends the .gz files through the block engine
        # (their members decompressed in parallel), not the one-piece path.
        bad = fp(binary, "decompress", "--block-size", "4K", "bad", cwd=tmp)
        expect(bad, 2, "corrupt inputs")
        check(all(b"bad/%s: corrupt" % n in bad.stderr for n in (b"cut.gz", b"flip.gz", b"junk.zst")),
              "all three named: %r" % bad.stderr)
        check(sorted(os.listdir(bad_dir)) == [b"cut.gz", b"flip.gz", b"junk.zst"],
              "no output and no temporary file: %r" % os.listdir(bad_dir))

        # zstd frames of very different sizes (zeros, then random bytes):
        # decompress reads about the last frame's size at a time, and a
        # frame longer than that is still read whole.
        mixed = bytes(300000) + os.urandom(300000) + bytes(200000) + os.urandom(100000)
        os.makedirs(os.path.join(tmp, b"mixed"))
        with open(os.path.join(tmp, b"mixed/m"), "wb") as f:
            f.write(mixed)
        expect(fp(binary, "compress", "--codec", "zstd", "--block-size", "64K", "mixed/m",
                  cwd=tmp), 0, "compress mixed")
        back = fp(binary, "decompress", "--block-size", "4K", "-c", "mixed/m.zst", cwd=tmp)
        expect(back, 0, "decompress mixed")
        check(back.stdout == mixed, "zstd frames of mixed sizes: round trip differs")

        # Beside the files, with --rm; then decompress --rm brings them back.
        expect(fp(binary, "compress", "--codec", "zstd", "--rm", "t/odd", cwd=tmp), 0,
               "compress --rm")
        names = os.listdir(os.path.join(tree, b"odd"))
        check(names and all(n.endswith(b".zst") for n in names), "--rm: %r" % names)
        expect(fp(binary, "decompress", "--rm", "t/odd", cwd=tmp), 0, "decompress --rm")
        check(originals(tree) == want, "compress --rm then decompress --rm: same tree")

        # Files from pigz and zstd (no size fields): one stream each.
        skip = need("pigz")
        for cmd, suffix in ((["pigz", "-k", "-p", "2"], b".gz"), (["zstd", "-q", "-k", "-T2"], b".zst")):
            if cmd[0] == "pigz" and skip:
                continue
            sh(*cmd, os.path.join(tree, b"log.jsonl"))
            d = fp(binary, "decompress", "-c", b"t/log.jsonl" + suffix, cwd=tmp)
            expect(d, 0, "decompress %s output" % cmd[0])
            check(d.stdout == text, "%s output round trip" % cmd[0])
            os.unlink(os.path.join(tree, b"log.jsonl" + suffix))
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
