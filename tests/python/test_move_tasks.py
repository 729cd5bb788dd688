"""Message move tasks (DLQ redrive): StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask; over the
AWS JSON protocol (boto3) and, for a subset, the Query protocol.

Sources: the API reference (the three actions and ListMessageMoveTasksResultEntry) and AWS recordings
(localstack's AWS-validated test_sqs_move_task snapshots), which fix the codes the reference leaves open:
  * a SourceArn that is no queue's dead-letter queue: 400 InvalidParameterValue "Source queue must be configured
    as a Dead Letter Queue.";
  * a SourceArn / DestinationArn naming no queue: 404 ResourceNotFoundException;
  * a second task while one is active: 400 InvalidParameterValue "There is already a task running. Only one
    active task is allowed for a source queue arn at a given time.";
  * CancelMessageMoveTask with a malformed handle: 400 InvalidParameterValue "Value for parameter TaskHandle is
    invalid."; with a well-formed handle naming no task, or naming a queue that does not exist: 404
    ResourceNotFoundException;
  * task handles are base64 of the JSON document {"taskId": "<uuid>", "sourceArn": "<source queue ARN>"};
  * ListMessageMoveTasks results carry TaskHandle only while RUNNING, DestinationArn and
    MaxNumberOfMessagesPerSecond only when given to StartMessageMoveTask, and return the most recent task first
    (MaxResults defaults to 1, at most 10).
"""

import base64
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from sqs_helpers import (children, expect_error, expect_one_of, path_text, query_error_code, query_ok,
                         query_request, queue_arn, redrive_policy, wait_for)


def receive(sqs, url, n=10, **kwargs):
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, **kwargs).get("Messages", [])


def count(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                               "ApproximateNumberOfMessagesNotVisible"])
    a = a["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def collect(sqs, url, expected, timeout=8.0, **kwargs):
    """Receive and delete until `expected` messages were collected."""
    got = []

    def fetch():
        msgs = receive(sqs, url, WaitTimeSeconds=1, **kwargs)
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        got.extend(msgs)
        return len(got) >= expected
    wait_for(fetch, timeout=timeout, interval=0, what=f"{expected} messages in {url}")
    return got


def encode_handle(task_id, source_arn):
    return base64.b64encode(json.dumps({"taskId": task_id, "sourceArn": source_arn}).encode()).decode()


@pytest.fixture
def dlq_pipe(sqs, make_queue):
    """dlq_pipe(n, sources=1) -> (dlq_url, dlq_arn, [source urls]) with n messages per source already moved to
    the DLQ (maxReceiveCount=1, each message received twice with visibility 0)."""
    def make(n, sources=1, attrs=None):
        dlq = make_queue()
        dlq_arn = queue_arn(sqs, dlq)
        srcs = [make_queue(RedrivePolicy=redrive_policy(dlq_arn, 1)) for _ in range(sources)]
        for s_i, src in enumerate(srcs):
            for i in range(n):
                sqs.send_message(QueueUrl=src, MessageBody=f"s{s_i}-m{i}", **({"MessageAttributes": attrs}
                                                                                 if attrs else {}))
            for _ in range(2 * n + 2):
                if not receive(sqs, src, VisibilityTimeout=0) and count(sqs, src) == (0, 0):
                    break
        wait_for(lambda: count(sqs, dlq)[0] == n * sources, timeout=5, what="the DLQ to fill")
        return dlq, dlq_arn, srcs
    return make


def tasks(sqs, source_arn, **kwargs):
    return sqs.list_message_move_tasks(SourceArn=source_arn, **kwargs).get("Results", [])


def wait_status(sqs, source_arn, statuses, timeout=10.0):
    def fetch():
        r = tasks(sqs, source_arn)
        return r[0] if r and r[0]["Status"] in statuses else None
    return wait_for(fetch, timeout=timeout, interval=0.1, what=f"move task status in {statuses}")


# ------------------------------------------------------------------------------------------------ validation

def test_start_requires_a_dead_letter_queue_source(sqs, make_queue):
    src, dst = make_queue(), make_queue()
    with expect_error("InvalidParameterValue"):
        sqs.start_message_move_task(SourceArn=queue_arn(sqs, src), DestinationArn=queue_arn(sqs, dst))


def test_start_unknown_source(sqs, queue):
    arn = queue_arn(sqs, queue) + "-does-not-exist"
    with expect_error("ResourceNotFoundException"):
        sqs.start_message_move_task(SourceArn=arn)


def test_start_unknown_destination(sqs, dlq_pipe, queue):
    _, dlq_arn, _ = dlq_pipe(1)
    with expect_error("ResourceNotFoundException"):
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, queue) + "-does-not-exist")


@pytest.mark.parametrize("rate", [0, 501])
def test_start_rate_out_of_range(sqs, dlq_pipe, rate):
    # "The maximum value for messages per second is 500."
    _, dlq_arn, _ = dlq_pipe(1)
    with expect_error("InvalidParameterValue"):
        sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=rate)


def test_list_unknown_source(sqs, queue):
    with expect_error("ResourceNotFoundException"):
        sqs.list_message_move_tasks(SourceArn=queue_arn(sqs, queue) + "-does-not-exist")


@pytest.mark.parametrize("max_results", [0, 11])
def test_list_max_results_out_of_range(sqs, dlq_pipe, max_results):
    _, dlq_arn, _ = dlq_pipe(0)
    with expect_error("InvalidParameterValue"):
        sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=max_results)


def test_list_without_tasks_is_empty(sqs, dlq_pipe):
    _, dlq_arn, _ = dlq_pipe(0)
    assert tasks(sqs, dlq_arn) == []


def test_cancel_malformed_handle(sqs):
    with expect_error("InvalidParameterValue"):
        sqs.cancel_message_move_task(TaskHandle="foobared")


def test_cancel_unknown_task(sqs, dlq_pipe):
    _, dlq_arn, _ = dlq_pipe(0)
    with expect_error("ResourceNotFoundException"):
        sqs.cancel_message_move_task(TaskHandle=encode_handle(str(uuid.uuid4()), dlq_arn))


def test_cancel_handle_naming_missing_queue(sqs, queue):
    with expect_error("ResourceNotFoundException"):
        sqs.cancel_message_move_task(TaskHandle=encode_handle(str(uuid.uuid4()), queue_arn(sqs, queue) + "-gone"))


# ------------------------------------------------------------------------------------------------ moving

def test_move_to_destination(sqs, dlq_pipe, make_queue):
    attrs = {"k": {"DataType": "String", "StringValue": "v"}}
    dlq, dlq_arn, _ = dlq_pipe(3, attrs=attrs)
    dst = make_queue()
    dst_arn = queue_arn(sqs, dst)
    before_ms = int(time.time() * 1000)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=dst_arn)["TaskHandle"]
    assert handle
    moved = collect(sqs, dst, 3, MessageAttributeNames=["All"])
    assert sorted(m["Body"] for m in moved) == ["s0-m0", "s0-m1", "s0-m2"]
    assert all(m["MessageAttributes"] == attrs for m in moved)
    t = wait_status(sqs, dlq_arn, {"COMPLETED"})
    assert t["SourceArn"] == dlq_arn
    assert t["DestinationArn"] == dst_arn
    assert t["ApproximateNumberOfMessagesMoved"] == 3
    assert t["ApproximateNumberOfMessagesToMove"] == 3
    assert before_ms - 5000 <= t["StartedTimestamp"] <= int(time.time() * 1000) + 5000, \
        f"StartedTimestamp should be epoch milliseconds: {t['StartedTimestamp']}"
    assert "TaskHandle" not in t, "TaskHandle is only listed while the task is RUNNING"
    assert "MaxNumberOfMessagesPerSecond" not in t, "not given to StartMessageMoveTask"
    assert "FailureReason" not in t
    assert receive(sqs, dlq) == [], "moved, not copied"


def test_move_back_to_original_sources(sqs, dlq_pipe):
    dlq, dlq_arn, (src_a, src_b) = dlq_pipe(2, sources=2)
    sqs.start_message_move_task(SourceArn=dlq_arn)
    back_a = collect(sqs, src_a, 2)
    back_b = collect(sqs, src_b, 2)
    assert sorted(m["Body"] for m in back_a) == ["s0-m0", "s0-m1"]
    assert sorted(m["Body"] for m in back_b) == ["s1-m0", "s1-m1"]
    t = wait_status(sqs, dlq_arn, {"COMPLETED"})
    assert "DestinationArn" not in t, "no DestinationArn was given"
    assert (t["ApproximateNumberOfMessagesMoved"], t["ApproximateNumberOfMessagesToMove"]) == (4, 4)


def test_task_handle_format(sqs, dlq_pipe):
    _, dlq_arn, _ = dlq_pipe(1)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    try:
        doc = json.loads(base64.b64decode(handle, validate=True))
    except ValueError as e:
        raise AssertionError(f"AWS task handles are base64 of a JSON document; got {handle!r} ({e})")
    assert doc["sourceArn"] == dlq_arn, doc
    assert uuid.UUID(doc["taskId"]), doc


def test_running_task_listing_second_start_and_cancel(sqs, dlq_pipe, make_queue):
    dlq, dlq_arn, _ = dlq_pipe(6)
    dst = make_queue()
    dst_arn = queue_arn(sqs, dst)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=dst_arn,
                                         MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    t = tasks(sqs, dlq_arn)[0]
    assert t["Status"] == "RUNNING"
    assert t["TaskHandle"] == handle
    assert t["MaxNumberOfMessagesPerSecond"] == 1
    assert t["ApproximateNumberOfMessagesToMove"] == 6
    assert (t["SourceArn"], t["DestinationArn"]) == (dlq_arn, dst_arn)
    # "Only one active message movement task is supported per queue at any given time."
    with expect_error("InvalidParameterValue"):
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=dst_arn)
    early = collect(sqs, dst, 1)
    res = sqs.cancel_message_move_task(TaskHandle=handle)
    assert isinstance(res["ApproximateNumberOfMessagesMoved"], int)
    assert tasks(sqs, dlq_arn)[0]["Status"] in ("CANCELLING", "CANCELLED")
    t = wait_status(sqs, dlq_arn, {"CANCELLED"})
    assert "TaskHandle" not in t
    time.sleep(0.3)
    moved = t["ApproximateNumberOfMessagesMoved"]
    assert 1 <= moved < 6, f"cancelled after the first move; {moved} moved"
    in_dlq = count(sqs, dlq)[0]
    in_dst = count(sqs, dst)[0] + len(early)  # those already collected (and deleted)
    assert (in_dlq + in_dst, in_dst) == (6, moved), "cancelling keeps what was moved and stops the rest"
    # Once the task is no longer active, a new one may start.
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=dst_arn)
    wait_status(sqs, dlq_arn, {"COMPLETED"})
    assert count(sqs, dlq)[0] == 0


def test_task_fails_when_destination_is_deleted(sqs, dlq_pipe, make_queue):
    # Recorded AWS behaviour: the task ends FAILED with FailureReason AWS.SimpleQueueService.NonExistentQueue and
    # the messages not yet moved stay in the DLQ.
    dlq, dlq_arn, _ = dlq_pipe(5)
    dst = make_queue()
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, dst), MaxNumberOfMessagesPerSecond=1)
    wait_for(lambda: tasks(sqs, dlq_arn)[0]["ApproximateNumberOfMessagesMoved"] >= 1, timeout=5,
             what="the first message to move")
    sqs.delete_queue(QueueUrl=dst)
    t = wait_status(sqs, dlq_arn, {"FAILED"})
    assert t["FailureReason"], t
    assert "TaskHandle" not in t
    assert count(sqs, dlq)[0] >= 1, "unmoved messages stay in the DLQ"


def test_rate_limit_spreads_the_move(sqs, dlq_pipe, make_queue):
    dlq, dlq_arn, _ = dlq_pipe(3)
    dst = make_queue()
    start = time.monotonic()
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, dst), MaxNumberOfMessagesPerSecond=1)
    collect(sqs, dst, 3)
    elapsed = time.monotonic() - start
    # 3 messages at 1 per second: at least 2 s even if the first moves at once (AWS was recorded taking >= 3 s
    # for 4 messages at 1/s).
    assert elapsed >= 1.8, f"3 messages at 1/s moved in {elapsed:.2f}s"


def test_cancel_completed_task_fails(sqs, dlq_pipe, make_queue):
    # "A message movement can only be cancelled when the current status is RUNNING."
    _, dlq_arn, _ = dlq_pipe(1)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, make_queue()))["TaskHandle"]
    wait_status(sqs, dlq_arn, {"COMPLETED"})
    with pytest.raises(ClientError) as ei:
        sqs.cancel_message_move_task(TaskHandle=handle)
    expect_one_of(ei.value, ["InvalidParameterValue", "ResourceNotFoundException"])
    assert tasks(sqs, dlq_arn)[0]["Status"] == "COMPLETED"


def test_list_returns_most_recent_first(sqs, dlq_pipe, make_queue):
    dlq, dlq_arn, (src,) = dlq_pipe(1)
    first_dst, second_dst = make_queue(), make_queue()
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, first_dst))
    wait_status(sqs, dlq_arn, {"COMPLETED"})
    # Put one more message through the DLQ and move it with a second task.
    sqs.send_message(QueueUrl=src, MessageBody="again")
    receive(sqs, src, VisibilityTimeout=0)
    receive(sqs, src, VisibilityTimeout=0)
    wait_for(lambda: count(sqs, dlq)[0] == 1, timeout=5, what="the second message in the DLQ")
    time.sleep(0.01)
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn(sqs, second_dst))
    wait_for(lambda: tasks(sqs, dlq_arn)[0].get("DestinationArn") == queue_arn(sqs, second_dst)
             and tasks(sqs, dlq_arn)[0]["Status"] == "COMPLETED", timeout=10, what="the second task to complete")
    default = tasks(sqs, dlq_arn)
    assert len(default) == 1, "MaxResults defaults to 1: the most recent task"
    both = tasks(sqs, dlq_arn, MaxResults=10)
    assert [t["DestinationArn"] for t in both] == [queue_arn(sqs, second_dst), queue_arn(sqs, first_dst)]
    assert both[0]["StartedTimestamp"] >= both[1]["StartedTimestamp"]


# ------------------------------------------------------------------------------------------------ Query protocol

def test_query_move_task_workflow(sqs, endpoint, dlq_pipe, make_queue):
    dlq, dlq_arn, _ = dlq_pipe(2)
    dst = make_queue()
    dst_arn = queue_arn(sqs, dst)
    res = query_ok(query_request(endpoint, {"Action": "StartMessageMoveTask", "SourceArn": dlq_arn,
                                            "DestinationArn": dst_arn}), "StartMessageMoveTask")
    assert path_text(res, "TaskHandle")
    collect(sqs, dst, 2)

    def listed():
        r = query_ok(query_request(endpoint, {"Action": "ListMessageMoveTasks", "SourceArn": dlq_arn,
                                              "MaxResults": "10"}), "ListMessageMoveTasks")
        entries = children(r, "ListMessageMoveTasksResultEntry")
        return entries if entries and path_text(entries[0], "Status") == "COMPLETED" else None
    entries = wait_for(listed, timeout=10, what="a COMPLETED task over the Query protocol")
    assert len(entries) == 1
    e = entries[0]
    assert (path_text(e, "SourceArn"), path_text(e, "DestinationArn")) == (dlq_arn, dst_arn)
    assert path_text(e, "ApproximateNumberOfMessagesMoved") == "2"
    assert path_text(e, "ApproximateNumberOfMessagesToMove") == "2"
    assert path_text(e, "StartedTimestamp").isdigit()


def test_query_move_task_errors(sqs, endpoint, queue):
    arn = queue_arn(sqs, queue)
    query_error_code(query_request(endpoint, {"Action": "StartMessageMoveTask", "SourceArn": arn}),
                     "InvalidParameterValue")
    query_error_code(query_request(endpoint, {"Action": "StartMessageMoveTask", "SourceArn": arn + "-gone"}),
                     "ResourceNotFoundException")
    query_error_code(query_request(endpoint, {"Action": "CancelMessageMoveTask", "TaskHandle": "foobared"}),
                     "InvalidParameterValue")
    query_error_code(query_request(endpoint, {"Action": "CancelMessageMoveTask",
                                              "TaskHandle": encode_handle(str(uuid.uuid4()), arn)}),
                     "ResourceNotFoundException")
