"""Queue tags, permissions (AddPermission / RemovePermission and the Policy attribute) and server-side-encryption
attributes; over the AWS JSON protocol (boto3) and, for a subset, the Query protocol.

Sources:
  * Tags: the developer guide's queue quotas ("Queue tag": key required, 1-128 characters; value optional, up to
    256; case-sensitive; a new tag with an existing key overwrites it; no more than 50 per queue; the `aws:`
    prefix is reserved). Violations are InvalidParameterValue ("Too many tags added for queue ...", the code and
    text every AWS-compatible implementation found uses). UntagQueue ignores keys that are not there, and an
    empty value is a valid value (localstack's AWS-validated tag tests).
  * Permissions: the API reference (AddPermission: Label up to 80 of [A-Za-z0-9_-], actions are SQS action
    names or *, "a maximum of seven actions per statement"; OverLimit "AddPermission returns this error if the
    maximum number of permissions for the queue is reached") and the developer guide's policy quotas (20
    statements, 7 actions per statement). The generated policy and the errors for a duplicate label ("Value X
    for parameter Label is invalid. Reason: Already exists.") and an unknown label on RemovePermission
    ("... Reason: can't find label.") are AWS recordings (localstack's AWS-validated test_sqs_permission_lifecycle):
    AWS writes "Version": "2008-10-17"; "2012-10-17" is accepted too, the structure is what is checked.
  * SSE: the attribute documentation (KmsDataKeyReusePeriodSeconds 60-86400, default 300; one SSE type at a
    time) and AWS recordings (SqsManagedSseEnabled is "true" on a new queue and "false" once a KMS key is set;
    setting both KMS and SQS SSE is InvalidAttributeName).
"""

import json

import pytest
from botocore.exceptions import ClientError

from sqs_helpers import (ACCOUNT_ID, REGION, children, expect_error, expect_one_of, path_text, query_attributes,
                         query_error_code, query_ok, query_request, queue_arn)


def tags_of(sqs, url):
    return sqs.list_queue_tags(QueueUrl=url).get("Tags", {})


def attrs(sqs, url, *names):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"]).get("Attributes", {})


def policy_of(sqs, url):
    raw = attrs(sqs, url, "Policy").get("Policy")
    return json.loads(raw) if raw is not None else None


# ------------------------------------------------------------------------------------------------ tags

def test_tags_overwrite_untag_missing_and_empty_value(sqs, queue):
    sqs.tag_queue(QueueUrl=queue, Tags={"tag1": "value1", "tag2": "value2", "tag3": ""})
    assert tags_of(sqs, queue) == {"tag1": "value1", "tag2": "value2", "tag3": ""}
    sqs.tag_queue(QueueUrl=queue, Tags={"tag1": "VALUE1", "tag4": "v4"})
    assert tags_of(sqs, queue) == {"tag1": "VALUE1", "tag2": "value2", "tag3": "", "tag4": "v4"}
    sqs.untag_queue(QueueUrl=queue, TagKeys=["tag3", "not-there"])
    assert tags_of(sqs, queue) == {"tag1": "VALUE1", "tag2": "value2", "tag4": "v4"}
    sqs.untag_queue(QueueUrl=queue, TagKeys=["tag1", "tag2", "tag4"])
    assert tags_of(sqs, queue) == {}


def test_tags_are_case_sensitive_and_unicode(sqs, queue):
    tags = {"MyTag": "value1", "mytag": "value2", "ünï cödé": "漢字 + - = . _ : / @", "with space": "v a l"}
    sqs.tag_queue(QueueUrl=queue, Tags=tags)
    assert tags_of(sqs, queue) == tags


def test_tag_key_and_value_length_limits(sqs, queue):
    ok = {"k" * 128: "v" * 256}
    sqs.tag_queue(QueueUrl=queue, Tags=ok)
    assert tags_of(sqs, queue) == ok
    with expect_error("InvalidParameterValue"):
        sqs.tag_queue(QueueUrl=queue, Tags={"k" * 129: "v"})
    with expect_error("InvalidParameterValue"):
        sqs.tag_queue(QueueUrl=queue, Tags={"key": "v" * 257})
    with expect_error("InvalidParameterValue"):
        sqs.tag_queue(QueueUrl=queue, Tags={"": "empty key"})
    assert tags_of(sqs, queue) == ok, "a rejected request changes nothing"


def test_fifty_tags_allowed_fifty_one_rejected(sqs, queue):
    fifty = {f"k{i:02d}": f"v{i}" for i in range(50)}
    sqs.tag_queue(QueueUrl=queue, Tags=fifty)
    assert tags_of(sqs, queue) == fifty
    sqs.tag_queue(QueueUrl=queue, Tags={"k00": "overwrite"})  # overwriting keeps the count at 50
    with expect_error("InvalidParameterValue"):
        sqs.tag_queue(QueueUrl=queue, Tags={"one-more": "x"})
    assert len(tags_of(sqs, queue)) == 50


def test_fifty_one_tags_in_one_request(sqs, queue):
    with expect_error("InvalidParameterValue"):
        sqs.tag_queue(QueueUrl=queue, Tags={f"k{i}": "v" for i in range(51)})
    assert tags_of(sqs, queue) == {}


def test_create_queue_with_too_many_tags(sqs, unique_name):
    name = unique_name()
    with expect_error("InvalidParameterValue"):
        sqs.create_queue(QueueName=name, tags={f"k{i}": "v" for i in range(51)})
    with expect_error("QueueDoesNotExist"):
        sqs.get_queue_url(QueueName=name)


def test_create_queue_with_fifty_tags(sqs, make_queue):
    tags = {f"k{i}": f"v{i}" for i in range(50)}
    assert tags_of(sqs, make_queue(tags=tags)) == tags


def test_reserved_aws_prefix_rejected(sqs, queue):
    with expect_error("InvalidParameterValue"):
        sqs.tag_queue(QueueUrl=queue, Tags={"aws:owner": "me"})


@pytest.mark.parametrize("action", ["tag", "untag", "list"])
def test_tag_actions_unknown_queue(sqs, queue, action):
    url = queue + "-missing"
    with expect_error("QueueDoesNotExist"):
        if action == "tag":
            sqs.tag_queue(QueueUrl=url, Tags={"a": "b"})
        elif action == "untag":
            sqs.untag_queue(QueueUrl=url, TagKeys=["a"])
        else:
            sqs.list_queue_tags(QueueUrl=url)


def test_query_tags(queue):
    params = {"Action": "TagQueue", "Tag.1.Key": "team", "Tag.1.Value": "core", "Tag.2.Key": "empty", "Tag.2.Value": ""}
    query_ok(query_request(queue, params), "TagQueue")
    res = query_ok(query_request(queue, {"Action": "ListQueueTags"}), "ListQueueTags")
    assert {path_text(t, "Key"): path_text(t, "Value") for t in children(res, "Tag")} == {"team": "core", "empty": ""}
    too_many = {"Action": "TagQueue"}
    for i in range(1, 52):
        too_many[f"Tag.{i}.Key"], too_many[f"Tag.{i}.Value"] = f"k{i}", "v"
    query_error_code(query_request(queue, too_many), "InvalidParameterValue")
    query_error_code(query_request(queue, {"Action": "TagQueue", "Tag.1.Key": "k" * 129, "Tag.1.Value": "v"}),
                     "InvalidParameterValue")


# ------------------------------------------------------------------------------------------------ permissions

def check_statement(st, arn, label, accounts, actions):
    assert st["Sid"] == label
    assert st["Effect"] == "Allow"
    principals = [f"arn:aws:iam::{a}:root" for a in accounts]
    got_principal = st["Principal"]["AWS"]
    if isinstance(got_principal, str):
        got_principal = [got_principal]
    assert sorted(got_principal) == sorted(principals), st
    want_actions = [f"SQS:{a}" for a in actions]
    got_actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
    assert sorted(got_actions) == sorted(want_actions), st
    assert st["Resource"] == arn


def test_add_permission_generates_policy(sqs, queue):
    arn = queue_arn(sqs, queue)
    assert "Policy" not in attrs(sqs, queue), "no Policy until one is set"
    sqs.add_permission(QueueUrl=queue, Label="AliceSendMessage", AWSAccountIds=["111122223333"],
                       Actions=["SendMessage"])
    p = policy_of(sqs, queue)
    assert p["Version"] in ("2008-10-17", "2012-10-17"), p
    assert p["Id"] == f"{arn}/SQSDefaultPolicy"
    assert len(p["Statement"]) == 1
    st = p["Statement"][0]
    # One principal and one action are written as plain strings, as AWS does.
    assert st["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert st["Action"] == "SQS:SendMessage"
    check_statement(st, arn, "AliceSendMessage", ["111122223333"], ["SendMessage"])
    assert "Policy" in attrs(sqs, queue), "GetQueueAttributes All includes the Policy once set"


def test_add_permission_several_accounts_and_actions(sqs, queue):
    arn = queue_arn(sqs, queue)
    accounts = [ACCOUNT_ID, "444455556666"]
    actions = ["ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility"]
    sqs.add_permission(QueueUrl=queue, Label="consumers", AWSAccountIds=accounts, Actions=actions)
    st = policy_of(sqs, queue)["Statement"][0]
    assert isinstance(st["Principal"]["AWS"], list) and isinstance(st["Action"], list)
    check_statement(st, arn, "consumers", accounts, actions)


def test_add_permission_wildcard_action(sqs, queue):
    sqs.add_permission(QueueUrl=queue, Label="everything", AWSAccountIds=["111122223333"], Actions=["*"])
    assert policy_of(sqs, queue)["Statement"][0]["Action"] == "SQS:*"


def test_permission_lifecycle(sqs, queue):
    arn = queue_arn(sqs, queue)
    sqs.add_permission(QueueUrl=queue, Label="first", AWSAccountIds=["111122223333"], Actions=["ReceiveMessage"])
    sqs.add_permission(QueueUrl=queue, Label="second", AWSAccountIds=["444455556666"], Actions=["SendMessage"])
    p = policy_of(sqs, queue)
    assert [s["Sid"] for s in p["Statement"]] == ["first", "second"]
    check_statement(p["Statement"][1], arn, "second", ["444455556666"], ["SendMessage"])
    with expect_error("InvalidParameterValue"):  # "Value first for parameter Label is invalid. Reason: Already exists."
        sqs.add_permission(QueueUrl=queue, Label="first", AWSAccountIds=["444455556666"], Actions=["SendMessage"])
    sqs.remove_permission(QueueUrl=queue, Label="first")
    assert [s["Sid"] for s in policy_of(sqs, queue)["Statement"]] == ["second"]
    sqs.remove_permission(QueueUrl=queue, Label="second")
    assert policy_of(sqs, queue) is None, "the Policy attribute disappears with its last statement"
    with expect_error("InvalidParameterValue"):  # "... Reason: can't find label."
        sqs.remove_permission(QueueUrl=queue, Label="second")
    # A removed label can be used again.
    sqs.add_permission(QueueUrl=queue, Label="first", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert [s["Sid"] for s in policy_of(sqs, queue)["Statement"]] == ["first"]


def test_add_permission_invalid_action(sqs, queue):
    # Only actions a queue's users may be granted: not queue-owner actions like CreateQueue, nor unknown names.
    for action in ("CreateQueue", "NoSuchAction"):
        with expect_error("InvalidParameterValue"):
            sqs.add_permission(QueueUrl=queue, Label="bad", AWSAccountIds=["111122223333"], Actions=[action])
    assert policy_of(sqs, queue) is None


@pytest.mark.parametrize("label", ["has space", "dot.label", "x" * 81, ""], ids=["space", "dot", "81-chars", "empty"])
def test_add_permission_invalid_label(sqs, queue, label):
    with pytest.raises(ClientError) as ei:
        sqs.add_permission(QueueUrl=queue, Label=label, AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    expect_one_of(ei.value, ["InvalidParameterValue", "MissingParameter"] if not label else ["InvalidParameterValue"])


def test_add_permission_longest_label(sqs, queue):
    label = ("Label_with-all_" + "x" * 80)[:80]
    sqs.add_permission(QueueUrl=queue, Label=label, AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert policy_of(sqs, queue)["Statement"][0]["Sid"] == label


def test_add_permission_more_than_seven_actions(sqs, queue):
    eight = ["SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes",
             "GetQueueUrl", "ListDeadLetterSourceQueues", "PurgeQueue"]
    sqs.add_permission(QueueUrl=queue, Label="seven", AWSAccountIds=["111122223333"], Actions=eight[:7])
    with expect_error("OverLimit"):
        sqs.add_permission(QueueUrl=queue, Label="eight", AWSAccountIds=["111122223333"], Actions=eight)


def test_add_permission_statement_limit(sqs, queue):
    for i in range(20):
        sqs.add_permission(QueueUrl=queue, Label=f"p{i}", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert len(policy_of(sqs, queue)["Statement"]) == 20
    with expect_error("OverLimit"):
        sqs.add_permission(QueueUrl=queue, Label="p20", AWSAccountIds=["111122223333"], Actions=["SendMessage"])


def test_permissions_unknown_queue(sqs, queue):
    with expect_error("QueueDoesNotExist"):
        sqs.add_permission(QueueUrl=queue + "-missing", Label="x", AWSAccountIds=["111122223333"],
                           Actions=["SendMessage"])
    with expect_error("QueueDoesNotExist"):
        sqs.remove_permission(QueueUrl=queue + "-missing", Label="x")


def custom_policy(arn):
    return {
        "Version": "2012-10-17",
        "Id": "custom-policy",
        "Statement": [{
            "Sid": "AllowSns",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:111122223333:topic"}},
        }],
    }


def test_set_policy_attribute(sqs, queue):
    policy = custom_policy(queue_arn(sqs, queue))
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    assert policy_of(sqs, queue) == policy
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": ""})
    assert policy_of(sqs, queue) is None, "an empty Policy removes it"


def test_create_queue_with_policy(sqs, make_queue, unique_name):
    name = unique_name()
    policy = custom_policy(f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")
    url = make_queue(name=name, Policy=json.dumps(policy))
    assert policy_of(sqs, url) == policy


def test_add_permission_appends_to_custom_policy(sqs, queue):
    arn = queue_arn(sqs, queue)
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(custom_policy(arn))})
    sqs.add_permission(QueueUrl=queue, Label="extra", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    p = policy_of(sqs, queue)
    assert [s["Sid"] for s in p["Statement"]] == ["AllowSns", "extra"]
    sqs.remove_permission(QueueUrl=queue, Label="AllowSns")
    assert [s["Sid"] for s in policy_of(sqs, queue)["Statement"]] == ["extra"]


@pytest.mark.parametrize("policy", ["{not json", "[]", '"a string"'], ids=["not-json", "array", "string"])
def test_set_invalid_policy(sqs, queue, policy):
    with expect_error("InvalidAttributeValue"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": policy})
    assert policy_of(sqs, queue) is None


def test_query_add_remove_permission(sqs, queue):
    arn = queue_arn(sqs, queue)
    query_ok(query_request(queue, {"Action": "AddPermission", "Label": "q-label", "AWSAccountId.1": "111122223333",
                                   "AWSAccountId.2": "444455556666", "ActionName.1": "SendMessage",
                                   "ActionName.2": "ReceiveMessage"}), "AddPermission")
    a = query_attributes(query_ok(query_request(queue, {"Action": "GetQueueAttributes", "AttributeName.1": "Policy"}),
                                  "GetQueueAttributes"))
    p = json.loads(a["Policy"])
    assert p["Id"] == f"{arn}/SQSDefaultPolicy"
    check_statement(p["Statement"][0], arn, "q-label", ["111122223333", "444455556666"],
                    ["SendMessage", "ReceiveMessage"])
    query_error_code(query_request(queue, {"Action": "AddPermission", "Label": "q-label",
                                           "AWSAccountId.1": "111122223333", "ActionName.1": "SendMessage"}),
                     "InvalidParameterValue")
    query_ok(query_request(queue, {"Action": "RemovePermission", "Label": "q-label"}), "RemovePermission")
    assert policy_of(sqs, queue) is None
    query_error_code(query_request(queue, {"Action": "RemovePermission", "Label": "q-label"}),
                     "InvalidParameterValue")


# ------------------------------------------------------------------------------------------------ SSE attributes

def test_new_queue_reports_sqs_managed_sse(sqs, queue):
    a = attrs(sqs, queue)
    assert a["SqsManagedSseEnabled"] == "true"
    assert "KmsMasterKeyId" not in a and "KmsDataKeyReusePeriodSeconds" not in a


def test_kms_attributes_set_and_reported(sqs, queue):
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"KmsMasterKeyId": "alias/aws/sqs",
                                                         "KmsDataKeyReusePeriodSeconds": "6000"})
    a = attrs(sqs, queue)
    assert a["KmsMasterKeyId"] == "alias/aws/sqs"
    assert a["KmsDataKeyReusePeriodSeconds"] == "6000"
    assert a["SqsManagedSseEnabled"] == "false", "one SSE type at a time: KMS replaces SQS-managed SSE"
    assert attrs(sqs, queue, "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled") == \
        {"KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": "6000", "SqsManagedSseEnabled": "false"}
    # Back to the defaults: the KMS attributes are gone.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"KmsMasterKeyId": "", "KmsDataKeyReusePeriodSeconds": "300"})
    a = attrs(sqs, queue)
    assert "KmsMasterKeyId" not in a and "KmsDataKeyReusePeriodSeconds" not in a


def test_create_queue_with_kms_key(sqs, make_queue):
    url = make_queue(KmsMasterKeyId="arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                     KmsDataKeyReusePeriodSeconds=60)
    a = attrs(sqs, url)
    assert a["KmsMasterKeyId"].endswith("1234567890ab")
    assert a["KmsDataKeyReusePeriodSeconds"] == "60"
    # Messages still flow (no KMS here: the key is only recorded).
    sqs.send_message(QueueUrl=url, MessageBody="encrypted?")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "encrypted?"


@pytest.mark.parametrize("value", ["60", "86400"])
def test_kms_reuse_period_bounds(sqs, queue, value):
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"KmsMasterKeyId": "alias/aws/sqs",
                                                         "KmsDataKeyReusePeriodSeconds": value})
    assert attrs(sqs, queue, "KmsDataKeyReusePeriodSeconds") == {"KmsDataKeyReusePeriodSeconds": value}


@pytest.mark.parametrize("value", ["59", "86401", "abc", "-1"])
def test_kms_reuse_period_invalid(sqs, queue, unique_name, value):
    with expect_error("InvalidAttributeValue"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"KmsDataKeyReusePeriodSeconds": value})
    with expect_error("InvalidAttributeValue"):
        sqs.create_queue(QueueName=unique_name(), Attributes={"KmsDataKeyReusePeriodSeconds": value})


def test_sqs_managed_sse_toggle(sqs, queue):
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"SqsManagedSseEnabled": "false"})
    assert attrs(sqs, queue, "SqsManagedSseEnabled") == {"SqsManagedSseEnabled": "false"}
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"SqsManagedSseEnabled": "true"})
    assert attrs(sqs, queue, "SqsManagedSseEnabled") == {"SqsManagedSseEnabled": "true"}
    with expect_error("InvalidAttributeValue"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"SqsManagedSseEnabled": "maybe"})


def test_kms_and_sqs_managed_sse_are_exclusive(sqs, queue):
    # Recorded AWS answer: InvalidAttributeName "You can use one type of server-side encryption (SSE) at one
    # time. You can either enable KMS SSE or SQS SSE."
    with expect_error("InvalidAttributeName"):
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"KmsMasterKeyId": "alias/aws/sqs",
                                                             "SqsManagedSseEnabled": "true"})


def test_query_sse_attributes(queue):
    query_ok(query_request(queue, {"Action": "SetQueueAttributes",
                                   "Attribute.1.Name": "KmsMasterKeyId", "Attribute.1.Value": "alias/aws/sqs",
                                   "Attribute.2.Name": "KmsDataKeyReusePeriodSeconds", "Attribute.2.Value": "120"}),
             "SetQueueAttributes")
    a = query_attributes(query_ok(query_request(queue, {"Action": "GetQueueAttributes", "AttributeName.1": "All"}),
                                  "GetQueueAttributes"))
    assert (a["KmsMasterKeyId"], a["KmsDataKeyReusePeriodSeconds"], a["SqsManagedSseEnabled"]) == \
        ("alias/aws/sqs", "120", "false")
    query_error_code(query_request(queue, {"Action": "SetQueueAttributes",
                                           "Attribute.1.Name": "KmsDataKeyReusePeriodSeconds",
                                           "Attribute.1.Value": "86401"}), "InvalidAttributeValue")
