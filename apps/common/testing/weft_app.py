"""weft_app: what the integration tests of every application share.

Each application's tests are Python scripts that ctest runs as
`python3 -B tests/test_NAME.py BINARY`. They start the application as a
real process on loopback, wait for what it prints, and check what it does.
This module holds the parts that do not depend on the application:

  - timeouts scaled by WEFT_TEST_TIMEOUT_SCALE (set by the build: higher
    under sanitizers and Valgrind), so a broken program fails a test
    instead of hanging it;
  - AppProcess, a running server whose stdout and stderr are read by
    threads, with its "listening on HOST:PORT" ports, its stats JSON
    (SIGUSR1 and at exit) and a bounded stop;
  - run(), which turns a test function into the exit code ctest expects
    (0, 1, or SKIP = 77 for a missing capability), and hands the test a
    binary that runs under WEFT_TEST_EMULATOR when the build sets it
    (a cross build run under qemu: see emulated());
  - the checks of --help, of refused flags and of faulty configuration
    files, which every application built on apps/common/config makes alike.

Each application's harness (tests/*_harness.py) imports this file (it puts
apps/common/testing on sys.path) and adds only what is its own.

Standard library only.
"""

import atexit
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SCALE = max(1.0, float(os.environ.get("WEFT_TEST_TIMEOUT_SCALE", "1") or "1"))

# Exit code that ctest counts as "skipped" (SKIP_RETURN_CODE).
SKIP = 77

LISTENING = re.compile(r"listening on (\[[0-9a-fA-F:.]+\]|[0-9.]+|[\w.-]+):(\d+)")


def seconds(s):
    """A timeout of s seconds, scaled for slow (sanitizer) builds."""
    return s * SCALE


# A cross build run under an emulator (qemu, or Wine for a Windows build):
# see emulated().
EMULATED = bool(os.environ.get("WEFT_TEST_EMULATOR", "").strip())

# A Windows build run under Wine (cmake/mingw-w64-x86_64.cmake): the program
# has no POSIX signals. Wine turns a SIGINT sent to its process into a
# console Ctrl+C event, which libuv reports as SIGINT, so stopping works
# (AppProcess.send_signal() sends SIGINT for SIGTERM); SIGTERM itself would kill
# the process at once, and SIGUSR1, which asks for stats, is Wine's own.
# Tests that need those skip under Wine with the reason (posix_only()).
WINE = any(os.path.basename(a).startswith("wine")
           for a in shlex.split(os.environ.get("WEFT_TEST_EMULATOR", "")))


def jitter(s):
    """A tolerance of s seconds on when things happen (arrival times, the
    gaps between requests), scaled under emulation, where a program runs
    several times slower and its timings spread by tens of milliseconds.
    Sanitizer builds keep s: their timings stay close to native ones."""
    return s * SCALE if EMULATED else s


class TestFailure(Exception):
    pass


class TestSkipped(Exception):
    """Raised to skip the test (run() exits SKIP with the reason)."""


def posix_only(what):
    """Skips the test under Wine, where the Windows program lacks what (a
    POSIX feature: SIGUSR1 stats, SIGTERM, /proc memory figures of its
    own)."""
    if WINE:
        raise TestSkipped("%s: POSIX only, not available to a Windows program under Wine"
                          % what)


def check(cond, what):
    """Raises TestFailure(what) unless cond holds."""
    if not cond:
        raise TestFailure(what)


def wait_until(predicate, timeout, what):
    """Polls predicate() until it holds; TestFailure after timeout (scaled)."""
    deadline = time.monotonic() + seconds(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            raise TestFailure("timed out waiting for " + what)
        time.sleep(0.01)


def free_port():
    """A loopback port with nothing listening on it now (bound, then
    released): for a server the test starts by port number, or a refused
    connection."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_redis(port, tmp):
    """Starts redis-server on 127.0.0.1:port without persistence, its files
    in tmp, and returns its Popen once it accepts connections (TestFailure
    if it exits or does not listen within 10 s, scaled). Restarting it on
    the same port is another call."""
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", tmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds(10)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p
        except OSError:
            check(p.poll() is None, "redis-server exited")
            check(time.monotonic() < deadline, "redis-server does not listen")
            time.sleep(0.05)


def app_env(log_level, env=None):
    """The environment of a child process: ours, WEFT_LOG_LEVEL defaulting to
    log_level unless that is None (a value set by whoever runs the tests
    wins), then env."""
    full_env = dict(os.environ)
    if log_level is not None:
        full_env.setdefault("WEFT_LOG_LEVEL", log_level)
    if env:
        full_env.update(env)
    return full_env


def run_binary(binary, *args, timeout=10, log_level=None, env=None, input=None):
    """Runs binary with args to its end, input (a string) or nothing on its
    stdin, and returns the CompletedProcess with text output; TestFailure
    when it runs longer than timeout."""
    cmd = [binary] + [str(a) for a in args]
    stdin = subprocess.DEVNULL if input is None else None
    try:
        return subprocess.run(cmd, stdin=stdin, input=input, capture_output=True,
                              text=True, env=app_env(log_level, env),
                              timeout=seconds(timeout))
    except subprocess.TimeoutExpired:
        raise TestFailure("%s did not end within %.1f s" % (cmd, seconds(timeout)))


class AppProcess:
    """An application process with its stdout and stderr read by threads.

    stderr (the logfmt log) and stdout (JSON stats, reports) are collected
    line by line so that the process never blocks on a full pipe. Applications
    subclass it to add their own defaults and requests."""

    def __init__(self, binary, *args, env=None, log_level="info"):
        self.args = [binary] + [str(a) for a in args]
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=app_env(log_level, env))
        self.pid = self.proc.pid
        self.lock = threading.Condition()
        self.out_lines = []
        self.err_lines = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out_lines),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err_lines),
                             daemon=True),
        ]
        for t in self.readers:
            t.start()
        self.ports = {}

    def _read(self, stream, lines):
        for raw in iter(stream.readline, b""):
            with self.lock:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.lock.notify_all()
        with self.lock:
            self.lock.notify_all()

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate() (called under the lock) is true."""
        deadline = time.monotonic() + seconds(timeout)
        with self.lock:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("timed out waiting for " + what)
                self.lock.wait(min(left, 0.1))

    def wait_listening(self, count=1, timeout=10):
        """Waits for count "listening on" lines; returns {host: port}."""
        def found():
            hits = [LISTENING.search(l) for l in self.err_lines]
            hits = [h for h in hits if h]
            if self.proc.poll() is not None and len(hits) < count:
                raise TestFailure("server exited with %s before listening" % self.proc.returncode)
            return hits if len(hits) >= count else None
        hits = self.wait_for(found, timeout, "the 'listening on' line")
        for h in hits:
            self.ports[h.group(1).strip("[]")] = int(h.group(2))
        return self.ports

    def port(self, host="127.0.0.1"):
        """The port the process listens on at host, waiting for it if need be."""
        if host not in self.ports:
            self.wait_listening()
        return self.ports[host]

    def connect(self, host="127.0.0.1", timeout=10):
        """A TCP connection to the process (TCP_NODELAY, scaled timeout)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(seconds(timeout))
        s.connect((host, self.port(host)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def send_signal(self, sig):
        """Sends sig to the process. Under Wine SIGTERM becomes SIGINT (the
        console Ctrl+C event, the one stop signal a Windows program gets);
        other signals skip the test there."""
        if WINE and sig in (signal.SIGTERM, signal.SIGINT):
            sig = signal.SIGINT
        else:
            posix_only(signal.Signals(sig).name)
        self.proc.send_signal(sig)

    def stats(self, timeout=5):
        """Sends SIGUSR1 and returns the JSON line it prints."""
        posix_only("the stats JSON on SIGUSR1")
        with self.lock:
            before = len(self.out_lines)
        self.send_signal(signal.SIGUSR1)

        def new_json():
            for line in self.out_lines[before:]:
                if line.startswith("{"):
                    return json.loads(line)
            return None
        return self.wait_for(new_json, timeout, "the stats JSON after SIGUSR1")

    def wait_stats(self, predicate, timeout, what):
        """Polls stats until predicate(stats) holds; returns the stats."""
        deadline = time.monotonic() + seconds(timeout)
        while True:
            st = self.stats()
            if predicate(st):
                return st
            if time.monotonic() > deadline:
                raise TestFailure("timed out waiting for %s; last stats: %s" % (what, st))
            time.sleep(0.05)

    def final_stats(self):
        """The last JSON line of stdout (the stats printed at exit)."""
        with self.lock:
            lines = [l for l in self.out_lines if l.startswith("{")]
        check(lines, "no stats JSON on stdout")
        return json.loads(lines[-1])

    def rss_kib(self):
        """The resident set size of the process, in KiB (Linux only: under
        Wine it would count Wine's own memory too)."""
        posix_only("the resident set size of the program alone")
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise TestFailure("no VmRSS for the server")

    def wait_exit(self, timeout):
        """Waits for the process to exit and returns its exit code."""
        try:
            return self.proc.wait(seconds(timeout))
        except subprocess.TimeoutExpired:
            raise TestFailure("server did not exit within %.1f s" % seconds(timeout))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Sends sig (see send_signal()) and returns the exit code."""
        if self.proc.poll() is None:
            self.send_signal(sig)
        code = self.wait_exit(timeout)
        for t in self.readers:
            t.join(seconds(5))
        return code

    def log(self):
        """Everything the process wrote to stderr so far."""
        with self.lock:
            return "\n".join(self.err_lines)

    def kill(self):
        """Kills the process unless it has exited (the cleanup of a test)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


def server_log_on_failure(server):
    """A context manager that prints the server's log when the body fails."""
    class Guard:
        def __enter__(self):
            return server

        def __exit__(self, kind, value, tb):
            if kind is not None and not issubclass(kind, TestSkipped):
                print("---- server log ----")
                print(server.log())
                print("---- end of server log ----")
            server.kill()
            return False
    return Guard()


_emulated_dir = None


def emulated(binary):
    """The path to start binary by. When WEFT_TEST_EMULATOR is set (ctest
    sets it in a cross build: "qemu-aarch64 -L /"), a
    script in a temporary folder that execs the emulator with binary and
    the script's arguments; otherwise binary itself. The script execs, so
    the process a test starts, signals and waits for is the emulator
    running the program, under the same pid; a test that passes the path
    on to a helper or a second process needs nothing else."""
    global _emulated_dir
    emulator = shlex.split(os.environ.get("WEFT_TEST_EMULATOR", ""))
    if not emulator:
        return binary
    if _emulated_dir is None:
        _emulated_dir = tempfile.mkdtemp(prefix="weft-emulated-")
        atexit.register(shutil.rmtree, _emulated_dir, True)
    target = os.path.abspath(binary)
    wrapper = os.path.join(_emulated_dir, os.path.basename(target))
    if not os.path.exists(wrapper):
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (
                " ".join(shlex.quote(a) for a in emulator), shlex.quote(target)))
        os.chmod(wrapper, 0o755)
    return wrapper


def run(test, program):
    """Runs test(binary), binary being the only argument of the script, and
    exits 0, SKIP or 1 with the reason. program names the binary in the
    usage message."""
    if len(sys.argv) != 2:
        print("usage: %s PATH_TO_%s" % (sys.argv[0], program.upper()), file=sys.stderr)
        sys.exit(2)
    binary = emulated(sys.argv[1])
    started = time.monotonic()
    try:
        result = test(binary)
    except TestSkipped as e:
        print("SKIPPED: %s" % e)
        sys.exit(SKIP)
    except Exception:
        traceback.print_exc()
        print("FAILED after %.2f s" % (time.monotonic() - started))
        sys.exit(1)
    if result == SKIP:
        print("SKIPPED")
        sys.exit(SKIP)
    print("passed in %.2f s" % (time.monotonic() - started))
    sys.exit(0)


# ---- Checks shared by the applications' option handling ----------------------
#
# Every application reads its options through apps/common/config: --help
# lists them with their defaults, a refused flag exits 2 with a message, and
# a faulty configuration file exits 2 naming the file and the line:column.
# Each application's test calls these with its own options and cases.


def check_help(binary, options, shown=(), min_defaults=None, log_level=None):
    """--help exits 0 and its stdout mentions every one of options and every
    string in shown; with min_defaults, at least that many "default:".
    Returns the CompletedProcess for checks of the application's own."""
    p = run_binary(binary, "--help", log_level=log_level)
    check(p.returncode == 0, "--help exited %d" % p.returncode)
    for opt in options:
        check(opt in p.stdout, "--help does not mention %s" % opt)
    for text in shown:
        check(text in p.stdout, "--help does not show %r" % text)
    if min_defaults is not None:
        check(p.stdout.count("default:") >= min_defaults, "--help misses some defaults")
    return p


def check_version(binary, program):
    """--version exits 0 with one line "PROGRAM X.Y.Z (...)" on stdout, and
    --help mentions it; a bad $WEFT_LOG_LEVEL is named on stderr rather
    than ignored."""
    p = run_binary(binary, "--version")
    check(p.returncode == 0, "--version exited %d" % p.returncode)
    check(re.match(r"^%s \d+\.\d+\.\d+ " % re.escape(program), p.stdout) is not None,
          "--version printed %r" % p.stdout)
    check(p.stdout.count("\n") == 1 and p.stderr == "", "--version: %r %r" % (p.stdout, p.stderr))
    check("--version" in run_binary(binary, "--help").stdout, "--help does not list --version")
    p = run_binary(binary, "--no-such-flag", env={"WEFT_LOG_LEVEL": "loud"})
    check("WEFT_LOG_LEVEL" in p.stderr and "loud" in p.stderr,
          "a bad WEFT_LOG_LEVEL is not reported: %r" % p.stderr)


def check_bad_flags(binary, cases, program=None, quiet_stdout=False, log_level=None):
    """Each (args, needle) of cases exits 2 with needle in its stderr; with
    program, the message starts with "program: "; with quiet_stdout,
    nothing is written to stdout."""
    for args, needle in cases:
        p = run_binary(binary, *args, log_level=log_level)
        check(p.returncode == 2, "%s exited %d, not 2: %s" % (args, p.returncode, p.stderr))
        check(needle in p.stderr, "%s: message %r does not mention %r" % (args, p.stderr, needle))
        if program is not None:
            check(p.stderr.startswith(program + ": "), "message without the program name")
        if quiet_stdout:
            check(p.stdout == "", "%s wrote to stdout: %r" % (args, p.stdout))


def check_config_errors(binary, cases, tmp, extra_args=(), missing=True, log_level=None):
    """Each (text, where, word) of cases, written to a file in the folder
    tmp and given as --config FILE (then extra_args), exits 2 with a message
    naming FILE:where: (line:column) and mentioning word. With missing, a
    file that does not exist exits 2 with a message naming it."""
    for i, (text, where, word) in enumerate(cases):
        path = os.path.join(tmp, "bad%d.json" % i)
        with open(path, "w") as f:
            f.write(text)
        p = run_binary(binary, "--config", path, *extra_args, log_level=log_level)
        check(p.returncode == 2, "case %d exited %d, not 2: %s" % (i, p.returncode, p.stderr))
        check("%s:%s:" % (path, where) in p.stderr,
              "case %d: %r does not name %s:%s" % (i, p.stderr, path, where))
        check(word in p.stderr, "case %d: %r does not mention %r" % (i, p.stderr, word))
    if missing:
        path = os.path.join(tmp, "missing.json")
        p = run_binary(binary, "--config", path, *extra_args, log_level=log_level)
        check(p.returncode == 2 and path in p.stderr, "a missing file: %r" % p.stderr)
