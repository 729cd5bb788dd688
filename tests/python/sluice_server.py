"""Start and stop the sluice binary for black-box tests.

Shared by the pytest suite (tests/python/conftest.py) and the crash test (tests/crash/crash_test.py).

Contract of the binary: `sluice serve --host 127.0.0.1 --port 0 --data-dir DIR` prints exactly one line
`sluice listening on http://127.0.0.1:PORT` (https:// with --tls-cert) to stdout once it is ready; logs go to stderr; SIGTERM/SIGINT shut it
down gracefully.
"""

import os
import re
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
READY_RE = re.compile(r"^sluice listening on (https?://127\.0\.0\.1:(\d+))$")  # https with --tls-cert


def sluice_bin():
    """Path of the binary under test: env SLUICE_BIN, default target/debug/sluice under the repo root."""
    path = Path(os.environ.get("SLUICE_BIN", "target/debug/sluice"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


class SluiceServer:
    """One sluice process on port 0 with its own data dir; `endpoint` is parsed from its stdout."""

    def __init__(self, data_dir, log_name="sluice", extra_args=(), env=None, ready_timeout=30.0, args=None):
        """`args` replaces the default `serve --host 127.0.0.1 --port 0 --data-dir DIR` arguments."""
        self.args = args
        self.data_dir = Path(data_dir)
        self.log_name = log_name
        self.extra_args = list(extra_args)
        self.env = env
        self.ready_timeout = ready_timeout
        self.proc = None
        self.endpoint = None
        self.ready_line = None
        self.log_path = None
        self._log = None
        self.starts = 0
        self.extra_stdout = b""
        self._drain = None

    def start(self):
        binary = sluice_bin()
        if not binary.exists():
            raise RuntimeError(
                f"sluice binary not found at {binary} (build it with `cargo build`, set SLUICE_BIN, "
                f"or point the tests at a running server with SQS_ENDPOINT)")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.log_path = ARTIFACTS / f"{self.log_name}-{self.starts}.stderr.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        # The SNS tests' HTTP subscribers listen on 127.0.0.1, which sluice refuses by default (SSRF
        # guard); the harness allows loopback only. A test of the guard passes its own value ("").
        env.setdefault("SLUICE_SNS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
        if self.env:
            env.update(self.env)
        if self.args is not None:
            cmd = [str(binary)] + list(self.args)
        else:
            cmd = [str(binary), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(cmd + self.extra_args, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL, env=env)
        self.ready_line, rest = self._read_ready_line()
        self.extra_stdout = rest
        # Keep reading stdout so that a chatty server can never block on a full pipe.
        self._drain = threading.Thread(target=self._drain_stdout, daemon=True)
        self._drain.start()
        m = READY_RE.match(self.ready_line)
        if not m:
            self.kill()
            raise RuntimeError(f"unexpected ready line from sluice: {self.ready_line!r} (log: {self.log_path})")
        self.endpoint = m.group(1)
        return self.endpoint

    def _read_ready_line(self):
        """Read the first stdout line without blocking forever."""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + self.ready_timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError(f"sluice printed no ready line within {self.ready_timeout}s "
                                   f"(stdout so far {buf!r}; log: {self.log_path})")
            if not sel.select(timeout=min(left, 0.5)):
                if self.proc.poll() is not None:
                    break
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        sel.close()
        if b"\n" not in buf:
            code = self.proc.poll()
            raise RuntimeError(f"sluice exited (code {code}) before printing its ready line; stdout {buf!r}; "
                               f"stderr tail:\n{self.stderr_tail()}")
        line, rest = buf.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r"), rest

    def _drain_stdout(self):
        fd = self.proc.stdout.fileno()
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.extra_stdout += chunk
        except OSError:
            pass

    def stderr_tail(self, n=40):
        try:
            if self._log:
                self._log.flush()
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Graceful stop; returns the exit code (kills it if it does not exit within `timeout`)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close()
                raise RuntimeError(f"sluice did not exit within {timeout}s of signal {sig}")
        code = self.proc.returncode
        self._close()
        return code

    def kill(self):
        """SIGKILL, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.join(timeout=5)
            self._drain = None
        if self.proc is not None and self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        if self._log:
            self._log.close()
            self._log = None
