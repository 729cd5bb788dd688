"""Encryption at rest, black-box (issue 23 item 6): a sluice started with --master-key-file.

The proof: a marker string sent as a body and as message attribute values (String and Binary) to an encrypted
queue is in no file of the data directory after a restart (the server's shutdown runs a last checkpoint, so the
records went through the write-ahead log and into the redb file), and it comes back intact, with boto3 checking
MD5OfBody and MD5OfMessageAttributes itself. The same data with a wrong master key, or with none, is a start-up
error that names the problem. The control queue (SqsManagedSseEnabled=false) shows the grep finds what is there.

AWS's answers relied on: SqsManagedSseEnabled is on by default for new queues (GetQueueAttributes of a fresh queue,
LocalStack snapshot test_create_queue_with_default_attributes_is_idempotent and AWS's 2022 announcement); a
KmsMasterKeyId that names no key is accepted by CreateQueue and fails SendMessage with KmsNotFound, Query code
KMS.NotFoundException (botocore's SQS model lists KmsNotFound among SendMessage's errors; the SQS developer guide's
"AWS KMS errors" section points at KMS's NotFoundException).
"""

import base64
import hashlib
import os
import secrets
import urllib.request
from pathlib import Path

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from sluice_server import SluiceServer

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="starts its own sluice with keys")

MARKER = "MARKER-" + secrets.token_hex(8)


@pytest.fixture(autouse=True)
def no_key_from_the_environment(monkeypatch):
    """Each test names its keys itself (the rest of the suite may run with SLUICE_MASTER_KEY_FILE set)."""
    monkeypatch.delenv("SLUICE_MASTER_KEY_FILE", raising=False)
    monkeypatch.delenv("SLUICE_OLD_MASTER_KEY_FILE", raising=False)


def client(endpoint):
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x",
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def key_file(path, raw=None, b64=True):
    raw = raw or secrets.token_bytes(32)
    path.write_bytes(base64.b64encode(raw) + b"\n" if b64 else raw)
    return path


def files_containing(data_dir, needle):
    """Every file under data_dir whose bytes contain needle."""
    hits = []
    for p in Path(data_dir).rglob("*"):
        if p.is_file() and needle in p.read_bytes():
            hits.append(p.name)
    return hits


def send_markers(sqs, url, tag):
    attrs = {"s": {"DataType": "String", "StringValue": f"{MARKER}-{tag}-attr"},
             "b": {"DataType": "Binary", "BinaryValue": f"{MARKER}-{tag}-bin".encode()}}
    sqs.send_message(QueueUrl=url, MessageBody=f"{MARKER}-{tag}-body", MessageAttributes=attrs)
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": f"{MARKER}-{tag}-batch-{i}", "MessageAttributes": attrs} for i in range(10)])


def receive_all(sqs, url, n):
    got = []
    while len(got) < n:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                WaitTimeSeconds=1)
        msgs = r.get("Messages", [])
        if not msgs:
            break
        got.extend(msgs)
    return got


def start(root, name, *args, config=None):
    extra = list(args)
    if config is not None:
        extra += ["--config", str(config)]
    s = SluiceServer(root / "data", log_name=name, extra_args=extra)
    s.start()
    return s


def failed_start(root, name, *args):
    s = SluiceServer(root / "data", log_name=name, extra_args=list(args))
    with pytest.raises(RuntimeError) as e:
        s.start()
    s.kill()
    return str(e.value) + Path(s.log_path).read_text()


def test_markers_never_reach_the_disk_and_survive_restarts(tmp_path):
    key = key_file(tmp_path / "master.key")
    s = start(tmp_path, "at-rest-1", "--master-key-file", str(key))
    sqs = client(s.endpoint)
    enc = sqs.create_queue(QueueName="enc")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=enc, AttributeNames=["All"])["Attributes"]
    assert attrs["SqsManagedSseEnabled"] == "true", "SSE-SQS is AWS's default for new queues"
    plain = sqs.create_queue(QueueName="plain", Attributes={"SqsManagedSseEnabled": "false"})["QueueUrl"]
    send_markers(sqs, enc, "enc")
    send_markers(sqs, plain, "plain")
    assert s.stop() == 0

    data = tmp_path / "data"
    assert files_containing(data, f"{MARKER}-enc".encode()) == []
    # The control: the grep does find what is stored in the clear.
    assert files_containing(data, f"{MARKER}-plain".encode())

    s = start(tmp_path, "at-rest-2", "--master-key-file", str(key))
    sqs = client(s.endpoint)
    got = receive_all(sqs, enc, 11)  # boto3 checks MD5OfBody and MD5OfMessageAttributes itself
    assert sorted(m["Body"] for m in got) == sorted(
        [f"{MARKER}-enc-body"] + [f"{MARKER}-enc-batch-{i}" for i in range(10)])
    for m in got:
        assert m["MD5OfBody"] == hashlib.md5(m["Body"].encode()).hexdigest()
        assert m["MessageAttributes"]["s"]["StringValue"] == f"{MARKER}-enc-attr"
        assert m["MessageAttributes"]["b"]["BinaryValue"] == f"{MARKER}-enc-bin".encode()
    # Every record opened: the damage counter (a ciphertext that does not decrypt) is exported and 0.
    metrics = urllib.request.urlopen(s.endpoint + "/metrics", timeout=5).read().decode()
    assert "\nsluice_at_rest_damaged_records_total 0\n" in metrics, metrics
    assert s.stop() == 0

    # A wrong master key is refused at start, naming the problem, instead of losing the messages.
    wrong = key_file(tmp_path / "wrong.key")
    out = failed_start(tmp_path, "at-rest-wrong", "--master-key-file", str(wrong))
    assert "is wrapped by a key that is not configured" in out, out
    out = failed_start(tmp_path, "at-rest-none")
    assert "holds encrypted messages but no master key is configured" in out, out


def test_master_key_rotation_without_losing_messages(tmp_path):
    old = key_file(tmp_path / "old.key", b64=False)  # raw 32 bytes work too
    new = key_file(tmp_path / "new.key")
    s = start(tmp_path, "rotate-1", "--master-key-file", str(old))
    sqs = client(s.endpoint)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=f"{MARKER}-before")
    assert s.stop() == 0

    # The new key alone cannot read the old data; with the old one kept, the data keys are rewrapped.
    assert "not configured" in failed_start(tmp_path, "rotate-new-only", "--master-key-file", str(new))
    s = start(tmp_path, "rotate-2", "--master-key-file", str(new), "--old-master-key-file", str(old))
    sqs = client(s.endpoint)
    sqs.send_message(QueueUrl=url, MessageBody=f"{MARKER}-during")
    assert s.stop() == 0

    # After one start with both, the old key can go.
    s = start(tmp_path, "rotate-3", "--master-key-file", str(new))
    sqs = client(s.endpoint)
    assert sorted(m["Body"] for m in receive_all(sqs, url, 2)) == [f"{MARKER}-before", f"{MARKER}-during"]
    assert s.stop() == 0
    assert files_containing(tmp_path / "data", MARKER.encode()) == []


def test_kms_master_key_id_from_the_key_ring(tmp_path):
    master = key_file(tmp_path / "master.key")
    orders = key_file(tmp_path / "orders.key")
    config = tmp_path / "sluice.toml"
    config.write_text(f'[kms_keys]\n"alias/orders" = "{orders}"\n')
    s = start(tmp_path, "kms-1", "--master-key-file", str(master), config=config)
    sqs = client(s.endpoint)
    ring = sqs.create_queue(QueueName="ring", Attributes={"KmsMasterKeyId": "alias/orders"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=ring, AttributeNames=["All"])["Attributes"]
    assert attrs["KmsMasterKeyId"] == "alias/orders" and attrs["SqsManagedSseEnabled"] == "false"
    assert attrs["KmsDataKeyReusePeriodSeconds"] == "300"
    sqs.send_message(QueueUrl=ring, MessageBody=f"{MARKER}-ring")
    # The AWS managed key's alias is the master key.
    managed = sqs.create_queue(QueueName="managed", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})["QueueUrl"]
    sqs.send_message(QueueUrl=managed, MessageBody=f"{MARKER}-managed")

    # CreateQueue accepts any key id, as AWS does; the send fails with KMS's NotFound.
    bad = sqs.create_queue(QueueName="bad", Attributes={"KmsMasterKeyId": "alias/nope"})["QueueUrl"]
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=bad, MessageBody="x")
    assert e.value.response["Error"]["Code"] == "KMS.NotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "alias/nope is not found" in e.value.response["Error"]["Message"]
    assert s.stop() == 0
    assert files_containing(tmp_path / "data", MARKER.encode()) == []

    # The ring's key is needed to start again.
    out = failed_start(tmp_path, "kms-no-ring", "--master-key-file", str(master))
    assert "not configured" in out, out
    s = start(tmp_path, "kms-2", "--master-key-file", str(master), config=config)
    sqs = client(s.endpoint)
    assert [m["Body"] for m in receive_all(sqs, ring, 1)] == [f"{MARKER}-ring"]
    assert [m["Body"] for m in receive_all(sqs, managed, 1)] == [f"{MARKER}-managed"]
    assert s.stop() == 0


def test_without_a_master_key_sse_queues_are_accepted_and_stored_in_the_clear(tmp_path):
    s = start(tmp_path, "no-key")
    sqs = client(s.endpoint)
    url = sqs.create_queue(QueueName="q", Attributes={"KmsMasterKeyId": "alias/anything"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=f"{MARKER}-clear")
    assert s.stop() == 0
    assert files_containing(tmp_path / "data", f"{MARKER}-clear".encode())
    assert "no master key configured" in Path(s.log_path).read_text()
