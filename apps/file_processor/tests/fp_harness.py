"""fp_harness: runs file_processor as a real process on trees the tests make.

Each test script takes the path of the file_processor binary as its only
argument. What every application's tests share (scaled timeouts, run(),
the option checks) is in apps/common/testing/weft_app.py; this file adds
what is file_processor's own: the generated trees with odd names, running
the binary with bytes in and out, and the Debian tools the outputs are
checked with (sha256sum, md5sum, b3sum, gzip, zstd), which a test that
needs one skips without.

Standard library only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "common", "testing"))

import weft_app  # noqa: E402
from weft_app import (SCALE, SKIP, TestFailure, check, check_bad_flags,  # noqa: E402,F401
                      check_config_errors, check_help, seconds, wait_until)

# Names a manifest must carry byte for byte: spaces, a newline, a
# backslash, a carriage return, bytes that are not UTF-8, a leading dash.
ODD_NAMES = [b"with space", b"new\nline", b"back\\slash", b"cr\rname",
             b"bad\xff\xfebytes", b"-dash", b"\xc3\xa9t\xc3\xa9", b"a-b"]


def sanitized():
    """True under sanitizers or Valgrind (the timeout scale says so)."""
    return SCALE > 1


def make_tree(root, odd=True, utf8_only=False):
    """Writes a tree under root (bytes path) with odd names, an empty file,
    hidden files, nested folders (a/b/c), a file and a folder whose names
    sort differently as paths ("a-b" vs "a/"), and a symlink. Returns the
    list of regular files (bytes paths) it made."""
    files = []

    def put(rel, data):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        files.append(path)

    put(b"empty", b"")
    put(b".hidden", b"hidden\n")
    put(b"a/x", b"x" * 1000)
    put(b"a/b/c/deep", os.urandom(3000))
    put(b"a-b", b"dash")
    put(b"a.b/.dot", b"dot")
    put(b"big", os.urandom(300000))
    if odd:
        for i, name in enumerate(ODD_NAMES):
            if utf8_only:
                try:
                    name.decode("utf-8")
                except UnicodeDecodeError:
                    continue
            put(b"odd/" + name, b"odd %d\n" % i)
    os.symlink(b"a-b", os.path.join(root, b"link"))
    return files


def fp(binary, *args, timeout=30, cwd=None, input=None, env=None):
    """Runs file_processor with args (str or bytes) and returns the
    CompletedProcess with bytes output."""
    cmd = [os.fsencode(os.path.abspath(binary))] + [a if isinstance(a, bytes) else str(a).encode()
                                   for a in args]
    full_env = weft_app.app_env("warn", env)
    try:
        return subprocess.run(cmd, cwd=cwd, input=input, capture_output=True,
                              env=full_env, timeout=seconds(timeout),
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TestFailure("%s did not end within %.1f s" % (cmd, seconds(timeout)))


def expect(result, code, what):
    """Checks result's exit code, showing its stderr when it differs."""
    check(result.returncode == code,
          "%s: exit %d, wanted %d; stderr: %s" %
          (what, result.returncode, code, result.stderr.decode("utf-8", "replace")[-2000:]))


def tool(name):
    """The path of a Debian tool, or None."""
    return shutil.which(name)


def need(*names):
    """Returns SKIP (after saying which) when a tool is missing, else None."""
    for name in names:
        if tool(name) is None:
            print("skipped: %s is not installed" % name)
            return SKIP
    return None


def sh(*args, cwd=None, input=None, timeout=30):
    """Runs a command (bytes output) to its end."""
    return subprocess.run([a if isinstance(a, bytes) else str(a) for a in args],
                          cwd=cwd, input=input, capture_output=True,
                          timeout=seconds(timeout))


def summary(path):
    """The --summary-json object written to path."""
    with open(path) as f:
        return json.loads(f.read())


def temp_files(root):
    """The temporary files file_processor left under root."""
    found = []
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            if b".fp-tmp-" in os.fsencode(n):
                found.append(os.path.join(dirpath, n))
    return found


class TempDir:
    """A temporary folder (bytes path), removed at the end."""

    def __enter__(self):
        self.path = os.fsencode(tempfile.mkdtemp(prefix="fp-test-"))
        return self.path

    def __exit__(self, *exc):
        for dirpath, dirs, _names in os.walk(self.path):
            for d in dirs:
                os.chmod(os.path.join(dirpath, d), 0o755)
        shutil.rmtree(self.path, ignore_errors=True)
        return False


run = weft_app.run
