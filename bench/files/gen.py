#!/usr/bin/env python3
"""gen.py DATA [SCALE]: writes the file_processor benchmark datasets.

  D1  8 x 256 MiB random files
  D2  32 x 32 MiB random files plus 16,384 x 64 KiB
  D3  100,000 x 4 KiB random files
  D4  1 GiB of JSON lines (a seeded, log-like text)

Random bytes come from `openssl enc -aes-128-ctr` over /dev/zero (fast and
incompressible); the log from a seeded generator, so every run writes the
same bytes. SCALE (default 1) multiplies every size and count, for a disk
or a time budget that is short. A dataset that is already complete is kept.
"""

import os
import random
import subprocess
import sys


def random_file(path, size, key):
    """size bytes of AES-CTR keystream (key picks the stream) into path."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as out:
        enc = subprocess.Popen(["openssl", "enc", "-aes-128-ctr", "-nosalt", "-pass",
                                "pass:%d" % key, "-pbkdf2"], stdin=subprocess.PIPE,
                               stdout=out, stderr=subprocess.DEVNULL)
        block = bytes(1 << 20)
        left = size
        while left > 0:
            n = min(left, len(block))
            enc.stdin.write(block[:n])
            left -= n
        enc.stdin.close()
        enc.wait()


def many_small(folder, count, size, seed):
    """count files of size bytes, 1000 to a sub-folder, from one keystream."""
    marker = folder.rstrip("/") + ".complete"  # beside the tree, not in it
    if os.path.exists(marker):
        return
    os.makedirs(folder, exist_ok=True)
    blob_path = os.path.join(folder, ".blob")
    random_file(blob_path, count * size, seed)
    with open(blob_path, "rb") as blob:
        for i in range(count):
            sub = os.path.join(folder, "d%03d" % (i // 1000))
            if i % 1000 == 0:
                os.makedirs(sub, exist_ok=True)
            with open(os.path.join(sub, "f%06d" % i), "wb") as f:
                f.write(blob.read(size))
    os.unlink(blob_path)
    open(marker, "w").close()


WORDS = ("GET POST PUT DELETE user order cart item payment login logout search "
         "timeout retry cache miss hit db query slow ok error warn info debug "
         "checkout inventory shipping invoice session token refresh").split()


def json_log(path, size, seed):
    """size bytes (about) of JSON lines, seeded."""
    if os.path.exists(path) and os.path.getsize(path) >= size:
        return
    rng = random.Random(seed)
    levels = ["info"] * 8 + ["warn", "error"]
    with open(path, "w") as f:
        written = 0
        t = 1700000000000
        while written < size:
            lines = []
            for _ in range(2000):
                t += rng.randint(0, 50)
                msg = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
                lines.append('{"ts":%d,"level":"%s","svc":"%s","req":"%08x","user":%d,'
                             '"ms":%d,"status":%d,"msg":"%s"}\n' % (
                                 t, rng.choice(levels), rng.choice(WORDS[4:14]),
                                 rng.getrandbits(32), rng.randint(1, 50000),
                                 rng.randint(1, 2500), rng.choice((200, 200, 200, 201, 404, 500)),
                                 msg))
            chunk = "".join(lines)
            f.write(chunk)
            written += len(chunk)


def main():
    data = sys.argv[1]
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    mib = 1 << 20
    d1 = os.path.join(data, "D1")
    os.makedirs(d1, exist_ok=True)
    for i in range(8):
        random_file(os.path.join(d1, "r%d.bin" % i), int(256 * mib * scale), 100 + i)
    d2 = os.path.join(data, "D2")
    os.makedirs(os.path.join(d2, "big"), exist_ok=True)
    for i in range(32):
        random_file(os.path.join(d2, "big", "b%02d.bin" % i), int(32 * mib * scale), 200 + i)
    many_small(os.path.join(d2, "small"), int(16384 * scale), 64 << 10, 300)
    many_small(os.path.join(data, "D3"), int(100000 * scale), 4096, 400)
    d4 = os.path.join(data, "D4")
    os.makedirs(d4, exist_ok=True)
    json_log(os.path.join(d4, "log.jsonl"), int(1024 * mib * scale), 500)


if __name__ == "__main__":
    main()
