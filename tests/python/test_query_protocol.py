"""The Query protocol (form-encoded POST, XML responses), spoken by older SDKs and the Debian awscli 2.9.

Requests are built by hand (sqs_helpers.query_request) and the XML is checked against the shapes in the SQS API
reference: <XResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><XResult>...</XResult>
<ResponseMetadata><RequestId/></ResponseMetadata></XResponse>, and errors as
<ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>.
"""

import base64
import uuid

import pytest

from sqs_helpers import (query_attributes, query_ok, status_of, ACCOUNT_ID, QUERY_NS, REGION, child, children, md5_hex, md5_of_message_attributes,
                         ns_of, parse_xml, path_text, query_request, strip_ns, xml_error)


# The success envelope and <Attribute> lists are checked by the shared helpers.
ok = query_ok
attributes = query_attributes


@pytest.fixture
def qname(run_id):
    return f"t{run_id}-query-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def qurl(endpoint, qname):
    res = ok(query_request(endpoint, {"Action": "CreateQueue", "QueueName": qname}), "CreateQueue")
    url = path_text(res, "QueueUrl")
    yield url
    query_request(endpoint, {"Action": "DeleteQueue", "QueueUrl": url})


def test_create_queue_with_attributes_and_tags(endpoint, qname, sqs):
    resp = query_request(endpoint, {
        "Action": "CreateQueue", "QueueName": qname,
        "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "40",
        "Attribute.2.Name": "DelaySeconds", "Attribute.2.Value": "1",
        "Tag.1.Key": "team", "Tag.1.Value": "core",
    })
    res = ok(resp, "CreateQueue")
    url = path_text(res, "QueueUrl")
    try:
        assert url == f"{endpoint}/{ACCOUNT_ID}/{qname}"
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (a["VisibilityTimeout"], a["DelaySeconds"]) == ("40", "1")
        assert sqs.list_queue_tags(QueueUrl=url).get("Tags") == {"team": "core"}
    finally:
        sqs.delete_queue(QueueUrl=url)


def test_get_queue_url_and_list_queues(endpoint, qname, qurl):
    res = ok(query_request(endpoint, {"Action": "GetQueueUrl", "QueueName": qname}), "GetQueueUrl")
    assert path_text(res, "QueueUrl") == qurl
    res = ok(query_request(endpoint, {"Action": "ListQueues", "QueueNamePrefix": qname}), "ListQueues")
    assert [u.text for u in children(res, "QueueUrl")] == [qurl]


def test_get_queue_attributes(qurl, qname):
    res = ok(query_request(qurl, {"Action": "GetQueueAttributes", "AttributeName.1": "All"}), "GetQueueAttributes")
    a = attributes(res)
    assert a["VisibilityTimeout"] == "30"
    assert a["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{qname}"
    assert a["ApproximateNumberOfMessages"] == "0"
    res = ok(query_request(qurl, {"Action": "GetQueueAttributes", "AttributeName.1": "QueueArn",
                                  "AttributeName.2": "DelaySeconds"}), "GetQueueAttributes")
    assert set(attributes(res)) == {"QueueArn", "DelaySeconds"}


def test_set_queue_attributes(qurl):
    ok(query_request(qurl, {"Action": "SetQueueAttributes", "Attribute.1.Name": "VisibilityTimeout",
                            "Attribute.1.Value": "50"}), "SetQueueAttributes")
    res = ok(query_request(qurl, {"Action": "GetQueueAttributes", "AttributeName.1": "VisibilityTimeout"}),
             "GetQueueAttributes")
    assert attributes(res) == {"VisibilityTimeout": "50"}


def test_send_receive_delete_via_queue_url_path(qurl):
    body = "query body <&> \"quotes\" 'apos' ✓ and\r\nCRLF"
    binary = b"\x00\x01bin\xff"
    res = ok(query_request(qurl, {
        "Action": "SendMessage", "MessageBody": body,
        "MessageAttribute.1.Name": "color", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "blue",
        "MessageAttribute.2.Name": "blob", "MessageAttribute.2.Value.DataType": "Binary",
        "MessageAttribute.2.Value.BinaryValue": base64.b64encode(binary).decode(),
        "MessageAttribute.3.Name": "n", "MessageAttribute.3.Value.DataType": "Number.int",
        "MessageAttribute.3.Value.StringValue": "7",
    }), "SendMessage")
    expected_attrs = {"color": {"DataType": "String", "StringValue": "blue"},
                      "blob": {"DataType": "Binary", "BinaryValue": binary},
                      "n": {"DataType": "Number.int", "StringValue": "7"}}
    msg_id = path_text(res, "MessageId")
    assert msg_id
    assert path_text(res, "MD5OfMessageBody") == md5_hex(body)
    assert path_text(res, "MD5OfMessageAttributes") == md5_of_message_attributes(expected_attrs)

    res = ok(query_request(qurl, {"Action": "ReceiveMessage", "AttributeName.1": "All",
                                  "MessageAttributeName.1": "All", "MaxNumberOfMessages": "10"}), "ReceiveMessage")
    msgs = children(res, "Message")
    assert len(msgs) == 1
    m = msgs[0]
    assert path_text(m, "MessageId") == msg_id
    assert path_text(m, "Body") == body, "XML must carry the body exactly (escape <, &, and CR as &#xD;)"
    assert path_text(m, "MD5OfBody") == md5_hex(body)
    assert path_text(m, "MD5OfMessageAttributes") == md5_of_message_attributes(expected_attrs)
    sys_attrs = attributes(m)
    assert {"SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SenderId"} \
        <= set(sys_attrs)
    assert sys_attrs["ApproximateReceiveCount"] == "1"
    got_attrs = {}
    for ma in children(m, "MessageAttribute"):
        v = child(ma, "Value")
        entry = {"DataType": path_text(v, "DataType")}
        if child(v, "StringValue") is not None:
            entry["StringValue"] = path_text(v, "StringValue")
        if child(v, "BinaryValue") is not None:
            entry["BinaryValue"] = base64.b64decode(path_text(v, "BinaryValue"))
        got_attrs[path_text(ma, "Name")] = entry
    assert got_attrs == expected_attrs

    handle = path_text(m, "ReceiptHandle")
    assert handle
    ok(query_request(qurl, {"Action": "DeleteMessage", "ReceiptHandle": handle}), "DeleteMessage")
    res = ok(query_request(qurl, {"Action": "GetQueueAttributes", "AttributeName.1": "All"}), "GetQueueAttributes")
    a = attributes(res)
    assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_queue_url_as_parameter_to_endpoint(endpoint, qurl):
    res = ok(query_request(endpoint, {"Action": "SendMessage", "QueueUrl": qurl, "MessageBody": "by param"}),
             "SendMessage")
    assert path_text(res, "MD5OfMessageBody") == md5_hex("by param")
    res = ok(query_request(endpoint, {"Action": "ReceiveMessage", "QueueUrl": qurl}), "ReceiveMessage")
    assert [path_text(m, "Body") for m in children(res, "Message")] == ["by param"]


def test_receive_empty_has_empty_result(qurl):
    res = ok(query_request(qurl, {"Action": "ReceiveMessage"}), "ReceiveMessage")
    assert res is not None and children(res, "Message") == []


def test_batch_actions(qurl):
    res = ok(query_request(qurl, {
        "Action": "SendMessageBatch",
        "SendMessageBatchRequestEntry.1.Id": "a", "SendMessageBatchRequestEntry.1.MessageBody": "body a",
        "SendMessageBatchRequestEntry.2.Id": "b", "SendMessageBatchRequestEntry.2.MessageBody": "body b",
        "SendMessageBatchRequestEntry.2.DelaySeconds": "0",
    }), "SendMessageBatch")
    entries = children(res, "SendMessageBatchResultEntry")
    assert sorted(path_text(e, "Id") for e in entries) == ["a", "b"]
    for e in entries:
        assert path_text(e, "MD5OfMessageBody") == md5_hex("body " + path_text(e, "Id"))
        assert path_text(e, "MessageId")
    res = ok(query_request(qurl, {"Action": "ReceiveMessage", "MaxNumberOfMessages": "10",
                                  "VisibilityTimeout": "60"}), "ReceiveMessage")
    msgs = children(res, "Message")
    assert sorted(path_text(m, "Body") for m in msgs) == ["body a", "body b"]
    res = ok(query_request(qurl, {
        "Action": "ChangeMessageVisibilityBatch",
        "ChangeMessageVisibilityBatchRequestEntry.1.Id": "c1",
        "ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle": path_text(msgs[0], "ReceiptHandle"),
        "ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout": "120",
    }), "ChangeMessageVisibilityBatch")
    assert [path_text(e, "Id") for e in children(res, "ChangeMessageVisibilityBatchResultEntry")] == ["c1"]
    params = {"Action": "DeleteMessageBatch"}
    for i, m in enumerate(msgs, 1):
        params[f"DeleteMessageBatchRequestEntry.{i}.Id"] = f"d{i}"
        params[f"DeleteMessageBatchRequestEntry.{i}.ReceiptHandle"] = path_text(m, "ReceiptHandle")
    params["DeleteMessageBatchRequestEntry.3.Id"] = "bad"
    params["DeleteMessageBatchRequestEntry.3.ReceiptHandle"] = "garbage"
    res = ok(query_request(qurl, params), "DeleteMessageBatch")
    assert sorted(path_text(e, "Id") for e in children(res, "DeleteMessageBatchResultEntry")) == ["d1", "d2"]
    failed = children(res, "BatchResultErrorEntry")
    assert [(path_text(e, "Id"), path_text(e, "Code"), path_text(e, "SenderFault")) for e in failed] == \
        [("bad", "ReceiptHandleIsInvalid", "true")]


def test_purge_and_delete_queue(endpoint, qname):
    url = path_text(ok(query_request(endpoint, {"Action": "CreateQueue", "QueueName": qname}), "CreateQueue"),
                    "QueueUrl")
    ok(query_request(url, {"Action": "SendMessage", "MessageBody": "x"}), "SendMessage")
    ok(query_request(url, {"Action": "PurgeQueue"}), "PurgeQueue")
    ok(query_request(url, {"Action": "DeleteQueue"}), "DeleteQueue")
    resp = query_request(endpoint, {"Action": "GetQueueUrl", "QueueName": qname})
    assert resp.status_code == 400
    assert xml_error(resp)[:2] == ("Sender", "AWS.SimpleQueueService.NonExistentQueue")


def test_tags(qurl):
    ok(query_request(qurl, {"Action": "TagQueue", "Tag.1.Key": "k1", "Tag.1.Value": "v1",
                            "Tag.2.Key": "k2", "Tag.2.Value": "v2"}), "TagQueue")
    ok(query_request(qurl, {"Action": "UntagQueue", "TagKey.1": "k1"}), "UntagQueue")
    res = ok(query_request(qurl, {"Action": "ListQueueTags"}), "ListQueueTags")
    assert {path_text(t, "Key"): path_text(t, "Value") for t in children(res, "Tag")} == {"k2": "v2"}


# ------------------------------------------------------------------------------------------------ errors

def test_error_nonexistent_queue_by_name(endpoint):
    resp = query_request(endpoint, {"Action": "GetQueueUrl", "QueueName": f"missing-{uuid.uuid4().hex}"})
    assert resp.status_code == 400
    typ, code, msg = xml_error(resp)
    assert (typ, code) == ("Sender", "AWS.SimpleQueueService.NonExistentQueue")
    assert msg
    assert ns_of(parse_xml(resp).tag) in ("", QUERY_NS)


def test_error_nonexistent_queue_by_path(endpoint):
    resp = query_request(f"{endpoint}/{ACCOUNT_ID}/missing-{uuid.uuid4().hex}",
                         {"Action": "SendMessage", "MessageBody": "x"})
    assert resp.status_code == 400
    assert xml_error(resp)[:2] == ("Sender", "AWS.SimpleQueueService.NonExistentQueue")


@pytest.mark.parametrize("params,code", [
    ({"Action": "SendMessage", "MessageBody": "x", "DelaySeconds": "901"}, "InvalidParameterValue"),
    ({"Action": "SendMessage", "MessageBody": "bad \x00"}, "InvalidMessageContents"),
    ({"Action": "ReceiveMessage", "MaxNumberOfMessages": "11"}, "InvalidParameterValue"),
    ({"Action": "DeleteMessage", "ReceiptHandle": "garbage"}, "ReceiptHandleIsInvalid"),
    ({"Action": "GetQueueAttributes", "AttributeName.1": "Bogus"}, "InvalidAttributeName"),
    ({"Action": "SetQueueAttributes", "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "43201"},
     "InvalidAttributeValue"),
    # With form parameters an empty list cannot be told from a missing one: either code is right.
    ({"Action": "SendMessageBatch"}, ("AWS.SimpleQueueService.EmptyBatchRequest", "MissingParameter")),
    ({"Action": "SendMessageBatch", "SendMessageBatchRequestEntry.1.Id": "a",
      "SendMessageBatchRequestEntry.1.MessageBody": "x", "SendMessageBatchRequestEntry.2.Id": "a",
      "SendMessageBatchRequestEntry.2.MessageBody": "y"}, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
], ids=["delay", "contents", "max-number", "receipt-handle", "attribute-name", "attribute-value", "empty-batch",
        "duplicate-ids"])
def test_error_codes(qurl, params, code):
    resp = query_request(qurl, params)
    typ, got, _ = xml_error(resp)
    assert typ == "Sender"
    assert got in (code if isinstance(code, tuple) else (code,)), f"<Code>{got}</Code>, expected {code}"
    assert resp.status_code == status_of(got), resp.text[:500]


def test_error_queue_already_exists(endpoint, qname, qurl):
    resp = query_request(endpoint, {"Action": "CreateQueue", "QueueName": qname,
                                    "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "99"})
    assert resp.status_code == 400
    assert xml_error(resp)[:2] == ("Sender", "QueueAlreadyExists")


def test_missing_required_parameter(endpoint):
    resp = query_request(endpoint, {"Action": "CreateQueue"})
    assert resp.status_code == 400
    typ, code, _ = xml_error(resp)
    assert (typ, code) in {("Sender", "MissingParameter"), ("Sender", "InvalidParameterValue")}
