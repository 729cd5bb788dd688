"""Policies enforced, black-box (issue 23 item 4): queue policies (the Policy attribute and AddPermission), topic
policies, identity policies, SNS -> SQS deliveries checked against the queue policy, and --policy-mode log.

Two sluice servers with keys in two accounts (the TOML config): OWNER (the server's account 000000000000) and OTHER
(111122223333). Denials as measured on AWS (Floci's "Design: resource policy enforcement", floci-io/floci, shapes
R1-R3): 403 AccessDenied in both SQS protocols, JSON __type com.amazon.coral.service#AccessDeniedException with
x-amzn-query-error AccessDenied;Sender, message "User: <arn> is not authorized to perform: sqs:<action> on
resource: <arn> because no ... policy allows ..." / "... with an explicit deny in a resource-based policy". SNS:
AuthorizationError 403 (botocore's sns model). Cross-account limits: SQS Developer Guide, "Limitations of Amazon SQS
custom policies" (PurgeQueue may be granted; SetQueueAttributes, DeleteQueue... never).
"""

import json
import os
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from sluice_server import SluiceServer

REGION = "us-east-1"
OWNER_ACCOUNT, OTHER_ACCOUNT = "000000000000", "111122223333"
OWNER = ("AKSLUICEPOLICYOWNER1", "owner-secret-0123456789abcdefghijklmnopq")
OTHER = ("AKSLUICEPOLICYOTHER1", "other-secret-0123456789abcdefghijklmnopq")
# Same account as the owner, with an identity policy that allows SendMessage only.
SENDER = ("AKSLUICEPOLICYSENDR1", "sendr-secret-0123456789abcdefghijklmnopq")

pytestmark = pytest.mark.skipif(bool(os.environ.get("SQS_ENDPOINT")), reason="starts its own sluice with keys")


def start(root, mode=None):
    config = root / "sluice.toml"
    sender_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:*:{OWNER_ACCOUNT}:*"}]})
    text = (
        f'[[access_keys]]\nid = "{OWNER[0]}"\nsecret = "{OWNER[1]}"\naccount_id = "{OWNER_ACCOUNT}"\n'
        f'[[access_keys]]\nid = "{OTHER[0]}"\nsecret = "{OTHER[1]}"\naccount_id = "{OTHER_ACCOUNT}"\n'
        f'principal_arn = "arn:aws:iam::{OTHER_ACCOUNT}:user/bob"\n'
        f'[[access_keys]]\nid = "{SENDER[0]}"\nsecret = "{SENDER[1]}"\naccount_id = "{OWNER_ACCOUNT}"\n'
        f'principal_arn = "arn:aws:iam::{OWNER_ACCOUNT}:user/sender"\npolicy = \'{sender_policy}\'\n')
    if mode:
        text = f'policy_mode = "{mode}"\n' + text
    config.write_text(text)
    s = SluiceServer(root / "data", log_name=f"policy-{mode or 'enforce'}", extra_args=["--config", str(config)])
    s.start()
    return s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start(tmp_path_factory.mktemp("policy"))
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def ep(server):
    return server.endpoint


def client(endpoint, key, service="sqs"):
    cfg = Config(retries={"total_max_attempts": 1})
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key[0],
                        aws_secret_access_key=key[1], config=cfg)


def denied(call, code="AccessDenied"):
    with pytest.raises(ClientError) as ei:
        call()
    err = ei.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (code, 403), err
    return err["Error"]["Message"]


@pytest.fixture
def queue(ep, unique_name):
    owner = client(ep, OWNER)
    url = owner.create_queue(QueueName=unique_name())["QueueUrl"]
    yield url
    owner.delete_queue(QueueUrl=url)


def arn_of(url):
    return f"arn:aws:sqs:{REGION}:{OWNER_ACCOUNT}:{url.rsplit('/', 1)[1]}"


def test_add_permission_grants_another_account_send_only(ep, queue):
    other = client(ep, OTHER)
    message = denied(lambda: other.send_message(QueueUrl=queue, MessageBody="x"))
    assert message == (f"User: arn:aws:iam::{OTHER_ACCOUNT}:user/bob is not authorized to perform: sqs:sendmessage "
                       f"on resource: {arn_of(queue)} because no resource-based policy allows the sqs:sendmessage "
                       "action")
    client(ep, OWNER).add_permission(QueueUrl=queue, Label="other-send", AWSAccountIds=[OTHER_ACCOUNT],
                                     Actions=["SendMessage"])
    assert other.send_message(QueueUrl=queue, MessageBody="x")["MessageId"]
    # Batches are authorised as their singular action.
    sent = other.send_message_batch(QueueUrl=queue, Entries=[{"Id": "a", "MessageBody": "1"}])
    assert [e["Id"] for e in sent["Successful"]] == ["a"]
    denied(lambda: other.purge_queue(QueueUrl=queue))
    denied(lambda: other.receive_message(QueueUrl=queue))
    # Owner-only actions stay denied across accounts whatever the policy grants.
    client(ep, OWNER).add_permission(QueueUrl=queue, Label="other-all", AWSAccountIds=[OTHER_ACCOUNT], Actions=["*"])
    other.purge_queue(QueueUrl=queue)
    denied(lambda: other.set_queue_attributes(QueueUrl=queue, Attributes={"DelaySeconds": "1"}))
    denied(lambda: other.delete_queue(QueueUrl=queue))
    # Another account's ListQueues lists its own account's queues: none here.
    assert other.list_queues().get("QueueUrls", []) == []
    client(ep, OWNER).remove_permission(QueueUrl=queue, Label="other-all")
    client(ep, OWNER).remove_permission(QueueUrl=queue, Label="other-send")
    denied(lambda: other.send_message(QueueUrl=queue, MessageBody="x"))


def test_deny_all_policy_blocks_even_the_owner(ep, queue):
    owner = client(ep, OWNER)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "no-send", "Effect": "Deny", "Principal": "*", "Action": "sqs:Send*", "Resource": arn_of(queue)}]}
    owner.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    message = denied(lambda: owner.send_message(QueueUrl=queue, MessageBody="x"))
    assert message.endswith("with an explicit deny in a resource-based policy"), message
    denied(lambda: owner.send_message_batch(QueueUrl=queue, Entries=[{"Id": "a", "MessageBody": "1"}]))
    owner.receive_message(QueueUrl=queue)  # other actions are not denied
    owner.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": ""})
    owner.send_message(QueueUrl=queue, MessageBody="x")


def test_identity_policy_and_queue_policy_in_one_account(ep, queue):
    sender = client(ep, SENDER)
    sender.send_message(QueueUrl=queue, MessageBody="allowed by the identity policy")
    message = denied(lambda: sender.receive_message(QueueUrl=queue))
    assert "because no identity-based policy allows the sqs:receivemessage action" in message, message
    # In one account the queue policy may allow what the identity policy does not.
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER_ACCOUNT}:user/sender"},
                             "Action": "sqs:ReceiveMessage", "Resource": arn_of(queue)}]}
    client(ep, OWNER).set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    assert sender.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]


def test_conditions_on_source_ip_and_secure_transport(ep, queue):
    owner = client(ep, OWNER)
    other = client(ep, OTHER)
    allow_from = lambda cidr: {"Statement": [  # noqa: E731
        {"Effect": "Allow", "Principal": {"AWS": OTHER_ACCOUNT}, "Action": "sqs:SendMessage", "Resource": arn_of(queue),
         "Condition": {"IpAddress": {"aws:SourceIp": cidr}}}]}
    owner.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(allow_from("127.0.0.0/8"))})
    other.send_message(QueueUrl=queue, MessageBody="from loopback")
    owner.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(allow_from(["192.0.2.0/24", "::2"]))})
    denied(lambda: other.send_message(QueueUrl=queue, MessageBody="x"))
    # The usual "TLS only" statement: this server speaks plain HTTP, so aws:SecureTransport is false.
    # (on one action, so that the owner can still remove it and delete the queue).
    tls_only = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:GetQueueAttributes",
                               "Resource": arn_of(queue), "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    owner.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(tls_only)})
    denied(lambda: owner.get_queue_attributes(QueueUrl=queue))
    owner.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": ""})
    owner.get_queue_attributes(QueueUrl=queue)


def test_invalid_policy_is_refused(ep, queue):
    owner = client(ep, OWNER)
    bad = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*",
                          "Condition": {"IpAddress": {"aws:SourceIp": "not-an-ip"}}}]}
    with pytest.raises(ClientError) as ei:
        owner.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(bad)})
    assert ei.value.response["Error"]["Code"] == "InvalidAttributeValue"


def signed_query(ep, key, params):
    body = "&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in params.items())
    req = AWSRequest(method="POST", url=ep + "/", data=body.encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(*key), "sqs", REGION).add_auth(req)
    return requests.post(ep + "/", data=body.encode(), headers=dict(req.headers.items()), timeout=10)


def signed_json(ep, key, action, payload):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{action}"}
    req = AWSRequest(method="POST", url=ep + "/", data=body, headers=headers)
    SigV4Auth(Credentials(*key), "sqs", REGION).add_auth(req)
    return requests.post(ep + "/", data=body, headers=dict(req.headers.items()), timeout=10)


def test_error_shape_in_both_protocols(ep, queue):
    r = signed_json(ep, OTHER, "PurgeQueue", {"QueueUrl": queue})
    assert r.status_code == 403
    assert r.headers["x-amzn-query-error"] == "AccessDenied;Sender"
    doc = r.json()
    assert doc["__type"] == "com.amazon.coral.service#AccessDeniedException"
    assert "is not authorized to perform: sqs:purgequeue on resource:" in json.dumps(doc)
    r = signed_query(ep, OTHER, {"Action": "PurgeQueue", "QueueUrl": queue, "Version": "2012-11-05"})
    assert r.status_code == 403
    assert "<Type>Sender</Type><Code>AccessDenied</Code>" in r.text.replace("\n", "").replace(" ", ""), r.text
    assert "is not authorized to perform: sqs:purgequeue" in r.text


def publish_and_count(sqs, sns, topic, queue_url):
    sns.publish(TopicArn=topic, Message="hello")
    got = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
    return len(got)


def metric(ep, name):
    text = requests.get(ep + "/metrics", timeout=10).text
    return int(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


def test_sns_to_sqs_needs_the_queue_policy(ep, queue, unique_name):
    sqs, sns = client(ep, OWNER), client(ep, OWNER, "sns")
    topic = sns.create_topic(Name=unique_name())["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn_of(queue))
    before = metric(ep, "sluice_sns_deliveries_denied_total")
    assert publish_and_count(sqs, sns, topic, queue) == 0, "no queue policy: AWS drops the copy"
    assert metric(ep, "sluice_sns_deliveries_denied_total") == before + 1
    # The statement AWS documents for this ("Subscribing an Amazon SQS queue to an Amazon SNS topic").
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
         "Resource": arn_of(queue), "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]}
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    assert publish_and_count(sqs, sns, topic, queue) == 1
    # A policy naming another topic lets nothing through.
    policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] = topic + "-other"
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    assert publish_and_count(sqs, sns, topic, queue) == 0
    sns.delete_topic(TopicArn=topic)


def test_topic_policy(ep, unique_name):
    owner, other = client(ep, OWNER, "sns"), client(ep, OTHER, "sns")
    topic = owner.create_topic(Name=unique_name())["TopicArn"]
    message = denied(lambda: other.publish(TopicArn=topic, Message="x"), "AuthorizationError")
    assert "is not authorized to perform: SNS:Publish on resource: " + topic in message, message
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": OTHER_ACCOUNT}, "Action": "sns:Publish", "Resource": topic}]}
    owner.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy))
    other.publish(TopicArn=topic, Message="x")
    denied(lambda: other.delete_topic(TopicArn=topic), "AuthorizationError")
    owner.delete_topic(TopicArn=topic)


def test_soft_mode_logs_and_allows(tmp_path, unique_name):
    s = start(tmp_path, mode="log")
    try:
        owner, other = client(s.endpoint, OWNER), client(s.endpoint, OTHER)
        url = owner.create_queue(QueueName=unique_name())["QueueUrl"]
        other.purge_queue(QueueUrl=url)  # would be denied: logged instead
        deny = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}]}
        owner.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(deny)})
        owner.send_message(QueueUrl=url, MessageBody="still sent")
    finally:
        assert s.stop() == 0
    log = Path(s.log_path).read_text()
    assert "policy mode log: would deny" in log
    assert "sqs:purgequeue" in log and "with an explicit deny in a resource-based policy" in log
