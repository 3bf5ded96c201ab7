"""A full disk: outputs that cannot be written are named on stderr with
the reason, the exit code is 2, no temporary file is left and no final
name holds a truncated file. Run on a 512 KiB tmpfs mounted in a private
mount namespace where the machine allows (unshare), and always with the
--fail-writes-after test switch, which makes writes fail with ENOSPC past
a number of bytes."""

import os
import shutil
import subprocess

from fp_harness import (TempDir, check, expect, fp, need, run, seconds, sh,
                        temp_files)


def make_inputs(tree):
    os.makedirs(tree)
    for i in range(8):
        with open(os.path.join(tree, b"f%d" % i), "wb") as f:
            f.write(os.urandom(200000))


def check_outcome(result, out, what):
    expect(result, 2, what)
    check(b"no space left" in result.stderr.lower(), "%s: names ENOSPC: %r" % (what, result.stderr))
    check(temp_files(out) == [], "%s: temporary files left: %r" % (what, temp_files(out)))
    finished = []
    for dirpath, _dirs, names in os.walk(out):
        finished += [os.path.join(dirpath, n) for n in names if n.endswith(b".gz")]
    check(len(finished) < 8, "%s: not everything fitted" % what)
    if finished:
        expect(sh("gzip", "-t", *finished), 0, "%s: the outputs that exist are whole" % what)


def test(binary):
    skip = need("gzip")
    if skip:
        return skip
    with TempDir() as tmp:
        tree = os.path.join(tmp, b"t")
        make_inputs(tree)
        out = os.path.join(tmp, b"out")
        r = fp(binary, "compress", "-j", "2", "-o", out, "--fail-writes-after", "500000", "t",
               cwd=tmp)
        check_outcome(r, out, "--fail-writes-after")

        # A real full file system, where a private mount namespace is allowed.
        unshare = shutil.which("unshare")
        if unshare is None:
            print("note: no unshare; the tmpfs case is left out")
            return 0
        mnt = os.path.join(tmp, b"mnt")
        os.makedirs(mnt)
        flags = "-m" if os.geteuid() == 0 else "-rm"
        script = 'mount -t tmpfs -o size=512k tmpfs "$1" || exit 77; shift; "$@"; ' \
                 'rc=$?; ls -a "$MNT" -R > "$LIST"; for f in "$MNT"/t/*.gz; do ' \
                 '[ -e "$f" ] && { gzip -t "$f" || echo "TRUNCATED $f" >> "$LIST"; }; ' \
                 'done; exit $rc'
        listing = os.path.join(tmp, b"listing")
        env = dict(os.environ, MNT=os.fsdecode(mnt), LIST=os.fsdecode(listing),
                   WEFT_LOG_LEVEL="warn")
        p = subprocess.run([unshare, flags, "sh", "-c", script, "sh", mnt,
                            os.path.abspath(binary), "compress", "-j", "2", "-o", mnt, "t"],
                           cwd=tmp, capture_output=True, env=env, timeout=seconds(30))
        if p.returncode == 77 or b"unshare:" in p.stderr:
            print("note: cannot mount a tmpfs here (%r); the switch case passed"
                  % p.stderr[-200:])
            return 0
        expect(p, 2, "compress onto a full tmpfs")
        check(b"no space left" in p.stderr.lower(), "names ENOSPC: %r" % p.stderr)
        with open(listing, "rb") as f:
            names = f.read()
        check(b"fp-tmp" not in names, "no temporary file left on the tmpfs: %r" % names)
        check(b"TRUNCATED" not in names, "no truncated output on the tmpfs: %r" % names)
        check(b".gz" in names, "some outputs fitted on the tmpfs: %r" % names)
        print("the tmpfs case ran")
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
