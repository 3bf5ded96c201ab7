"""A big file is hashed through mapped windows; one truncated while it is
mapped raises SIGBUS in the worker, which goes back to read(2) and hashes
what the file then holds. The process neither dies nor reports a digest of
bytes the file never held at one time: the line is the digest of the
whole sparse file (the truncation came after), or of the 1 MiB it was cut
to (it came before or during)."""

import hashlib
import os
import subprocess
import time

from fp_harness import TempDir, check, run, weft_app, seconds

SIZE = 1 << 30
CUT = 1 << 20


def zeros_sha256(n):
    h = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(n >> 20):
        h.update(block)
    return h.hexdigest().encode()


def test(binary):
    small = zeros_sha256(CUT)
    whole = None
    for attempt in range(3):
        with TempDir() as tmp:
            path = os.path.join(tmp, b"sparse")
            with open(path, "wb") as f:
                f.truncate(SIZE)
            p = subprocess.Popen([os.path.abspath(binary), "hash", "-j", "1", path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=weft_app.app_env("warn"))
            # Cut it once a window of it is mapped (/proc/PID/maps names it).
            deadline = time.monotonic() + seconds(10)
            mapped = False
            while not mapped and p.poll() is None and time.monotonic() < deadline:
                try:
                    with open("/proc/%d/maps" % p.pid, "rb") as f:
                        mapped = path in f.read()
                except OSError:
                    break
            os.truncate(path, CUT)
            out, err = p.communicate(timeout=seconds(60))
            check(p.returncode == 0, "exit %d after a truncation: %r" % (p.returncode, err))
            digest = out.split(b" ")[0]
            if digest == small:
                print("truncated %s (attempt %d): the 1 MiB digest" %
                      ("while mapped" if mapped else "early", attempt + 1))
                return 0
            if whole is None:
                whole = zeros_sha256(SIZE)
            check(digest == whole, "neither digest: %r" % out)
    print("note: each run finished before the truncation; the file's digest was right")
    return 0


if __name__ == "__main__":
    run(test, "file_processor")
