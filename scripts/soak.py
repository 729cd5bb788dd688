#!/usr/bin/env python3
"""Soak and crash harness: mixed load on a real sluice for many cycles, a fault per cycle, nothing may be lost.

Each cycle runs the load for --load-seconds: --producers threads per queue send unique bodies (two SendMessage,
then a SendMessageBatch of ten; one standard and one FIFO queue) and record every acknowledged message id and
body; --consumers threads per queue receive (VisibilityTimeout --visibility) and delete (DeleteMessageBatch or
DeleteMessage), recording every delete sent and every delete acknowledged. Part-way through the load, one fault,
in turn:
  kill   kill -9 the server; it is restarted on the same data directory once the load has stopped (restart time
         measured: spawn to its "listening" line)
  stop   SIGSTOP for --stop-seconds, then SIGCONT (clients time out meanwhile)
  disk   fill the data directory's file system with one file (dd to ENOSPC), hold --disk-seconds, check that
         /ready says 503, remove the file, time until /ready is 200 again (must be within --resume-limit s).
         Needs root (the data directory is on a tmpfs of --tmpfs-size): skipped with a message otherwise.
Then the load stops and the cycle is checked: every queue is received and deleted until empty; every message
acknowledged this cycle whose delete was never sent must come back with its body (lost must be 0); a message
back after an acknowledged delete, or received twice, is a duplicate (counted: SQS is at-least-once); a message
that was never sent fails the run; the queue counters must be 0 after the drain.
A sampler reads the server's VmRSS (/proc/PID/status) every --rss-interval seconds.

Prints a summary (cycles by fault, messages sent/acknowledged/deleted, lost, duplicates, restarts and restart
times, disk-full resume times, RSS min/max/slope and the series) and, with --json, writes it to a file. Exit 0 if
nothing was lost and the server always came back; 1 otherwise.

Usage:  .venv/bin/python scripts/soak.py --minutes 60           # an hour (cycles until the time is up)
        .venv/bin/python scripts/soak.py --cycles 3 --load-seconds 4   # the short version scripts/test.sh runs
Binary: SLUICE_BIN (default target/debug/sluice). Server logs: tests/artifacts/soak-N.stderr.log (--log-name).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "tests" / "crash"))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from crashkit import Ledger, compare, drain, make_client, md5_hex, sender  # noqa: E402
from sluice_server import SluiceServer  # noqa: E402

QUEUES = (("soak-std", False), ("soak-fifo.fifo", True))


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def http_status(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class Consumed:
    """What the consumers know: ids received (with counts), deletes sent, deletes acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.receives = {}
        self.delete_sent = set()
        self.delete_acked = set()
        self.bodies = set()
        self.failed = 0
        self.crashed = []


def consumer(endpoint, url, tid, consumed, stop, visibility, read_timeout):
    try:
        sqs = make_client(endpoint, read_timeout=read_timeout)
        n = 0
        while not stop.is_set():
            try:
                msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=visibility).get("Messages", [])
                for m in msgs:
                    if m["MD5OfBody"] != md5_hex(m["Body"]):
                        raise AssertionError(f"MD5OfBody mismatch for {m['MessageId']}")
                with consumed.lock:
                    for m in msgs:
                        consumed.receives[m["MessageId"]] = consumed.receives.get(m["MessageId"], 0) + 1
                        consumed.delete_sent.add(m["MessageId"])
                        consumed.bodies.add(m["Body"])
                if not msgs:
                    continue
                n += 1
                if n % 4 == 0:  # one in four rounds deletes one by one
                    for m in msgs:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                        with consumed.lock:
                            consumed.delete_acked.add(m["MessageId"])
                else:
                    resp = sqs.delete_message_batch(QueueUrl=url, Entries=[
                        {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
                    ok = {msgs[int(e["Id"][1:])]["MessageId"] for e in resp.get("Successful", [])}
                    with consumed.lock:
                        consumed.delete_acked |= ok
                        consumed.failed += len(resp.get("Failed", []))
            except (BotoCoreError, ClientError, OSError):
                with consumed.lock:
                    consumed.failed += 1
                if not stop.is_set():
                    time.sleep(0.05)
    except Exception as e:  # noqa: BLE001 - reported, not swallowed
        with consumed.lock:
            consumed.crashed.append(f"consumer {tid}: {type(e).__name__}: {e}")


class RssSampler(threading.Thread):
    """Samples the current server process every `interval` seconds: (elapsed s, pid, VmRSS KiB, RssAnon KiB).

    VmRSS includes the mapped binary (RssFile: ~18 MiB for a debug build); RssAnon is the heap and stacks.
    """

    def __init__(self, server, interval, t0):
        super().__init__(daemon=True)
        self.server, self.interval, self.t0 = server, interval, t0
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(self.interval):
            proc = self.server.proc
            if proc is None or proc.poll() is not None:
                continue
            try:
                fields = dict(line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                              if line.startswith(("VmRSS:", "RssAnon:")))
                self.samples.append((round(time.monotonic() - self.t0, 1), proc.pid, int(fields["VmRSS"].split()[0]),
                                     int(fields["RssAnon"].split()[0])))
            except (OSError, KeyError, ValueError):
                pass


def slope_mib_per_hour(points):
    """Least-squares slope of (seconds, KiB) points, in MiB per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return 0.0
    return sum((p[0] - mx) * (p[1] - my) for p in points) / var * 3600 / 1024


class Tmpfs:
    """A tmpfs of `size` mounted on a fresh temp dir (root only); unmounted and removed on exit."""

    def __init__(self, size):
        self.size = size
        self.path = None

    def __enter__(self):
        self.path = Path(tempfile.mkdtemp(prefix="sluice-soak-tmpfs-"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.path)], check=True)
        return self.path

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", str(self.path)], check=False)
        os.rmdir(self.path)


class Soak:
    def __init__(self, args, data_dir, disk_root):
        self.args = args
        self.disk_root = disk_root  # the tmpfs to fill, or None (no disk phase)
        self.server = SluiceServer(data_dir, log_name=args.log_name)
        self.port = None
        self.t0 = time.monotonic()
        self.rss = RssSampler(self.server, args.rss_interval, self.t0)
        self.failures = []
        self.cycles = []
        self.restart_times = []
        self.resume_times = []
        self.totals = dict(requests_ok=0, requests_failed=0, acked=0, unacked_attempted=0, unacked_recovered=0,
                           received_in_load=0, deletes_acked=0, drained=0, lost=0, duplicates=0,
                           back_after_delete=0, unknown=0, refused_503=0, refused_but_delivered=0,
                           consumer_errors=0)
        self.errors = {}

    def fail(self, msg):
        log(f"FAIL: {msg}")
        self.failures.append(msg)

    def start_server(self, same_port=False):
        """Starts the server (again: on the same port, so that the load's clients reconnect); returns seconds."""
        t = time.monotonic()
        if same_port and self.port:
            self.server.args = ["serve", "--host", "127.0.0.1", "--port", str(self.port),
                                "--data-dir", str(self.server.data_dir)]
        try:
            self.server.start()
        except RuntimeError as e:
            if self.server.args is None:
                raise
            log(f"restart on port {self.port} failed ({e}); trying a new port")
            self.server.args = None
            self.server.start()
        self.port = int(self.server.endpoint.rsplit(":", 1)[1])
        return time.monotonic() - t

    def urls(self):
        sqs = make_client(self.server.endpoint)
        out = []
        for name, fifo in QUEUES:
            attrs = {"FifoQueue": "true"} if fifo else {}
            out.append((sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"], fifo))
        return out

    def run(self):
        a = self.args
        self.start_server()
        self.rss.start()
        log(f"server up at {self.server.endpoint} (pid {self.server.proc.pid}); data dir {self.server.data_dir}")
        kinds = [k for k in a.faults.split(",") if k != "disk" or self.disk_root]
        if not kinds:
            raise SystemExit("no fault left to run (--faults disk without root?)")
        deadline = self.t0 + a.minutes * 60 if a.minutes else None
        i = 0
        while True:
            if a.cycles and i >= a.cycles:
                break
            if deadline and time.monotonic() >= deadline:
                break
            kind = kinds[i % len(kinds)]
            i += 1
            try:
                ok = self.cycle(i, kind)
            except Exception as e:  # noqa: BLE001 - a cycle that cannot run is a failure of the run
                self.fail(f"cycle {i} ({kind}): {type(e).__name__}: {e}")
                ok = False
            if not ok and not self.server_alive():
                self.fail(f"cycle {i}: the server is not running; stopping")
                break
            if self.failures and a.stop_on_failure:
                break
        self.rss.halt.set()
        code = self.server.stop() if self.server_alive() else None
        if code not in (0, None):
            self.fail(f"graceful stop at the end exited {code}")

    def server_alive(self):
        return self.server.proc is not None and self.server.proc.poll() is None

    def cycle(self, n, kind):
        a = self.args
        c0 = time.monotonic()
        queues = self.urls()
        endpoint = self.server.endpoint
        ledgers = {url: Ledger() for url, _ in queues}
        consumed = Consumed()
        stop = threading.Event()
        threads = []
        for url, fifo in queues:
            for t in range(a.producers):
                threads.append(threading.Thread(target=sender, args=(endpoint, url, t, ledgers[url], stop), kwargs=dict(
                    fifo=fifo, prefix=f"c{n}{'f' if fifo else 's'}", read_timeout=a.read_timeout)))
            for t in range(a.consumers):
                threads.append(threading.Thread(target=consumer, args=(endpoint, url, t, consumed, stop,
                                                                       a.visibility, a.read_timeout)))
        for t in threads:
            t.start()
        fault_at = a.load_seconds * 0.6
        time.sleep(fault_at)
        info = {}
        if kind == "kill":
            self.server.kill()
            dt = self.start_server(same_port=True)  # the load goes on: its clients reconnect to the new process
            self.restart_times.append(round(dt, 3))
            info["restart_s"] = round(dt, 3)
        elif kind == "stop":
            self.server.proc.send_signal(signal.SIGSTOP)
            time.sleep(a.stop_seconds)
            self.server.proc.send_signal(signal.SIGCONT)
            info["stopped_s"] = a.stop_seconds
        elif kind == "disk":
            info.update(self.fill_disk())
        rest = a.load_seconds - (time.monotonic() - c0)
        if rest > 0:
            time.sleep(rest)
        stop.set()
        for t in threads:
            t.join(timeout=a.read_timeout + 30)
            if t.is_alive():
                self.fail(f"cycle {n}: a load thread did not stop")
        if not self.server_alive():
            self.fail(f"cycle {n} ({kind}): the server died (exit {self.server.proc.poll()}); "
                      f"log tail:\n{self.server.stderr_tail()}")
            return False
        return self.check(n, kind, c0, queues, ledgers, consumed, info)

    def fill_disk(self):
        a = self.args
        filler = self.disk_root / "soak-filler"
        t = time.monotonic()
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        info = {"filled_mib": filler.stat().st_size // (1 << 20)}
        time.sleep(0.5)  # the store re-measures free space every 200 ms
        ready = http_status(self.server.endpoint + "/ready")
        info["ready_while_full"] = ready
        if ready != 503:
            self.fail(f"disk full: /ready answered {ready}, expected 503")
        time.sleep(max(0.0, a.disk_seconds - (time.monotonic() - t)))
        filler.unlink()
        t = time.monotonic()
        while http_status(self.server.endpoint + "/ready") != 200:
            if time.monotonic() - t > a.resume_limit:
                self.fail(f"disk full: not ready {a.resume_limit}s after the space came back")
                break
            time.sleep(0.05)
        dt = round(time.monotonic() - t, 3)
        self.resume_times.append(dt)
        info["resume_s"] = dt
        return info

    def check(self, n, kind, c0, queues, ledgers, consumed, info):
        a = self.args
        sqs = make_client(self.server.endpoint, read_timeout=30)
        lost = dups = back_after_delete = unknown = drained = refused_delivered = 0
        acked_total = 0
        failures = []
        for url, fifo in queues:
            ledger = ledgers[url]
            acked_total += len(ledger.acked)
            failures += ledger.crashed
            # Everything still in the queue must come back by the time the consumers' visibility timeouts run out.
            expected = {mid for mid in ledger.acked if mid not in consumed.delete_sent}
            deadline = time.monotonic() + a.visibility + 30

            def done(got, expected=expected, url=url):
                seen = {m for m, _ in got}
                if not expected <= seen:
                    return False
                at = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                return all(at[k] == "0" for k in ("ApproximateNumberOfMessages",
                                                  "ApproximateNumberOfMessagesNotVisible",
                                                  "ApproximateNumberOfMessagesDelayed"))

            if a.inject_loss and n == 1 and not fifo:
                stolen = self.steal(sqs, url, a.inject_loss)
                log(f"--inject-loss: deleted {stolen} messages behind the ledger's back (the check must see them lost)")
            got = drain(sqs, url, until=done, deadline=deadline)
            drained += len(got)
            v = compare(ledger.acked, ledger.unacked, got, may_be_gone=consumed.delete_sent, allow_duplicates=True)
            lost += len(v.missing)
            refused_delivered += len(ledger.refused & ({b for _, b in got} | consumed.bodies))
            self.totals["refused_503"] += len(ledger.refused)
            unknown += len(v.unknown)
            failures += v.failures
            with consumed.lock:
                back = [m for m, _ in got if m in consumed.delete_acked]
                twice = sum(1 for m, _ in got if m in consumed.receives)  # received in the load and again now
                twice += sum(k - 1 for m, k in consumed.receives.items() if k > 1 and m in ledger.acked)
            back_after_delete += len(back)
            dups += twice
            self.totals["unacked_attempted"] += len(ledger.unacked)
            self.totals["unacked_recovered"] += v.recovered_unacked
            self.totals["requests_ok"] += ledger.requests_ok
            self.totals["requests_failed"] += ledger.requests_failed
            for k, c in ledger.errors.items():
                self.errors[k] = self.errors.get(k, 0) + c
            at = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            left = [at[k] for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                    "ApproximateNumberOfMessagesDelayed")]
            if left != ["0", "0", "0"]:
                failures.append(f"{url}: counters after the drain (visible, in flight, delayed) = {left}")
        failures += consumed.crashed
        if acked_total == 0:
            failures.append("no message was acknowledged: the load did not run")
        t = self.totals
        t["acked"] += acked_total
        t["received_in_load"] += sum(consumed.receives.values())
        t["deletes_acked"] += len(consumed.delete_acked)
        t["drained"] += drained
        t["lost"] += lost
        t["duplicates"] += dups
        t["back_after_delete"] += back_after_delete
        t["unknown"] += unknown
        t["refused_but_delivered"] += refused_delivered
        t["consumer_errors"] += consumed.failed
        rss = [s[2:] for s in self.rss.samples if s[1] == self.server.proc.pid][-1:] or [(None, None)]
        row = dict(cycle=n, fault=kind, seconds=round(time.monotonic() - c0, 1), acked=acked_total,
                   deletes_acked=len(consumed.delete_acked), drained=drained, lost=lost, duplicates=dups,
                   back_after_delete=back_after_delete, rss_kib=rss[0][0], anon_kib=rss[0][1], data_mib=self.data_mib(), **info)
        self.cycles.append(row)
        log("cycle " + " ".join(f"{k}={v}" for k, v in row.items()))
        for f in failures:
            self.fail(f"cycle {n} ({kind}): {f}")
        return not failures

    @staticmethod
    def steal(sqs, url, count):
        """Receives and deletes up to `count` messages without telling the ledger: a made-up loss."""
        stolen = 0
        for _ in range(10):
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, count - stolen),
                                       VisibilityTimeout=60).get("Messages", [])
            for m in msgs:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                stolen += 1
            if stolen >= count:
                break
        return stolen

    def data_mib(self):
        """Disk space the data directory takes (allocated blocks, so preallocated logs count in full)."""
        total = sum(p.stat().st_blocks * 512 for p in self.server.data_dir.rglob("*") if p.is_file())
        return round(total / (1 << 20), 1)

    def summary(self):
        samples = self.rss.samples
        kib = [s[2] for s in samples]
        by_pid = {}
        for s in samples:
            by_pid.setdefault(s[1], []).append((s[0], s[2]))
        longest = max(by_pid.values(), key=lambda p: p[-1][0] - p[0][0]) if by_pid else []
        per_process = [dict(pid=pid, start_s=p[0][0], life_s=round(p[-1][0] - p[0][0], 1),
                            first_mib=round(p[0][1] / 1024, 1), max_mib=round(max(k for _, k in p) / 1024, 1),
                            last_mib=round(p[-1][1] / 1024, 1)) for pid, p in by_pid.items()]
        anon = [s[3] for s in samples]
        counts = {}
        for c in self.cycles:
            counts[c["fault"]] = counts.get(c["fault"], 0) + 1
        rt = self.restart_times
        return dict(
            binary=str(self.server.proc.args[0]) if self.server.proc else None,
            seconds=round(time.monotonic() - self.t0, 1),
            cycles=len(self.cycles), cycles_by_fault=counts, disk_phase=bool(self.disk_root),
            **self.totals, send_errors=self.errors,
            restarts=len(rt), restart_s=dict(min=min(rt), max=max(rt), mean=round(sum(rt) / len(rt), 3)) if rt else {},
            disk_resume_s=dict(min=min(self.resume_times), max=max(self.resume_times)) if self.resume_times else {},
            rss_mib=dict(min=round(min(kib) / 1024, 1), max=round(max(kib) / 1024, 1),
                         slope_mib_per_h_all=round(slope_mib_per_hour([(s[0], s[2]) for s in samples]), 2),
                         # after warm-up (the FIFO de-duplication window is 5 min, redb's cache fills as used)
                         slope_mib_per_h_second_half=round(slope_mib_per_hour(
                             [(s[0], s[2]) for s in samples if s[0] >= samples[-1][0] / 2]), 2),
                         longest_process_s=round(longest[-1][0] - longest[0][0], 1) if longest else 0,
                         slope_mib_per_h_longest_process=round(slope_mib_per_hour(longest), 2),
                         anon_min=round(min(anon) / 1024, 1), anon_max=round(max(anon) / 1024, 1),
                         anon_slope_mib_per_h_all=round(slope_mib_per_hour([(s[0], s[3]) for s in samples]), 2),
                         samples=len(samples)) if kib else {},
            cycle_rows=self.cycles,
            rss_per_process=per_process,
            rss_series=[(s[0], round(s[2] / 1024, 1), round(s[3] / 1024, 1)) for s in samples],
            failures=self.failures,
        )


def print_summary(s, series_points):
    log("==== summary ====")
    for k in ("binary", "seconds", "cycles", "cycles_by_fault", "disk_phase", "requests_ok", "requests_failed",
              "send_errors", "acked", "unacked_attempted", "unacked_recovered", "received_in_load", "deletes_acked",
              "drained", "lost", "duplicates", "back_after_delete", "unknown", "refused_503",
              "refused_but_delivered", "consumer_errors", "restarts", "restart_s",
              "disk_resume_s", "rss_mib"):
        log(f"  {k}: {s[k]}")
    series = s["rss_series"]
    step = max(1, len(series) // series_points)
    log("  RSS series (elapsed s: VmRSS/RssAnon MiB): " + " ".join(f"{t:.0f}:{m}/{an}" for t, m, an in series[::step]))
    procs = s["rss_per_process"]
    step = max(1, len(procs) // series_points)
    log("  RSS per server process (start s, life s, first/max/last MiB): " + " ".join(
        f"{p['start_s']:.0f}+{p['life_s']:.0f}:{p['first_mib']}/{p['max_mib']}/{p['last_mib']}" for p in procs[::step]))
    log(f"  failures: {len(s['failures'])}")
    for f in s["failures"]:
        log(f"    {f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=0, help="run cycles until this much time has passed")
    ap.add_argument("--cycles", type=int, default=0, help="stop after this many cycles (0: no limit)")
    ap.add_argument("--load-seconds", type=float, default=8.0, help="load per cycle (the fault comes at 60%%)")
    ap.add_argument("--producers", type=int, default=3, help="sender threads per queue")
    ap.add_argument("--consumers", type=int, default=2, help="receive-and-delete threads per queue")
    ap.add_argument("--visibility", type=int, default=5, help="the consumers' VisibilityTimeout")
    ap.add_argument("--read-timeout", type=float, default=5.0, help="client read timeout")
    ap.add_argument("--faults", default="kill,stop,disk",
                    help="the faults in turn, one per cycle (kill, stop, disk; disk is left out without root); "
                         "e.g. stop,disk keeps one server process for the whole run (RSS over a long life)")
    ap.add_argument("--stop-seconds", type=float, default=3.0, help="how long the server is SIGSTOPped")
    ap.add_argument("--disk-seconds", type=float, default=2.0, help="how long the disk stays full")
    ap.add_argument("--resume-limit", type=float, default=10.0, help="seconds allowed to resume after a full disk")
    ap.add_argument("--tmpfs-size", default="320m", help="size of the data directory's tmpfs (root only)")
    ap.add_argument("--no-disk", action="store_true", help="skip the disk-full fault even as root")
    ap.add_argument("--rss-interval", type=float, default=2.0)
    ap.add_argument("--stop-on-failure", action="store_true")
    ap.add_argument("--log-name", default="soak", help="server logs: tests/artifacts/NAME-N.stderr.log")
    ap.add_argument("--inject-loss", type=int, default=0, metavar="N",
                    help="test the harness itself: in cycle 1, delete N messages without recording them; "
                         "the run must then report them lost and exit 1")
    ap.add_argument("--json", help="write the summary (with the full RSS series) to this file")
    args = ap.parse_args()
    if not (args.minutes or args.cycles):
        ap.error("give --minutes or --cycles")
    unknown = set(args.faults.split(",")) - {"kill", "stop", "disk"}
    if unknown:
        ap.error(f"unknown faults {sorted(unknown)} (kill, stop, disk)")
    if os.environ.get("SQS_ENDPOINT"):
        log("SQS_ENDPOINT is set: the soak needs a sluice process of its own to kill; skipped")
        return 0
    disk = not args.no_disk and os.geteuid() == 0
    if not disk:
        log("disk-full fault skipped: " + ("--no-disk" if args.no_disk else
                                           "mounting a small tmpfs needs root") + "; kill and stop faults only")
    with tempfile.TemporaryDirectory(prefix="sluice-soak-") as tmp:
        if disk:
            with Tmpfs(args.tmpfs_size) as mnt:
                soak = Soak(args, mnt / "data", mnt)
                try:
                    soak.run()
                finally:
                    soak.server.kill()
        else:
            soak = Soak(args, Path(tmp) / "data", None)
            try:
                soak.run()
            finally:
                soak.server.kill()
    s = soak.summary()
    print_summary(s, 40)
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=1))
    if s["lost"] or s["failures"]:
        log("FAILED")
        return 1
    log("ok: nothing lost, the server always came back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
