"""FIFO queues and fair queues (MessageGroupId on standard queues), over the AWS JSON protocol (boto3) and, for a
representative subset, the Query protocol.

What is asserted comes from the SQS API reference (the service model's CreateQueue / SendMessage / ReceiveMessage
documentation), the developer guide (FIFO delivery logic, exactly-once processing, fair queues) and, where the
documentation names no error code, AWS recordings (localstack's AWS-validated snapshots of test_sqs.py):

  * `.fifo` name without FifoQueue=true, or FifoQueue=true without `.fifo`: InvalidParameterValue.
  * FifoQueue (even "false"), ContentBasedDeduplication, DeduplicationScope, FifoThroughputLimit on a standard
    queue: InvalidAttributeName. FifoQueue=false on an existing FIFO queue: InvalidAttributeValue.
  * SendMessage to a FIFO queue without MessageGroupId: MissingParameter; without MessageDeduplicationId and
    without ContentBasedDeduplication: InvalidParameterValue; per-message DelaySeconds > 0: InvalidParameterValue
    (DelaySeconds=0 is accepted). MessageGroupId / MessageDeduplicationId outside 1-128 chars of alphanumerics
    and punctuation: InvalidParameterValue. A receipt handle whose visibility timeout expired:
    InvalidParameterValue on DeleteMessage.
  * A duplicate send succeeds with the original MessageId and is not enqueued, also after the original was
    received and deleted; with DeduplicationScope=queue the dedup id spans groups, with messageGroup it does not.
"""

import hashlib
import time

import pytest
from botocore.exceptions import ClientError

from sqs_helpers import (children, expect_error, expect_one_of, path_text, query_attributes, query_error_code,
                         query_ok, query_request)

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


@pytest.fixture
def make_fifo(make_queue, unique_name):
    """make_fifo(**Attributes) -> URL of a new FIFO queue (FifoQueue=true, name ending in .fifo)."""
    def make(**attributes):
        attributes = {k: str(v).lower() if isinstance(v, bool) else v for k, v in attributes.items()}
        return make_queue(name=unique_name(".fifo"), FifoQueue="true", **attributes)
    return make


@pytest.fixture
def fifo(make_fifo):
    return make_fifo()


@pytest.fixture
def cbd_fifo(make_fifo):
    return make_fifo(ContentBasedDeduplication="true")


def receive(sqs, url, n=10, **kwargs):
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, **kwargs).get("Messages", [])


def bodies(msgs):
    return [m["Body"] for m in msgs]


def send(sqs, url, body, group="g", dedup=None, **kwargs):
    if dedup is not None:
        kwargs["MessageDeduplicationId"] = dedup
    return sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, **kwargs)


def drain_bodies(sqs, url, rounds=20, **kwargs):
    """Receive-and-delete until a receive comes back empty; the bodies in the order they arrived."""
    got = []
    for _ in range(rounds):
        msgs = receive(sqs, url, **kwargs)
        if not msgs:
            break
        got += msgs
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies(got)


# ------------------------------------------------------------------------------------------------ CreateQueue

def test_create_fifo_queue_attributes_all(sqs, make_queue, unique_name):
    name = unique_name(".fifo")
    url = make_queue(name=name, FifoQueue="true")
    assert url.endswith("/" + name), "the .fifo suffix is part of the queue URL"
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert a["FifoQueue"] == "true"
    assert a["ContentBasedDeduplication"] == "false"
    assert a["DeduplicationScope"] == "queue"
    assert a["FifoThroughputLimit"] == "perQueue"
    assert a["QueueArn"].endswith(":" + name)
    for k in ("FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"):
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[k])["Attributes"] == {k: a[k]}


def test_create_fifo_queue_with_high_throughput_attributes(sqs, make_fifo):
    url = make_fifo(ContentBasedDeduplication="true", DeduplicationScope="messageGroup",
                    FifoThroughputLimit="perMessageGroupId")
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (a["ContentBasedDeduplication"], a["DeduplicationScope"], a["FifoThroughputLimit"]) == \
        ("true", "messageGroup", "perMessageGroupId")


def test_create_fifo_queue_idempotent_and_conflicting(sqs, make_queue, unique_name):
    name = unique_name(".fifo")
    url = make_queue(name=name, FifoQueue="true", ContentBasedDeduplication="true")
    assert sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}) \
        ["QueueUrl"] == url
    with expect_error("QueueNameExists"):
        sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"})


def test_fifo_name_without_fifo_attribute(sqs, unique_name):
    with expect_error("InvalidParameterValue"):
        sqs.create_queue(QueueName=unique_name(".fifo"))


def test_fifo_attribute_without_fifo_name(sqs, unique_name):
    with expect_error("InvalidParameterValue"):
        sqs.create_queue(QueueName=unique_name(), Attributes={"FifoQueue": "true"})


def test_fifo_name_with_fifo_attribute_false(sqs, unique_name):
    # Name and attribute disagree. AWS answers FifoQueue (any value) on a would-be standard queue with
    # InvalidAttributeName and a .fifo name on a standard queue with InvalidParameterValue; either is right here.
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName=unique_name(".fifo"), Attributes={"FifoQueue": "false"})
    expect_one_of(ei.value, ["InvalidAttributeName", "InvalidParameterValue"])


@pytest.mark.parametrize("attr,value", [
    ("FifoQueue", "false"),
    ("ContentBasedDeduplication", "false"),
    ("ContentBasedDeduplication", "true"),
    ("DeduplicationScope", "queue"),
    ("FifoThroughputLimit", "perQueue"),
])
def test_fifo_only_attributes_on_standard_queue(sqs, unique_name, attr, value):
    with expect_error("InvalidAttributeName"):
        sqs.create_queue(QueueName=unique_name(), Attributes={attr: value})


@pytest.mark.parametrize("attr,value", [
    ("FifoQueue", "yes"),
    ("ContentBasedDeduplication", "maybe"),
    ("DeduplicationScope", "bogus"),
    ("FifoThroughputLimit", "bogus"),
])
def test_fifo_attribute_invalid_values(sqs, unique_name, attr, value):
    attributes = {"FifoQueue": "true", attr: value}
    with expect_error("InvalidAttributeValue"):
        sqs.create_queue(QueueName=unique_name(".fifo"), Attributes=attributes)


def test_per_message_group_throughput_requires_message_group_scope(sqs, unique_name):
    # "The perMessageGroupId value is allowed only when the value for DeduplicationScope is messageGroup."
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName=unique_name(".fifo"), Attributes={
            "FifoQueue": "true", "DeduplicationScope": "queue", "FifoThroughputLimit": "perMessageGroupId"})
    expect_one_of(ei.value, ["InvalidAttributeValue", "InvalidParameterValue"])


def test_fifo_queue_name_length_counts_suffix(sqs, make_queue, unique_name):
    base = (unique_name() + "x" * 80)[:75]
    url = make_queue(name=base + ".fifo", FifoQueue="true")  # 80 characters with the suffix
    assert url.endswith(base + ".fifo")
    with expect_error("InvalidParameterValue"):
        sqs.create_queue(QueueName=base + "y.fifo", Attributes={"FifoQueue": "true"})  # 81


def test_set_queue_attributes_fifo_queue_type_is_fixed(sqs, fifo, queue):
    sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "true"})  # unchanged: accepted
    with expect_error("InvalidAttributeValue"):
        sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"FifoQueue": "false"})
    with expect_error("InvalidAttributeName"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"FifoQueue": "true"})
    with expect_error("InvalidAttributeName"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"ContentBasedDeduplication": "true"})


def test_set_fifo_attributes_after_creation(sqs, fifo):
    sqs.set_queue_attributes(QueueUrl=fifo, Attributes={
        "ContentBasedDeduplication": "true", "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId"})
    a = sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["All"])["Attributes"]
    assert (a["ContentBasedDeduplication"], a["DeduplicationScope"], a["FifoThroughputLimit"]) == \
        ("true", "messageGroup", "perMessageGroupId")
    sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"ContentBasedDeduplication": "false"})
    assert sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["ContentBasedDeduplication"])["Attributes"] == \
        {"ContentBasedDeduplication": "false"}


# ------------------------------------------------------------------------------------------------ SendMessage

def test_send_requires_message_group_id(sqs, cbd_fifo):
    with expect_error("MissingParameter"):
        sqs.send_message(QueueUrl=cbd_fifo, MessageBody="x", MessageDeduplicationId="d")


def test_send_requires_dedup_id_or_content_based_dedup(sqs, fifo):
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=fifo, MessageBody="x", MessageGroupId="g")


@pytest.mark.parametrize("param", ["MessageGroupId", "MessageDeduplicationId"])
@pytest.mark.parametrize("value", ["", "a" * 129, "group 123", "tab\tx", "ümlaut"],
                         ids=["empty", "129-chars", "space", "tab", "non-ascii"])
def test_send_invalid_group_or_dedup_id(sqs, fifo, param, value):
    kwargs = {"MessageGroupId": "g", "MessageDeduplicationId": "d", param: value}
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=fifo, MessageBody="x", **kwargs)


def test_send_longest_group_and_dedup_ids_with_punctuation(sqs, fifo):
    group = (PUNCTUATION + "Az09" * 40)[:128]
    dedup = ("Zz9" * 50 + PUNCTUATION)[-128:]
    sent = sqs.send_message(QueueUrl=fifo, MessageBody="edge", MessageGroupId=group, MessageDeduplicationId=dedup)
    m = receive(sqs, fifo, MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId"])[0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Attributes"] == {"MessageGroupId": group, "MessageDeduplicationId": dedup}


def test_send_per_message_delay_rejected_on_fifo(sqs, cbd_fifo):
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=cbd_fifo, MessageBody="x", MessageGroupId="g", DelaySeconds=2)
    # DelaySeconds=0 is no per-message delay: accepted.
    sqs.send_message(QueueUrl=cbd_fifo, MessageBody="y", MessageGroupId="g", DelaySeconds=0)
    assert bodies(receive(sqs, cbd_fifo)) == ["y"]


def test_queue_level_delay_on_fifo(sqs, make_fifo):
    url = make_fifo(ContentBasedDeduplication="true", DelaySeconds=1)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g")
    assert receive(sqs, url) == []
    time.sleep(1.3)
    assert bodies(receive(sqs, url)) == ["m0", "m1", "m2"]


def test_sequence_numbers(sqs, fifo, queue):
    sent = [send(sqs, fifo, f"m{i}", dedup=f"d{i}") for i in range(3)]
    seqs = [s["SequenceNumber"] for s in sent]
    for s in seqs:
        assert s.isdigit(), f"SequenceNumber should be a (128-bit) decimal number: {s!r}"
    assert int(seqs[0]) < int(seqs[1]) < int(seqs[2]), seqs
    got = receive(sqs, fifo, MessageSystemAttributeNames=["SequenceNumber"])
    assert [m["Attributes"]["SequenceNumber"] for m in got] == seqs
    assert "SequenceNumber" not in sqs.send_message(QueueUrl=queue, MessageBody="std")


def test_send_batch_sequence_numbers(sqs, fifo):
    entries = [{"Id": f"e{i}", "MessageBody": f"b{i}", "MessageGroupId": "g", "MessageDeduplicationId": f"d{i}"}
               for i in range(3)]
    res = sqs.send_message_batch(QueueUrl=fifo, Entries=entries)
    assert not res.get("Failed"), res.get("Failed")
    ok = {e["Id"]: e for e in res["Successful"]}
    seqs = [ok[f"e{i}"]["SequenceNumber"] for i in range(3)]
    assert all(s.isdigit() for s in seqs), seqs
    assert int(seqs[0]) < int(seqs[1]) < int(seqs[2]), "batch entries are enqueued in entry order"
    got = receive(sqs, fifo, MessageSystemAttributeNames=["SequenceNumber"])
    assert bodies(got) == ["b0", "b1", "b2"]
    assert [m["Attributes"]["SequenceNumber"] for m in got] == seqs


def test_send_batch_missing_dedup_id_fails_request(sqs, fifo):
    # Recorded AWS behaviour: the whole request fails (not just the entry).
    entries = [{"Id": "a", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d1"},
               {"Id": "b", "MessageBody": "y", "MessageGroupId": "g"}]
    with expect_error("InvalidParameterValue"):
        sqs.send_message_batch(QueueUrl=fifo, Entries=entries)


def test_send_batch_missing_group_id(sqs, fifo):
    entries = [{"Id": "a", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d1"},
               {"Id": "b", "MessageBody": "y", "MessageDeduplicationId": "d2"}]
    try:
        res = sqs.send_message_batch(QueueUrl=fifo, Entries=entries)
    except ClientError as e:
        expect_one_of(e, ["InvalidParameterValue", "MissingParameter"])
    else:
        failed = {f["Id"]: f for f in res.get("Failed", [])}
        assert "b" in failed and failed["b"]["SenderFault"], res
        assert failed["b"]["Code"] in ("MissingParameter", "InvalidParameterValue"), failed


def test_send_batch_entry_delay_rejected_on_fifo(sqs, cbd_fifo):
    entries = [{"Id": "a", "MessageBody": "x", "MessageGroupId": "g", "DelaySeconds": 5}]
    try:
        res = sqs.send_message_batch(QueueUrl=cbd_fifo, Entries=entries)
    except ClientError as e:
        expect_one_of(e, ["InvalidParameterValue"])
    else:
        assert [f["Code"] for f in res.get("Failed", [])] == ["InvalidParameterValue"], res
    assert receive(sqs, cbd_fifo) == []


def test_standard_queue_rejects_dedup_id(sqs, queue):
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageDeduplicationId="d")
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d")


# ------------------------------------------------------------------------------------------------ deduplication

def test_duplicate_returns_original_message_id_and_is_not_enqueued(sqs, fifo):
    first = send(sqs, fifo, "one", dedup="same")
    again = send(sqs, fifo, "two", dedup="same")  # a different body: the dedup id decides
    assert again["MessageId"] == first["MessageId"]
    assert drain_bodies(sqs, fifo) == ["one"]


def test_duplicate_after_receive_and_delete_is_still_dropped(sqs, fifo):
    first = send(sqs, fifo, "one", dedup="kept")
    m = receive(sqs, fifo)[0]
    sqs.delete_message(QueueUrl=fifo, ReceiptHandle=m["ReceiptHandle"])
    again = send(sqs, fifo, "one", dedup="kept")
    assert again["MessageId"] == first["MessageId"]
    assert receive(sqs, fifo) == []


def test_content_based_deduplication(sqs, cbd_fifo):
    first = sqs.send_message(QueueUrl=cbd_fifo, MessageBody="same body", MessageGroupId="g")
    # Attributes are not part of the hash: still a duplicate.
    again = sqs.send_message(QueueUrl=cbd_fifo, MessageBody="same body", MessageGroupId="g",
                             MessageAttributes={"a": {"DataType": "String", "StringValue": "v"}})
    assert again["MessageId"] == first["MessageId"]
    sqs.send_message(QueueUrl=cbd_fifo, MessageBody="other body", MessageGroupId="g")
    assert drain_bodies(sqs, cbd_fifo) == ["same body", "other body"]


def test_content_based_dedup_id_is_sha256_of_body(sqs, cbd_fifo):
    body = "hash me ✓"
    sqs.send_message(QueueUrl=cbd_fifo, MessageBody=body, MessageGroupId="g")
    m = receive(sqs, cbd_fifo, MessageSystemAttributeNames=["MessageDeduplicationId"])[0]
    # "Amazon SQS uses a SHA-256 hash to generate the MessageDeduplicationId using the body of the message";
    # it is reported as the lowercase hex digest.
    assert m["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(body.encode("utf-8")).hexdigest()


def test_explicit_dedup_id_overrides_content_based(sqs, cbd_fifo):
    a = sqs.send_message(QueueUrl=cbd_fifo, MessageBody="body", MessageGroupId="g", MessageDeduplicationId="explicit")
    b = sqs.send_message(QueueUrl=cbd_fifo, MessageBody="body", MessageGroupId="g")  # generated id: not "explicit"
    assert a["MessageId"] != b["MessageId"]
    got = receive(sqs, cbd_fifo, MessageSystemAttributeNames=["MessageDeduplicationId"])
    assert [m["MessageId"] for m in got] == [a["MessageId"], b["MessageId"]]
    ids = [m["Attributes"]["MessageDeduplicationId"] for m in got]
    assert ids[0] == "explicit" and ids[1] != "explicit", ids


def test_explicit_id_equal_to_generated_id_is_duplicate(sqs, cbd_fifo):
    """'If you send one message with ContentBasedDeduplication enabled and then another message with a
    MessageDeduplicationId that is the same as the one generated for the first MessageDeduplicationId, the two
    messages are treated as duplicates.'"""
    first = sqs.send_message(QueueUrl=cbd_fifo, MessageBody="original", MessageGroupId="g")
    m = receive(sqs, cbd_fifo, MessageSystemAttributeNames=["MessageDeduplicationId"])[0]
    generated = m["Attributes"]["MessageDeduplicationId"]
    sqs.delete_message(QueueUrl=cbd_fifo, ReceiptHandle=m["ReceiptHandle"])
    again = sqs.send_message(QueueUrl=cbd_fifo, MessageBody="different", MessageGroupId="g",
                             MessageDeduplicationId=generated)
    assert again["MessageId"] == first["MessageId"]
    assert receive(sqs, cbd_fifo) == []


def test_queue_scope_dedups_across_groups(sqs, fifo):
    first = send(sqs, fifo, "in-g1", group="g1", dedup="shared")
    again = send(sqs, fifo, "in-g2", group="g2", dedup="shared")
    assert again["MessageId"] == first["MessageId"]
    assert drain_bodies(sqs, fifo) == ["in-g1"]


def test_message_group_scope_dedups_per_group(sqs, make_fifo):
    url = make_fifo(DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    a = send(sqs, url, "in-g1", group="g1", dedup="shared")
    b = send(sqs, url, "in-g2", group="g2", dedup="shared")
    c = send(sqs, url, "in-g1-again", group="g1", dedup="shared")
    assert a["MessageId"] != b["MessageId"]
    assert c["MessageId"] == a["MessageId"]
    assert sorted(drain_bodies(sqs, url)) == ["in-g1", "in-g2"]


def test_message_group_scope_set_after_creation(sqs, fifo):
    sqs.set_queue_attributes(QueueUrl=fifo, Attributes={"DeduplicationScope": "messageGroup"})
    send(sqs, fifo, "x1", group="g1", dedup="d")
    send(sqs, fifo, "x2", group="g2", dedup="d")
    assert sorted(drain_bodies(sqs, fifo)) == ["x1", "x2"]


def test_send_batch_duplicate_of_earlier_send(sqs, fifo):
    first = send(sqs, fifo, "orig", dedup="dup")
    res = sqs.send_message_batch(QueueUrl=fifo, Entries=[
        {"Id": "a", "MessageBody": "dupe", "MessageGroupId": "g", "MessageDeduplicationId": "dup"},
        {"Id": "b", "MessageBody": "new", "MessageGroupId": "g", "MessageDeduplicationId": "fresh"}])
    ok = {e["Id"]: e for e in res["Successful"]}
    assert set(ok) == {"a", "b"}, res
    assert ok["a"]["MessageId"] == first["MessageId"]
    assert drain_bodies(sqs, fifo) == ["orig", "new"]


def test_purge_clears_deduplication(sqs, fifo):
    # Recorded AWS behaviour: after PurgeQueue a message with a previously used dedup id is accepted again.
    send(sqs, fifo, "before", dedup="d")
    sqs.purge_queue(QueueUrl=fifo)
    send(sqs, fifo, "after", dedup="d")
    assert bodies(receive(sqs, fifo, WaitTimeSeconds=1)) == ["after"]


# ------------------------------------------------------------------------------------------------ ordering and groups

def test_strict_order_within_group(sqs, cbd_fifo):
    for i in range(6):
        sqs.send_message(QueueUrl=cbd_fifo, MessageBody=f"m{i}", MessageGroupId="g")
    got = []
    for _ in range(6):
        msgs = receive(sqs, cbd_fifo, n=1)
        assert len(msgs) == 1
        got += bodies(msgs)
        sqs.delete_message(QueueUrl=cbd_fifo, ReceiptHandle=msgs[0]["ReceiptHandle"])
    assert got == [f"m{i}" for i in range(6)]


def test_batch_receive_keeps_group_order(sqs, cbd_fifo):
    for body, group in [("g1-m1", "g1"), ("g2-m1", "g2"), ("g1-m2", "g1"), ("g1-m3", "g1"), ("g2-m2", "g2")]:
        sqs.send_message(QueueUrl=cbd_fifo, MessageBody=body, MessageGroupId=group)
    got = drain_bodies(sqs, cbd_fifo)
    assert sorted(got) == ["g1-m1", "g1-m2", "g1-m3", "g2-m1", "g2-m2"]
    assert [b for b in got if b.startswith("g1")] == ["g1-m1", "g1-m2", "g1-m3"]
    assert [b for b in got if b.startswith("g2")] == ["g2-m1", "g2-m2"]


def test_in_flight_message_blocks_its_group_only(sqs, cbd_fifo):
    sqs.send_message(QueueUrl=cbd_fifo, MessageBody="a1", MessageGroupId="A")
    sqs.send_message(QueueUrl=cbd_fifo, MessageBody="a2", MessageGroupId="A")
    first = receive(sqs, cbd_fifo, n=1)
    assert bodies(first) == ["a1"]
    sqs.send_message(QueueUrl=cbd_fifo, MessageBody="b1", MessageGroupId="B")
    # a2 stays hidden while a1 is in flight; the other group is served.
    assert bodies(receive(sqs, cbd_fifo)) == ["b1"]
    assert receive(sqs, cbd_fifo) == []
    sqs.delete_message(QueueUrl=cbd_fifo, ReceiptHandle=first[0]["ReceiptHandle"])
    assert bodies(receive(sqs, cbd_fifo)) == ["a2"]


def test_change_visibility_zero_releases_group_in_order(sqs, cbd_fifo):
    for i in range(3):
        sqs.send_message(QueueUrl=cbd_fifo, MessageBody=f"m{i}", MessageGroupId="g")
    first = receive(sqs, cbd_fifo, n=1)
    assert bodies(first) == ["m0"]
    assert receive(sqs, cbd_fifo) == []
    sqs.change_message_visibility(QueueUrl=cbd_fifo, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = receive(sqs, cbd_fifo, MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert bodies(again) == ["m0", "m1", "m2"], "the returned message comes first again"
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_order_kept_after_visibility_timeout(sqs, make_fifo):
    url = make_fifo(ContentBasedDeduplication="true", VisibilityTimeout=1)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g")
    assert bodies(receive(sqs, url)) == ["m0", "m1", "m2"]
    assert receive(sqs, url) == []
    time.sleep(1.3)
    assert bodies(receive(sqs, url)) == ["m0", "m1", "m2"]


def test_fifo_system_attributes_on_receive(sqs, fifo):
    sent = send(sqs, fifo, "sys", group="grp-1", dedup="dedup-1")
    m = receive(sqs, fifo, MessageSystemAttributeNames=["All"])[0]
    a = m["Attributes"]
    assert a["MessageGroupId"] == "grp-1"
    assert a["MessageDeduplicationId"] == "dedup-1"
    assert a["SequenceNumber"] == sent["SequenceNumber"]
    assert {"SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SenderId"} <= set(a)


def test_receive_request_attempt_id_retry_returns_same_messages(sqs, cbd_fifo):
    for i in range(3):
        sqs.send_message(QueueUrl=cbd_fifo, MessageBody=f"m{i}", MessageGroupId="g")
    first = receive(sqs, cbd_fifo, n=2, ReceiveRequestAttemptId="attempt-1")
    assert bodies(first) == ["m0", "m1"]
    retry = receive(sqs, cbd_fifo, n=2, ReceiveRequestAttemptId="attempt-1")
    assert [(m["MessageId"], m["ReceiptHandle"]) for m in retry] == \
        [(m["MessageId"], m["ReceiptHandle"]) for m in first], "same messages and the same receipt handles"
    # Another attempt id is a new receive: the group is in flight, so nothing.
    assert receive(sqs, cbd_fifo, n=2, ReceiveRequestAttemptId="attempt-2") == []
    for m in retry:
        sqs.delete_message(QueueUrl=cbd_fifo, ReceiptHandle=m["ReceiptHandle"])
    assert bodies(receive(sqs, cbd_fifo)) == ["m2"]


def test_delete_with_expired_receipt_handle(sqs, cbd_fifo):
    sqs.send_message(QueueUrl=cbd_fifo, MessageBody="x", MessageGroupId="g")
    m = receive(sqs, cbd_fifo, VisibilityTimeout=1)[0]
    time.sleep(1.3)
    with expect_error("InvalidParameterValue"):
        sqs.delete_message(QueueUrl=cbd_fifo, ReceiptHandle=m["ReceiptHandle"])


# ------------------------------------------------------------------------------------------------ fair queues

def test_fair_queue_accepts_group_id_and_reports_it(sqs, queue):
    sent = sqs.send_message(QueueUrl=queue, MessageBody="tenant message", MessageGroupId="tenant-1")
    assert "SequenceNumber" not in sent
    m = receive(sqs, queue, MessageSystemAttributeNames=["All"])[0]
    assert m["Attributes"]["MessageGroupId"] == "tenant-1"
    assert not {"SequenceNumber", "MessageDeduplicationId"} & set(m["Attributes"])
    sqs.send_message(QueueUrl=queue, MessageBody="no group")
    m = receive(sqs, queue, MessageSystemAttributeNames=["MessageGroupId"])[0]
    assert "MessageGroupId" not in m.get("Attributes", {})


@pytest.mark.parametrize("value", ["", "a" * 129, "group 123"], ids=["empty", "129-chars", "space"])
def test_fair_queue_invalid_group_id(sqs, queue, value):
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageGroupId=value)


def test_fair_queue_group_messages_are_not_serialised(sqs, queue):
    # Unlike FIFO, messages of one group on a standard queue may be in flight together.
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}", MessageGroupId="same")
    got = []
    for _ in range(5):
        got += receive(sqs, queue)
        if len(got) >= 3:
            break
    assert sorted(bodies(got)) == ["m0", "m1", "m2"]


def flood(sqs, url, group, count):
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": f"{group}-{start + i}", "MessageGroupId": group}
                   for i in range(min(10, count - start))]
        res = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not res.get("Failed"), res["Failed"]


QUIET = [f"quiet-{i}" for i in range(10)]


def test_fair_queue_quiet_tenants_are_not_stuck_behind_backlog(sqs, queue):
    """A noisy tenant floods 2,000 messages, then ten quiet tenants send one each. The developer guide: a tenant
    is flagged noisy once it holds more than 10% of the in-flight messages and at least 30 of its own are in
    flight; from then on consumers get quiet tenants' messages first whenever there are any. So the first three
    receives (30 messages) may all be noisy; by the fifth every quiet message must have arrived, long before the
    2,000-message backlog is worked off."""
    flood(sqs, queue, "noisy", 2000)
    for q in QUIET:
        sqs.send_message(QueueUrl=queue, MessageBody=q, MessageGroupId=q)
    seen = []
    for _ in range(5):
        seen += bodies(receive(sqs, queue, VisibilityTimeout=60))
    missing = set(QUIET) - set(seen)
    assert not missing, f"quiet tenants still waiting after 5 receives ({len(seen)} messages): {sorted(missing)}"


def test_fair_queue_quiet_tenants_overtake_flagged_noisy_tenant(sqs, queue):
    """Once the noisy tenant is flagged (40 of its messages in flight, 100% of the in-flight share), messages
    from quiet tenants that arrive later are delivered first: all ten within the next two receives."""
    flood(sqs, queue, "noisy", 2000)
    in_flight = []
    for _ in range(8):
        in_flight += receive(sqs, queue, VisibilityTimeout=60)
        if len(in_flight) >= 40:
            break
    assert len(in_flight) >= 40 and {b.split("-")[0] for b in bodies(in_flight)} == {"noisy"}
    for q in QUIET:
        sqs.send_message(QueueUrl=queue, MessageBody=q, MessageGroupId=q)
    seen = []
    for _ in range(2):
        seen += bodies(receive(sqs, queue, VisibilityTimeout=60))
    missing = set(QUIET) - set(seen)
    assert not missing, f"quiet tenants not prioritised: got {seen}"


# ------------------------------------------------------------------------------------------------ Query protocol

def q_create_fifo(endpoint, name, **attrs):
    params = {"Action": "CreateQueue", "QueueName": name, "Attribute.1.Name": "FifoQueue", "Attribute.1.Value": "true"}
    for i, (k, v) in enumerate(attrs.items(), start=2):
        params[f"Attribute.{i}.Name"], params[f"Attribute.{i}.Value"] = k, v
    return path_text(query_ok(query_request(endpoint, params), "CreateQueue"), "QueueUrl")


@pytest.fixture
def q_fifo(endpoint, sqs, unique_name):
    url = q_create_fifo(endpoint, unique_name(".fifo"))
    yield url
    sqs.delete_queue(QueueUrl=url)


def test_query_fifo_send_receive(q_fifo):
    res = query_ok(query_request(q_fifo, {"Action": "SendMessage", "MessageBody": "q1", "MessageGroupId": "g",
                                          "MessageDeduplicationId": "d1"}), "SendMessage")
    msg_id, seq = path_text(res, "MessageId"), path_text(res, "SequenceNumber")
    assert msg_id and seq and seq.isdigit()
    dup = query_ok(query_request(q_fifo, {"Action": "SendMessage", "MessageBody": "q1-again", "MessageGroupId": "g",
                                          "MessageDeduplicationId": "d1"}), "SendMessage")
    assert path_text(dup, "MessageId") == msg_id
    res = query_ok(query_request(q_fifo, {"Action": "ReceiveMessage", "MaxNumberOfMessages": "10",
                                          "AttributeName.1": "All", "ReceiveRequestAttemptId": "qa"}),
                   "ReceiveMessage")
    msgs = children(res, "Message")
    assert [path_text(m, "Body") for m in msgs] == ["q1"]
    a = query_attributes(msgs[0])
    assert (a["MessageGroupId"], a["MessageDeduplicationId"], a["SequenceNumber"]) == ("g", "d1", seq)
    retry = query_ok(query_request(q_fifo, {"Action": "ReceiveMessage", "MaxNumberOfMessages": "10",
                                            "ReceiveRequestAttemptId": "qa"}), "ReceiveMessage")
    assert [path_text(m, "ReceiptHandle") for m in children(retry, "Message")] == \
        [path_text(msgs[0], "ReceiptHandle")]


def test_query_fifo_send_batch_sequence_numbers(q_fifo):
    params = {"Action": "SendMessageBatch"}
    for i in (1, 2):
        p = f"SendMessageBatchRequestEntry.{i}."
        params.update({p + "Id": f"e{i}", p + "MessageBody": f"b{i}", p + "MessageGroupId": "g",
                       p + "MessageDeduplicationId": f"d{i}"})
    res = query_ok(query_request(q_fifo, params), "SendMessageBatch")
    entries = children(res, "SendMessageBatchResultEntry")
    assert [path_text(e, "Id") for e in entries] == ["e1", "e2"]
    seqs = [path_text(e, "SequenceNumber") for e in entries]
    assert all(s and s.isdigit() for s in seqs) and int(seqs[0]) < int(seqs[1])


def test_query_fifo_errors(endpoint, q_fifo, unique_name):
    query_error_code(query_request(q_fifo, {"Action": "SendMessage", "MessageBody": "x",
                                            "MessageDeduplicationId": "d"}), "MissingParameter")
    query_error_code(query_request(q_fifo, {"Action": "SendMessage", "MessageBody": "x", "MessageGroupId": "g"}),
                     "InvalidParameterValue")
    query_error_code(query_request(q_fifo, {"Action": "SendMessage", "MessageBody": "x", "MessageGroupId": "g",
                                            "MessageDeduplicationId": "d", "DelaySeconds": "3"}),
                     "InvalidParameterValue")
    query_error_code(query_request(endpoint, {"Action": "CreateQueue", "QueueName": unique_name(),
                                              "Attribute.1.Name": "FifoQueue", "Attribute.1.Value": "true"}),
                     "InvalidParameterValue")
    query_error_code(query_request(endpoint, {"Action": "CreateQueue", "QueueName": unique_name(),
                                              "Attribute.1.Name": "ContentBasedDeduplication",
                                              "Attribute.1.Value": "true"}), "InvalidAttributeName")


def test_query_fifo_get_queue_attributes(q_fifo):
    a = query_attributes(query_ok(query_request(q_fifo, {"Action": "GetQueueAttributes", "AttributeName.1": "All"}),
                                  "GetQueueAttributes"))
    assert (a["FifoQueue"], a["ContentBasedDeduplication"], a["DeduplicationScope"], a["FifoThroughputLimit"]) == \
        ("true", "false", "queue", "perQueue")
