"""Batch actions over the AWS JSON protocol (boto3): SendMessageBatch, DeleteMessageBatch,
ChangeMessageVisibilityBatch."""

import time

import pytest

from sqs_helpers import expect_error, md5_hex, md5_of_message_attributes
from test_messages import assert_empty, receive_all, receive_one


def entries(n, prefix="e"):
    return [{"Id": f"{prefix}{i}", "MessageBody": f"body-{prefix}{i}"} for i in range(n)]


# ------------------------------------------------------------------------------------------------ SendMessageBatch

def test_send_batch_of_ten(sqs, queue):
    attrs = {"k": {"DataType": "String", "StringValue": "v"}, "n": {"DataType": "Number", "StringValue": "7"}}
    batch = entries(10)
    batch[3]["MessageAttributes"] = attrs
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=batch)
    assert resp.get("Failed", []) == []
    ok = {e["Id"]: e for e in resp["Successful"]}
    assert set(ok) == {e["Id"] for e in batch}
    for e in batch:
        assert ok[e["Id"]]["MD5OfMessageBody"] == md5_hex(e["MessageBody"])
        assert ok[e["Id"]]["MessageId"]
    assert ok["e3"]["MD5OfMessageAttributes"] == md5_of_message_attributes(attrs)
    assert "MD5OfMessageAttributes" not in ok["e0"]
    got = receive_all(sqs, queue, 10, MessageAttributeNames=["All"])
    assert sorted(m["Body"] for m in got) == sorted(e["MessageBody"] for e in batch)
    assert {m["MessageId"] for m in got} == {e["MessageId"] for e in resp["Successful"]}
    with_attrs = [m for m in got if m["Body"] == "body-e3"][0]
    assert with_attrs["MessageAttributes"] == attrs


def test_send_batch_per_entry_delay(sqs, queue):
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[
        {"Id": "now", "MessageBody": "now"},
        {"Id": "later", "MessageBody": "later", "DelaySeconds": 1},
    ])
    assert len(resp["Successful"]) == 2
    assert [m["Body"] for m in receive_all(sqs, queue, 2, wait=0)] == ["now"]
    time.sleep(1.3)
    assert receive_one(sqs, queue)["Body"] == "later"


def test_send_batch_too_many_entries(sqs, queue):
    with expect_error("TooManyEntriesInBatchRequest"):
        sqs.send_message_batch(QueueUrl=queue, Entries=entries(11))


def test_send_batch_empty(sqs, queue):
    with expect_error("EmptyBatchRequest"):
        sqs.send_message_batch(QueueUrl=queue, Entries=[])


def test_send_batch_duplicate_ids(sqs, queue):
    with expect_error("BatchEntryIdsNotDistinct"):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "same", "MessageBody": "a"},
                                                         {"Id": "same", "MessageBody": "b"}])
    assert_empty(sqs, queue)


@pytest.mark.parametrize("bad_id", ["has space", "dot.id", "slash/", "x" * 81, "ünï", ""],
                         ids=["space", "dot", "slash", "81-chars", "non-ascii", "empty"])
def test_send_batch_invalid_entry_id(sqs, queue, bad_id):
    with expect_error("InvalidBatchEntryId"):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "ok", "MessageBody": "a"},
                                                         {"Id": bad_id, "MessageBody": "b"}])


def test_send_batch_valid_entry_ids(sqs, queue):
    ids = ["a", "A-b_c", "9" * 80]
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": i, "MessageBody": i} for i in ids])
    assert sorted(e["Id"] for e in resp["Successful"]) == sorted(ids)


def test_send_batch_total_over_1_mib(sqs, queue):
    # Each entry is within the 1 MiB message limit; together they are over the 1 MiB (1,048,576 bytes) batch limit.
    batch = [{"Id": f"b{i}", "MessageBody": chr(ord("a") + i) * 110_000} for i in range(10)]
    with expect_error("BatchRequestTooLong"):
        sqs.send_message_batch(QueueUrl=queue, Entries=batch)
    assert_empty(sqs, queue)


def test_send_batch_total_exactly_1_mib(sqs, queue):
    batch = [{"Id": f"b{i}", "MessageBody": chr(ord("a") + i) * 131_072} for i in range(8)]  # 8 * 128 KiB
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=batch)
    assert len(resp["Successful"]) == 8 and not resp.get("Failed")


def test_send_batch_per_entry_failures(sqs, queue):
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[
        {"Id": "good1", "MessageBody": "fine"},
        {"Id": "baddelay", "MessageBody": "x", "DelaySeconds": 901},
        {"Id": "badchars", "MessageBody": "nul \x00 here"},
        {"Id": "good2", "MessageBody": "also fine"},
    ])
    assert sorted(e["Id"] for e in resp["Successful"]) == ["good1", "good2"]
    failed = {e["Id"]: e for e in resp.get("Failed", [])}
    assert set(failed) == {"baddelay", "badchars"}, resp.get("Failed")
    assert failed["baddelay"]["Code"] == "InvalidParameterValue"
    assert failed["badchars"]["Code"] == "InvalidMessageContents"
    for e in failed.values():
        assert e["SenderFault"] is True
        assert e.get("Message")
    assert sorted(m["Body"] for m in receive_all(sqs, queue, 2)) == ["also fine", "fine"]


def test_send_batch_entry_over_queue_maximum_message_size(sqs, make_queue):
    url = make_queue(MaximumMessageSize=1024)
    resp = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "a" * 1024},
        {"Id": "big", "MessageBody": "a" * 1025},
    ])
    assert [e["Id"] for e in resp["Successful"]] == ["ok"]
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in resp["Failed"]] == \
        [("big", "InvalidParameterValue", True)]


# ------------------------------------------------------------------------------------------------ DeleteMessageBatch

def test_delete_batch(sqs, queue):
    sqs.send_message_batch(QueueUrl=queue, Entries=entries(5))
    got = receive_all(sqs, queue, 5, VisibilityTimeout=1)
    assert len(got) == 5
    resp = sqs.delete_message_batch(QueueUrl=queue, Entries=[
        {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert sorted(e["Id"] for e in resp["Successful"]) == [f"d{i}" for i in range(5)]
    assert resp.get("Failed", []) == []
    time.sleep(1.3)
    assert_empty(sqs, queue)


def test_delete_batch_partial_failure(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    m = receive_one(sqs, queue, VisibilityTimeout=1)
    resp = sqs.delete_message_batch(QueueUrl=queue, Entries=[
        {"Id": "good", "ReceiptHandle": m["ReceiptHandle"]},
        {"Id": "bad", "ReceiptHandle": "garbage"},
    ])
    assert [e["Id"] for e in resp["Successful"]] == ["good"]
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in resp["Failed"]] == \
        [("bad", "ReceiptHandleIsInvalid", True)]
    time.sleep(1.3)
    assert_empty(sqs, queue)


def _delete_entry(i, handle=None):
    return {"Id": i, "ReceiptHandle": handle or f"handle-{i}"}


def _visibility_entry(i, handle=None):
    return {"Id": i, "ReceiptHandle": handle or f"handle-{i}", "VisibilityTimeout": 1}


BATCH_ERROR_CASES = {
    "empty": ("EmptyBatchRequest", lambda mk: []),
    "eleven": ("TooManyEntriesInBatchRequest", lambda mk: [mk(f"i{i}") for i in range(11)]),
    "duplicate-ids": ("BatchEntryIdsNotDistinct", lambda mk: [mk("a", "h1"), mk("a", "h2")]),
    "bad-id": ("InvalidBatchEntryId", lambda mk: [mk("bad id")]),
    "dotted-id": ("InvalidBatchEntryId", lambda mk: [mk("bad.id")]),
}


@pytest.mark.parametrize("case", sorted(BATCH_ERROR_CASES))
def test_delete_batch_errors(sqs, queue, case):
    error, make = BATCH_ERROR_CASES[case]
    with expect_error(error):
        sqs.delete_message_batch(QueueUrl=queue, Entries=make(_delete_entry))


# ------------------------------------------------------------------------------------------------ ChangeMessageVisibilityBatch

def test_change_visibility_batch(sqs, queue):
    sqs.send_message_batch(QueueUrl=queue, Entries=entries(3))
    got = receive_all(sqs, queue, 3, VisibilityTimeout=60)
    assert len(got) == 3
    by_body = {m["Body"]: m for m in got}
    resp = sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[
        {"Id": "zero", "ReceiptHandle": by_body["body-e0"]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "keep", "ReceiptHandle": by_body["body-e1"]["ReceiptHandle"], "VisibilityTimeout": 120},
        {"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 0},
    ])
    assert sorted(e["Id"] for e in resp["Successful"]) == ["keep", "zero"]
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in resp["Failed"]] == \
        [("bad", "ReceiptHandleIsInvalid", True)]
    again = receive_all(sqs, queue, 3, wait=0)
    assert [m["Body"] for m in again] == ["body-e0"], "only the entry set to 0 is visible again"


@pytest.mark.parametrize("case", sorted(BATCH_ERROR_CASES))
def test_change_visibility_batch_errors(sqs, queue, case):
    error, make = BATCH_ERROR_CASES[case]
    with expect_error(error):
        sqs.change_message_visibility_batch(QueueUrl=queue, Entries=make(_visibility_entry))
