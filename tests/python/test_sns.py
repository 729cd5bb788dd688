"""The SNS-compatible topics API (crates/sluice-sns), driven by boto3's SNS client and the AWS CLI.

SNS speaks only the Query protocol (Version=2010-03-31); sluice routes those requests to its SNS crate and
delivers to its own SQS queues and to HTTP endpoints.
"""

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice_server import SluiceServer
from sqs_helpers import REGION, make_client
from tls_certs import make_ca, make_server_cert

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="SNS is a sluice extension")

REPO = Path(__file__).resolve().parents[2]
AWS_CLI = REPO / ".venv" / "bin" / "aws"


def make_sns(endpoint):
    cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60)
    return boto3.client("sns", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test", config=cfg)


@pytest.fixture(scope="module")
def sns(endpoint):
    return make_sns(endpoint)


@pytest.fixture
def name(unique_name):
    return lambda suffix="": unique_name(suffix)


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(sqs, url, expect, timeout=5.0, **kwargs):
    """Receive until `expect` messages arrived (or timeout); deletes them."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"], **kwargs)
        for m in resp.get("Messages", []):
            got.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def error_of(exc_info):
    e = exc_info.value
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------- topics


def test_topic_lifecycle(sns, name):
    n = name()
    arn = sns.create_topic(Name=n, Attributes={"DisplayName": "Orders"}, Tags=[{"Key": "team", "Value": "a"}])["TopicArn"]
    assert arn == f"arn:aws:sns:{REGION}:000000000000:{n}"
    # Idempotent with the same attributes; an error with different ones.
    assert sns.create_topic(Name=n, Attributes={"DisplayName": "Orders"})["TopicArn"] == arn
    with pytest.raises(ClientError) as ei:
        sns.create_topic(Name=n, Attributes={"DisplayName": "Other"})
    assert error_of(ei) == ("InvalidParameter", 400)

    a = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert a["TopicArn"] == arn and a["Owner"] == "000000000000" and a["DisplayName"] == "Orders"
    assert a["SubscriptionsConfirmed"] == "0" and a["SubscriptionsPending"] == "0" and a["SubscriptionsDeleted"] == "0"
    assert json.loads(a["Policy"])["Statement"][0]["Resource"] == arn
    assert "defaultHealthyRetryPolicy" in json.loads(a["EffectiveDeliveryPolicy"])["http"]
    assert "FifoTopic" not in a

    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Renamed")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Renamed"
    with pytest.raises(ClientError) as ei:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Bogus", AttributeValue="x")
    assert error_of(ei) == ("InvalidParameter", 400)

    assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "test"}])
    tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}
    assert tags == {"team": "a", "env": "test"}
    sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "test"}]

    sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=arn)  # deleting a missing topic is not an error
    with pytest.raises(ClientError) as ei:
        sns.get_topic_attributes(TopicArn=arn)
    assert error_of(ei) == ("NotFound", 404)
    assert isinstance(ei.value, sns.exceptions.NotFoundException)
    with pytest.raises(sns.exceptions.ResourceNotFoundException):
        sns.list_tags_for_resource(ResourceArn=arn)
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.publish(TopicArn=arn, Message="x")


def test_topic_name_rules(sns, name):
    for bad in ["has space", "a" * 257, ""]:
        with pytest.raises(ClientError) as ei:
            sns.create_topic(Name=bad)
        assert error_of(ei) == ("InvalidParameter", 400)
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.create_topic(Name=name(".fifo"))  # .fifo name without FifoTopic=true
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.create_topic(Name=name(), Attributes={"FifoTopic": "true"})  # FIFO without .fifo
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.create_topic(Name=name(), Attributes={"ContentBasedDeduplication": "true"})


def test_list_topics_pages_of_100(sns, name):
    prefix = name()
    made = [sns.create_topic(Name=f"{prefix}-{i}")["TopicArn"] for i in range(105)]
    seen, token, pages = [], None, 0
    while True:
        resp = sns.list_topics(**({"NextToken": token} if token else {}))
        assert len(resp["Topics"]) <= 100
        seen += [t["TopicArn"] for t in resp["Topics"]]
        pages += 1
        token = resp.get("NextToken")
        if not token:
            break
    assert pages >= 2
    assert set(made) <= set(seen) and len(seen) == len(set(seen))
    for arn in made:
        sns.delete_topic(TopicArn=arn)


def test_unsupported_operations_answer_an_error(sns):
    with pytest.raises(ClientError) as ei:
        sns.list_platform_applications()
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "not supported" in ei.value.response["Error"]["Message"]


def test_sqs_permission_actions_still_reach_sqs(sqs, queue):
    # AddPermission exists in both services: the Version decides (SQS's 2012-11-05 here).
    sqs.add_permission(QueueUrl=queue, Label="l1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert "Policy" in sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"]


# ---------------------------------------------------------------- SQS fan-out


def test_fan_out_with_filter_policies(sns, sqs, make_queue, name):
    topic = sns.create_topic(Name=name())["TopicArn"]
    q_all, q_red, q_big = make_queue(), make_queue(), make_queue()
    s_all = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, q_all))["SubscriptionArn"]
    s_red = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, q_red), ReturnSubscriptionArn=True,
                          Attributes={"FilterPolicy": json.dumps({"color": ["red", {"prefix": "crim"}]})})["SubscriptionArn"]
    s_big = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, q_big), Attributes={
        "FilterPolicyScope": "MessageBody",
        "FilterPolicy": json.dumps({"order": {"total": [{"numeric": [">=", 100]}], "status": [{"anything-but": "void"}]}})})[
        "SubscriptionArn"]
    assert s_all.startswith(topic + ":") and s_red.startswith(topic + ":")
    # Subscribe is idempotent.
    assert sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, q_all))["SubscriptionArn"] == s_all
    a = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert a["SubscriptionsConfirmed"] == "3"

    msgs = [
        ("red plain", {"color": {"DataType": "String", "StringValue": "red"}}),
        ("crimson", {"color": {"DataType": "String", "StringValue": "crimson"}}),
        (json.dumps({"order": {"total": 150, "status": "paid"}}), {"color": {"DataType": "String", "StringValue": "blue"}}),
        (json.dumps({"order": {"total": 150, "status": "void"}}), {}),
        (json.dumps({"order": {"total": 5, "status": "paid"}}), {}),
    ]
    ids = []
    for body, attrs in msgs:
        kwargs = {"TopicArn": topic, "Message": body, "Subject": "hello"}
        if attrs:
            kwargs["MessageAttributes"] = attrs
        ids.append(sns.publish(**kwargs)["MessageId"])

    # Publish is durable before it answers: the copies are receivable right away.
    got_all = drain(sqs, q_all, 5)
    got_red = drain(sqs, q_red, 2)
    got_big = drain(sqs, q_big, 1)
    assert len(got_all) == 5
    assert sorted(json.loads(m["Body"])["Message"] for m in got_red) == ["crimson", "red plain"]
    assert [json.loads(json.loads(m["Body"])["Message"])["order"]["status"] for m in got_big] == ["paid"]
    assert drain(sqs, q_red, 1, timeout=1.5) == [] and drain(sqs, q_big, 1, timeout=1.5) == []

    env = json.loads(next(m for m in got_all if json.loads(m["Body"])["Message"] == "red plain")["Body"])
    assert list(env)[:4] == ["Type", "MessageId", "TopicArn", "Subject"]
    assert env["Type"] == "Notification" and env["TopicArn"] == topic and env["Subject"] == "hello"
    assert env["MessageId"] in ids
    assert env["SignatureVersion"] == "1" and base64.b64decode(env["Signature"])
    assert env["SigningCertURL"].endswith(".pem")
    assert "Action=Unsubscribe" in env["UnsubscribeURL"]
    assert env["MessageAttributes"] == {"color": {"Type": "String", "Value": "red"}}
    assert time.strptime(env["Timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ") and env["Timestamp"][-5] == "."

    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert {s["SubscriptionArn"] for s in subs} == {s_all, s_red, s_big}
    assert all(s["Protocol"] == "sqs" and s["TopicArn"] == topic for s in subs)
    assert {s_all, s_red, s_big} <= {s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]}

    sa = sns.get_subscription_attributes(SubscriptionArn=s_big)["Attributes"]
    assert sa["FilterPolicyScope"] == "MessageBody" and sa["RawMessageDelivery"] == "false"
    assert sa["PendingConfirmation"] == "false" and sa["TopicArn"] == topic

    # Change the filter; unsubscribe one.
    sns.set_subscription_attributes(SubscriptionArn=s_red, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"color": ["blue"]}))
    sns.unsubscribe(SubscriptionArn=s_all)
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_subscription_attributes(SubscriptionArn=s_all)
    sns.publish(TopicArn=topic, Message="blue one", MessageAttributes={"color": {"DataType": "String", "StringValue": "blue"}})
    assert [json.loads(m["Body"])["Message"] for m in drain(sqs, q_red, 1)] == ["blue one"]
    assert drain(sqs, q_all, 1, timeout=1.5) == []

    # Deleting the topic removes its subscriptions.
    sns.delete_topic(TopicArn=topic)
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_subscription_attributes(SubscriptionArn=s_red)


def test_filter_policy_operators_end_to_end(sns, sqs, make_queue, name):
    topic = sns.create_topic(Name=name())["TopicArn"]
    cases = {
        "num": {"price": [{"numeric": [">", 0, "<=", 100]}]},
        "exists": {"vip": [{"exists": True}]},
        "notexists": {"vip": [{"exists": False}]},
        "anybut": {"region": [{"anything-but": ["us", "eu"]}]},
        "or": {"$or": [{"region": ["eu"]}, {"price": [500]}]},
        "ignorecase": {"region": [{"equals-ignore-case": "AP"}]},
        "suffix": {"file": [{"suffix": ".png"}]},
        "array": {"tags": ["hot"]},
    }
    queues = {}
    for key, policy in cases.items():
        url = make_queue()
        queues[key] = url
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, url), ReturnSubscriptionArn=True,
                      Attributes={"FilterPolicy": json.dumps(policy), "RawMessageDelivery": "true"})

    def pub(body, **attrs):
        ma = {}
        for k, v in attrs.items():
            if isinstance(v, list):
                ma[k] = {"DataType": "String.Array", "StringValue": json.dumps(v)}
            elif isinstance(v, (int, float)):
                ma[k] = {"DataType": "Number", "StringValue": str(v)}
            else:
                ma[k] = {"DataType": "String", "StringValue": v}
        sns.publish(TopicArn=topic, Message=body, MessageAttributes=ma)

    pub("m1", price=50, region="us")
    pub("m2", price=500, region="eu", vip="yes")
    pub("m3", region="ap", file="x.png", tags=["cold", "hot"])
    expected = {
        "num": ["m1"], "exists": ["m2"], "notexists": ["m1", "m3"], "anybut": ["m3"], "or": ["m2"],
        "ignorecase": ["m3"], "suffix": ["m3"], "array": ["m3"],
    }
    for key, want in expected.items():
        got = sorted(m["Body"] for m in drain(sqs, queues[key], len(want), timeout=3))
        assert got == want, f"{key}: {got}"


def test_bad_filter_policies_are_rejected(sns, sqs, queue, name):
    topic = sns.create_topic(Name=name())["TopicArn"]
    arn = queue_arn(sqs, queue)
    too_many_keys = {k: ["x"] for k in "abcdef"}
    too_complex = {"a": [str(i) for i in range(20)], "b": [str(i) for i in range(10)]}
    for policy in ["not json", json.dumps(too_many_keys), json.dumps(too_complex), json.dumps({"a": [{"nope": 1}]}),
                   json.dumps({"a": {"b": ["nested not allowed for attributes"]}}),
                   json.dumps({"a": [{"numeric": [">", 10, "<", 5]}]})]:
        with pytest.raises(ClientError) as ei:
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"FilterPolicy": policy})
        assert error_of(ei) == ("InvalidParameter", 400), policy
        assert ei.value.response["Error"]["Message"].startswith("Invalid parameter")
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True)["SubscriptionArn"]
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue="[1]")
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="maybe")


def test_raw_message_delivery(sns, sqs, queue, name):
    topic = sns.create_topic(Name=name())["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, queue), ReturnSubscriptionArn=True,
                        Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["RawMessageDelivery"] == "true"
    sns.publish(TopicArn=topic, Message="just the body", MessageAttributes={
        "s": {"DataType": "String", "StringValue": "v"},
        "n": {"DataType": "Number", "StringValue": "42"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    })
    [m] = drain(sqs, queue, 1)
    assert m["Body"] == "just the body"
    assert m["MessageAttributes"]["s"] == {"DataType": "String", "StringValue": "v"}
    assert m["MessageAttributes"]["n"] == {"DataType": "Number", "StringValue": "42"}
    assert m["MessageAttributes"]["b"] == {"DataType": "Binary", "BinaryValue": b"\x00\x01"}


def test_message_structure_json_and_batch(sns, sqs, queue, name):
    topic = sns.create_topic(Name=name())["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, queue))
    sns.publish(TargetArn=topic, MessageStructure="json", Message=json.dumps({"default": "d", "sqs": "for sqs"}))
    [m] = drain(sqs, queue, 1)
    assert json.loads(m["Body"])["Message"] == "for sqs"
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.publish(TopicArn=topic, MessageStructure="json", Message=json.dumps({"sqs": "no default"}))
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.publish(TopicArn=topic, Message="")
    with pytest.raises(ClientError) as ei:
        sns.publish(TopicArn=topic, Message="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}})
    assert error_of(ei) == ("ParameterValueInvalid", 400)

    resp = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "one"}, {"Id": "b", "Message": "two", "Subject": "s"}, {"Id": "c", "Message": ""}])
    assert sorted(e["Id"] for e in resp["Successful"]) == ["a", "b"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in resp["Failed"]] == [("c", "InvalidParameter", True)]
    assert sorted(json.loads(m["Body"])["Message"] for m in drain(sqs, queue, 2)) == ["one", "two"]
    with pytest.raises(sns.exceptions.TooManyEntriesInBatchRequestException):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": f"i{i}", "Message": "m"} for i in range(11)])
    with pytest.raises(sns.exceptions.BatchEntryIdsNotDistinctException):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "x", "Message": "m"}, {"Id": "x", "Message": "m"}])


def test_fifo_topic_into_fifo_queues(sns, sqs, make_queue, name):
    topic = sns.create_topic(Name=name(".fifo"), Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})[
        "TopicArn"]
    a = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert a["FifoTopic"] == "true" and a["ContentBasedDeduplication"] == "true"
    queues = [make_queue(name=name(".fifo"), FifoQueue="true") for _ in range(2)]
    for q in queues:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, q))
    # A FIFO queue cannot subscribe to a standard topic.
    std = sns.create_topic(Name=name())["TopicArn"]
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.subscribe(TopicArn=std, Protocol="sqs", Endpoint=queue_arn(sqs, queues[0]))

    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.publish(TopicArn=topic, Message="no group")
    seqs = []
    for i in range(5):
        r = sns.publish(TopicArn=topic, Message=f"m{i}", MessageGroupId="g1")
        seqs.append(int(r["SequenceNumber"]))
    assert seqs == sorted(seqs)
    sns.publish(TopicArn=topic, Message="m0", MessageGroupId="g1")  # content-based duplicate of m0
    sns.publish(TopicArn=topic, Message="explicit", MessageGroupId="g2", MessageDeduplicationId="d1")
    sns.publish(TopicArn=topic, Message="explicit again", MessageGroupId="g2", MessageDeduplicationId="d1")  # duplicate

    for q in queues:
        got = drain(sqs, q, 6, AttributeNames=["All"])
        bodies = [json.loads(m["Body"])["Message"] for m in got]
        g1 = [b for b, m in zip(bodies, got) if m["Attributes"]["MessageGroupId"] == "g1"]
        assert g1 == ["m0", "m1", "m2", "m3", "m4"], bodies
        assert [b for b, m in zip(bodies, got) if m["Attributes"]["MessageGroupId"] == "g2"] == ["explicit"]
        env = json.loads(got[0]["Body"])
        assert env["SequenceNumber"] and env["TopicArn"] == topic


# ---------------------------------------------------------------- HTTP subscribers


class Receiver:
    """A local HTTP endpoint: records POSTs; answers 500 while `failing` > 0 (decrementing it).

    With `tls` (an ssl.SSLContext) it is an HTTPS endpoint; `tls` can be swapped at any time (the next
    connection presents the new certificate). Failed TLS handshakes are counted in `tls_failures`.
    """

    def __init__(self, tls=None):
        self.posts = []
        self.failing = 0
        self.tls = tls
        self.tls_failures = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                tls_version = self.connection.version() if isinstance(self.connection, ssl.SSLSocket) else None
                with outer.lock:
                    fail = outer.failing > 0
                    if fail:
                        outer.failing -= 1
                    outer.posts.append({"headers": dict(self.headers), "body": body.decode(), "failed": fail,
                                        "tls": tls_version})
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def get_request(self):
                sock, addr = self.socket.accept()
                if outer.tls is None:
                    return sock, addr
                sock.settimeout(5)
                try:
                    return outer.tls.wrap_socket(sock, server_side=True), addr
                except (ssl.SSLError, OSError):
                    with outer.lock:
                        outer.tls_failures += 1
                    sock.close()
                    raise

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [p for p in self.posts if pred(p)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching POST within {timeout}s; got {self.posts}")

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_http_subscriber_confirms_receives_fails_and_recovers(sns, sqs, queue, receiver, name):
    topic = sns.create_topic(Name=name())["TopicArn"]
    resp = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
    assert resp["SubscriptionArn"] == "pending confirmation"
    [conf] = receiver.wait(lambda p: p["headers"].get("x-amz-sns-message-type") == "SubscriptionConfirmation")
    doc = json.loads(conf["body"])
    assert doc["Type"] == "SubscriptionConfirmation" and doc["TopicArn"] == topic and doc["Token"]
    assert "Action=ConfirmSubscription" in doc["SubscribeURL"]
    assert conf["headers"]["x-amz-sns-topic-arn"] == topic
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsPending"] == "1"
    assert [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]] == [
        "PendingConfirmation"]

    # Not confirmed yet: nothing is delivered.
    sns.publish(TopicArn=topic, Message="before confirmation")
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.confirm_subscription(TopicArn=topic, Token="wrong")
    sub = sns.confirm_subscription(TopicArn=topic, Token=doc["Token"])["SubscriptionArn"]
    assert sub.startswith(topic + ":")
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingConfirmation"] == "false"

    # Fast retries for the test (AWS's healthyRetryPolicy; no-delay retries first).
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(
        {"healthyRetryPolicy": {"numRetries": 4, "numNoDelayRetries": 1, "minDelayTarget": 0.2, "maxDelayTarget": 0.5}}))
    sns.publish(TopicArn=topic, Message="hello http", Subject="subj",
                MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    [n] = receiver.wait(lambda p: p["headers"].get("x-amz-sns-message-type") == "Notification")
    env = json.loads(n["body"])
    assert env["Message"] == "hello http" and env["Subject"] == "subj" and env["MessageAttributes"]["k"]["Value"] == "v"
    assert n["headers"]["x-amz-sns-subscription-arn"] == sub
    assert n["headers"]["x-amz-sns-message-id"] == env["MessageId"]
    assert not any("before confirmation" in p["body"] for p in receiver.posts)

    # The endpoint fails three times, then recovers: the notification arrives on the fourth attempt.
    receiver.failing = 3
    t0 = time.monotonic()
    sns.publish(TopicArn=topic, Message="retried")
    assert time.monotonic() - t0 < 1.0, "a failing HTTP endpoint must not block Publish"
    ok = receiver.wait(lambda p: "retried" in p["body"] and not p["failed"])
    assert len(ok) == 1
    assert len([p for p in receiver.posts if "retried" in p["body"] and p["failed"]]) == 3

    # It keeps failing beyond the retries: the message goes to the subscription's dead-letter queue.
    dlq_arn = queue_arn(sqs, queue)
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RedrivePolicy",
                                    AttributeValue=json.dumps({"deadLetterTargetArn": dlq_arn}))
    receiver.failing = 100
    sns.publish(TopicArn=topic, Message="undeliverable")
    [dead] = drain(sqs, queue, 1, timeout=10)
    assert json.loads(dead["Body"])["Message"] == "undeliverable"
    assert len([p for p in receiver.posts if "undeliverable" in p["body"]]) == 5
    receiver.failing = 0

    # Raw delivery over HTTP.
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    sns.publish(TopicArn=topic, Message="raw over http")
    [raw] = receiver.wait(lambda p: p["body"] == "raw over http")
    assert raw["headers"]["x-amz-sns-rawdelivery"] == "true"


def test_subscribe_url_confirms(sns, receiver, name, endpoint):
    import requests
    topic = sns.create_topic(Name=name())["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
    [conf] = receiver.wait(lambda p: p["headers"].get("x-amz-sns-message-type") == "SubscriptionConfirmation")
    url = json.loads(conf["body"])["SubscribeURL"]
    r = requests.get(url, timeout=5)
    assert r.status_code == 200 and "<SubscriptionArn>" in r.text
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "1"
    sub = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"]
    sns.publish(TopicArn=topic, Message="n")
    [n] = receiver.wait(lambda p: p["headers"].get("x-amz-sns-message-type") == "Notification")
    r = requests.get(json.loads(n["body"])["UnsubscribeURL"], timeout=5)
    assert r.status_code == 200
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_subscription_attributes(SubscriptionArn=sub)


def test_sqs_subscriber_dead_letter_queue_when_queue_is_gone(sns, sqs, make_queue, name):
    topic = sns.create_topic(Name=name())["TopicArn"]
    target, dlq = make_queue(), make_queue()
    target_arn = queue_arn(sqs, target)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=target_arn,
                  Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn(sqs, dlq)})})
    sqs.delete_queue(QueueUrl=target)
    sns.publish(TopicArn=topic, Message="orphan")
    [m] = drain(sqs, dlq, 1)
    assert json.loads(m["Body"])["Message"] == "orphan"


# ---------------------------------------------------------------- the AWS CLI


def aws(endpoint, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_OUTPUT="json",
               AWS_PAGER="", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env.pop("AWS_PROFILE", None)
    out = subprocess.run([str(AWS_CLI), "--endpoint-url", endpoint, "--region", REGION, "sns", *args],
                         capture_output=True, text=True, env=env, timeout=60)
    return out


@pytest.mark.skipif(not AWS_CLI.exists(), reason="no AWS CLI in .venv")
def test_aws_cli(endpoint, sqs, queue, name):
    n = name()
    out = aws(endpoint, "create-topic", "--name", n)
    assert out.returncode == 0, out.stderr
    arn = json.loads(out.stdout)["TopicArn"]
    out = aws(endpoint, "subscribe", "--topic-arn", arn, "--protocol", "sqs", "--notification-endpoint",
              queue_arn(sqs, queue), "--attributes", json.dumps({"RawMessageDelivery": "true"}))
    assert out.returncode == 0, out.stderr
    out = aws(endpoint, "publish", "--topic-arn", arn, "--message", "from the cli",
              "--message-attributes", json.dumps({"k": {"DataType": "String", "StringValue": "v"}}))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["MessageId"]
    [m] = drain(sqs, queue, 1)
    assert m["Body"] == "from the cli" and m["MessageAttributes"]["k"]["StringValue"] == "v"
    out = aws(endpoint, "list-topics")
    assert arn in [t["TopicArn"] for t in json.loads(out.stdout)["Topics"]]
    out = aws(endpoint, "get-topic-attributes", "--topic-arn", arn + "-missing")
    assert out.returncode != 0 and "NotFound" in out.stderr
    assert aws(endpoint, "delete-topic", "--topic-arn", arn).returncode == 0


# ---------------------------------------------------------------- restart


def test_topics_and_subscriptions_survive_restart(tmp_path):
    data = tmp_path / "sns-restart"
    s = SluiceServer(data, log_name="sns-restart")
    s.start()
    try:
        sns, sqs = make_sns(s.endpoint), make_client(s.endpoint)
        url = sqs.create_queue(QueueName="sns-target")["QueueUrl"]
        topic = sns.create_topic(Name="durable-topic", Attributes={"DisplayName": "D"},
                                 Tags=[{"Key": "k", "Value": "v"}])["TopicArn"]
        sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, url),
                            Attributes={"FilterPolicy": json.dumps({"go": ["yes"]}), "RawMessageDelivery": "true"})[
            "SubscriptionArn"]
        gone = sns.create_topic(Name="deleted-topic")["TopicArn"]
        sns.delete_topic(TopicArn=gone)
        assert s.stop() == 0
        s.start()
        sns, sqs = make_sns(s.endpoint), make_client(s.endpoint)
        topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
        assert topics == [topic]
        assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "D"
        assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "k", "Value": "v"}]
        a = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
        assert json.loads(a["FilterPolicy"]) == {"go": ["yes"]} and a["RawMessageDelivery"] == "true"
        sns.publish(TopicArn=topic, Message="skip", MessageAttributes={"go": {"DataType": "String", "StringValue": "no"}})
        sns.publish(TopicArn=topic, Message="after restart",
                    MessageAttributes={"go": {"DataType": "String", "StringValue": "yes"}})
        assert [m["Body"] for m in drain(sqs, url, 1)] == ["after restart"]
        # Kill -9: an acknowledged publish is in the queue after the restart.
        sns.publish(TopicArn=topic, Message="durable", MessageAttributes={"go": {"DataType": "String", "StringValue": "yes"}})
        s.kill()
        s.start()
        sqs = make_client(s.endpoint)
        assert [m["Body"] for m in drain(sqs, url, 1)] == ["durable"]
    finally:
        s.kill()


def test_topics_show_in_metrics_and_dashboard_api(sns, endpoint, name):
    """Issue: topics and subscriptions are visible to operators (Prometheus and the dashboard's API)."""
    import urllib.request
    name = name()
    arn = sns.create_topic(Name=name)["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://127.0.0.1:9/never-confirms")
    for i in range(3):
        sns.publish(TopicArn=arn, Message=f"m{i}")
    metrics = urllib.request.urlopen(f"{endpoint}/metrics").read().decode()
    assert f'sluice_sns_messages_published_total{{topic="{name}"}} 3' in metrics
    assert f'sluice_sns_subscriptions{{topic="{name}",state="pending"}} 1' in metrics
    assert 'action="SNS.Publish",outcome="ok"' in metrics
    topics = json.loads(urllib.request.urlopen(f"{endpoint}/api/topics").read())["topics"]
    t = next(t for t in topics if t["arn"] == arn)
    assert (t["published_total"], t["subscriptions_pending"], t["subscriptions_confirmed"]) == (3, 1, 0)


# ---------------------------------------------------------------- filter policies: the rest of AWS's operators


def test_filter_policy_more_operators_end_to_end(sns, sqs, make_queue, name):
    """anything-but with prefix / equals-ignore-case, IPv6 cidr, numeric '=', String.Array anything-but,
    and "exists": false needing at least one attribute."""
    topic = sns.create_topic(Name=name())["TopicArn"]
    cases = {
        "notprefix": {"event": [{"anything-but": {"prefix": "order-"}}]},
        "notcase": {"sport": [{"anything-but": {"equals-ignore-case": "Tennis"}}]},
        "ipv6": {"ip": [{"cidr": "2001:db8:1234:1a00::/64"}]},
        "ipv4": {"ip": [{"cidr": "10.0.0.0/24"}]},
        "numeq": {"price": [{"numeric": ["=", 301.5]}]},
        "notlisted": {"tags": [{"anything-but": ["rugby", "tennis"]}]},
        "noevent": {"event": [{"exists": False}]},
    }
    queues = {}
    for key, policy in cases.items():
        queues[key] = make_queue()
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, queues[key]), ReturnSubscriptionArn=True,
                      Attributes={"FilterPolicy": json.dumps(policy), "RawMessageDelivery": "true"})

    def pub(body, **attrs):
        ma = {}
        for k, v in attrs.items():
            if isinstance(v, tuple):
                ma[k] = {"DataType": v[0], "StringValue": v[1]}
            elif isinstance(v, list):
                ma[k] = {"DataType": "String.Array", "StringValue": json.dumps(v)}
            elif isinstance(v, (int, float)):
                ma[k] = {"DataType": "Number", "StringValue": str(v)}
            else:
                ma[k] = {"DataType": "String", "StringValue": v}
        kwargs = {"TopicArn": topic, "Message": body}
        if ma:
            kwargs["MessageAttributes"] = ma
        sns.publish(**kwargs)

    pub("m1", event="order-cancelled", sport="baseball", ip="2001:db8:1234:1a00::7", price=("Number", "3.015e2"))
    pub("m2", event="data-entry", sport="TENNIS", ip="2001:db8:1234:1a01::7", price=301.6, tags=["golf", "chess"])
    pub("m3", sport="rugby", ip="10.0.0.200", tags=["rugby", "golf"])
    pub("m4")  # no attributes at all: "exists": false does not match (AWS)
    expected = {
        "notprefix": ["m2"], "notcase": ["m1", "m3"], "ipv6": ["m1"], "ipv4": ["m3"],
        "numeq": ["m1"], "notlisted": ["m2"], "noevent": ["m3"],
    }
    for key, want in expected.items():
        got = sorted(m["Body"] for m in drain(sqs, queues[key], len(want), timeout=3))
        assert got == want, f"{key}: {got}"
    for key, want in expected.items():
        assert drain(sqs, queues[key], 1, timeout=0.5) == [], key


def test_filter_policy_errors_are_aws_messages(sns, sqs, queue, name):
    topic = sns.create_topic(Name=name())["TopicArn"]
    arn = queue_arn(sqs, queue)
    nested_deep = {"a": {"b": {"c": [str(i) for i in range(26)]}}, "d": [str(i) for i in range(2)]}  # 26*3*2 = 156
    cases = [
        ({k: ["x"] for k in "abcdef"}, "FilterPolicy: Filter policy can not have more than 5 keys", "MessageAttributes"),
        ({"a": [str(i) for i in range(151)]}, "FilterPolicy: Filter policy is too complex", "MessageAttributes"),
        (nested_deep, "FilterPolicy: Filter policy is too complex", "MessageBody"),
        ({"key": [{"anything-but": {"wrong-operator": None}}]},
         "FilterPolicy: Unsupported anything-but pattern: wrong-operator", "MessageAttributes"),
        ({"key": [{"cidr": "xxxx:db8:1234:1a00::/64"}]}, "FilterPolicy: Nonstandard IP address: xxxx:db8:1234:1a00::",
         "MessageAttributes"),
        ({"key": [{"numeric": [">", 20, "<", 30, "<", 50]}]},
         "FilterPolicy: Too many terms in numeric range expression", "MessageAttributes"),
        ({"key": [{"numeric": ["=", "000"]}]}, "FilterPolicy: Value of equals must be numeric", "MessageAttributes"),
        ({"key": [{"wildcard": "*.png"}]}, "FilterPolicy: Unrecognized match type wildcard", "MessageAttributes"),
        ({"key": "value"}, 'FilterPolicy: "key" must be an object or an array', "MessageAttributes"),
        ({"a": {"b": ["x"]}}, "Filter policy scope MessageAttributes does not support nested filter policy",
         "MessageAttributes"),
    ]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True)["SubscriptionArn"]
    for policy, reason, scope in cases:
        # Subscribe words attribute errors as "Attributes Reason: ...", SetSubscriptionAttributes does not.
        with pytest.raises(ClientError) as ei:
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                          Attributes={"FilterPolicy": json.dumps(policy), "FilterPolicyScope": scope})
        assert error_of(ei) == ("InvalidParameter", 400)
        assert ei.value.response["Error"]["Message"] == f"Invalid parameter: Attributes Reason: {reason}"
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicyScope", AttributeValue=scope)
        with pytest.raises(ClientError) as ei:
            sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                            AttributeValue=json.dumps(policy))
        assert error_of(ei) == ("InvalidParameter", 400)
        assert ei.value.response["Error"]["Message"] == f"Invalid parameter: {reason}"
    with pytest.raises(ClientError) as ei:
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicyScope", AttributeValue="Random")
    assert ei.value.response["Error"]["Message"] == (
        "Invalid parameter: FilterPolicyScope: Invalid value [Random]. Please use either MessageBody or MessageAttributes")
    # At the limits is fine: 5 keys, 150 combinations.
    ok = {"a": [str(i) for i in range(30)], "b": ["1", "2", "3", "4", "5"], "c": ["x"], "d": ["y"], "e": ["z"]}
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicyScope",
                                    AttributeValue="MessageAttributes")
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue=json.dumps(ok))


# ---------------------------------------------------------------- HTTPS subscribers (TLS)


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    """A CA and a server certificate it signed (127.0.0.1), plus a second ("rogue") CA and certificate sluice
    is never told to trust. Generated with the openssl CLI at test time."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed: cannot generate test certificates for the HTTPS tests")
    d = tmp_path_factory.mktemp("sns-tls")
    make_ca(d, "ca")
    make_server_cert(d, "server", "ca")
    make_ca(d, "rogue-ca")
    make_server_cert(d, "rogue", "rogue-ca")

    def context(name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(d / f"{name}.pem"), str(d / f"{name}.key"))
        return ctx
    return {"ca": d / "ca.pem", "trusted": context("server"), "untrusted": context("rogue")}


def test_https_subscriber_gets_tls_and_untrusted_certificates_get_nothing(tls_material, tmp_path):
    # The extra CA comes from the environment here (SLUICE_SNS_CA_FILE; --sns-ca-file and the TOML key
    # sns_ca_file are the same setting).
    s = SluiceServer(tmp_path / "data", log_name="sns-tls", env={"SLUICE_SNS_CA_FILE": str(tls_material["ca"])})
    s.start()
    receiver = Receiver(tls=tls_material["trusted"])
    try:
        sns, sqs = make_sns(s.endpoint), make_client(s.endpoint)
        topic = sns.create_topic(Name="tls-topic")["TopicArn"]
        dlq = sqs.create_queue(QueueName="tls-dlq")["QueueUrl"]
        assert receiver.url.startswith("https://")
        assert sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=receiver.url)["SubscriptionArn"] == \
            "pending confirmation"
        [conf] = receiver.wait(lambda p: p["headers"].get("x-amz-sns-message-type") == "SubscriptionConfirmation")
        assert conf["tls"] in ("TLSv1.2", "TLSv1.3"), conf["tls"]
        sub = sns.confirm_subscription(TopicArn=topic, Token=json.loads(conf["body"])["Token"])["SubscriptionArn"]
        sns.publish(TopicArn=topic, Message="over tls")
        [n] = receiver.wait(lambda p: "over tls" in p["body"])
        assert n["tls"] in ("TLSv1.2", "TLSv1.3") and json.loads(n["body"])["Message"] == "over tls"
        assert receiver.tls_failures == 0

        # The endpoint now presents a certificate from a CA sluice does not trust: every attempt fails the
        # handshake, nothing is POSTed, and after the retries the message goes to the dead-letter queue.
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(
            {"healthyRetryPolicy": {"numRetries": 2, "numNoDelayRetries": 2, "minDelayTarget": 0.2,
                                    "maxDelayTarget": 0.2}}))
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RedrivePolicy",
                                        AttributeValue=json.dumps({"deadLetterTargetArn": queue_arn(sqs, dlq)}))
        receiver.tls = tls_material["untrusted"]
        sns.publish(TopicArn=topic, Message="not for strangers")
        [dead] = drain(sqs, dlq, 1, timeout=10)
        assert json.loads(dead["Body"])["Message"] == "not for strangers"
        assert not any("not for strangers" in p["body"] for p in receiver.posts)
        assert receiver.tls_failures >= 3, receiver.tls_failures  # first attempt + 2 retries

        # Trusted again: deliveries resume.
        receiver.tls = tls_material["trusted"]
        sns.publish(TopicArn=topic, Message="welcome back")
        receiver.wait(lambda p: "welcome back" in p["body"])
    finally:
        receiver.close()
        s.kill()


def test_https_subscriber_needs_a_trusted_ca(sns, tls_material, name):
    """The session server has no sns_ca_file: a certificate from the test CA is not trusted, so the
    SubscriptionConfirmation never arrives (it is retried, each handshake refused)."""
    receiver = Receiver(tls=tls_material["trusted"])
    try:
        topic = sns.create_topic(Name=name())["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="https", Endpoint=receiver.url)
        deadline = time.monotonic() + 10
        while receiver.tls_failures < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.tls_failures >= 2
        assert receiver.posts == []
        assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsPending"] == "1"
    finally:
        receiver.close()


# ---------------------------------------------------------------- restart, batches, public URL


def test_pending_http_delivery_survives_restart(tmp_path):
    s = SluiceServer(tmp_path / "data", log_name="sns-pending-restart")
    s.start()
    receiver = Receiver()
    try:
        sns = make_sns(s.endpoint)
        topic = sns.create_topic(Name="pending-topic")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
        [conf] = receiver.wait(lambda p: p["headers"].get("x-amz-sns-message-type") == "SubscriptionConfirmation")
        sub = sns.confirm_subscription(TopicArn=topic, Token=json.loads(conf["body"])["Token"])["SubscriptionArn"]
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(
            {"healthyRetryPolicy": {"numRetries": 50, "minDelayTarget": 1, "maxDelayTarget": 1}}))

        # The subscriber is down: the first attempt fails and retries wait in the server...
        receiver.failing = 10_000
        sns.publish(TopicArn=topic, Message="survivor")
        receiver.wait(lambda p: "survivor" in p["body"] and p["failed"])
        # ... which is stopped (SIGTERM) while they wait, and started again once the subscriber is back.
        assert s.stop() == 0
        receiver.failing = 0
        s.start()
        [ok] = receiver.wait(lambda p: "survivor" in p["body"] and not p["failed"], timeout=15)
        assert json.loads(ok["body"])["Message"] == "survivor"
        assert ok["headers"]["x-amz-sns-subscription-arn"] == sub

        # Delivered means forgotten: another restart does not deliver it again.
        assert s.stop() == 0
        s.start()
        time.sleep(2.5)
        assert len([p for p in receiver.posts if "survivor" in p["body"] and not p["failed"]]) == 1
    finally:
        receiver.close()
        s.kill()


def _commits(endpoint):
    text = urllib.request.urlopen(f"{endpoint}/metrics", timeout=5).read().decode()
    m = re.search(r"^sluice_store_commit_ops_count (\d+)$", text, re.M)
    assert m, "no sluice_store_commit_ops_count in /metrics"
    return int(m.group(1))


def test_publish_batch_is_one_commit(tmp_path):
    """A dedicated server, so that nothing else commits meanwhile."""
    s = SluiceServer(tmp_path / "data", log_name="sns-batch-commit")
    s.start()
    try:
        sns, sqs = make_sns(s.endpoint), make_client(s.endpoint)
        url = sqs.create_queue(QueueName="batch-target")["QueueUrl"]
        topic = sns.create_topic(Name="batch-topic")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, url))
        time.sleep(0.3)
        before = _commits(s.endpoint)
        resp = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
            {"Id": f"e{i}", "Message": f"m{i}"} for i in range(10)])
        after = _commits(s.endpoint)
        assert len(resp["Successful"]) == 10 and resp["Failed"] == []
        assert after - before == 1, f"{after - before} commits for one PublishBatch"
        # Every successful entry's copy was stored before the answer.
        got = drain(sqs, url, 10, timeout=3)
        assert sorted(json.loads(m["Body"])["Message"] for m in got) == sorted(f"m{i}" for i in range(10))
    finally:
        s.kill()


def test_subscribe_and_unsubscribe_urls_use_the_public_url(tmp_path):
    public = "https://sns.example.test:8443"
    s = SluiceServer(tmp_path / "data", log_name="sns-public-url", extra_args=["--public-url", public + "/"])
    s.start()
    receiver = Receiver()
    try:
        sns, sqs = make_sns(s.endpoint), make_client(s.endpoint)
        topic = sns.create_topic(Name="public-topic")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
        [conf] = receiver.wait(lambda p: p["headers"].get("x-amz-sns-message-type") == "SubscriptionConfirmation")
        doc = json.loads(conf["body"])
        assert doc["SubscribeURL"].startswith(public + "/?Action=ConfirmSubscription&"), doc["SubscribeURL"]
        assert doc["SigningCertURL"].startswith(public + "/")
        sns.confirm_subscription(TopicArn=topic, Token=doc["Token"])
        url = sqs.create_queue(QueueName="public-q")["QueueUrl"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, url))
        sns.publish(TopicArn=topic, Message="where am I")
        [n] = receiver.wait(lambda p: "where am I" in p["body"])
        assert json.loads(n["body"])["UnsubscribeURL"].startswith(public + "/?Action=Unsubscribe&")
        [m] = drain(sqs, url, 1)
        assert json.loads(m["Body"])["UnsubscribeURL"].startswith(public + "/?Action=Unsubscribe&")
        # The links still work when sent to the server itself (only the base differs).
        path_and_query = json.loads(m["Body"])["UnsubscribeURL"][len(public):]
        assert urllib.request.urlopen(s.endpoint + path_and_query, timeout=5).status == 200
    finally:
        receiver.close()
        s.kill()
