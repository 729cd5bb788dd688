"""Dead-letter queues: RedrivePolicy, RedriveAllowPolicy, the move to the DLQ, ListDeadLetterSourceQueues; over the
AWS JSON protocol (boto3) and, for a representative subset, the Query protocol.

Sources: the API reference (CreateQueue/SetQueueAttributes attribute docs, ListDeadLetterSourceQueues) and the
developer guide. Where the documentation names no error code, AWS-recorded answers decide:
  * an invalid RedrivePolicy is InvalidParameterValue, e.g. "Value {} for parameter RedrivePolicy is invalid.
    Reason: Redrive policy does not contain mandatory attribute: maxReceiveCount." and "... Reason: Dead letter
    target does not exist." (real AWS answers quoted in public bug reports);
  * a message moved to the DLQ keeps its MessageId, body, message attributes, SentTimestamp and AWSTraceHeader,
    gains the system attribute DeadLetterQueueSourceArn, and its ApproximateReceiveCount carries on
    (localstack's AWS-validated test_dead_letter_queue_message_attributes snapshot);
  * RedrivePolicy "" removes the policy (localstack's AWS-validated test_set_empty_redrive_policy).
RedriveAllowPolicy violations have no recorded code; InvalidParameterValue or InvalidAttributeValue are accepted.
"""

import json

import pytest
from botocore.exceptions import ClientError

from sqs_helpers import (children, expect_error, expect_one_of, md5_of_message_attributes, path_text,
                         query_attributes, query_error_code, query_ok, query_request, queue_arn, redrive_policy,
                         wait_for)

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def receive(sqs, url, n=10, **kwargs):
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, **kwargs).get("Messages", [])


def receive_dlq(sqs, url, expected, timeout=5.0, **kwargs):
    """Collect `expected` messages from a DLQ (the move may be asynchronous), leaving them in flight."""
    got = []

    def fetch():
        got.extend(receive(sqs, url, WaitTimeSeconds=1, **kwargs))
        return len(got) >= expected
    wait_for(fetch, timeout=timeout, interval=0, what=f"{expected} message(s) in the DLQ")
    return got


@pytest.fixture
def pipe(sqs, make_queue, unique_name):
    """pipe(max_receive_count, fifo=False, **source_attrs) -> (source_url, dlq_url, source_arn, dlq_arn)."""
    def make(max_receive_count=1, fifo=False, **source_attrs):
        extra = {"name": unique_name(".fifo"), "FifoQueue": "true"} if fifo else {}
        dlq = make_queue(**extra)
        dlq_arn = queue_arn(sqs, dlq)
        extra = {"name": unique_name(".fifo"), "FifoQueue": "true"} if fifo else {}
        src = make_queue(**extra, RedrivePolicy=redrive_policy(dlq_arn, max_receive_count), **source_attrs)
        return src, dlq, queue_arn(sqs, src), dlq_arn
    return make


def receive_until(sqs, url, pred, rounds=4, **kwargs):
    """Receive (long-polling 1 s) until pred(messages) holds; the messages of that receive."""
    msgs = []
    for _ in range(rounds):
        msgs = receive(sqs, url, WaitTimeSeconds=1, **kwargs)
        if pred(msgs):
            return msgs
    return msgs


# ------------------------------------------------------------------------------------------------ the move

def test_message_moves_to_dlq_after_max_receive_count(sqs, pipe):
    src, dlq, src_arn, _ = pipe(max_receive_count=2)
    attrs = {"color": {"DataType": "String", "StringValue": "blue"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"}}
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison", MessageAttributes=attrs,
                            MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}})
    seen = []
    for i in range(2):
        msgs = receive(sqs, src, VisibilityTimeout=0, MessageSystemAttributeNames=["All"])
        assert [m["MessageId"] for m in msgs] == [sent["MessageId"]], f"receive {i + 1} of maxReceiveCount=2"
        seen += msgs
    sent_ts = seen[0]["Attributes"]["SentTimestamp"]
    # The third receive would exceed maxReceiveCount: the message goes to the DLQ instead.
    assert receive(sqs, src, VisibilityTimeout=0) == []
    m = receive_dlq(sqs, dlq, 1, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])[0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == "poison"
    assert m["MessageAttributes"] == attrs
    assert m["MD5OfMessageAttributes"] == md5_of_message_attributes(attrs)
    a = m["Attributes"]
    assert a["DeadLetterQueueSourceArn"] == src_arn
    assert a["SentTimestamp"] == sent_ts, "the original SentTimestamp is kept"
    assert a["AWSTraceHeader"] == TRACE
    assert receive(sqs, src) == [], "moved, not copied"
    counts = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_receive_count_carries_over_into_dlq(sqs, pipe):
    # Recorded AWS behaviour (maxReceiveCount=1): ApproximateReceiveCount is 1 at the source and 2 at the first
    # receive from the DLQ.
    src, dlq, _, _ = pipe(max_receive_count=1)
    sqs.send_message(QueueUrl=src, MessageBody="x")
    assert len(receive(sqs, src, VisibilityTimeout=0)) == 1
    assert receive(sqs, src, VisibilityTimeout=0) == []
    m = receive_dlq(sqs, dlq, 1, MessageSystemAttributeNames=["ApproximateReceiveCount"])[0]
    assert m["Attributes"]["ApproximateReceiveCount"] == "2"


def test_change_visibility_zero_counts_as_failed_receive(sqs, pipe):
    src, dlq, src_arn, _ = pipe(max_receive_count=1)
    sqs.send_message(QueueUrl=src, MessageBody="retry me")
    m = receive(sqs, src)[0]
    sqs.change_message_visibility(QueueUrl=src, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    assert receive(sqs, src) == []
    moved = receive_dlq(sqs, dlq, 1, MessageSystemAttributeNames=["DeadLetterQueueSourceArn"])[0]
    assert moved["MessageId"] == m["MessageId"]
    assert moved["Attributes"] == {"DeadLetterQueueSourceArn": src_arn}


def test_several_messages_move_and_others_stay(sqs, pipe):
    src, dlq, _, _ = pipe(max_receive_count=1)
    for i in range(4):
        sqs.send_message(QueueUrl=src, MessageBody=f"bad-{i}")
    first = []
    for _ in range(4):
        first += receive(sqs, src, VisibilityTimeout=0)
        if len(first) >= 4:
            break
    assert sorted(m["Body"] for m in first) == [f"bad-{i}" for i in range(4)]
    sqs.send_message(QueueUrl=src, MessageBody="good")
    got = receive_until(sqs, src, lambda ms: ms)
    assert [m["Body"] for m in got] == ["good"], "only the message under maxReceiveCount is delivered"
    moved = receive_dlq(sqs, dlq, 4)
    assert sorted(m["Body"] for m in moved) == [f"bad-{i}" for i in range(4)]


def test_dlq_message_is_not_redriven_from_dlq_without_its_own_policy(sqs, pipe):
    src, dlq, _, _ = pipe(max_receive_count=1)
    sqs.send_message(QueueUrl=src, MessageBody="x")
    receive(sqs, src, VisibilityTimeout=0)
    receive(sqs, src, VisibilityTimeout=0)
    receive_dlq(sqs, dlq, 1, VisibilityTimeout=0)
    for _ in range(3):  # the DLQ has no RedrivePolicy: it keeps delivering the message
        assert [m["Body"] for m in receive(sqs, dlq, VisibilityTimeout=0)] == ["x"]


def test_fifo_source_and_fifo_dlq(sqs, pipe):
    src, dlq, src_arn, _ = pipe(max_receive_count=1, fifo=True)
    sent = sqs.send_message(QueueUrl=src, MessageBody="fifo poison", MessageGroupId="g", MessageDeduplicationId="d")
    sqs.send_message(QueueUrl=src, MessageBody="next in group", MessageGroupId="g", MessageDeduplicationId="d2")
    first = receive(sqs, src, n=1, VisibilityTimeout=0)
    assert [m["Body"] for m in first] == ["fifo poison"]
    # The poison message goes to the DLQ; its group is not blocked for ever.
    rest = receive_until(sqs, src, lambda ms: ms, n=1, VisibilityTimeout=0)
    assert [m["Body"] for m in rest] == ["next in group"]
    m = receive_dlq(sqs, dlq, 1, MessageSystemAttributeNames=["All"])[0]
    assert m["MessageId"] == sent["MessageId"]
    assert m["Body"] == "fifo poison"
    assert m["Attributes"]["MessageGroupId"] == "g"
    assert m["Attributes"]["DeadLetterQueueSourceArn"] == src_arn


# ------------------------------------------------------------------------------------------------ RedrivePolicy

def test_redrive_policy_is_reported(sqs, make_queue):
    dlq = make_queue()
    dlq_arn = queue_arn(sqs, dlq)
    src = make_queue(RedrivePolicy=redrive_policy(dlq_arn, 5))
    rp = json.loads(sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["All"])["Attributes"]["RedrivePolicy"])
    assert rp["deadLetterTargetArn"] == dlq_arn
    assert int(rp["maxReceiveCount"]) == 5
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, "7")})
    rp = json.loads(sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]
                    ["RedrivePolicy"])
    assert int(rp["maxReceiveCount"]) == 7
    assert "RedrivePolicy" not in sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]


def test_empty_redrive_policy_removes_it(sqs, make_queue):
    dlq = make_queue()
    src = make_queue(RedrivePolicy=redrive_policy(queue_arn(sqs, dlq), 3))
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": ""})
    assert "RedrivePolicy" not in sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["All"])["Attributes"]
    sqs.send_message(QueueUrl=src, MessageBody="x")
    for _ in range(4):  # no policy any more: the message is never moved
        assert len(receive(sqs, src, VisibilityTimeout=0)) == 1


@pytest.mark.parametrize("count", [1, 1000])
def test_max_receive_count_bounds_accepted(sqs, make_queue, count):
    dlq = make_queue()
    src = make_queue(RedrivePolicy=redrive_policy(queue_arn(sqs, dlq), count))
    rp = json.loads(sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]
                    ["RedrivePolicy"])
    assert int(rp["maxReceiveCount"]) == count


def invalid_policies(dlq_arn, missing_arn):
    return {
        "not-json": "{not json",
        "json-array": "[]",
        "empty-object": "{}",
        "no-max-receive-count": json.dumps({"deadLetterTargetArn": dlq_arn}),
        "no-target": json.dumps({"maxReceiveCount": 3}),
        "count-0": redrive_policy(dlq_arn, 0),
        "count-1001": redrive_policy(dlq_arn, 1001),
        "count-negative": redrive_policy(dlq_arn, -1),
        "count-text": redrive_policy(dlq_arn, "many"),
        "missing-dlq": redrive_policy(missing_arn, 3),
        "not-an-arn": redrive_policy("dummy", 3),
    }


@pytest.mark.parametrize("case", sorted(invalid_policies("a", "b")))
@pytest.mark.parametrize("via", ["create", "set"])
def test_invalid_redrive_policy(sqs, make_queue, queue, unique_name, case, via):
    dlq_arn = queue_arn(sqs, make_queue())
    missing_arn = dlq_arn.rsplit(":", 1)[0] + ":" + unique_name("-missing")
    policy = invalid_policies(dlq_arn, missing_arn)[case]
    with expect_error("InvalidParameterValue"):
        if via == "create":
            sqs.create_queue(QueueName=unique_name(), Attributes={"RedrivePolicy": policy})
        else:
            sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedrivePolicy": policy})
    if via == "set":
        assert "RedrivePolicy" not in sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]


def test_queue_types_must_match(sqs, make_queue, unique_name):
    """'The dead-letter queue of a FIFO queue must also be a FIFO queue. Similarly, the dead-letter queue of a
    standard queue must also be a standard queue.'"""
    std_dlq_arn = queue_arn(sqs, make_queue())
    fifo_dlq_arn = queue_arn(sqs, make_queue(name=unique_name(".fifo"), FifoQueue="true"))
    with expect_error("InvalidParameterValue"):
        sqs.create_queue(QueueName=unique_name(".fifo"),
                         Attributes={"FifoQueue": "true", "RedrivePolicy": redrive_policy(std_dlq_arn, 3)})
    with expect_error("InvalidParameterValue"):
        sqs.create_queue(QueueName=unique_name(), Attributes={"RedrivePolicy": redrive_policy(fifo_dlq_arn, 3)})
    std = make_queue()
    with expect_error("InvalidParameterValue"):
        sqs.set_queue_attributes(QueueUrl=std, Attributes={"RedrivePolicy": redrive_policy(fifo_dlq_arn, 3)})


# ------------------------------------------------------------------------------------------------ RedriveAllowPolicy

def allow(permission, arns=None):
    doc = {"redrivePermission": permission}
    if arns is not None:
        doc["sourceQueueArns"] = arns
    return json.dumps(doc)


def test_redrive_allow_policy_allow_all(sqs, make_queue):
    dlq = make_queue(RedriveAllowPolicy=allow("allowAll"))
    got = json.loads(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["RedriveAllowPolicy"])["Attributes"]
                     ["RedriveAllowPolicy"])
    assert got["redrivePermission"] == "allowAll"
    make_queue(RedrivePolicy=redrive_policy(queue_arn(sqs, dlq), 2))


def test_redrive_allow_policy_deny_all(sqs, make_queue, unique_name):
    dlq = make_queue(RedriveAllowPolicy=allow("denyAll"))
    dlq_arn = queue_arn(sqs, dlq)
    with pytest.raises(ClientError) as ei:
        sqs.create_queue(QueueName=unique_name(), Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)})
    expect_one_of(ei.value, ["InvalidParameterValue", "InvalidAttributeValue"])
    src = make_queue()
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)})
    expect_one_of(ei.value, ["InvalidParameterValue", "InvalidAttributeValue"])
    assert "RedrivePolicy" not in sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["All"])["Attributes"]


def test_redrive_allow_policy_by_queue(sqs, make_queue):
    allowed, other = make_queue(), make_queue()
    allowed_arn = queue_arn(sqs, allowed)
    dlq = make_queue(RedriveAllowPolicy=allow("byQueue", [allowed_arn]))
    got = json.loads(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["RedriveAllowPolicy"])["Attributes"]
                     ["RedriveAllowPolicy"])
    assert got == {"redrivePermission": "byQueue", "sourceQueueArns": [allowed_arn]}
    dlq_arn = queue_arn(sqs, dlq)
    sqs.set_queue_attributes(QueueUrl=allowed, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)})
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=other, Attributes={"RedrivePolicy": redrive_policy(dlq_arn, 2)})
    expect_one_of(ei.value, ["InvalidParameterValue", "InvalidAttributeValue"])


def test_redrive_allow_policy_by_queue_ten_arns(sqs, queue, make_queue):
    base = queue_arn(sqs, queue).rsplit(":", 1)[0]
    ten = [f"{base}:source-{i}" for i in range(10)]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedriveAllowPolicy": allow("byQueue", ten)})
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedriveAllowPolicy":
                                                             allow("byQueue", ten + [f"{base}:source-10"])})
    expect_one_of(ei.value, ["InvalidParameterValue", "InvalidAttributeValue"])


@pytest.mark.parametrize("policy", [
    "{not json",
    json.dumps({}),
    json.dumps({"redrivePermission": "sometimes"}),
    json.dumps({"redrivePermission": "byQueue"}),  # byQueue needs sourceQueueArns
    json.dumps({"redrivePermission": "allowAll", "sourceQueueArns": ["arn:aws:sqs:us-east-1:000000000000:x"]}),
    json.dumps({"redrivePermission": "denyAll", "sourceQueueArns": ["arn:aws:sqs:us-east-1:000000000000:x"]}),
], ids=["not-json", "empty", "bad-permission", "by-queue-without-arns", "arns-with-allow-all", "arns-with-deny-all"])
def test_invalid_redrive_allow_policy(sqs, queue, policy):
    with pytest.raises(ClientError) as ei:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedriveAllowPolicy": policy})
    expect_one_of(ei.value, ["InvalidParameterValue", "InvalidAttributeValue"])


# ------------------------------------------------------------------------------- ListDeadLetterSourceQueues

def test_list_dead_letter_source_queues(sqs, make_queue):
    dlq = make_queue()
    dlq_arn = queue_arn(sqs, dlq)
    sources = {make_queue(RedrivePolicy=redrive_policy(dlq_arn, 3)) for _ in range(3)}
    make_queue()  # unrelated
    res = sqs.list_dead_letter_source_queues(QueueUrl=dlq)
    assert set(res["queueUrls"]) == sources
    assert not res.get("NextToken"), "no NextToken without MaxResults"
    # A queue that no RedrivePolicy names has no sources.
    assert sqs.list_dead_letter_source_queues(QueueUrl=next(iter(sources))).get("queueUrls", []) == []
    # Removing the policy removes the source.
    gone = sorted(sources)[0]
    sqs.set_queue_attributes(QueueUrl=gone, Attributes={"RedrivePolicy": ""})
    assert set(sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]) == sources - {gone}


def test_list_dead_letter_source_queues_paging(sqs, make_queue):
    dlq = make_queue()
    dlq_arn = queue_arn(sqs, dlq)
    sources = {make_queue(RedrivePolicy=redrive_policy(dlq_arn, 3)) for _ in range(5)}
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"QueueUrl": dlq, "MaxResults": 2}
        if token:
            kwargs["NextToken"] = token
        page = sqs.list_dead_letter_source_queues(**kwargs)
        assert len(page["queueUrls"]) <= 2
        seen += page["queueUrls"]
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 10, "paging does not end"
    assert sorted(seen) == sorted(sources) and pages == 3
    last = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=5)
    assert len(last["queueUrls"]) == 5 and not last.get("NextToken")


@pytest.mark.parametrize("max_results", [0, 1001])
def test_list_dead_letter_source_queues_max_results_out_of_range(sqs, queue, max_results):
    with expect_error("InvalidParameterValue"):
        sqs.list_dead_letter_source_queues(QueueUrl=queue, MaxResults=max_results)


def test_list_dead_letter_source_queues_unknown_queue(sqs, queue):
    with expect_error("QueueDoesNotExist"):
        sqs.list_dead_letter_source_queues(QueueUrl=queue + "-missing")


# ------------------------------------------------------------------------------------------------ Query protocol

def test_query_redrive_and_list_sources(sqs, endpoint, make_queue, unique_name):
    dlq = make_queue()
    dlq_arn = queue_arn(sqs, dlq)
    name = unique_name()
    res = query_ok(query_request(endpoint, {
        "Action": "CreateQueue", "QueueName": name,
        "Attribute.1.Name": "RedrivePolicy", "Attribute.1.Value": redrive_policy(dlq_arn, 1)}), "CreateQueue")
    src = path_text(res, "QueueUrl")
    try:
        a = query_attributes(query_ok(query_request(src, {"Action": "GetQueueAttributes",
                                                          "AttributeName.1": "RedrivePolicy"}), "GetQueueAttributes"))
        assert json.loads(a["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn
        res = query_ok(query_request(dlq, {"Action": "ListDeadLetterSourceQueues"}), "ListDeadLetterSourceQueues")
        assert [u.text for u in children(res, "QueueUrl")] == [src]

        query_ok(query_request(src, {"Action": "SendMessage", "MessageBody": "q-poison"}), "SendMessage")
        query_ok(query_request(src, {"Action": "ReceiveMessage", "VisibilityTimeout": "0"}), "ReceiveMessage")
        again = query_ok(query_request(src, {"Action": "ReceiveMessage", "VisibilityTimeout": "0"}), "ReceiveMessage")
        assert children(again, "Message") == []

        def moved():
            r = query_ok(query_request(dlq, {"Action": "ReceiveMessage", "AttributeName.1": "All",
                                             "WaitTimeSeconds": "1"}), "ReceiveMessage")
            return children(r, "Message")
        msgs = wait_for(moved, timeout=5, interval=0, what="the message in the DLQ")
        assert path_text(msgs[0], "Body") == "q-poison"
        assert query_attributes(msgs[0])["DeadLetterQueueSourceArn"] == queue_arn(sqs, src)
    finally:
        sqs.delete_queue(QueueUrl=src)


def test_query_invalid_redrive_policy(sqs, queue):
    resp = query_request(queue, {"Action": "SetQueueAttributes", "Attribute.1.Name": "RedrivePolicy",
                                 "Attribute.1.Value": json.dumps({"deadLetterTargetArn": queue_arn(sqs, queue)})})
    query_error_code(resp, "InvalidParameterValue")
    resp = query_request(queue, {"Action": "ListDeadLetterSourceQueues", "MaxResults": "0"})
    query_error_code(resp, "InvalidParameterValue")
