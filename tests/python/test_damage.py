"""Issue 24 item 2: damage is detected, reported and contained (real binary, copies of a real data dir).

Each test builds a data directory with the real server (a queue, 5 batches of 10 messages), damages a
copy of it the way the issue saw (a flipped byte in the middle of the write-ahead log or in its first
record, a torn last record, a deleted log or store file, a flipped bit inside a stored body) and checks
what sluice does: refuses to start naming the file and offset, starts with --salvage reporting what it
dropped, cuts a torn tail only, quarantines a damaged body and serves the others; `sluice check`
reports each case (exit 1) and a healthy directory (exit 0).

Log format (crates/sluice-store/src/wal.rs): a 4096-byte header block (magic SLCWAL01, epoch u64, CRC),
then records `len u32, crc u32 over (epoch || payload), payload`. zlib.crc32 is the same CRC-32.
"""
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import urllib.request
import zlib
from pathlib import Path

import pytest

from sluice_server import SluiceServer, sluice_bin
from sqs_helpers import make_client, md5_hex

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="needs the binary, not a remote server")

QUEUE = "damage"
BATCHES = 5


def body(i):
    return f"damage-test-body-{i:04d}-" + "x" * 40


def log_records(path):
    """(epoch, [(offset, length)]) of the current epoch's records in a log file."""
    data = Path(path).read_bytes()
    assert data[:8] == b"SLCWAL01"
    epoch = struct.unpack_from("<Q", data, 8)[0]
    records, at = [], 4096
    while at + 8 <= len(data):
        n, crc = struct.unpack_from("<II", data, at)
        payload = data[at + 8:at + 8 + n]
        if n == 0 or len(payload) != n or zlib.crc32(struct.pack("<Q", epoch) + payload) != crc:
            break
        records.append((at, n))
        at += 8 + n
    return epoch, records


def build(tmp, graceful):
    """A data dir holding QUEUE with 50 messages; with `graceful` the server is stopped with SIGTERM
    (everything checkpointed into sluice.redb), else killed at once (everything still in a log)."""
    d = Path(tmp) / "orig"
    server = SluiceServer(d, log_name="damage-build")
    endpoint = server.start()
    try:
        sqs = make_client(endpoint)
        url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        for b in range(BATCHES):
            entries = [{"Id": str(i), "MessageBody": body(b * 10 + i)} for i in range(10)]
            assert len(sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 10
    finally:
        if graceful:
            assert server.stop() == 0
        else:
            server.kill()
    return d


def copy_of(src, tmp, name):
    dst = Path(tmp) / name
    shutil.copytree(src, dst)
    return dst


def the_log_with_records(d):
    found = []
    for name in ("sluice.wal", "sluice.wal2"):
        epoch, records = log_records(d / name)
        if records:
            found.append((d / name, records))
    assert len(found) == 1, f"expected one log holding the records, got {found}"
    return found[0]


def flip(path, offset, mask=0xFF):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ mask]))


def start_fails(d, extra_args=()):
    """Runs `sluice serve` on d and expects it to exit non-zero without listening; returns its stderr."""
    cmd = [str(sluice_bin()), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(d), *extra_args]
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    assert p.returncode != 0, f"sluice started on a damaged dir: {p.stdout!r} {p.stderr[-2000:]!r}"
    assert b"listening on" not in p.stdout
    return p.stderr.decode(errors="replace")


def check(d):
    p = subprocess.run([str(sluice_bin()), "check", str(d)], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def receive_all(sqs, url):
    got = {}
    for _ in range(30):
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60)
        msgs = r.get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            assert m["MD5OfBody"] == md5_hex(m["Body"]), "a body was served with a stale MD5OfBody"
            got[m["Body"]] = m
    return got


def counts(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def metric(endpoint, name):
    text = urllib.request.urlopen(endpoint + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.fixture(scope="module")
def tmp():
    d = tempfile.mkdtemp(prefix="sluice-damage-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def in_log(tmp):
    return build(tmp / "in-log", graceful=False)


@pytest.fixture(scope="module")
def in_store(tmp):
    return build(tmp / "in-store", graceful=True)


def test_healthy_dir_starts_and_checks_clean(in_log, tmp):
    code, report = check(in_log)
    assert code == 0, report
    assert "no damage found" in report
    d = copy_of(in_log, tmp, "healthy")
    server = SluiceServer(d, log_name="damage-healthy")
    sqs = make_client(server.start())
    try:
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        assert len(receive_all(sqs, url)) == 50
    finally:
        server.stop()


@pytest.mark.parametrize("which", ["middle", "first"])
def test_flipped_byte_in_the_log_refuses_start_naming_file_and_offset(in_log, tmp, which):
    d = copy_of(in_log, tmp, f"flip-{which}")
    log, records = the_log_with_records(d)
    assert len(records) >= 1 + BATCHES, records  # CreateQueue, then one record per batch
    at, n = records[0] if which == "first" else records[len(records) // 2]
    flip(log, at + 8 + n // 2)
    err = start_fails(d)
    assert log.name in err and f"offset {at}" in err, err
    assert "--salvage" in err
    code, report = check(d)
    assert code == 1 and "DAMAGED" in report and f"offset {at}" in report, report


def test_salvage_keeps_every_readable_record_and_reports_the_dropped_one(in_log, tmp):
    d = copy_of(in_log, tmp, "salvage")
    log, records = the_log_with_records(d)
    at, n = records[2]  # the second batch of 10
    flip(log, at + 8 + n // 2)
    server = SluiceServer(d, log_name="damage-salvage", extra_args=["--salvage"])
    sqs = make_client(server.start())
    try:
        stderr = server.stderr_tail(80)
        assert f"offset {at}" in stderr and log.name in stderr, stderr
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        got = receive_all(sqs, url)
        assert len(got) == 40
        assert not any(body(i) in got for i in range(10, 20)), "the dropped record's messages came back"
    finally:
        server.stop()
    # Salvaged and checkpointed: the directory is healthy again.
    code, report = check(d)
    assert code == 0, report


def test_torn_last_record_is_cut_and_logged(in_log, tmp):
    d = copy_of(in_log, tmp, "torn")
    log, records = the_log_with_records(d)
    at, n = records[-1]
    with open(log, "r+b") as f:  # the last record half written
        f.seek(at + 8 + n // 2)
        f.write(b"\0" * (n - n // 2))
    code, report = check(d)
    assert code == 0 and "torn" in report, report
    server = SluiceServer(d, log_name="damage-torn")
    sqs = make_client(server.start())
    try:
        assert "torn" in server.stderr_tail(80)
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        assert len(receive_all(sqs, url)) == 40
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["sluice.wal", "sluice.wal2", "sluice.redb"])
def test_a_missing_store_file_refuses_start(in_log, tmp, name):
    d = copy_of(in_log, tmp, f"missing-{name}")
    (d / name).unlink()
    err = start_fails(d)
    assert name in err and "missing" in err, err
    code, report = check(d)
    assert code == 1 and name in report, report
    assert not (d / name).exists(), "a refused start must not re-create the file"


def test_a_flipped_bit_in_a_stored_body_is_quarantined_and_the_rest_served(in_store, tmp):
    d = copy_of(in_store, tmp, "body-flip")
    data = (d / "sluice.redb").read_bytes()
    target = body(7).encode()
    hits, at = [], data.find(target)
    while at >= 0:
        hits.append(at)
        at = data.find(target, at + 1)
    assert hits, "the body is not in sluice.redb"
    for at in hits:  # every copy redb holds (the bit is in the body's text, not its length)
        flip(d / "sluice.redb", at + len(target) - 3, 0x01)
    code, report = check(d)
    assert code == 1 and "MD5" in report, report
    server = SluiceServer(d, log_name="damage-body")
    endpoint = server.start()
    sqs = make_client(endpoint)
    try:
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        got = receive_all(sqs, url)
        assert len(got) == 49 and body(7) not in got
        assert metric(endpoint, "sluice_quarantined_messages") == 1
        for m in got.values():
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        assert counts(sqs, url) == (0, 0), "a message was left in flight"
        assert "quarantined" in server.stderr_tail(80)
    finally:
        server.stop(signal.SIGTERM)
