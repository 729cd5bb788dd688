"""Message actions over the AWS JSON protocol (boto3): SendMessage, ReceiveMessage, DeleteMessage,
ChangeMessageVisibility, PurgeQueue; delays, visibility, long polling, attributes and digests.

botocore does not check the MD5 digests itself, so these tests recompute MD5OfMessageBody and
MD5OfMessageAttributes the way SQS documents it and compare.
"""

import threading
import time

import pytest
from botocore.exceptions import ClientError

from sqs_helpers import ACCOUNT_ID, expect_error, expect_one_of, md5_hex, md5_of_message_attributes


def receive_all(sqs, url, expected, wait=1, **kwargs):
    """Receive until `expected` messages were seen (or a receive returns nothing)."""
    got = []
    for _ in range(expected + 5):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, **kwargs) \
            .get("Messages", [])
        if not msgs:
            break
        got += msgs
        if len(got) >= expected:
            break
    return got


def receive_one(sqs, url, **kwargs):
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, **kwargs).get("Messages", [])
    assert len(msgs) == 1, f"expected one message, got {msgs}"
    return msgs[0]


def assert_empty(sqs, url, **kwargs):
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **kwargs).get("Messages", [])
    assert msgs == [], f"expected no visible message, got {[m['Body'] for m in msgs]}"


# ------------------------------------------------------------------------------------------------ SendMessage

def test_send_receive_roundtrip_and_digests(sqs, queue):
    body = "hello sluice"
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    assert sent["MessageId"]
    assert "MD5OfMessageAttributes" not in sent
    m = receive_one(sqs, queue)
    assert m["Body"] == body
    assert m["MessageId"] == sent["MessageId"]
    assert m["MD5OfBody"] == md5_hex(body)
    assert m["ReceiptHandle"]
    assert "MessageAttributes" not in m


@pytest.mark.parametrize("body", [
    "tab\tnewline\ncarriage\r\nreturn",
    "ünïcödé ✓ 漢字 ﷽",
    "emoji 😀 and astral \U0010FFFF",
    "edges \ud7ff \ue000 \ufffd \U00010000",
    '{"json": ["x", 1, null], "xml": "<a href=\'x\'>&amp;</a>"}',
    " leading and trailing spaces ",
    "x",
], ids=["whitespace", "unicode", "astral", "range-edges", "json-xml", "spaces", "one-char"])
def test_send_allowed_characters_roundtrip(sqs, queue, body):
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    m = receive_one(sqs, queue)
    assert m["Body"] == body
    assert m["MD5OfBody"] == md5_hex(body)


@pytest.mark.parametrize("body", ["null \x00 byte", "bad \ufffe char", "bad \uffff char", "bell \x07", "\x1f", "\x08"],
                         ids=["nul", "ufffe", "uffff", "bell", "x1f", "backspace"])
def test_send_invalid_characters(sqs, queue, body):
    with expect_error("InvalidMessageContents"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)


def test_send_empty_body(sqs, queue):
    with pytest.raises(ClientError) as ei:
        sqs.send_message(QueueUrl=queue, MessageBody="")
    expect_one_of(ei.value, ["MissingParameter", "InvalidParameterValue"])


def test_send_body_at_and_over_maximum_message_size(sqs, make_queue):
    url = make_queue(MaximumMessageSize=1024)
    sqs.send_message(QueueUrl=url, MessageBody="a" * 1024)
    sqs.send_message(QueueUrl=url, MessageBody="é" * 512)  # 1024 bytes in UTF-8
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=url, MessageBody="a" * 1025)
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=url, MessageBody="é" * 513)  # 1026 bytes: the limit counts bytes, not chars


def test_send_message_attributes_count_toward_size(sqs, make_queue):
    url = make_queue(MaximumMessageSize=1024)
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=url, MessageBody="a" * 1000,
                         MessageAttributes={"attr": {"DataType": "String", "StringValue": "v" * 100}})


def test_send_default_maximum_is_1_mib(sqs, queue):
    body = "m" * 1_048_576
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    assert receive_one(sqs, queue)["Body"] == body
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody=body + "m")


@pytest.mark.parametrize("delay", [-1, 901])
def test_send_delay_out_of_range(sqs, queue, delay):
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", DelaySeconds=delay)


def test_send_to_unknown_queue(sqs, endpoint, unique_name):
    with expect_error("QueueDoesNotExist"):
        sqs.send_message(QueueUrl=f"{endpoint}/{ACCOUNT_ID}/{unique_name('-missing')}", MessageBody="x")


# ------------------------------------------------------------------------------------------------ message attributes

ATTRS = {
    "s": {"DataType": "String", "StringValue": "plain string ✓"},
    "n": {"DataType": "Number", "StringValue": "-12.5e3"},
    "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff binary"},
    "custom_s": {"DataType": "String.custom", "StringValue": "custom type"},
    "int": {"DataType": "Number.int", "StringValue": "42"},
    "img": {"DataType": "Binary.gif", "BinaryValue": b"GIF89a"},
    "foo.a": {"DataType": "String", "StringValue": "fa"},
    "foo.b": {"DataType": "String", "StringValue": "fb"},
    "bar.a": {"DataType": "String", "StringValue": "ba"},
}


def test_message_attributes_all_types(sqs, queue):
    sent = sqs.send_message(QueueUrl=queue, MessageBody="with attributes", MessageAttributes=ATTRS)
    assert sent["MD5OfMessageAttributes"] == md5_of_message_attributes(ATTRS)
    assert sent["MD5OfMessageBody"] == md5_hex("with attributes")
    m = receive_one(sqs, queue, MessageAttributeNames=["All"])
    assert m["MessageAttributes"] == ATTRS
    assert m["MD5OfMessageAttributes"] == md5_of_message_attributes(ATTRS)


def test_message_attributes_dot_star_means_all(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=ATTRS)
    m = receive_one(sqs, queue, MessageAttributeNames=[".*"])
    assert m["MessageAttributes"] == ATTRS


def test_message_attributes_specific_names(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=ATTRS)
    m = receive_one(sqs, queue, MessageAttributeNames=["s", "b", "not-there"])
    assert m["MessageAttributes"] == {"s": ATTRS["s"], "b": ATTRS["b"]}
    # The digest covers the attributes returned.
    assert m["MD5OfMessageAttributes"] == md5_of_message_attributes(m["MessageAttributes"])


def test_message_attributes_prefix(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=ATTRS)
    m = receive_one(sqs, queue, MessageAttributeNames=["foo.*"])
    assert m["MessageAttributes"] == {"foo.a": ATTRS["foo.a"], "foo.b": ATTRS["foo.b"]}
    assert m["MD5OfMessageAttributes"] == md5_of_message_attributes(m["MessageAttributes"])


def test_message_attributes_not_requested_are_not_returned(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=ATTRS)
    m = receive_one(sqs, queue)
    assert "MessageAttributes" not in m


@pytest.mark.parametrize("attrs", [
    {"n": {"DataType": "Number", "StringValue": "not-a-number"}},
    {"s": {"DataType": "String", "StringValue": ""}},
    {"s": {"DataType": "NoSuchType", "StringValue": "x"}},
    {"s": {"DataType": "String"}},
    {"AWS.reserved": {"DataType": "String", "StringValue": "x"}},
    {"amazon.reserved": {"DataType": "String", "StringValue": "x"}},
    {".leading": {"DataType": "String", "StringValue": "x"}},
    {"trailing.": {"DataType": "String", "StringValue": "x"}},
    {"double..dot": {"DataType": "String", "StringValue": "x"}},
    {"bad name": {"DataType": "String", "StringValue": "x"}},
    {f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(11)},
], ids=["number-nan", "empty-string", "unknown-type", "no-value", "aws-prefix", "amazon-prefix", "leading-dot",
        "trailing-dot", "double-dot", "space-in-name", "eleven-attributes"])
def test_invalid_message_attributes(sqs, queue, attrs):
    with expect_error("InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=attrs)


def test_ten_message_attributes_allowed(sqs, queue):
    attrs = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)}
    sent = sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=attrs)
    assert sent["MD5OfMessageAttributes"] == md5_of_message_attributes(attrs)


# ------------------------------------------------------------------------------------------------ delays

def test_per_message_delay(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="delayed", DelaySeconds=1)
    assert_empty(sqs, queue)
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert a["ApproximateNumberOfMessagesDelayed"] == "1"
    assert a["ApproximateNumberOfMessages"] == "0"
    time.sleep(1.3)
    assert receive_one(sqs, queue)["Body"] == "delayed"


def test_per_queue_delay_and_message_override(sqs, make_queue):
    url = make_queue(DelaySeconds=2)
    sqs.send_message(QueueUrl=url, MessageBody="queue-delay")
    sqs.send_message(QueueUrl=url, MessageBody="no-delay", DelaySeconds=0)  # the message's value wins
    assert receive_one(sqs, url)["Body"] == "no-delay"
    assert_empty(sqs, url)
    time.sleep(2.3)
    assert receive_one(sqs, url)["Body"] == "queue-delay"


def test_long_poll_waits_for_delayed_message(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="late", DelaySeconds=1)
    start = time.monotonic()
    msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5).get("Messages", [])
    elapsed = time.monotonic() - start
    assert [m["Body"] for m in msgs] == ["late"]
    assert 0.7 <= elapsed < 3.5, f"returned after {elapsed:.2f}s"


# ------------------------------------------------------------------------------------------------ ReceiveMessage

@pytest.mark.parametrize("n", [0, 11])
def test_receive_max_number_out_of_range(sqs, queue, n):
    with expect_error("InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=n)


@pytest.mark.parametrize("wait", [-1, 21])
def test_receive_wait_time_out_of_range(sqs, queue, wait):
    with expect_error("InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=wait)


@pytest.mark.parametrize("vt", [-1, 43201])
def test_receive_visibility_timeout_out_of_range(sqs, queue, vt):
    with expect_error("InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, VisibilityTimeout=vt)


def test_receive_default_max_is_one(sqs, queue):
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
    assert len(sqs.receive_message(QueueUrl=queue)["Messages"]) == 1


def test_receive_max_number_and_each_message_once(sqs, queue):
    bodies = {f"m{i}" for i in range(15)}
    for b in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=b)
    first = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert 1 <= len(first) <= 10
    got = first + receive_all(sqs, queue, 15 - len(first))
    assert sorted(m["Body"] for m in got) == sorted(bodies), "every message once while invisible"
    assert len({m["MessageId"] for m in got}) == 15


def test_receive_empty_queue_short_poll_is_immediate(sqs, queue):
    start = time.monotonic()
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    assert time.monotonic() - start < 1.0


def test_long_poll_returns_when_message_arrives(sqs, endpoint, queue):
    from sqs_helpers import make_client
    sender = make_client(endpoint)

    def send_later():
        time.sleep(1.0)
        sender.send_message(QueueUrl=queue, MessageBody="arrived")
    t = threading.Thread(target=send_later)
    start = time.monotonic()
    t.start()
    msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10).get("Messages", [])
    elapsed = time.monotonic() - start
    t.join()
    assert [m["Body"] for m in msgs] == ["arrived"]
    assert 0.9 <= elapsed < 3.0, f"long poll returned after {elapsed:.2f}s; it should return right after the send"


def test_long_poll_times_out_empty(sqs, queue):
    start = time.monotonic()
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", []) == []
    elapsed = time.monotonic() - start
    assert 1.8 <= elapsed < 4.0, f"WaitTimeSeconds=2 returned after {elapsed:.2f}s"


def test_queue_receive_wait_time_is_default_long_poll(sqs, make_queue):
    url = make_queue(ReceiveMessageWaitTimeSeconds=2)
    start = time.monotonic()
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert 1.8 <= time.monotonic() - start < 4.0
    start = time.monotonic()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    assert time.monotonic() - start < 1.0, "WaitTimeSeconds=0 overrides the queue's wait"


def test_receive_visibility_timeout_override(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="vt")
    first = receive_one(sqs, queue, VisibilityTimeout=1, AttributeNames=["ApproximateReceiveCount"])
    assert_empty(sqs, queue)
    time.sleep(1.3)
    second = receive_one(sqs, queue, AttributeNames=["ApproximateReceiveCount"])
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"], "a fresh receipt handle per receive"
    assert (first["Attributes"]["ApproximateReceiveCount"], second["Attributes"]["ApproximateReceiveCount"]) \
        == ("1", "2")


def test_in_flight_message_is_invisible_for_queue_visibility_timeout(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    receive_one(sqs, queue)
    assert_empty(sqs, queue)  # the default 30 s has not passed


SYSTEM_ATTRS = {"SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SenderId"}


@pytest.mark.parametrize("param", ["AttributeNames", "MessageSystemAttributeNames"])
def test_receive_system_attributes_all(sqs, queue, param):
    before_ms = int(time.time() * 1000)
    sqs.send_message(QueueUrl=queue, MessageBody="sys")
    time.sleep(0.05)
    first = receive_one(sqs, queue, VisibilityTimeout=0, **{param: ["All"]})
    after_ms = int(time.time() * 1000)
    a = first["Attributes"]
    assert SYSTEM_ATTRS <= set(a), f"missing {SYSTEM_ATTRS - set(a)} in {a}"
    assert a["ApproximateReceiveCount"] == "1"
    assert a["SenderId"]
    for k in ("SentTimestamp", "ApproximateFirstReceiveTimestamp"):
        assert a[k].isdigit(), f"{k} should be epoch milliseconds: {a[k]!r}"
        assert before_ms - 2000 <= int(a[k]) <= after_ms + 2000, f"{k}={a[k]} not near now ({before_ms})"
    assert int(a["SentTimestamp"]) <= int(a["ApproximateFirstReceiveTimestamp"])
    assert not {"SequenceNumber", "MessageGroupId", "MessageDeduplicationId"} & set(a), "FIFO-only attributes"
    time.sleep(0.05)
    second = receive_one(sqs, queue, **{param: ["All"]})
    b = second["Attributes"]
    assert b["ApproximateReceiveCount"] == "2"
    assert b["ApproximateFirstReceiveTimestamp"] == a["ApproximateFirstReceiveTimestamp"]
    assert b["SentTimestamp"] == a["SentTimestamp"]


@pytest.mark.parametrize("param", ["AttributeNames", "MessageSystemAttributeNames"])
def test_receive_system_attributes_specific(sqs, queue, param):
    sqs.send_message(QueueUrl=queue, MessageBody="sys")
    m = receive_one(sqs, queue, **{param: ["SentTimestamp", "ApproximateReceiveCount"]})
    assert set(m["Attributes"]) == {"SentTimestamp", "ApproximateReceiveCount"}


def test_receive_without_attribute_names_returns_no_attributes(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    assert "Attributes" not in receive_one(sqs, queue)


def test_receive_unknown_queue(sqs, endpoint, unique_name):
    with expect_error("QueueDoesNotExist"):
        sqs.receive_message(QueueUrl=f"{endpoint}/{ACCOUNT_ID}/{unique_name('-missing')}")


# ------------------------------------------------------------------------------------------------ DeleteMessage

def test_delete_message(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="bye")
    m = receive_one(sqs, queue, VisibilityTimeout=1)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    time.sleep(1.3)
    assert_empty(sqs, queue)
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_delete_message_twice(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="bye")
    m = receive_one(sqs, queue)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    # The handle of a deleted message is stale: AWS lets the request succeed or, at most, rejects it as a 400
    # (InvalidParameterValue "receipt handle has expired" / ReceiptHandleIsInvalid). Never a 5xx.
    try:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    except ClientError as e:
        expect_one_of(e, ["InvalidParameterValue", "ReceiptHandleIsInvalid"])


def test_delete_with_older_receipt_handle_succeeds(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    old = receive_one(sqs, queue, VisibilityTimeout=0)
    new = receive_one(sqs, queue)
    assert old["ReceiptHandle"] != new["ReceiptHandle"]
    # "the request succeeds, but the message might not be deleted": no error is the documented part.
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=old["ReceiptHandle"])
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=new["ReceiptHandle"])


@pytest.mark.parametrize("handle", ["garbage", "AAAA", "x" * 1024, "not base64 !@#$%^&*()"],
                         ids=["garbage", "AAAA", "1024-x", "punctuation"])
def test_delete_garbage_receipt_handle(sqs, queue, handle):
    with expect_error("ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)


def test_delete_message_unknown_queue(sqs, endpoint, unique_name):
    with expect_error("QueueDoesNotExist"):
        sqs.delete_message(QueueUrl=f"{endpoint}/{ACCOUNT_ID}/{unique_name('-missing')}", ReceiptHandle="garbage")


# ------------------------------------------------------------------------------------------------ ChangeMessageVisibility

def test_change_visibility_zero_makes_visible_at_once(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="again")
    m = receive_one(sqs, queue, VisibilityTimeout=60)
    assert_empty(sqs, queue)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = receive_one(sqs, queue, AttributeNames=["ApproximateReceiveCount"])
    assert again["MessageId"] == m["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_change_visibility_extends(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="longer")
    m = receive_one(sqs, queue, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=3)
    time.sleep(1.3)
    assert_empty(sqs, queue)
    time.sleep(2.0)
    assert receive_one(sqs, queue)["MessageId"] == m["MessageId"]


def test_change_visibility_shortens(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="shorter")
    m = receive_one(sqs, queue, VisibilityTimeout=60)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=1)
    assert_empty(sqs, queue)
    time.sleep(1.3)
    assert receive_one(sqs, queue)["MessageId"] == m["MessageId"]


@pytest.mark.parametrize("vt", [-1, 43201])
def test_change_visibility_out_of_range(sqs, queue, vt):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    m = receive_one(sqs, queue)
    with expect_error("InvalidParameterValue"):
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=vt)


def test_change_visibility_garbage_handle(sqs, queue):
    with expect_error("ReceiptHandleIsInvalid"):
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle="garbage", VisibilityTimeout=10)


def test_change_visibility_of_deleted_message_fails(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    m = receive_one(sqs, queue)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    with pytest.raises(ClientError) as ei:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=10)
    # AWS answers "Message does not exist or is not available for visibility timeout change" (InvalidParameterValue)
    # or MessageNotInflight / ReceiptHandleIsInvalid depending on the case; any of them, as a 400.
    expect_one_of(ei.value, ["InvalidParameterValue", "MessageNotInflight", "ReceiptHandleIsInvalid"])


# ------------------------------------------------------------------------------------------------ PurgeQueue

def test_purge_queue(sqs, queue):
    for i in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=f"p{i}")
    sqs.send_message(QueueUrl=queue, MessageBody="delayed", DelaySeconds=1)
    receive_one(sqs, queue, VisibilityTimeout=1)  # one in flight too
    sqs.purge_queue(QueueUrl=queue)
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"],
            a["ApproximateNumberOfMessagesDelayed"]) == ("0", "0", "0"), a
    time.sleep(1.3)
    assert_empty(sqs, queue)
    with expect_error("PurgeQueueInProgress"):
        sqs.purge_queue(QueueUrl=queue)


def test_purge_unknown_queue(sqs, endpoint, unique_name):
    with expect_error("QueueDoesNotExist"):
        sqs.purge_queue(QueueUrl=f"{endpoint}/{ACCOUNT_ID}/{unique_name('-missing')}")


def test_binary_attribute_roundtrip_exact_bytes(sqs, queue):
    raw = bytes(range(256))
    attrs = {"blob": {"DataType": "Binary", "BinaryValue": raw}}
    sent = sqs.send_message(QueueUrl=queue, MessageBody="bin", MessageAttributes=attrs)
    assert sent["MD5OfMessageAttributes"] == md5_of_message_attributes(attrs)
    m = receive_one(sqs, queue, MessageAttributeNames=["blob"])
    assert m["MessageAttributes"]["blob"]["BinaryValue"] == raw


# ------------------------------------------------------------------------------------------------ concurrency

def test_long_poll_wakes_when_visibility_expires(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="comes back")
    first = receive_one(sqs, queue, VisibilityTimeout=1)
    start = time.monotonic()
    msgs = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10).get("Messages", [])
    elapsed = time.monotonic() - start
    assert [m["MessageId"] for m in msgs] == [first["MessageId"]]
    assert elapsed < 3.0, f"long poll returned {elapsed:.2f}s after start; the message was visible again after 1 s"


def test_concurrent_long_pollers_each_message_once(sqs, endpoint, queue):
    from sqs_helpers import make_client
    n_pollers, n_messages = 6, 30
    got, lock = [], threading.Lock()
    stop = threading.Event()

    def poll():
        client = make_client(endpoint)
        while not stop.is_set():
            msgs = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                          VisibilityTimeout=60).get("Messages", [])
            with lock:
                got.extend(m["Body"] for m in msgs)
    threads = [threading.Thread(target=poll) for _ in range(n_pollers)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # pollers are waiting
    bodies = [f"c{i}" for i in range(n_messages)]
    for i in range(0, n_messages, 10):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": f"e{j}", "MessageBody": b}
                                                        for j, b in enumerate(bodies[i:i + 10])])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if len(got) >= n_messages:
                break
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(timeout=5)
    assert sorted(got) == sorted(bodies), "each message delivered exactly once while in flight"
