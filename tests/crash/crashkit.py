"""Shared pieces of the crash test (tests/crash/crash_test.py) and the soak harness (scripts/soak.py).

Owns: the senders' ledger (what was acknowledged, what was attempted), the sending loop (SendMessage and
SendMessageBatch, standard or FIFO), the receive-and-delete drain, and the comparison of what came back with what
was acknowledged. Starting and killing the server is tests/python/sluice_server.py's job.
"""

import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from sqs_helpers import make_client, md5_hex  # noqa: E402,F401 - make_client is re-exported for the callers


class Ledger:
    """What the senders know: acknowledged (id -> body) and attempted-but-unacknowledged bodies."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}
        self.unacked = set()
        self.requests_ok = 0
        self.requests_failed = 0
        self.errors = {}
        self.crashed = []
        self.refused = set()  # bodies whose send got 503 ServiceUnavailable (the store's degraded mode)

    def failed(self, e, bodies=()):
        with self.lock:
            self.requests_failed += 1
            key = type(e).__name__
            if isinstance(e, ClientError):
                key = e.response.get("Error", {}).get("Code") or key
            self.errors[key] = self.errors.get(key, 0) + 1
            if key == "ServiceUnavailable":
                self.refused.update(bodies)


def send_once(sqs, url, bodies, fifo=False, group=None):
    """One SendMessage (one body) or SendMessageBatch (several); returns the acknowledged (id, body) pairs.

    Raises on a transport or service error; a wrong MD5 in a response is an AssertionError (a bug, not a crash).
    FIFO sends carry an explicit MessageDeduplicationId (a fresh one per body: nothing is retried with it).
    """
    def fifo_args(body):
        return {"MessageGroupId": group or "g0", "MessageDeduplicationId": uuid.uuid5(uuid.NAMESPACE_OID, body).hex} \
            if fifo else {}

    if len(bodies) > 1:
        resp = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": f"e{i}", "MessageBody": b, **fifo_args(b)} for i, b in enumerate(bodies)])
        ok = []
        for e in resp.get("Successful", []):
            body = bodies[int(e["Id"][1:])]
            if e.get("MD5OfMessageBody") != md5_hex(body):
                raise AssertionError(f"bad MD5 in batch result for {body}")
            ok.append((e["MessageId"], body))
        return ok
    resp = sqs.send_message(QueueUrl=url, MessageBody=bodies[0], **fifo_args(bodies[0]))
    if resp.get("MD5OfMessageBody") != md5_hex(bodies[0]):
        raise AssertionError(f"bad MD5 for {bodies[0]}")
    return [(resp["MessageId"], bodies[0])]


def sender(endpoint, url, tid, ledger, stop, fifo=False, prefix="crash", read_timeout=10):
    """Sends until `stop` is set: two singles, then a batch of ten; every acknowledged message goes in `ledger`."""
    try:
        sqs = make_client(endpoint, read_timeout=read_timeout)
        seq = 0
        while not stop.is_set():
            batch = seq % 3 == 2
            n = 10 if batch else 1
            bodies = [f"{prefix}-{tid}-{seq}-{i}-{uuid.uuid4().hex}" for i in range(n)]
            seq += 1
            with ledger.lock:
                ledger.unacked.update(bodies)
            try:
                ok = send_once(sqs, url, bodies, fifo=fifo, group=f"g{tid}-{seq % 4}")
            except (BotoCoreError, ClientError, OSError) as e:
                ledger.failed(e, bodies)
                if stop.is_set():
                    return
                time.sleep(0.05)  # the server is down, stopped or refusing; go on with new bodies until told to stop
                continue
            with ledger.lock:
                ledger.requests_ok += 1
                for mid, body in ok:
                    ledger.acked[mid] = body
                    ledger.unacked.discard(body)
    except Exception as e:  # noqa: BLE001 - reported, not swallowed
        with ledger.lock:
            ledger.crashed.append(f"sender {prefix}-{tid}: {type(e).__name__}: {e}")


def drain(sqs, url, idle_rounds=2, until=None, deadline=None):
    """Receive and delete everything; returns a list of (MessageId, Body).

    Stops after `idle_rounds` empty 1 s long polls in a row, or, with `until` (a function of the messages got so
    far), once it returns True and a poll is empty; `deadline` (monotonic) bounds the wait either way.
    """
    got = []
    empty = 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            return got
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   VisibilityTimeout=120).get("Messages", [])
        if not msgs:
            empty += 1
            if (until is None and empty >= idle_rounds) or (until is not None and until(got)):
                return got
            continue
        empty = 0
        for m in msgs:
            if m["MD5OfBody"] != md5_hex(m["Body"]):
                raise AssertionError(f"MD5OfBody mismatch for message {m['MessageId']}")
            got.append((m["MessageId"], m["Body"]))
        resp = sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
        if resp.get("Failed"):
            raise AssertionError(f"delete failed: {resp['Failed']}")


class Verdict:
    """The comparison of what came back (`got`) with what the ledger says."""

    def __init__(self):
        self.missing = []       # acknowledged, not deleted, not back: lost
        self.wrong_body = []
        self.dup_acked = []     # acknowledged and back more than once
        self.unknown = []       # never sent
        self.dup_unacked = []
        self.recovered_unacked = 0
        self.received = 0
        self.failures = []


def compare(acked, unacked, got, may_be_gone=(), allow_duplicates=False):
    """Checks `got` (a list of (id, body)) against acknowledged `acked` (id -> body) and attempted `unacked` bodies.

    Every acknowledged id not in `may_be_gone` (e.g. ids whose delete was sent) must be in `got` with its body;
    an unacknowledged body may or may not come back; nothing else may. Duplicates fail unless `allow_duplicates`
    (they are then only counted: SQS is at-least-once).
    """
    v = Verdict()
    v.received = len(got)
    by_id = {}
    for mid, body in got:
        by_id.setdefault(mid, []).append(body)
    gone_ok = set(may_be_gone)
    v.missing = [mid for mid in acked if mid not in by_id and mid not in gone_ok]
    v.wrong_body = [mid for mid, body in acked.items() if mid in by_id and by_id[mid][0] != body]
    v.dup_acked = [mid for mid in acked if len(by_id.get(mid, [])) > 1]
    acked_bodies = set(acked.values())
    body_counts = {}
    for _, body in got:
        body_counts[body] = body_counts.get(body, 0) + 1
    v.dup_acked += [b for b, n in body_counts.items() if b in acked_bodies and n > 1 and b not in v.dup_acked]
    v.unknown = [(mid, body) for mid, body in got if mid not in acked and body not in unacked]
    v.dup_unacked = [b for b, n in body_counts.items() if b in unacked and n > 1]
    v.recovered_unacked = sum(1 for b in body_counts if b in unacked)
    if v.missing:
        v.failures.append(f"{len(v.missing)} acknowledged messages lost, e.g. "
                          f"{[(m, acked[m]) for m in v.missing[:3]]}")
    if v.wrong_body:
        v.failures.append(f"{len(v.wrong_body)} messages came back with a different body, e.g. "
                          f"{[(m, acked[m], by_id[m][0]) for m in v.wrong_body[:3]]}")
    if v.unknown:
        v.failures.append(f"{len(v.unknown)} messages that were never sent, e.g. {v.unknown[:3]}")
    if not allow_duplicates:
        if v.dup_acked:
            v.failures.append(f"{len(v.dup_acked)} acknowledged messages delivered twice, e.g. {v.dup_acked[:3]}")
        if v.dup_unacked:
            v.failures.append(f"{len(v.dup_unacked)} unacknowledged messages recovered twice, e.g. "
                              f"{v.dup_unacked[:3]}")
    return v
